"""Requests-per-minute and tokens-per-minute limits, as token buckets.

Each bucket holds at most one minute's allowance and refills continuously at
``per_minute / 60`` per second. A call reserves what it needs at once; the
balance may go below zero, and the caller then waits ``-balance / rate``
seconds, so callers are served in the order they reserved and none starves.

Tokens are not known before the call: the tokens bucket takes an estimate
(:func:`estimate_tokens`: the prompt counted offline with the DeepSeek
vocabulary, see :mod:`streams.llm.token_count`, plus ``max_tokens``) and,
when the call ends, is corrected by ``actual - estimate``: unused
``max_tokens`` flow back, an underestimate is paid for by later calls. A call
that got no answer reports no usage, so its whole estimate flows back. A
single reservation larger than a bucket is cut to the bucket's size, or it
could never be served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.llm.client import ChatRequest
from streams.llm.token_count import estimate_request_tokens
from streams.llm.usage import Usage

logger = logging.getLogger(__name__)

Estimate = Callable[[ChatRequest], int]


def estimate_tokens(request: ChatRequest) -> int:
    """The most tokens a request can use: its prompt plus ``max_tokens``."""
    return estimate_request_tokens(request.messages, request.max_tokens)


WaitObserver = Callable[[str, float], None]
"""Called with (limit name, seconds waited) when a call had to wait."""


class TokenBucket:
    """A per-minute allowance that refills continuously.

    Args:
        per_minute: Allowance per minute, and the most the bucket holds.
        clock: Monotonic seconds; injectable for tests.
    """

    def __init__(
        self, per_minute: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0:
            raise ValueError("a per-minute limit must be positive")
        self.capacity = float(per_minute)
        self._rate_per_s = per_minute / 60.0
        self._clock = clock
        self._balance = self.capacity
        self._updated = clock()

    @property
    def balance(self) -> float:
        """What is left now; negative while reservations wait."""
        self._refill()
        return self._balance

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._balance = min(self.capacity, self._balance + elapsed * self._rate_per_s)
        self._updated = now

    def reserve(self, amount: float) -> float:
        """Takes ``amount`` now and returns the seconds to wait before using it."""
        self._refill()
        self._balance -= min(amount, self.capacity)
        return max(0.0, -self._balance / self._rate_per_s)

    def adjust(self, delta: float) -> None:
        """Takes ``delta`` more (or gives ``-delta`` back), never above capacity."""
        self._refill()
        self._balance = min(self.capacity, self._balance - delta)


@dataclass(frozen=True, slots=True)
class Permit:
    """What one call reserved, to be settled when it ends."""

    estimated_tokens: int
    """The estimate as reserved: cut to the bucket's size."""


class RateLimiter:
    """Holds calls back to the configured requests and tokens per minute.

    Args:
        requests_per_minute: Calls per minute; None for no limit.
        tokens_per_minute: Prompt plus completion tokens per minute; None for
            no limit.
        estimate: Tokens a request may cost, before it is sent.
        clock: Monotonic seconds, for both buckets.
        sleep: Waits; injectable for tests.
        on_wait: Optional callback when a call waited, for metrics.
    """

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        estimate: Estimate = estimate_tokens,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: WaitObserver | None = None,
    ) -> None:
        self.requests = (
            TokenBucket(requests_per_minute, clock=clock)
            if requests_per_minute is not None
            else None
        )
        self.tokens = (
            TokenBucket(tokens_per_minute, clock=clock)
            if tokens_per_minute is not None
            else None
        )
        self._estimate = estimate
        self._sleep = sleep
        self._on_wait = on_wait

    async def acquire(self, request: ChatRequest) -> Permit:
        """Reserves a request and its estimated tokens; waits until both allow.

        If the wait is cancelled, the reservation is given back.
        """
        estimated = 0
        if self.tokens is not None:
            estimated = min(self._estimate(request), int(self.tokens.capacity))
        waits: dict[str, float] = {}
        if self.requests is not None:
            waits["requests_per_minute"] = self.requests.reserve(1)
        if self.tokens is not None:
            waits["tokens_per_minute"] = self.tokens.reserve(estimated)
        permit = Permit(estimated)
        limit, wait_s = max(waits.items(), key=lambda item: item[1], default=("", 0))
        if wait_s <= 0:
            return permit
        logger.debug("llm.rate_limited limit=%s wait_s=%.2f", limit, wait_s)
        if self._on_wait is not None:
            self._on_wait(limit, wait_s)
        try:
            await self._sleep(wait_s)
        except asyncio.CancelledError:
            if self.requests is not None:
                self.requests.adjust(-1)
            self.settle(permit, Usage())
            raise
        return permit

    def settle(self, permit: Permit, usage: Usage) -> None:
        """Corrects the tokens bucket by the call's actual usage minus its estimate."""
        if self.tokens is None:
            return
        actual = usage.prompt_tokens + usage.completion_tokens
        self.tokens.adjust(actual - permit.estimated_tokens)
