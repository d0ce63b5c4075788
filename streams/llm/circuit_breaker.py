"""A circuit breaker per LLM endpoint.

States: ``closed`` (calls flow), ``open`` (no calls; waiting out a cooldown),
``half_open`` (one probe call is let through). It opens at once on an
account-level failure (401, 402) and after ``failure_threshold`` transient
failures in a row. After ``cooldown_s`` one probe goes out: success closes
it, failure opens it again with the cooldown doubled up to ``max_cooldown_s``.
Only the probe's answer closes it; answers of calls that were in flight when
it opened do not, so a stray success in an outage cannot make it flap.

Calls wait in :meth:`CircuitBreaker.admit` while it is open; they keep their
event and their in-flight slot, so the worker's buffer fills, intake pauses,
and polling continues. Nothing is dead-lettered because the provider is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from enum import Enum

logger = logging.getLogger(__name__)


class CircuitState(Enum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Decides whether calls may go out to one endpoint.

    Args:
        name: The endpoint, for logs.
        failure_threshold: Transient failures in a row that open the circuit.
        cooldown_s: First wait before a probe.
        max_cooldown_s: Largest wait between probes.
        on_change: Called with the new state on every transition.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 5.0,
        max_cooldown_s: float = 60.0,
        on_change: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._base_cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._cooldown_s = cooldown_s
        self._on_change = on_change
        self.state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._changed = asyncio.Event()
        self.open_count = 0

    @property
    def open_for_s(self) -> float:
        """Seconds since the circuit last opened; 0 when closed."""
        if self.state is CircuitState.CLOSED:
            return 0.0
        return time.monotonic() - self._opened_at

    def _set(self, state: CircuitState) -> None:
        if state is self.state:
            return
        self.state = state
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None:
            self._on_change(state)

    async def admit(self) -> bool:
        """Waits until a call may go out.

        Returns:
            True when this call is the half-open probe; its outcome must be
            reported with :meth:`record_success` or :meth:`record_failure`.
        """
        while True:
            if self.state is CircuitState.CLOSED:
                return False
            remaining = self._opened_at + self._cooldown_s - time.monotonic()
            if self.state is CircuitState.OPEN and remaining <= 0:
                self._set(CircuitState.HALF_OPEN)
            if self.state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                logger.info("circuit.probe endpoint=%s", self.name)
                return True
            wait_s = max(remaining, 0.05) if self.state is CircuitState.OPEN else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait_s)

    def record_success(self, probe: bool = False) -> None:
        """A call succeeded (an answer came back, whatever its content).

        Only the probe closes an open circuit. A call that was already in
        flight when the circuit opened may still come back with an answer in
        the middle of an outage (a stray 200 among 503s); letting it close the
        circuit would make it flap and let the next failures cost attempts.
        """
        if probe:
            self._probe_in_flight = False
        elif self.state is not CircuitState.CLOSED:
            return
        self._failures = 0
        if self.state is not CircuitState.CLOSED:
            logger.info("circuit.closed endpoint=%s", self.name)
            self._cooldown_s = self._base_cooldown_s
            self._set(CircuitState.CLOSED)

    def record_failure(self, *, account_level: bool, probe: bool = False) -> None:
        """A call failed for a reason that is not about the event."""
        if probe:
            self._probe_in_flight = False
            self._cooldown_s = min(self._cooldown_s * 2, self._max_cooldown_s)
            self._open("probe_failed")
            return
        self._failures += 1
        if self.state is CircuitState.CLOSED and (
            account_level or self._failures >= self._threshold
        ):
            self._open("account_error" if account_level else "failure_streak")

    def release_probe(self) -> None:
        """The probe ended without telling anything about the endpoint."""
        self._probe_in_flight = False
        # Wake the waiters once, on a fresh event: a set event left in place
        # would make every later wait return at once and spin the loop.
        self._changed.set()
        self._changed = asyncio.Event()

    def _open(self, cause: str) -> None:
        self._opened_at = time.monotonic()
        self.open_count += 1
        logger.error(
            "circuit.opened endpoint=%s cause=%s probe_in_s=%.1f "
            "consequence=llm_calls_paused_intake_pauses_when_buffer_full",
            self.name,
            cause,
            self._cooldown_s,
        )
        self._set(CircuitState.OPEN)
