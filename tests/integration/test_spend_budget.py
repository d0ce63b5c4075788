"""A pipeline over its hourly budget pauses; the other pipelines carry on."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.data.produce import produce_events
from streams.demo.local_services import SimulatorProcess
from streams.service import build_service
from tests.integration.harness import Isolated, isolate

pytestmark = pytest.mark.broker

PER_SOURCE = 30
HOLD_S = 8.0
"""How long the worker keeps running once the open pipeline is done: longer
than the session timeout, so a member that stopped polling would be evicted."""


def wait_past_the_top_of_the_hour() -> None:
    """The budget is per calendar hour: a run across 00 minutes would reopen it."""
    now = datetime.now(UTC)
    left_s = 3600 - (now.minute * 60 + now.second)
    if left_s < 90:
        time.sleep(left_s + 1)


class RecordingConsumer:
    """The worker's consumer, with every pause and resume written down."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner
        self.calls: list[tuple[str, frozenset[tuple[str, int]]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._note("pause", partitions)
        self._inner.pause(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._note("resume", partitions)
        self._inner.resume(partitions)

    def _note(self, call: str, partitions: list[TopicPartition]) -> None:
        self.calls.append(
            (call, frozenset((tp.topic, tp.partition) for tp in partitions))
        )

    def after_first_pause_of(
        self, keys: set[tuple[str, int]]
    ) -> list[tuple[str, frozenset[tuple[str, int]]]]:
        """The calls after the first pause of exactly ``keys``."""
        for index, (call, partitions) in enumerate(self.calls):
            if call == "pause" and partitions == keys:
                return self.calls[index + 1 :]
        raise AssertionError(f"{sorted(keys)} were never paused on their own")


def committed_records(isolated: Isolated, topic: str) -> int:
    """Offsets the worker's group committed on ``topic``, summed over partitions."""
    consumer = Consumer(
        {
            "bootstrap.servers": isolated.settings.kafka.bootstrap_servers,
            "group.id": isolated.settings.kafka.group_id,
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = [
            TopicPartition(topic, partition)
            for partition in metadata.topics[topic].partitions
        ]
        committed = consumer.committed(partitions, timeout=10)
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in committed)


def test_a_pipeline_over_its_hourly_budget_pauses_while_another_is_enriched(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    wait_past_the_top_of_the_hour()
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        simulator.url,
        kafka={"session_timeout_ms": 6_000, "max_poll_interval_ms": 6_000},
        # A bound smaller than the tickets received before the budget ran out:
        # the held tickets must not stall the emails.
        worker={"shutdown_grace_s": 1.0, "max_buffered": 6},
        # One call at a time, so the first answer spends the whole budget
        # before a second call can go out.
        pipeline_fields={
            "tickets": {"budget_usd_per_hour": 1e-9, "max_concurrency": 1}
        },
    )
    settings = isolated.settings.model_copy(update={"pipelines": ["tickets", "emails"]})
    report = produce_events(
        kafka_bootstrap,
        pipelines=["tickets", "emails"],
        limit_per_source=PER_SOURCE,
        duplicate_ratio=0.0,
        malformed=False,
        topics=isolated.topics,
    )
    tickets_topic, emails_topic = isolated.topics["tickets"], isolated.topics["emails"]
    tickets = {
        (r.topic, r.partition, r.offset)
        for r in report.records
        if r.topic == tickets_topic
    }
    emails = {
        (r.topic, r.partition, r.offset)
        for r in report.records
        if r.topic == emails_topic
    }
    assert tickets and emails

    service = build_service(settings)
    registry = service.worker.metrics.registry
    # Back-pressure pauses and resumes every partition many times with a bound
    # of 6; it must never resume a partition the budget paused. The worker
    # builds its own consumer, so the wrapper goes in after construction.
    recorder = RecordingConsumer(service.worker._consumer)
    service.worker._consumer = recorder  # type: ignore[assignment]  # a recording wrapper
    ledger = isolated.ledger()
    during: dict[str, float | None] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(service.worker.run(stop))
        try:
            deadline = time.monotonic() + 90
            while ledger.missing(emails) and time.monotonic() < deadline:
                assert not task.done()
                await asyncio.to_thread(ledger.poll, 0.3)
            held_until = time.monotonic() + HOLD_S
            while time.monotonic() < held_until:
                await asyncio.to_thread(ledger.poll, 0.3)
            value = registry.get_sample_value
            during["paused"] = value(
                "streams_pipeline_paused",
                {"pipeline": "tickets", "reason": "budget_hour"},
            )
            during["emails_paused"] = value(
                "streams_pipeline_paused",
                {"pipeline": "emails", "reason": "budget_hour"},
            )
            during["partitions"] = value(
                "streams_pipeline_partitions_paused", {"pipeline": "tickets"}
            )
            during["remaining"] = value(
                "streams_budget_remaining_usd",
                {"pipeline": "tickets", "window": "hour"},
            )
            during["assigned"] = value("streams_rebalances_total", {"kind": "assign"})
            during["revoked"] = value("streams_rebalances_total", {"kind": "revoke"})
            during["lost"] = value("streams_rebalances_total", {"kind": "lost"})
        finally:
            stop.set()
            await task

    try:
        asyncio.run(scenario())
        ledger.poll(0.5)
    finally:
        ledger.close()

    # The open pipeline was enriched in full, once per record.
    assert not ledger.missing(emails)
    assert all(
        [outcome.kind for outcome in ledger.outcomes[c]] == ["enriched"] for c in emails
    )
    # The first ticket spent the budget; the rest wait, uncommitted, and
    # nothing was dead-lettered.
    ticket_outcomes = [o for c in tickets for o in ledger.outcomes.get(c, [])]
    assert [o.kind for o in ticket_outcomes] == ["enriched"]
    assert not any(
        o.kind == "dead_letter"
        for outcomes in ledger.outcomes.values()
        for o in outcomes
    )
    assert committed_records(isolated, tickets_topic) <= 1
    # The budget paused the tickets partitions on their own; back-pressure
    # paused and resumed all partitions after that, but never resumed those.
    tickets_partitions = {(tickets_topic, partition) for partition in range(3)}
    later = recorder.after_first_pause_of(tickets_partitions)
    assert any(call == "resume" for call, _ in later)
    assert not any(
        call == "resume" and partitions & tickets_partitions
        for call, partitions in later
    )
    assert committed_records(isolated, emails_topic) == len(emails)
    # What an operator sees while it is paused; the member stayed in its group.
    assert during == {
        "paused": 1.0,
        "emails_paused": 0.0,
        "partitions": 3.0,
        "remaining": 0.0,
        "assigned": 1.0,
        "revoked": None,
        "lost": None,
    }
