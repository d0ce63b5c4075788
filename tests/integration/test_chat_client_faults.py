"""The chat client against a misbehaving provider, over real loopback HTTP.

Each test starts the simulator in this process on a free port of 127.0.0.1,
makes the provider misbehave in one way, and checks what the worker's own
client (not the bare SDK) makes of it: how long one call may cost, how many
requests reach the provider, and which classified error comes out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp import web
from pydantic import SecretStr

from streams import paths
from streams.errors import LLMTimeoutError, PermanentError, RetryableError
from streams.llm.circuit_breaker import CircuitBreaker, CircuitState
from streams.llm.client import ChatRequest, ChatTransport, open_chat_client
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.pipeline.config import Pipeline, load_pipelines
from streams.pipeline.decode import decode_event
from streams.pipeline.enricher import Enricher, EnrichmentFailed
from streams.settings import LLMSettings, PricingSettings
from streams.simulator import FaultKind, SimulatorConfig, SimulatorHandle, serve
from tests.unit.conftest import ticket_bytes

T = TypeVar("T")

REQUEST = ChatRequest(
    "deepseek-flash",
    [
        {"role": "system", "content": "Answer with a JSON object."},
        {"role": "user", "content": "text: where is my parcel?"},
    ],
    200,
)


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    by_topic = load_pipelines(paths.PIPELINES_DIR, paths.SCHEMAS_DIR)
    return {pipeline.name: pipeline for pipeline in by_topic.values()}


def _faulty(kind: FaultKind, **settings: Any) -> SimulatorConfig:
    return SimulatorConfig.from_mapping(
        {"latency_mean_ms": 0, "faults": {"rates": {kind.value: 1.0}, **settings}}
    )


@pytest.fixture(params=["aiohttp", "openai-sdk"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each test runs against both chat clients."""
    value: str = request.param
    return value


def _client(sim: SimulatorHandle, transport: str, deadline_s: float) -> ChatTransport:
    return open_chat_client(
        LLMSettings(
            base_url=sim.url,
            api_key=SecretStr("test-key"),
            call_deadline_s=deadline_s,
            connect_timeout_s=deadline_s,
            transport=transport,  # type: ignore[arg-type]
        )
    )


def _run(
    config: SimulatorConfig, scenario: Callable[[SimulatorHandle], Awaitable[T]]
) -> T:
    async def main() -> T:
        async with await serve(config) as sim:
            return await scenario(sim)

    return asyncio.run(main())


async def _timed_call(client: ChatTransport) -> tuple[BaseException, float]:
    """Makes one call that must fail; returns the error and the seconds it took."""
    started = time.monotonic()
    try:
        await client.complete(REQUEST)
    except BaseException as exc:  # the test judges whatever comes out
        return exc, time.monotonic() - started
    finally:
        await client.close()
    raise AssertionError("the call succeeded against a faulty provider")


def test_keepalive_blank_lines_hit_the_absolute_deadline_and_are_transient(
    transport: str,
) -> None:
    """HTTP 200, then a blank line every 0.1 s for 30 s: the 1 s deadline fires."""
    config = _faulty(
        FaultKind.KEEPALIVE_THEN_CLOSE,
        keepalive_interval_s=0.1,
        keepalive_duration_s=30.0,
    )

    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, float]:
        return await _timed_call(_client(sim, transport, deadline_s=1.0))

    error, elapsed = _run(config, scenario)

    assert isinstance(error, LLMTimeoutError), repr(error)
    assert error.retryable
    assert error.reason == "deadline_exceeded"
    assert 1.0 <= elapsed < 2.0


def test_keepalive_then_close_before_the_deadline_is_transient_not_a_json_error(
    transport: str,
) -> None:
    """Blank lines, then the connection closes: no raw decode error escapes."""
    config = _faulty(
        FaultKind.KEEPALIVE_THEN_CLOSE,
        keepalive_interval_s=0.05,
        keepalive_duration_s=0.3,
    )

    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, float]:
        return await _timed_call(_client(sim, transport, deadline_s=10.0))

    error, elapsed = _run(config, scenario)

    assert isinstance(error, RetryableError), repr(error)
    assert not isinstance(error, json.JSONDecodeError)
    assert error.reason == "bad_response"
    assert elapsed < 5.0


def test_a_provider_that_never_answers_costs_one_deadline_and_one_request(
    transport: str,
) -> None:
    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, float, int]:
        error, elapsed = await _timed_call(_client(sim, transport, deadline_s=0.5))
        await asyncio.sleep(0.2)  # let the server count what reached it
        return error, elapsed, sim.state.stats.requests_total

    error, elapsed, requests = _run(_faulty(FaultKind.NEVER_ANSWERS), scenario)

    assert isinstance(error, RetryableError), repr(error)
    assert error.reason in ("deadline_exceeded", "timeout")
    assert 0.5 <= elapsed < 1.2
    assert requests == 1


