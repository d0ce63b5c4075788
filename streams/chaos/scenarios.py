"""The chaos scenarios: what each one breaks, when, and what must still hold.

A scenario is data: the simulator's fault settings (a function of the fault
window, so tests can shorten it), the settings its workers run with, the
disruptions that happen at given shares of the run's progress, and the names
of the expectations checked at the end (:mod:`streams.chaos.expectations`).

Progress is the share of produced inputs that already have an outcome, so a
disruption always lands while work remains, however fast the machine is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streams.simulator.fault_catalogue import FaultKind


class Action(StrEnum):
    """A disruption the runner performs during a run."""

    KILL_WORKER = "kill_worker"
    """SIGKILL the first worker, then start a replacement at once."""
    ADD_WORKER = "add_worker"
    """Start one more worker in the same group."""
    STOP_ADDED_WORKER = "stop_added_worker"
    """SIGTERM the most recently added worker and wait for it to leave."""
    RESTART_BROKER = "restart_broker"
    """Stop the local broker and start it again on the same data."""


@dataclass(frozen=True)
class Step:
    """One disruption and the progress at which it happens.

    Attributes:
        at_progress: Share of inputs with an outcome, in (0, 1), that
            triggers it.
        action: What happens.
    """

    at_progress: float
    action: Action


DEFAULT_LIMIT_PER_SOURCE = 100
"""Rows read from each sample source unless ``--limit-per-source`` says otherwise."""

DEFAULT_TIMEOUT_S = 600.0
"""Longest wait for every input to have an outcome, unless ``--timeout`` says."""

FaultBuilder = Callable[[float], dict[str, Any]]
"""Builds the simulator's fault settings from the fault window in seconds."""


@dataclass(frozen=True)
class Scenario:
    """Everything that describes one chaos scenario.

    Attributes:
        name: The ``--scenario`` value.
        summary: One line for ``--help`` and the docs.
        faults: The simulator's fault settings, applied when the workers start.
        default_fault_s: The fault window when ``--fault-seconds`` is not given.
        worker_env: Settings of every worker, as ``STREAMS_*`` variables.
        steps: Disruptions, in order of progress.
        expectations: Names of the checks that decide ``passed``.
        malformed: Whether one record of every malformed kind is produced.
        latency_mean_ms: The simulator's mean latency; slower runs give the
            disruptions time to land mid-run.
        max_buffered: ``worker.max_buffered`` of the workers; it bounds the
            duplicates a crash or a rebalance may cause.
        duplicate_bound_factor: Duplicates allowed, in units of
            ``max_buffered`` (one per membership change).
        retry_tiers_s: ``retry.tiers_s`` of the workers (a JSON list of
            seconds), passed only when the settings have a ``retry`` section.
    """

    name: str
    summary: str
    faults: FaultBuilder
    default_fault_s: float = 0.0
    worker_env: dict[str, str] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    expectations: tuple[str, ...] = ("no_input_lost",)
    malformed: bool = False
    latency_mean_ms: float = 300.0
    max_buffered: int = 2_000
    duplicate_bound_factor: int = 0
    retry_tiers_s: str | None = None


FLAKY_KINDS: tuple[FaultKind, ...] = (
    FaultKind.RATE_LIMITED,
    FaultKind.SERVER_ERROR,
    FaultKind.OVERLOADED,
    FaultKind.BLANK_CONTENT,
    FaultKind.WHITESPACE_CONTENT,
    FaultKind.TRUNCATED,
    FaultKind.REASONING_ONLY,
    FaultKind.KEEPALIVE_THEN_CLOSE,
    FaultKind.SLOW_DRIP,
)
"""Every transient kind of the simulator's catalogue."""

FLAKY_RATE = 0.2
"""Share of all calls that fail, split evenly over ``FLAKY_KINDS``."""

FLAKY_RETRY_TIERS_S = "[2, 5]"
"""Delay tiers of the retry topics, passed only when the settings know them."""


def _no_faults(_window_s: float) -> dict[str, Any]:
    return {}


