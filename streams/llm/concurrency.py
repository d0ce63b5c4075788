"""An in-flight limit for LLM calls that adapts to what the provider says.

Additive increase, multiplicative decrease (AIMD), as TCP does for its window:

* after ``limit`` answers in a row without a decrease, the limit grows by one
  (so it grows by about one per round of calls), up to the ceiling;
* on a 429 (``rate_limited``) or a 503 (``overloaded``), and when the
  smoothed latency of answers rises above ``latency_target_s``, it becomes
  ``max(floor, floor(limit x decrease_factor))``.

At most one decrease happens per ``cooldown_s``: the calls of one window that
all meet the same 429 count as one signal, so a burst cannot collapse the
limit to the floor. Smoothed latency is an exponentially weighted moving
average, ``smoothed = a x latency + (1 - a) x smoothed`` with ``a = 0.2``, of
the HTTP time of answered calls; other failures (timeouts, 500s, bad answers)
move nothing, because they say little about load.

With ``floor == ceiling`` the limit is fixed: a plain bound on calls in
flight. A decrease does not cancel calls already out: new calls wait until the
count falls below the new limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

logger = logging.getLogger(__name__)

OVERLOAD_REASONS = frozenset({"rate_limited", "overloaded"})
"""Error reasons (see :mod:`streams.llm.client`) that mean "send less"."""

LATENCY_SMOOTHING = 0.2

LimitObserver = Callable[[int, str], None]
"""Called with (new limit, cause) on every change; cause is ``increase``,
``rate_limited``, ``overloaded`` or ``latency``."""


class AdaptiveLimit:
    """Bounds calls in flight by a limit that moves between floor and ceiling.

    Args:
        floor: The smallest limit; clamped to the ceiling.
        ceiling: The largest limit, and the starting one.
        decrease_factor: What a decrease multiplies the limit by, in (0, 1).
        cooldown_s: Least time between two decreases.
        latency_target_s: Smoothed latency above which the limit decreases;
            None leaves latency out.
        clock: Monotonic seconds; injectable for tests.
        on_change: Optional callback on every change, for metrics.
    """

    def __init__(
        self,
        *,
        floor: int,
        ceiling: int,
        decrease_factor: float = 0.7,
        cooldown_s: float = 5.0,
        latency_target_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: LimitObserver | None = None,
    ) -> None:
        if ceiling < 1:
            raise ValueError("the ceiling must be at least 1")
        if not 0 < decrease_factor < 1:
            raise ValueError("the decrease factor must lie between 0 and 1")
        self.floor = max(1, min(floor, ceiling))
        self.ceiling = ceiling
        self._factor = decrease_factor
        self._cooldown_s = cooldown_s
        self._latency_target_s = latency_target_s
        self._clock = clock
        self._on_change = on_change
        self.limit = ceiling
        self.in_flight = 0
        self.smoothed_latency_s: float | None = None
        self._successes = 0
        self._last_decrease: float | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def adaptive(self) -> bool:
        """Whether the limit can move at all."""
        return self.floor < self.ceiling

    # -- the bound ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Holds one place in flight for the duration of the block."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The place was handed over just before the cancellation.
                self._release()
            else:
                # _wake may have dropped it already, as a done future.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        # A waiter woken here owns its place: in_flight counts it already.
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    # -- the signals -------------------------------------------------------------

    def record_answer(self, latency_s: float) -> None:
        """An answer arrived after ``latency_s`` seconds of HTTP time."""
        if not self.adaptive:
            return
        previous = self.smoothed_latency_s
        self.smoothed_latency_s = (
            latency_s
            if previous is None
            else LATENCY_SMOOTHING * latency_s + (1 - LATENCY_SMOOTHING) * previous
        )
        target = self._latency_target_s
        if target is not None and self.smoothed_latency_s > target:
            self._decrease("latency")
            return
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self._successes = 0
            self._set(self.limit + 1, "increase")

    def record_failure(self, reason: str) -> None:
        """A call failed with ``reason``; only overload reasons move the limit."""
        if self.adaptive and reason in OVERLOAD_REASONS:
            self._decrease(reason)

    def _decrease(self, cause: str) -> None:
        now = self._clock()
        self._successes = 0
        if self._last_decrease is not None and (
            now - self._last_decrease < self._cooldown_s
        ):
            return
        lowered = max(self.floor, math.floor(self.limit * self._factor))
        if lowered == self.limit:
            return
        self._last_decrease = now
        logger.warning(
            "llm.concurrency_decreased cause=%s limit=%d previous=%d "
            "consequence=fewer_calls_in_flight",
            cause,
            lowered,
            self.limit,
        )
        self._set(lowered, cause)

    def _set(self, limit: int, cause: str) -> None:
        self.limit = limit
        self._wake()
        if self._on_change is not None:
            self._on_change(limit, cause)
