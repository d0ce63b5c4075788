"""The catalogue of faults the simulator can inject, and what each one looks like.

Every kind reproduces a failure that DeepSeek clients meet in production. They
fall into four groups, which decide how the server acts them out:

- HTTP error faults answer at once with an error status and a DeepSeek-like
  error body (``rate_limited``, ``server_error``, ``overloaded``,
  ``insufficient_balance``, ``unauthorized``, ``content_refusal``).
- Content faults wait the simulated latency and answer HTTP 200 with a broken
  completion (``blank_content``, ``whitespace_content``, ``truncated``,
  ``reasoning_only``).
- Connection faults misbehave at the transport level (``keepalive_then_close``,
  ``never_answers``, ``slow_drip``).
- Item faults damage one item of a packed answer (``packed_item_dropped``
  leaves it out, ``packed_item_malformed`` leaves out one of its keys); a
  request that is not packed is answered normally.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """One kind of injected fault; the value is the name used in settings and stats."""

    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNAUTHORIZED = "unauthorized"
    CONTENT_REFUSAL = "content_refusal"
    BLANK_CONTENT = "blank_content"
    WHITESPACE_CONTENT = "whitespace_content"
    TRUNCATED = "truncated"
    REASONING_ONLY = "reasoning_only"
    KEEPALIVE_THEN_CLOSE = "keepalive_then_close"
    NEVER_ANSWERS = "never_answers"
    SLOW_DRIP = "slow_drip"
    PACKED_ITEM_DROPPED = "packed_item_dropped"
    PACKED_ITEM_MALFORMED = "packed_item_malformed"


@dataclass(frozen=True)
class ErrorSpec:
    """The HTTP status and error body of one HTTP error fault or rejection.

    Attributes:
        status: HTTP status code.
        message: Human-readable ``error.message``.
        type: ``error.type``, as the OpenAI error format names the error family.
        code: ``error.code``, a stable machine-readable name.
    """

    status: int
    message: str
    type: str
    code: str

    def body(self) -> dict[str, dict[str, str | None]]:
        """Return the OpenAI-style error body ``{"error": {...}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": None,
                "code": self.code,
            }
        }


ERROR_FAULTS: dict[FaultKind, ErrorSpec] = {
    FaultKind.RATE_LIMITED: ErrorSpec(
        429,
        "Rate Limit Reached: too many concurrent requests for this account.",
        "rate_limit_error",
        "rate_limit_reached",
    ),
    FaultKind.SERVER_ERROR: ErrorSpec(
        500,
        "Server Error: the server encountered an issue, please retry later.",
        "api_error",
        "server_error",
    ),
    FaultKind.OVERLOADED: ErrorSpec(
        503,
        "Server Overloaded: the server is under high traffic, please retry later.",
        "api_error",
        "server_overloaded",
    ),
    FaultKind.INSUFFICIENT_BALANCE: ErrorSpec(
        402,
        "Insufficient Balance: the account has run out of credit.",
        "invalid_request_error",
        "insufficient_balance",
    ),
    FaultKind.UNAUTHORIZED: ErrorSpec(
        401,
        "Authentication Fails: the API key is invalid.",
        "authentication_error",
        "invalid_api_key",
    ),
    FaultKind.CONTENT_REFUSAL: ErrorSpec(
        400,
        "Content Exists Risk",
        "invalid_request_error",
        "content_risk",
    ),
}
"""HTTP error faults and the error each one answers with."""

TRANSIENT_KINDS: tuple[FaultKind, ...] = (
    FaultKind.RATE_LIMITED,
    FaultKind.SERVER_ERROR,
    FaultKind.OVERLOADED,
)
"""The kinds the single ``error_rate`` setting spreads evenly over."""

CONTENT_FAULTS: frozenset[FaultKind] = frozenset(
    {
        FaultKind.BLANK_CONTENT,
        FaultKind.WHITESPACE_CONTENT,
        FaultKind.TRUNCATED,
        FaultKind.REASONING_ONLY,
    }
)
"""Faults that answer HTTP 200 with a broken completion."""

ITEM_FAULTS: frozenset[FaultKind] = frozenset(
    {FaultKind.PACKED_ITEM_DROPPED, FaultKind.PACKED_ITEM_MALFORMED}
)
"""Faults that damage one item of a packed answer and nothing else."""
