"""The chaos verdicts, from hand-built observations (no broker, no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.chaos.expectations import Observation, evaluate
from streams.chaos.progress import describe_missing
from streams.chaos.runner import isolate_run, worker_env
from streams.chaos.scenarios import SCENARIOS
from streams.chaos.worker_process import MetricsReading
from streams.data.report import ProducedRecord, ProduceReport
from streams.demo.ledger import Outcome
from streams.settings import Settings


def _record(offset: int, outcome: str = "enriched", reason: Any = None) -> Any:
    return ProducedRecord(
        topic="events.tickets",
        partition=0,
        offset=offset,
        event_id=f"e{offset}",
        kind="event" if reason is None else "malformed:tombstone",
        expected_outcome=outcome,
        expected_reason=reason,
    )


class _Worker:
    """Stands in for a worker process: a name, a last scrape, final stats."""

    def __init__(self, reading: MetricsReading | None, stats: Any = None) -> None:
        self.name = "worker-1"
        self.last_reading = reading
        self.circuit_seen_open = bool(reading and reading.circuit_state >= 2)
        self._stats = stats

    def final_stats(self) -> Any:
        return self._stats


def _verdicts(name: str, **fields: Any) -> dict[str, bool]:
    seen = Observation(scenario=SCENARIOS[name], **fields)
    return {e.name: e.passed for e in evaluate(seen)}


def test_a_record_without_outcome_is_lost_and_named() -> None:
    report = ProduceReport((_record(0), _record(1)))
    outcomes = {("events.tickets", 0, 0): [Outcome("enriched", "e0")]}

    verdicts = _verdicts("flaky", report=report, outcomes=outcomes, workers=[])

    assert verdicts == {"no_input_lost": False, "only_malformed_dead_lettered": True}
    message = describe_missing(report, {("events.tickets", 0, 1)})
    assert "events.tickets[0]@1 event event_id=e1" in message
    assert message.startswith("1 of 2 inputs have no outcome")


def test_a_dead_letter_for_a_good_record_fails_flaky() -> None:
    report = ProduceReport((_record(0),))
    outcomes = {
        ("events.tickets", 0, 0): [Outcome("dead_letter", "e0", reason="timeout")]
    }

    verdicts = _verdicts("flaky", report=report, outcomes=outcomes, workers=[])

    assert verdicts["only_malformed_dead_lettered"] is False


def test_poison_needs_the_expected_reason() -> None:
    report = ProduceReport((_record(0, "dead_letter", "tombstone"),))
    right = {
        ("events.tickets", 0, 0): [Outcome("dead_letter", None, reason="tombstone")]
    }
    wrong = {
        ("events.tickets", 0, 0): [Outcome("dead_letter", None, reason="empty_value")]
    }

    ok = _verdicts("poison", report=report, outcomes=right, workers=[])
    bad = _verdicts("poison", report=report, outcomes=wrong, workers=[])

    assert ok["dead_letters_are_the_malformed"] is True
    assert bad["dead_letters_are_the_malformed"] is False


@pytest.mark.parametrize(
    ("rebalances", "stayed"),
    [({"assign": 1}, True), ({"assign": 1, "revoke": 1}, False), ({"lost": 1}, False)],
)
def test_leaving_the_group_is_read_from_the_rebalance_counter(
    rebalances: dict[str, float], stayed: bool
) -> None:
    reading = MetricsReading(rebalances=rebalances, circuit_state=2)
    verdicts = _verdicts(
        "outage",
        report=ProduceReport(()),
        outcomes={},
        workers=[_Worker(reading, {"circuit_opened": 1})],
    )

    assert verdicts["stayed_in_group"] is stayed
    assert verdicts["circuit_opened"] is True


def test_an_unread_worker_does_not_count_as_staying() -> None:
    verdicts = _verdicts(
        "account", report=ProduceReport(()), outcomes={}, workers=[_Worker(None)]
    )

    assert verdicts["stayed_in_group"] is False
    assert verdicts["circuit_opened"] is False


def test_duplicates_beyond_the_bound_fail_crash() -> None:
    report = ProduceReport((_record(0),))
    many = [Outcome("enriched", "e0")] * 200
    verdicts = _verdicts(
        "crash",
        report=report,
        outcomes={("events.tickets", 0, 0): many},
        workers=[],
        max_buffered=30,
    )

    assert verdicts["duplicates_bounded"] is False
    assert verdicts["steps_performed"] is False


def test_metrics_reading_sums_the_counters() -> None:
    text = "\n".join(
        [
            "# TYPE streams_llm_retries_total counter",
            'streams_llm_retries_total{pipeline="a",reason="x"} 2.0',
            'streams_llm_retries_total{pipeline="b",reason="y"} 3.0',
            "# TYPE streams_rebalances_total counter",
            'streams_rebalances_total{kind="assign"} 1.0',
            "# TYPE streams_circuit_state gauge",
            'streams_circuit_state{endpoint="http://x"} 2.0',
            "",
        ]
    )

    reading = MetricsReading.parse(text)

    assert reading.retries == 5
    assert reading.rebalances == {"assign": 1}
    assert reading.circuit_state == 2


def test_workers_of_a_run_share_its_own_retry_tiers(tmp_path: Path) -> None:
    settings = isolate_run(Settings(), tmp_path, "abc123", SCENARIOS["flaky"])
    env = worker_env(settings, SCENARIOS["flaky"], "http://127.0.0.1:1")

    assert env["STREAMS_LLM__MAX_ATTEMPTS"] == "8"
    assert orjson.loads(env["STREAMS_RETRY__TIERS_S"]) == [2, 5]
    assert env["STREAMS_RETRY__TOPIC_PREFIX"] == "events.retry.abc123"
    assert settings.retry.tiers_s == [2, 5]
