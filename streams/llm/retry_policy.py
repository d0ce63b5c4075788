"""When to try an LLM call again, and how long to wait first.

The wait before attempt ``n + 1`` (``n`` failed attempts so far) is:

* the server's retry-after, when it sent one, capped at ``retry_after_cap_s``;
* otherwise full jitter: uniform in ``[0, min(cap, base x 2^(n-1))]``.

Only :class:`~streams.errors.RetryableError` is retried, at most
``max_attempts`` attempts in all, and never past the event's total deadline.
Account-level errors are not counted here: the circuit breaker holds them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from streams.errors import RetryableError
from streams.settings import LLMSettings


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff with full jitter, a cap and a bounded number of attempts."""

    max_attempts: int = 3
    base_s: float = 0.5
    cap_s: float = 20.0
    retry_after_cap_s: float = 60.0
    event_deadline_s: float = 300.0
    wait: bool = True
    """False turns every wait into zero, for tests."""

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> RetryPolicy:
        """The policy the settings describe."""
        return cls(
            max_attempts=settings.max_attempts,
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
            retry_after_cap_s=settings.retry_after_cap_s,
            event_deadline_s=settings.event_deadline_s,
        )

    def should_retry(self, error: Exception, attempts: int, elapsed_s: float) -> bool:
        """Whether to try again after ``attempts`` failed attempts."""
        if not isinstance(error, RetryableError):
            return False
        if attempts >= self.max_attempts:
            return False
        return (
            elapsed_s + self.delay_s(error, attempts, random_value=0.0)
            < self.event_deadline_s
        )

    def delay_s(
        self, error: RetryableError, attempts: int, random_value: float | None = None
    ) -> float:
        """Seconds to wait before the next attempt.

        Args:
            error: The last failure.
            attempts: Failed attempts so far (1 after the first failure).
            random_value: A number in [0, 1) to use instead of a random draw.
        """
        if not self.wait:
            return 0.0
        if error.retry_after_s is not None:
            return min(error.retry_after_s, self.retry_after_cap_s)
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        # Jitter, not security: the standard generator is right here.
        draw = random.random() if random_value is None else random_value
        return float(ceiling * draw)
