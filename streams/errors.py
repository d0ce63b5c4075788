"""The exception tree of the service.

Every failure the worker decides about is one of three kinds, so the decision
is a single ``isinstance`` check made in one place::

    StreamsError
    ├── RetryableError      transient: try again later (carries retry_after_s)
    │   ├── LLMTimeoutError       the call's absolute deadline passed
    │   └── LLMBadOutputError     blank, non-JSON or truncated model output
    ├── PermanentError      about this event: dead-letter it, never retry
    │   └── DecodeError           the record cannot become an event
    └── FatalError          about the whole process: stop
        └── ConfigurationError    settings or pipeline files are unusable

Third-party errors (openai, httpx, confluent-kafka) are translated into this
tree once, at the boundary, with ``raise ... from exc``.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Root of every error the service raises on purpose.

    Args:
        message: What went wrong, for an operator; never payload text.
        reason: A short snake_case reason code; it becomes a dead-letter header
            and a metric label, so it comes from a small fixed set.
    """

    retryable: bool = False

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class RetryableError(StreamsError):
    """A transient failure: the same request may succeed later.

    Args:
        message: What went wrong.
        reason: Reason code, e.g. ``rate_limited`` or ``blank_content``.
        retry_after_s: A server-provided hint, honoured up to the policy's cap.
        status: The HTTP status, when one was received.
        request_id: The provider's request id, when one was received.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        reason: str = "transient",
        retry_after_s: float | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_s = retry_after_s
        self.status = status
        self.request_id = request_id


class LLMTimeoutError(RetryableError):
    """The absolute deadline of one LLM call passed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="deadline_exceeded")


class LLMBadOutputError(RetryableError):
    """The model answered 200 but the content is blank, not JSON or truncated.

    Args:
        message: What was wrong with the output.
        reason: ``blank_content``, ``invalid_json``, ``truncated`` or
            ``reasoning_only``.
        grow_max_tokens: Whether a retry with a larger ``max_tokens`` could help.
    """

    def __init__(
        self, message: str, *, reason: str, grow_max_tokens: bool = False
    ) -> None:
        super().__init__(message, reason=reason)
        self.grow_max_tokens = grow_max_tokens


class PermanentError(StreamsError):
    """A failure that repeating cannot fix; the event goes to the dead letters.

    Args:
        message: What went wrong.
        reason: Reason code, e.g. ``schema_violation`` or ``content_refused``.
        status: The HTTP status, when one was received.
        request_id: The provider's request id, when one was received.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "permanent",
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.request_id = request_id


class DecodeError(PermanentError):
    """The record's bytes cannot become a valid event (stage ``decode``).

    Args:
        message: What is wrong with the record.
        reason: Reason code.
        event_id: The event id, when the value decoded far enough to have one.
    """

    def __init__(
        self, message: str, *, reason: str, event_id: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.event_id = event_id


class FatalError(StreamsError):
    """The process cannot go on; it stops after committing what is finished."""


class ConfigurationError(FatalError):
    """Settings, pipeline files or schemas are missing or inconsistent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="configuration")
