"""The checks that decide whether a chaos run passed.

Each check reads what the run observed (the produced answer key, every
outcome the ledger filed, the workers' last metrics and final stats, the
disruptions performed) and returns an :class:`Expectation` with a detail
line that says what was measured, so a failure explains itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.chaos.scenarios import Scenario, Step
from streams.chaos.worker_process import WorkerProcess
from streams.data.produce import ProduceReport
from streams.demo.ledger import Coordinates, Outcome


@dataclass(frozen=True)
class Expectation:
    """The verdict of one check."""

    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class Observation:
    """What one run saw, as the checks need it."""

    scenario: Scenario
    report: ProduceReport
    outcomes: dict[Coordinates, list[Outcome]]
    workers: list[WorkerProcess]
    performed: list[Step] = field(default_factory=list)
    max_buffered: int = 0

    def outcomes_of(self, coordinates: Coordinates) -> list[Outcome]:
        """The outcomes filed for one input (empty when it has none)."""
        return self.outcomes.get(coordinates, [])


def _coordinates_text(coordinates: Coordinates) -> str:
    topic, partition, offset = coordinates
    return f"{topic}[{partition}]@{offset}"


def no_input_lost(seen: Observation) -> Expectation:
    """Every input has an enriched or a dead-letter record."""
    lost = [
        (r.topic, r.partition, r.offset)
        for r in seen.report.records
        if not seen.outcomes_of((r.topic, r.partition, r.offset))
    ]
    shown = ", ".join(_coordinates_text(c) for c in lost[:5])
    return Expectation(
        "no_input_lost",
        not lost,
        f"lost={len(lost)} of {len(seen.report.records)}"
        + (f" (first: {shown})" if lost else ""),
    )


def _unexpected(seen: Observation) -> list[str]:
    """Inputs whose outcome is not the one the answer key names."""
    found = []
    for record in seen.report.records:
        for outcome in seen.outcomes_of(
            (record.topic, record.partition, record.offset)
        ):
            if outcome.kind != record.expected_outcome:
                found.append(
                    f"{record.kind} {record.event_id} became {outcome.kind}"
                    + (f" ({outcome.reason})" if outcome.reason else "")
                )
    return found


def only_malformed_dead_lettered(seen: Observation) -> Expectation:
    """Nothing that could be enriched was dead-lettered, whatever the faults."""
    unexpected = _unexpected(seen)
    return Expectation(
        "only_malformed_dead_lettered",
        not unexpected,
        f"unexpected outcomes={len(unexpected)}"
        + (f" (first: {'; '.join(unexpected[:3])})" if unexpected else ""),
    )


def no_dead_letters(seen: Observation) -> Expectation:
    """An unavailable provider dead-letters nothing."""
    reasons: dict[str, int] = {}
    for outcomes in seen.outcomes.values():
        for outcome in outcomes:
            if outcome.kind == "dead_letter":
                reason = outcome.reason or "unknown"
                reasons[reason] = reasons.get(reason, 0) + 1
    return Expectation(
        "no_dead_letters",
        not reasons,
        f"dead letters={sum(reasons.values())}" + (f" {reasons}" if reasons else ""),
    )


def dead_letters_are_the_malformed(seen: Observation) -> Expectation:
    """Dead letters are exactly the malformed records, each with its reason."""
    problems = _unexpected(seen)
    expected_dead = 0
    for record in seen.report.records:
        if record.expected_outcome != "dead_letter":
            continue
        expected_dead += 1
        for outcome in seen.outcomes_of(
            (record.topic, record.partition, record.offset)
        ):
            if (
                outcome.kind == "dead_letter"
                and outcome.reason != record.expected_reason
            ):
                problems.append(
                    f"{record.kind} got reason {outcome.reason}, "
                    f"expected {record.expected_reason}"
                )
    return Expectation(
        "dead_letters_are_the_malformed",
        not problems and expected_dead > 0,
        f"malformed dead letters expected={expected_dead} mismatches={len(problems)}"
        + (f" (first: {'; '.join(problems[:3])})" if problems else ""),
    )


def _duplicates(seen: Observation) -> int:
    return sum(max(0, len(outcomes) - 1) for outcomes in seen.outcomes.values())


def duplicates_bounded(seen: Observation) -> Expectation:
    """Redone work stays within one uncommitted window per disruption."""
    bound = seen.scenario.duplicate_bound_factor * seen.max_buffered
    duplicates = _duplicates(seen)
    return Expectation(
        "duplicates_bounded",
        duplicates <= bound,
        f"duplicates={duplicates} bound={bound} "
        f"({seen.scenario.duplicate_bound_factor} x worker.max_buffered "
        f"{seen.max_buffered})",
    )


def duplicates_recognisable(seen: Observation) -> Expectation:
    """Every repeated output names the same event and has the same kind."""
    mixed = [
        _coordinates_text(coordinates)
        for coordinates, outcomes in seen.outcomes.items()
        if len({o.event_id for o in outcomes}) > 1
        or len({o.kind for o in outcomes}) > 1
    ]
    return Expectation(
        "duplicates_recognisable",
        not mixed,
        f"inputs whose outputs differ in event id or kind={len(mixed)}"
        + (f" (first: {', '.join(mixed[:3])})" if mixed else ""),
    )


def stayed_in_group(seen: Observation) -> Expectation:
    """No worker had partitions revoked or lost while the provider was down."""
    read = [w for w in seen.workers if w.last_reading is not None]
    left = {
        w.name: {
            kind: int(count)
            for kind, count in w.last_reading.rebalances.items()
            if kind in ("revoke", "lost") and count > 0
        }
        for w in read
        if w.last_reading is not None
    }
    left = {name: kinds for name, kinds in left.items() if kinds}
    unread = [w.name for w in seen.workers if w.last_reading is None]
    passed = bool(read) and not left and not unread
    detail = f"workers read={len(read)} revoke/lost rebalances={left or 0}" + (
        f" unread={unread}" if unread else ""
    )
    return Expectation("stayed_in_group", passed, detail)


def circuit_opened(seen: Observation) -> Expectation:
    """The circuit breaker opened during the run (seen in metrics or stats)."""
    opened = 0
    seen_open = False
    for worker in seen.workers:
        seen_open |= worker.circuit_seen_open
        stats = worker.final_stats() or {}
        count = stats.get("circuit_opened", 0)
        opened += count if isinstance(count, int) else 0
    return Expectation(
        "circuit_opened",
        opened > 0 or seen_open,
        f"circuit openings in final stats={opened}, seen open in metrics={seen_open}",
    )


def steps_performed(seen: Observation) -> Expectation:
    """Every planned disruption happened while work remained."""
    planned = [f"{s.action.value}@{s.at_progress:.0%}" for s in seen.scenario.steps]
    done = [f"{s.action.value}@{s.at_progress:.0%}" for s in seen.performed]
    return Expectation(
        "steps_performed",
        planned == done,
        f"performed {len(done)} of {len(planned)}: {', '.join(done) or 'none'}",
    )


CHECKS: dict[str, Callable[[Observation], Expectation]] = {
    "no_input_lost": no_input_lost,
    "only_malformed_dead_lettered": only_malformed_dead_lettered,
    "no_dead_letters": no_dead_letters,
    "dead_letters_are_the_malformed": dead_letters_are_the_malformed,
    "duplicates_bounded": duplicates_bounded,
    "duplicates_recognisable": duplicates_recognisable,
    "stayed_in_group": stayed_in_group,
    "circuit_opened": circuit_opened,
    "steps_performed": steps_performed,
}


def evaluate(seen: Observation) -> list[Expectation]:
    """Runs the scenario's checks, in its order."""
    return [CHECKS[name](seen) for name in seen.scenario.expectations]