def _flaky_faults(_window_s: float) -> dict[str, Any]:
    share = FLAKY_RATE / len(FLAKY_KINDS)
    return {
        "rates": {kind.value: share for kind in FLAKY_KINDS},
        # A hang outlasts the workers' call deadline, so the deadline decides.
        "keepalive_interval_s": 1.0,
        "keepalive_duration_s": 60.0,
        "slow_drip_interval_s": 1.0,
        "slow_drip_chunk_bytes": 8,
    }


def _window(kind: FaultKind) -> FaultBuilder:
    def faults(window_s: float) -> dict[str, Any]:
        return {
            "schedule": [
                {"kind": kind.value, "start_s": 0.0, "end_s": window_s, "rate": 1.0}
            ]
        }

    return faults


_STAY_IN_GROUP = {
    # Shorter than the fault window: a poll loop that stalled while calls
    # wait for the circuit would be evicted, and the check would see it.
    "STREAMS_KAFKA__MAX_POLL_INTERVAL_MS": "6000",
}

_PROVIDER_DOWN_EXPECTATIONS = (
    "no_input_lost",
    "no_dead_letters",
    "stayed_in_group",
    "circuit_opened",
)

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="flaky",
            summary="20% of calls fail transiently, spread over every transient "
            "fault kind (429, 500, 503, blank, whitespace, truncated, "
            "reasoning-only, keep-alive hang, slow drip)",
            faults=_flaky_faults,
            worker_env={
                "STREAMS_LLM__MAX_ATTEMPTS": "8",
                "STREAMS_LLM__CALL_DEADLINE_S": "8",
            },
            retry_tiers_s=FLAKY_RETRY_TIERS_S,
            expectations=("no_input_lost", "only_malformed_dead_lettered"),
        ),
        Scenario(
            name="outage",
            summary="the provider answers 503 to every call for the fault window "
            "(30 s), then recovers",
            faults=_window(FaultKind.OVERLOADED),
            default_fault_s=30.0,
            worker_env=_STAY_IN_GROUP,
            expectations=_PROVIDER_DOWN_EXPECTATIONS,
        ),
        Scenario(
            name="account",
            summary="the provider answers 402 (insufficient balance) to every call "
            "for the fault window (20 s), then recovers",
            faults=_window(FaultKind.INSUFFICIENT_BALANCE),
            default_fault_s=20.0,
            worker_env=_STAY_IN_GROUP,
            expectations=_PROVIDER_DOWN_EXPECTATIONS,
        ),
        Scenario(
            name="crash",
            summary="the worker is killed with SIGKILL three times and restarted",
            faults=_no_faults,
            steps=(
                Step(0.2, Action.KILL_WORKER),
                Step(0.4, Action.KILL_WORKER),
                Step(0.6, Action.KILL_WORKER),
            ),
            expectations=(
                "no_input_lost",
                "duplicates_bounded",
                "duplicates_recognisable",
                "steps_performed",
            ),
            latency_mean_ms=1_000.0,
            max_buffered=30,
            duplicate_bound_factor=3,
        ),
        Scenario(
            name="broker-restart",
            summary="the broker is stopped and started again on its data mid-run",
            faults=_no_faults,
            steps=(Step(0.3, Action.RESTART_BROKER),),
            expectations=("no_input_lost", "steps_performed"),
            latency_mean_ms=1_000.0,
            max_buffered=30,
        ),
        Scenario(
            name="rebalance",
            summary="a second worker joins the group mid-run and later leaves "
            "(SIGTERM)",
            faults=_no_faults,
            steps=(
                Step(0.2, Action.ADD_WORKER),
                Step(0.6, Action.STOP_ADDED_WORKER),
            ),
            expectations=(
                "no_input_lost",
                "duplicates_bounded",
                "duplicates_recognisable",
                "steps_performed",
            ),
            latency_mean_ms=1_500.0,
            max_buffered=30,
            duplicate_bound_factor=2,
        ),
        Scenario(
            name="poison",
            summary="one record of every malformed kind per topic, mixed into "
            "real data",
            faults=_no_faults,
            malformed=True,
            expectations=("no_input_lost", "dead_letters_are_the_malformed"),
        ),
    )
}