def test_one_attempt_is_one_request_the_client_never_retries(transport: str) -> None:
    """A 503 is answered at once; the client makes exactly one request for it."""

    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, int]:
        error, _elapsed = await _timed_call(_client(sim, transport, deadline_s=10.0))
        return error, sim.state.stats.requests_total

    error, requests = _run(_faulty(FaultKind.OVERLOADED), scenario)

    assert isinstance(error, RetryableError), repr(error)
    assert error.reason == "overloaded"
    assert requests == 1


def test_attempts_against_a_silent_provider_are_counted_by_our_policy_only(
    transport: str,
    pipelines: dict[str, Pipeline],
) -> None:
    """Two attempts allowed, 0.4 s deadline each: two requests, under 1.5 s."""
    event = decode_event(ticket_bytes(), pipelines["tickets"])

    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, float, int]:
        client = _client(sim, transport, deadline_s=0.4)
        enricher = Enricher(
            client,
            policy=RetryPolicy(max_attempts=2, wait=False),
            breaker=CircuitBreaker("test", failure_threshold=100),
            prices=PriceList(PricingSettings()),
            max_in_flight=4,
        )
        started = time.monotonic()
        try:
            await enricher.enrich(pipelines["tickets"], event)
        except EnrichmentFailed as exc:
            error: BaseException = exc
        else:
            raise AssertionError("enriched against a provider that never answers")
        finally:
            await client.close()
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)
        return error, elapsed, sim.state.stats.requests_total

    error, elapsed, requests = _run(_faulty(FaultKind.NEVER_ANSWERS), scenario)

    assert isinstance(error, EnrichmentFailed)
    assert error.attempts == 2
    assert requests == 2
    assert elapsed < 1.5


def test_a_content_risk_refusal_is_permanent_and_leaves_the_circuit_closed(
    transport: str,
    pipelines: dict[str, Pipeline],
) -> None:
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    breaker = CircuitBreaker("test", failure_threshold=1)

    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, int]:
        client = _client(sim, transport, deadline_s=5.0)
        enricher = Enricher(
            client,
            policy=RetryPolicy(max_attempts=3, wait=False),
            breaker=breaker,
            prices=PriceList(PricingSettings()),
            max_in_flight=4,
        )
        try:
            await enricher.enrich(pipelines["tickets"], event)
        except EnrichmentFailed as exc:
            return exc, sim.state.stats.requests_total
        finally:
            await client.close()
        raise AssertionError("enriched content the provider refuses")

    error, requests = _run(_faulty(FaultKind.CONTENT_REFUSAL), scenario)

    assert isinstance(error, EnrichmentFailed)
    assert isinstance(error.cause, PermanentError)
    assert error.reason == "content_refused"
    assert error.status == 400
    assert requests == 1
    assert breaker.state is CircuitState.CLOSED
    assert breaker.open_count == 0


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (FaultKind.UNAUTHORIZED, "unauthorized"),
        (FaultKind.INSUFFICIENT_BALANCE, "insufficient_balance"),
    ],
)
def test_account_failures_are_account_level(
    transport: str, kind: FaultKind, reason: str
) -> None:
    async def scenario(sim: SimulatorHandle) -> tuple[BaseException, float]:
        return await _timed_call(_client(sim, transport, deadline_s=5.0))

    error, _elapsed = _run(_faulty(kind), scenario)

    assert isinstance(error, RetryableError), repr(error)
    assert error.reason == reason
    assert getattr(error, "account_level", False)


def test_every_request_asks_for_thinking_disabled(transport: str) -> None:
    """With thinking off, reasoning cannot eat the budget of an extraction."""
    bodies: list[dict[str, Any]] = []

    async def answer(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response(
            {
                "id": "r-1",
                "object": "chat.completion",
                "created": 0,
                "model": "deepseek-flash",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "{}"},
                    }
                ],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 2,
                    "total_tokens": 12,
                },
            }
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/chat/completions", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        client = open_chat_client(
            LLMSettings(
                base_url=f"http://127.0.0.1:{port}",
                api_key=SecretStr("k"),
                transport=transport,  # type: ignore[arg-type]
            )
        )
        try:
            response = await client.complete(REQUEST)
        finally:
            await client.close()
            await runner.cleanup()
        assert response.content == "{}"

    asyncio.run(main())
    (body,) = bodies
    assert body["thinking"] == {"type": "disabled"}
    assert body["response_format"] == {"type": "json_object"}
