"""One chat-completions call, and the translation of what can go wrong.

Two clients share this table: :class:`ChatClient` (the openai SDK,
``llm.transport: openai-sdk``) and
:class:`streams.llm.http_chat.HttpChatClient` (aiohttp, the default, about a
tenth of the CPU per call). The SDK is used with ``max_retries=0``: retries
are decided in one place (:mod:`streams.llm.retry_policy`). Every call runs
under one absolute deadline (``asyncio.timeout``), because a provider that
holds the connection open and sends keep-alive blank lines resets any read
timeout.

Translation of failures (the table the retry decision rests on):

=============================  ===========================  ==================
what happened                  error                        reason
=============================  ===========================  ==================
429                            RetryableError               rate_limited
500, 502, 504, 408, 409        RetryableError               server_error
503                            RetryableError               overloaded
401                            AccountError                 unauthorized
402                            AccountError                 insufficient_balance
400 "Content Exists Risk"      PermanentError               content_refused
400 other, 422, other 4xx      PermanentError               bad_request
404                            ConfigurationError           (stops the worker)
deadline passed                LLMTimeoutError              deadline_exceeded
SDK timeout                    RetryableError               timeout
connection failed or reset     RetryableError               connection_error
unreadable response body       RetryableError               bad_response
=============================  ===========================  ==================
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from streams.errors import (
    ConfigurationError,
    LLMTimeoutError,
    PermanentError,
    RetryableError,
)
from streams.llm.usage import Usage
from streams.settings import LLMSettings

logger = logging.getLogger(__name__)


class AccountError(RetryableError):
    """The account cannot make calls (401, 402): no event can succeed now.

    It is retryable because the event itself is fine; the circuit breaker
    pauses all calls until a probe succeeds, and nothing is dead-lettered.
    """

    account_level = True


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What one call sends."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """What one successful HTTP exchange returned, not yet judged."""

    content: str | None
    finish_reason: str | None
    reasoning_present: bool
    usage: Usage
    model: str
    request_id: str | None
    latency_s: float


def _status_error(exc: openai.APIStatusError) -> Exception:
    return classify_status(
        exc.status_code,
        str(exc.body or exc.message),
        exc.response.headers.get("retry-after"),
        getattr(exc, "request_id", None),
    )


def classify_status(
    status: int, body_text: str, retry_after: str | None, request_id: str | None
) -> Exception:
    """The error an HTTP error status stands for (the table above).

    Args:
        status: The HTTP status, 400 or more.
        body_text: The response body, read only for the content-risk marker.
        retry_after: The ``Retry-After`` header, when sent.
        request_id: The provider's request id, when known.
    """
    message = f"HTTP {status} from the LLM API"
    if status == 429:
        return RetryableError(
            message,
            reason="rate_limited",
            retry_after_s=parse_retry_after(retry_after),
            status=status,
            request_id=request_id,
        )
    if status == 503:
        return RetryableError(
            message, reason="overloaded", status=status, request_id=request_id
        )
    if status >= 500 or status in (408, 409):
        return RetryableError(
            message, reason="server_error", status=status, request_id=request_id
        )
    if status == 401:
        return AccountError(
            message, reason="unauthorized", status=status, request_id=request_id
        )
    if status == 402:
        return AccountError(
            message, reason="insufficient_balance", status=status, request_id=request_id
        )
    if status == 404:
        return ConfigurationError(
            "the LLM API answered 404: check llm.base_url and the model name"
        )
    if status == 400 and "content exists risk" in body_text.lower():
        return PermanentError(
            "the provider refused the content (HTTP 400, content risk)",
            reason="content_refused",
            status=status,
            request_id=request_id,
        )
    return PermanentError(
        f"{message}: the request was rejected",
        reason="bad_request",
        status=status,
        request_id=request_id,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in seconds form; None otherwise."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ChatTransport(Protocol):
    """A chat-completions client the worker can call and close."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Makes one call; raises a classified error on any failure."""
        ...

    async def close(self) -> None:
        """Closes its connections."""
        ...


def require_api_key(settings: LLMSettings) -> str:
    """The configured key.

    Raises:
        ConfigurationError: No key is set.
    """
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    if not api_key:
        raise ConfigurationError(
            "no LLM API key: set DEEPSEEK_API_KEY. For the local simulator "
            "(streams simulate-llm --port 8089) any value works: "
            "DEEPSEEK_API_KEY=local DEEPSEEK_BASE_URL=http://127.0.0.1:8089"
        )
    return api_key


def open_chat_client(settings: LLMSettings) -> ChatTransport:
    """The client ``llm.transport`` names: aiohttp (default) or the openai SDK.

    Raises:
        ConfigurationError: No key is set.
    """
    if settings.transport == "openai-sdk":
        return ChatClient(settings)
    # Imported here: the HTTP client reuses this module's error table.
    from streams.llm.http_chat import HttpChatClient

    return HttpChatClient(settings, require_api_key(settings))


class ChatClient:
    """Sends chat-completions requests through the openai SDK, one deadline each.

    Args:
        settings: Base URL, key, deadline and connect timeout.
    """

    def __init__(self, settings: LLMSettings) -> None:
        self._settings = settings
        api_key = require_api_key(settings)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=settings.base_url,
            max_retries=0,
            # Malformed 200 bodies (HTML from a proxy, arrays, missing
            # fields) then raise APIResponseValidationError: bad_response.
            _strict_response_validation=True,
            timeout=openai.Timeout(
                settings.call_deadline_s, connect=settings.connect_timeout_s
            ),
        )
        self._extra_body: dict[str, Any] = (
            {"thinking": {"type": "disabled"}} if settings.disable_thinking else {}
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Makes one call; raises a classified error on any failure.

        Raises:
            RetryableError: Transient; the caller's policy decides on a retry.
            AccountError: The account cannot call; the circuit opens.
            PermanentError: The request can never succeed.
            ConfigurationError: The endpoint or model does not exist.
        """
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.call_deadline_s):
                completion = await self._client.chat.completions.create(  # type: ignore[call-overload]  # messages are plain role/content dicts
                    model=request.model,
                    messages=request.messages,
                    max_tokens=request.max_tokens,
                    response_format={"type": "json_object"},
                    temperature=0.0,
                    extra_body=self._extra_body or None,
                )
        except TimeoutError as exc:
            raise LLMTimeoutError(
                f"no complete answer within {self._settings.call_deadline_s:.1f} s"
            ) from exc
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APITimeoutError as exc:
            raise RetryableError("the LLM API timed out", reason="timeout") from exc
        except openai.APIConnectionError as exc:
            raise RetryableError(
                "could not connect to the LLM API or the connection broke",
                reason="connection_error",
            ) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise RetryableError(
                "the LLM API's response could not be read", reason="bad_response"
            ) from exc

        latency_s = time.monotonic() - started
        if not completion.choices:
            raise RetryableError(
                "the LLM API returned no choices", reason="bad_response"
            )
        choice = completion.choices[0]
        message = choice.message
        if message is None:
            raise RetryableError(
                "the LLM API returned no message", reason="bad_response"
            )
        reasoning = getattr(message, "reasoning_content", None)
        return ChatResponse(
            content=message.content,
            finish_reason=choice.finish_reason,
            reasoning_present=bool(reasoning),
            usage=Usage.from_response(completion.usage),
            model=completion.model or request.model,
            request_id=completion.id,
            latency_s=latency_s,
        )

    async def close(self) -> None:
        """Closes the HTTP connection pool."""
        await self._client.close()
