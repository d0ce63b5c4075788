"""Both chat clients against a misbehaving HTTP server on loopback.

The aiohttp client (the default) and the openai SDK client must read the same
answers and raise the same classified errors, so the worker's retry, circuit
and dead-letter decisions do not depend on the transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

from streams.errors import (
    ConfigurationError,
    LLMTimeoutError,
    PermanentError,
    RetryableError,
)
from streams.llm.client import AccountError, ChatRequest, ChatResponse, open_chat_client
from streams.settings import LLMSettings

TRANSPORTS = ["aiohttp", "openai-sdk"]
REQUEST = ChatRequest(
    "deepseek-flash",
    [{"role": "system", "content": "Reply with a json object."}],
    50,
)
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "deepseek-flash",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": '{"summary": "ok"}'},
        }
    ],
    "usage": {
        "prompt_tokens": 70,
        "completion_tokens": 9,
        "total_tokens": 79,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 6,
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": message, "type": "error", "code": str(status)}}
        return web.json_response(body, status=status, headers=headers)

    return handle


def body(raw: bytes, content_type: str = "application/json") -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=raw, content_type=content_type)

    return handle


async def keepalive_then_answer(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for _ in range(3):
        await response.write(b"\n")
        await asyncio.sleep(0.05)
    await response.write(orjson.dumps(ANSWER))
    await response.write_eof()
    return response


async def keepalive_forever(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    while True:
        await response.write(b"\n")
        await asyncio.sleep(0.1)


async def never_answers(_request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def close_mid_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Length": "500"}
    )
    await response.prepare(request)
    await response.write(b'{"id": "chatcmpl-1", "choi')
    assert request.transport is not None
    request.transport.close()
    return response


SCENARIOS: dict[str, Handler] = {
    "ok": body(orjson.dumps(ANSWER)),
    "keepalive-then-answer": keepalive_then_answer,
    "keepalive-forever": keepalive_forever,
    "never-answers": never_answers,
    "close-mid-body": close_mid_body,
    "html": body(b"<html>bad gateway</html>", "text/html"),
    "array": body(b"[1, 2]"),
    "no-choices": body(orjson.dumps({**ANSWER, "choices": []})),
    "429": error(429, "slow down", {"Retry-After": "7"}),
    "503": error(503, "Server overloaded"),
    "500": error(500, "boom"),
    "401": error(401, "Authentication Fails"),
    "402": error(402, "Insufficient Balance"),
    "400-risk": error(400, "Content Exists Risk"),
    "422": error(422, "Invalid Parameters"),
    "404": error(404, "no such model"),
}


async def call(transport: str, scenario: str, deadline_s: float = 5.0) -> ChatResponse:
    """Serves the scenario on a free loopback port and makes one call."""
    app = web.Application()
    app.router.add_post(f"/{scenario}/chat/completions", SCENARIOS[scenario])
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = LLMSettings(
        base_url=f"http://127.0.0.1:{port}/{scenario}",
        api_key=SecretStr("local"),
        transport=transport,  # type: ignore[arg-type]
        call_deadline_s=deadline_s,
    )
    client = open_chat_client(settings)
    try:
        return await client.complete(REQUEST)
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", ["ok", "keepalive-then-answer"])
def test_an_answer_is_read_whole(transport: str, scenario: str) -> None:
    response = asyncio.run(call(transport, scenario))
    assert response.content == '{"summary": "ok"}'
    assert response.finish_reason == "stop"
    assert response.usage.prompt_cache_hit_tokens == 64
    assert response.usage.prompt_cache_miss_tokens == 6
    assert response.usage.completion_tokens == 9
    assert response.request_id == "chatcmpl-1"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("scenario", ["keepalive-forever", "never-answers"])
def test_a_silent_or_blank_line_server_costs_one_deadline(
    transport: str, scenario: str
) -> None:
    async def timed() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(LLMTimeoutError):
            await call(transport, scenario, deadline_s=1.0)
        return loop.time() - started

    assert asyncio.run(timed()) < 3.0


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("close-mid-body", "connection_error"),
        ("html", "bad_response"),
        ("array", "bad_response"),
        ("no-choices", "bad_response"),
        ("503", "overloaded"),
        ("500", "server_error"),
    ],
)
def test_transient_failures_are_retryable(
    transport: str, scenario: str, reason: str
) -> None:
    with pytest.raises(RetryableError) as caught:
        asyncio.run(call(transport, scenario))
    assert not isinstance(caught.value, AccountError)
    assert caught.value.reason == reason


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_rate_limit_carries_its_retry_after(transport: str) -> None:
    with pytest.raises(RetryableError) as caught:
        asyncio.run(call(transport, "429"))
    assert caught.value.reason == "rate_limited"
    assert caught.value.retry_after_s == 7.0
    assert caught.value.status == 429


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("scenario", "reason"), [("401", "unauthorized"), ("402", "insufficient_balance")]
)
def test_account_failures_are_account_errors(
    transport: str, scenario: str, reason: str
) -> None:
    with pytest.raises(AccountError) as caught:
        asyncio.run(call(transport, scenario))
    assert caught.value.reason == reason


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("scenario", "reason"), [("400-risk", "content_refused"), ("422", "bad_request")]
)
def test_refusals_are_permanent(transport: str, scenario: str, reason: str) -> None:
    with pytest.raises(PermanentError) as caught:
        asyncio.run(call(transport, scenario))
    assert caught.value.reason == reason


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_missing_endpoint_stops_the_worker(transport: str) -> None:
    with pytest.raises(ConfigurationError):
        asyncio.run(call(transport, "404"))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_refused_connection_is_transient(transport: str) -> None:
    async def refused() -> None:
        settings = LLMSettings(
            base_url="http://127.0.0.1:9",
            api_key=SecretStr("local"),
            transport=transport,  # type: ignore[arg-type]
            call_deadline_s=5.0,
        )
        client = open_chat_client(settings)
        try:
            await client.complete(REQUEST)
        finally:
            await client.close()

    with pytest.raises(RetryableError) as caught:
        asyncio.run(refused())
    assert caught.value.reason == "connection_error"
