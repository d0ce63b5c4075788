"""Real events through the real broker: every record ends exactly once, as expected."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams import json_codec, paths
from streams.data.produce import ProduceReport, produce_events
from streams.demo.ledger import OutputLedger
from streams.demo.local_services import SimulatorProcess
from streams.pipeline.config import compile_schema, load_pipelines
from streams.service import build_service
from tests.integration.harness import Isolated, isolate, run_worker_until

pytestmark = pytest.mark.broker


def produce(
    isolated: Isolated, limit: int, duplicate_ratio: float = 0.2
) -> ProduceReport:
    return produce_events(
        isolated.settings.kafka.bootstrap_servers,
        data_dir=None,
        limit_per_source=limit,
        duplicate_ratio=duplicate_ratio,
        topics=isolated.topics,
    )


def read_inputs(
    isolated: Isolated,
) -> dict[tuple[str, int, int], tuple[bytes | None, bytes | None]]:
    """Every input record's key and value bytes, by coordinates."""
    consumer = Consumer(
        {
            "bootstrap.servers": isolated.settings.kafka.bootstrap_servers,
            "group.id": f"reader-{isolated.suffix}",
            "enable.auto.commit": False,
        }
    )
    found = {}
    metadata = consumer.list_topics(timeout=10)
    assignment = [
        TopicPartition(topic, partition, 0)
        for topic in isolated.topics.values()
        for partition in metadata.topics[topic].partitions
    ]
    consumer.assign(assignment)
    empty_polls = 0
    while empty_polls < 3:
        messages = consumer.consume(1000, timeout=1.0)
        empty_polls = 0 if messages else empty_polls + 1
        for message in messages:
            found[(message.topic(), message.partition(), message.offset())] = (
                message.key(),
                message.value(),
            )
    consumer.close()
    return found


@pytest.fixture(scope="module")
def completed_run(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    simulator: SimulatorProcess,
) -> Iterator[tuple[Isolated, ProduceReport, OutputLedger, int]]:
    """One run over real sample data, shared by the assertions below."""
    tmp_path = tmp_path_factory.mktemp("end-to-end")
    isolated = isolate(tmp_path, kafka_bootstrap, simulator.url)
    report = produce(isolated, limit=40)
    ledger = isolated.ledger()
    service = build_service(isolated.settings)
    expected = {(r.topic, r.partition, r.offset) for r in report.records}
    missing = asyncio.run(run_worker_until(service.worker.run, ledger, expected, 120))
    assert not missing, f"{len(missing)} inputs have no outcome"
    yield isolated, report, ledger, service.worker.stats.llm_calls
    ledger.close()


def test_every_input_ends_enriched_or_dead_lettered_exactly_once(
    completed_run: tuple[Isolated, ProduceReport, OutputLedger, int],
) -> None:
    _, report, ledger, _ = completed_run
    for record in report.records:
        outcomes = ledger.outcomes[(record.topic, record.partition, record.offset)]
        assert len(outcomes) == 1, record
        assert outcomes[0].kind == record.expected_outcome, record
        if (
            record.expected_outcome == "enriched"
            or record.expected_reason == "schema_violation"
        ):
            # Undecodable values have no id the worker could read.
            assert outcomes[0].event_id == record.event_id, record
    produced_ids = Counter(
        r.event_id for r in report.records if r.expected_outcome == "enriched"
    )
    enriched_ids = Counter(
        o.event_id
        for outs in ledger.outcomes.values()
        for o in outs
        if o.kind == "enriched"
    )
    assert enriched_ids == produced_ids


