"""Chat-completions calls over one aiohttp session, the worker's default.

The openai SDK spends several milliseconds of CPU per call building and
validating its request and response models and walking its connection pool;
on a two-core machine that, not the provider, caps a worker at a few hundred
calls per second. This client sends the same request body, reads the same
answer and raises the same classified errors (the table is in
:mod:`streams.llm.client`), with orjson and one pooled aiohttp session, for
about a tenth of the CPU. ``llm.transport: openai-sdk`` selects the SDK
client instead.

The answer is checked as strictly as the SDK's strict mode does: a body that
is not a JSON object with a non-empty ``choices`` list whose first item has a
``message`` object is a ``bad_response`` (retryable). Blank keep-alive lines
before the JSON body are whitespace to the JSON reader; the absolute deadline
still bounds how long they can last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson

from streams.errors import LLMTimeoutError, RetryableError
from streams.llm.client import ChatRequest, ChatResponse, classify_status
from streams.llm.usage import Usage
from streams.settings import LLMSettings

logger = logging.getLogger(__name__)

USER_AGENT = "streams-enricher"


def _bad_response(what: str) -> RetryableError:
    return RetryableError(
        f"the LLM API's response could not be read: {what}", reason="bad_response"
    )


def read_completion(
    body: bytes, request: ChatRequest, latency_s: float
) -> ChatResponse:
    """Turns a 200 body into a response, or raises ``bad_response``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad_response("not JSON") from exc
    if not isinstance(data, dict):
        raise _bad_response("not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise RetryableError("the LLM API returned no choices", reason="bad_response")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise RetryableError("the LLM API returned no message", reason="bad_response")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise _bad_response("the message content is not text")
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise _bad_response("usage is not an object")
    try:
        counted = Usage.from_response(usage)
    except (TypeError, ValueError, AttributeError) as exc:
        raise _bad_response("usage is not numbers") from exc
    model = data.get("model")
    completion_id = data.get("id")
    finish_reason = choice.get("finish_reason")
    return ChatResponse(
        content=content,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        reasoning_present=bool(message.get("reasoning_content")),
        usage=counted,
        model=model if isinstance(model, str) and model else request.model,
        request_id=completion_id if isinstance(completion_id, str) else None,
        latency_s=latency_s,
    )


class HttpChatClient:
    """Sends chat-completions requests with one deadline each.

    Args:
        settings: Base URL, key, deadline and connect timeout.
        api_key: The key to send.
    """

    def __init__(self, settings: LLMSettings, api_key: str) -> None:
        self._settings = settings
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._extra: dict[str, Any] = (
            {"thinking": {"type": "disabled"}} if settings.disable_thinking else {}
        )
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop that will use it.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._settings.connect_timeout_s
                ),
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )
        return self._session

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Makes one call; raises a classified error on any failure.

        Raises:
            RetryableError: Transient; the caller's policy decides on a retry.
            AccountError: The account cannot call; the circuit opens.
            PermanentError: The request can never succeed.
            ConfigurationError: The endpoint or model does not exist.
        """
        body = orjson.dumps(
            {
                "model": request.model,
                "messages": request.messages,
                "max_tokens": request.max_tokens,
                "response_format": {"type": "json_object"},
                "temperature": 0.0,
                **self._extra,
            }
        )
        started = time.monotonic()
        session = self._session_now()
        try:
            async with asyncio.timeout(self._settings.call_deadline_s):
                async with session.post(
                    self._url, data=body, headers=self._headers
                ) as response:
                    payload = await response.read()
                    status = response.status
                    retry_after = response.headers.get("retry-after")
                    request_id = response.headers.get("x-request-id")
        except TimeoutError as exc:
            raise LLMTimeoutError(
                f"no complete answer within {self._settings.call_deadline_s:.1f} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise RetryableError(
                "could not connect to the LLM API or the connection broke",
                reason="connection_error",
            ) from exc
        if status >= 400:
            text = payload.decode("utf-8", errors="replace")
            raise classify_status(status, text, retry_after, request_id)
        if status != 200:
            raise _bad_response(f"HTTP {status}")
        return read_completion(payload, request, time.monotonic() - started)

    async def close(self) -> None:
        """Closes the HTTP connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
