"""``streams dlq inspect`` and ``replay`` over dead letters a real worker wrote.

One run: sample events with malformed records go through the worker until
every input has its outcome; then inspect must count exactly the dead letters
the producer's answer key expects, a dry run must write nothing, an executed
replay must put the selected records back byte for byte with the replay
header, and a second replay must find them all in the ledger.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from rich.console import Console

from streams.cli import main
from streams.data.produce import produce_events
from streams.dead_letters import (
    REPLAYED_FROM_HEADER,
    KafkaUnreachableError,
    MissingTopicError,
    Selection,
    TopicReader,
    inspect_dead_letters,
    ledger_topic,
    replay_dead_letters,
)
from streams.demo.local_services import SimulatorProcess
from streams.kafka.dead_letter import DeadLetter, SourceRecord, dead_letter_record
from streams.service import build_service
from tests.integration.harness import isolate, run_worker_until

pytestmark = pytest.mark.broker

Coordinates = tuple[str, int, int]
StoredRecord = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]
REPLAYED_REASON = "schema_violation"


def read_records(
    bootstrap: str, topics: list[str], starts: dict[tuple[str, int], int] | None = None
) -> dict[Coordinates, StoredRecord]:
    """Key, value and headers of every record up to the current end, by coordinates."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "dlq-test-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        assignment, wanted = [], 0
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                start = (starts or {}).get((topic, partition), 0)
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                wanted += max(0, high - start)
                assignment.append(TopicPartition(topic, partition, start))
        consumer.assign(assignment)
        found: dict[Coordinates, StoredRecord] = {}
        while len(found) < wanted:
            for message in consumer.consume(1_000, timeout=2.0):
                assert message.error() is None, message.error()
                coordinates = (message.topic(), message.partition(), message.offset())
                found[coordinates] = (
                    message.key(),
                    message.value(),
                    list(message.headers() or []),
                )
        return found
    finally:
        consumer.close()


def ends(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Each partition's high watermark."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlq-test-ends"})
    try:
        metadata = consumer.list_topics(timeout=10)
        return {
            (topic, partition): consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )[1]
            for topic in topics
            for partition in metadata.topics[topic].partitions
        }
    finally:
        consumer.close()