def test_duplicates_are_served_without_an_llm_call(
    completed_run: tuple[Isolated, ProduceReport, OutputLedger, int],
) -> None:
    _, report, ledger, llm_calls = completed_run
    enriched = [
        o for outs in ledger.outcomes.values() for o in outs if o.kind == "enriched"
    ]
    own_calls = [o for o in enriched if o.dedup == "miss"]
    distinct_content = {o.metadata["content_hash"] for o in enriched}
    replays = sum(1 for r in report.records if r.kind == "duplicate")

    assert replays > 0
    assert len(enriched) - len(own_calls) >= replays
    assert len(own_calls) == len(distinct_content)
    assert llm_calls == len(distinct_content)
    for outcome in enriched:
        if outcome.dedup != "miss":
            assert outcome.metadata["usage"]["prompt_cache_miss_tokens"] == 0
            assert outcome.metadata["cost_usd"] == 0.0


def test_malformed_records_are_dead_lettered_with_reason_and_original_bytes(
    completed_run: tuple[Isolated, ProduceReport, OutputLedger, int],
) -> None:
    isolated, report, ledger, _ = completed_run
    inputs = read_inputs(isolated)
    malformed = [r for r in report.records if r.kind.startswith("malformed:")]
    assert {r.kind for r in malformed} >= {
        "malformed:invalid_json",
        "malformed:invalid_utf8",
        "malformed:tombstone",
        "malformed:empty_value",
        "malformed:missing_required_field",
        "malformed:lone_surrogate",
        "malformed:big_integer",
    }
    for record in malformed:
        coordinates = (record.topic, record.partition, record.offset)
        (outcome,) = ledger.outcomes[coordinates]
        key, value = inputs[coordinates]
        if record.expected_outcome == "dead_letter":
            assert outcome.reason == record.expected_reason, record
            assert outcome.value == value and outcome.key == key, record
            assert outcome.headers["dlq.error.message"]
            assert outcome.headers["dlq.original.offset"] == str(record.offset).encode()
        else:
            assert outcome.kind == "enriched", record
            assert outcome.key == key
    big = next(r for r in malformed if r.kind == "malformed:big_integer")
    (outcome,) = ledger.outcomes[(big.topic, big.partition, big.offset)]
    assert outcome.value is not None
    assert b"123456789012345678901234567890" in outcome.value


def test_enriched_records_carry_key_metadata_and_a_valid_enrichment(
    completed_run: tuple[Isolated, ProduceReport, OutputLedger, int],
) -> None:
    isolated, _, ledger, _ = completed_run
    inputs = read_inputs(isolated)
    for coordinates, outcomes in ledger.outcomes.items():
        for outcome in outcomes:
            if outcome.kind != "enriched":
                continue
            assert outcome.key == inputs[coordinates][0]
            metadata = outcome.metadata
            assert metadata["source"]["offset"] == coordinates[2]
            assert metadata["model"] == "deepseek-flash"
            assert len(metadata["content_hash"]) == 64
            if metadata["dedup"] == "miss":
                assert metadata["attempts"] >= 1
                assert (
                    metadata["usage"]["prompt_cache_hit_tokens"]
                    + metadata["usage"]["prompt_cache_miss_tokens"]
                    > 0
                )
                assert metadata["cost_usd"] > 0


def test_output_and_dead_letter_records_match_their_published_schemas(
    completed_run: tuple[Isolated, ProduceReport, OutputLedger, int],
) -> None:
    _, _, ledger, _ = completed_run
    validate_enriched = compile_schema(paths.SCHEMAS_DIR, "enriched_event.schema.json")
    validate_dead_letter = compile_schema(paths.SCHEMAS_DIR, "dead_letter.schema.json")
    pipelines = {
        p.name: p
        for p in load_pipelines(paths.PIPELINES_DIR, paths.SCHEMAS_DIR).values()
    }
    for outcomes in ledger.outcomes.values():
        for outcome in outcomes:
            if outcome.kind == "enriched":
                record = json_codec.loads(outcome.value or b"")
                validate_enriched(record)
                pipelines[outcome.metadata["pipeline"]].validate_output(
                    record["enrichment"]
                )
            else:
                validate_dead_letter(
                    {k: v.decode() for k, v in outcome.headers.items()}
                )
