"""A deferrable pipeline waits out a peak window and then catches up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.data.produce import produce_events
from streams.demo.local_services import SimulatorProcess
from streams.service import build_service
from streams.settings import PeakWindow, PricingSettings
from tests.integration.harness import isolate

pytestmark = pytest.mark.broker

PER_SOURCE = 10


def peak_window_from_now() -> tuple[PeakWindow, datetime]:
    """A peak window of this minute (and the next, late in a minute), and its end.

    Peak windows have minute resolution, so the peak lasts between 30 and 90
    seconds from now.
    """
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute >= 57:
        time.sleep((60 - now.minute) * 60 - now.second + 1)  # past midnight
        now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=1 if now.second < 30 else 2)
    window = PeakWindow(
        weekdays=[now.weekday()],
        start=start.strftime("%H:%M"),
        end=end.strftime("%H:%M"),
    )
    return window, end


def test_a_deferrable_pipeline_waits_for_the_peak_to_end_and_then_catches_up(
    tmp_path: Path, kafka_bootstrap: str, simulator: SimulatorProcess
) -> None:
    isolated = isolate(
        tmp_path,
        kafka_bootstrap,
        simulator.url,
        worker={"shutdown_grace_s": 1.0},
        pipeline_fields={"emails": {"deferrable": True}},
    )
    window, peak_ends = peak_window_from_now()
    settings = isolated.settings.model_copy(
        update={
            "pipelines": ["tickets", "emails"],
            "pricing": PricingSettings(peak_windows=[window]),
        }
    )
    report = produce_events(
        kafka_bootstrap,
        pipelines=["tickets", "emails"],
        limit_per_source=PER_SOURCE,
        duplicate_ratio=0.0,
        malformed=False,
        topics=isolated.topics,
    )
    coordinates = {
        name: {
            (r.topic, r.partition, r.offset) for r in report.records if r.topic == topic
        }
        for name, topic in isolated.topics.items()
        if name in ("tickets", "emails")
    }
    service = build_service(settings)
    value = service.worker.metrics.registry.get_sample_value
    ledger = isolated.ledger()
    during_peak: dict[str, float | None] = {}
    emails_done_at: datetime | None = None

    async def scenario() -> None:
        nonlocal emails_done_at
        stop = asyncio.Event()
        task = asyncio.create_task(service.worker.run(stop))
        try:
            deadline = time.monotonic() + 60
            while (
                ledger.missing(coordinates["tickets"]) and time.monotonic() < deadline
            ):
                await asyncio.to_thread(ledger.poll, 0.3)
            assert datetime.now(UTC) < peak_ends, "the urgent pipeline was too slow"
            during_peak["emails_outcomes"] = float(
                len(coordinates["emails"]) - len(ledger.missing(coordinates["emails"]))
            )
            during_peak["paused"] = value(
                "streams_pipeline_paused",
                {"pipeline": "emails", "reason": "peak_hours"},
            )
            during_peak["partitions"] = value(
                "streams_pipeline_partitions_paused", {"pipeline": "emails"}
            )
            deadline = time.monotonic() + 150
            while ledger.missing(coordinates["emails"]) and time.monotonic() < deadline:
                await asyncio.to_thread(ledger.poll, 0.3)
            emails_done_at = datetime.now(UTC)
            assert value("streams_rebalances_total", {"kind": "revoke"}) is None
        finally:
            stop.set()
            await task

    try:
        asyncio.run(scenario())
    finally:
        ledger.close()

    # During the peak: urgent tickets enriched, deferrable emails untouched.
    assert during_peak == {"emails_outcomes": 0.0, "paused": 1.0, "partitions": 3.0}
    # After it: every email enriched once, nothing dead-lettered.
    assert emails_done_at is not None and emails_done_at >= peak_ends
    for name in ("tickets", "emails"):
        assert not ledger.missing(coordinates[name])
        assert all(
            [o.kind for o in ledger.outcomes[c]] == ["enriched"]
            for c in coordinates[name]
        )
    assert (
        value("streams_pipeline_paused", {"pipeline": "emails", "reason": "peak_hours"})
        == 0
    )