def test_inspect_and_replay_the_dead_letters_of_a_real_run(
    tmp_path: Path,
    kafka_bootstrap: str,
    simulator: SimulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated = isolate(tmp_path, kafka_bootstrap, simulator.url)
    settings = isolated.settings
    dead_letter_topic = settings.kafka.dead_letter_topic
    input_topics = sorted(isolated.topics.values())
    report = produce_events(
        kafka_bootstrap, topics=isolated.topics, limit_per_source=10
    )
    outputs = isolated.ledger()
    expected = {(r.topic, r.partition, r.offset) for r in report.records}
    missing = asyncio.run(
        run_worker_until(build_service(settings).worker.run, outputs, expected, 45)
    )
    outputs.close()
    assert not missing, f"{len(missing)} inputs have no outcome"
    dead = [r for r in report.records if r.expected_outcome == "dead_letter"]
    pipeline_of = {topic: name for name, topic in isolated.topics.items()}
    console = Console(file=io.StringIO(), width=200)

    # Inspect: the counts are the answer key's.
    inspection = inspect_dead_letters(
        settings, selection=Selection(), sample_size=5, console=console
    )
    assert inspection.read == inspection.matched == len(dead)
    assert inspection.by_reason == Counter(r.expected_reason for r in dead)
    assert inspection.by_pipeline == Counter(pipeline_of[r.topic] for r in dead)
    assert inspection.by_stage == Counter(decode=len(dead))
    assert sum(inspection.by_hour.values()) == len(dead)
    assert len(inspection.sample) == 5

    future = Selection.of(since=datetime.now(UTC) + timedelta(hours=1))
    assert inspect_dead_letters(settings, selection=future, console=console).read == 0

    # The same through the command line, as JSON.
    for name, value in isolated.env().items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["dlq", "inspect", "--reason", REPLAYED_REASON, "--json"]) == 0
    document = orjson.loads(capsys.readouterr().out)
    selected = [r for r in dead if r.expected_reason == REPLAYED_REASON]
    assert document["by_reason"] == {REPLAYED_REASON: len(selected)}
    assert document["read"] == len(dead)

    # A record whose value was too large to carry is selected but skipped.
    too_large = SourceRecord(input_topics[0], 0, 12_345, 0, b"big", b"x" * 5_000, [])
    letter = DeadLetter("decode", "DecodeError", REPLAYED_REASON, "large", "tickets")
    value, headers = dead_letter_record(too_large, letter, "group", 2_000)
    producer = Producer(settings.kafka.producer_config())
    producer.produce(dead_letter_topic, key=b"big", value=value, headers=headers)
    assert producer.flush(10) == 0

    # Dry run: a plan, and nothing written anywhere.
    before = ends(kafka_bootstrap, input_topics)
    selection = Selection.of(reasons=[REPLAYED_REASON])
    dry = replay_dead_letters(settings, selection=selection, console=console)
    assert len(dry.plan.to_replay) == len(selected)
    assert [s.record.source.key for s in dry.plan.skipped] == [b"big"]
    assert dry.replayed == []
    assert ends(kafka_bootstrap, input_topics) == before
    with pytest.raises(MissingTopicError):
        TopicReader(settings.kafka.common_config(), ledger_topic(dead_letter_topic))

    # Execute: every selected record is back on its input, byte for byte.
    done = replay_dead_letters(
        settings, selection=selection, execute=True, console=console
    )
    assert len(done.replayed) == len(selected)
    assert len(done.plan.skipped) == 1 and done.plan.already_replayed == []
    originals = read_records(kafka_bootstrap, input_topics)
    replayed = read_records(kafka_bootstrap, input_topics, starts=before)
    assert len(replayed) == len(selected)
    for delivery in done.replayed:
        record = delivery.record
        assert (delivery.topic, delivery.partition) == (
            record.original_topic,
            record.original_partition,
        )
        assert record.original_topic is not None
        assert record.original_partition is not None
        assert record.original_offset is not None
        key, value, headers = originals[
            (record.original_topic, record.original_partition, record.original_offset)
        ]
        assert replayed[(delivery.topic, delivery.partition, delivery.offset)] == (
            key,
            value,
            [*headers, (REPLAYED_FROM_HEADER, record.key.encode())],
        )
    admin = AdminClient(settings.kafka.common_config())
    ledger = ConfigResource(ConfigResource.Type.TOPIC, ledger_topic(dead_letter_topic))
    described = admin.describe_configs([ledger])[ledger].result(timeout=10)
    assert described["cleanup.policy"].value == "compact"

    # Again: everything is in the ledger, nothing is produced.
    after = ends(kafka_bootstrap, input_topics)
    again = replay_dead_letters(
        settings, selection=selection, execute=True, console=console
    )
    assert again.replayed == [] and again.plan.to_replay == []
    assert len(again.plan.already_replayed) == len(selected)
    assert len(again.plan.skipped) == 1
    assert ends(kafka_bootstrap, input_topics) == after


def test_a_missing_dead_letter_topic_and_an_unreachable_cluster_are_clear_errors(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    isolated = isolate(tmp_path, kafka_bootstrap, simulator.url)
    kafka = isolated.settings.kafka.model_copy(
        update={"dead_letter_topic": f"absent.{isolated.suffix}"}
    )
    settings = isolated.settings.model_copy(update={"kafka": kafka})
    with pytest.raises(MissingTopicError, match=f"absent.{isolated.suffix}"):
        inspect_dead_letters(settings, selection=Selection())

    # A port this test holds bound but not listening: connections are refused.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(KafkaUnreachableError, match=f"127.0.0.1:{port}"):
            TopicReader({"bootstrap.servers": f"127.0.0.1:{port}"}, "any", timeout_s=2)
