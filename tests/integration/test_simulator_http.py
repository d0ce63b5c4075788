"""The simulator over real HTTP, driven by the real openai client.

Each test starts its own simulator on a free loopback port and stops it at
the end. Fault timings are shortened so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import jsonschema
import openai
import pytest
import yaml

from streams.simulator import FaultKind, SimulatorConfig, SimulatorHandle, serve

REPO = Path(__file__).resolve().parents[2]
TICKET_SCHEMA = json.loads(
    (REPO / "schemas" / "ticket_enrichment.schema.json").read_text()
)
INSTRUCTIONS = str(
    yaml.safe_load((REPO / "config" / "pipelines" / "tickets.yaml").read_text())[
        "instructions"
    ]
)
AUTH = {"Authorization": "Bearer test"}

T = TypeVar("T")


def _run(
    scenario: Callable[[SimulatorHandle], Awaitable[T]],
    config: SimulatorConfig | None = None,
) -> T:
    """Run ``scenario`` against a fresh simulator and stop it afterwards."""

    async def main() -> T:
        async with await serve(config or SimulatorConfig(latency_mean_ms=0)) as sim:
            return await scenario(sim)

    return asyncio.run(main())


def _faulty(kind: FaultKind, **settings: Any) -> SimulatorConfig:
    return SimulatorConfig.from_mapping(
        {"latency_mean_ms": 0, "faults": {"rates": {kind.value: 1.0}, **settings}}
    )


def _client(sim: SimulatorHandle, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=sim.url, api_key="test", max_retries=0, **options
    )


def _messages(text: str = "I want to cancel order 1234567 asap") -> list[Any]:
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": f"text: {text}"},
    ]


async def _create(
    client: openai.AsyncOpenAI, text: str = "cancel order 1234567"
) -> Any:
    return await client.chat.completions.create(
        model="deepseek-flash",
        messages=_messages(text),
        response_format={"type": "json_object"},
        max_tokens=300,
        extra_body={"thinking": {"type": "disabled"}},
    )


async def _get_json(sim: SimulatorHandle, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(sim.url + path) as reply:
        return await reply.json()


async def _post_json(sim: SimulatorHandle, path: str, body: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.url + path, json=body) as reply,
    ):
        return reply.status, await reply.json()


def test_a_completion_through_the_openai_client() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        async with _client(sim) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="deepseek-flash",
                messages=_messages(),
                response_format={"type": "json_object"},
                max_tokens=300,
                extra_body={"thinking": {"type": "disabled"}},
            )
            completion = raw.parse()

        assert raw.headers.get("x-request-id")
        assert completion.id.startswith("chatcmpl-")
        assert completion.object == "chat.completion"
        assert completion.model == "deepseek-flash"
        choice = completion.choices[0]
        assert choice.finish_reason == "stop"
        assert choice.message.role == "assistant"
        answer = json.loads(choice.message.content or "")
        jsonschema.validate(answer, TICKET_SCHEMA)
        assert answer["intent"] == "cancel_order"
        assert answer["urgency"] == "high"

        usage = completion.usage
        assert usage is not None
        extra = usage.model_extra or {}
        assert usage.prompt_tokens == (
            extra["prompt_cache_hit_tokens"] + extra["prompt_cache_miss_tokens"]
        )
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert usage.completion_tokens > 10
        assert usage.completion_tokens_details is not None
        assert usage.completion_tokens_details.reasoning_tokens == 0

    _run(scenario)


def test_the_v1_path_and_any_deepseek_model_name_work() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        async with openai.AsyncOpenAI(
            base_url=sim.url + "/v1", api_key="k", max_retries=0
        ) as client:
            completion = await client.chat.completions.create(
                model="deepseek-v4-pro", messages=_messages()
            )
        assert completion.model == "deepseek-v4-pro"

    _run(scenario)


def test_a_repeated_instruction_prefix_is_billed_as_cache_hits() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        async with _client(sim) as client:
            first = await _create(client, "where is my order 1234567")
            second = await _create(client, "I want a refund for my broken chair")
        stats = await _get_json(sim, "/stats")

        first_extra = first.usage.model_extra
        second_extra = second.usage.model_extra
        assert first_extra["prompt_cache_hit_tokens"] == 0
        assert second_extra["prompt_cache_hit_tokens"] > 0
        assert second_extra["prompt_cache_hit_tokens"] % 64 == 0
        assert (
            second.usage.prompt_tokens_details.cached_tokens
            == (second_extra["prompt_cache_hit_tokens"])
        )
        assert (
            stats["prompt_cache_hit_tokens"] == second_extra["prompt_cache_hit_tokens"]
        )
        assert stats["prompt_cache_miss_tokens"] == (
            first_extra["prompt_cache_miss_tokens"]
            + second_extra["prompt_cache_miss_tokens"]
        )
        assert stats["completion_tokens"] == (
            first.usage.completion_tokens + second.usage.completion_tokens
        )

    _run(scenario)


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Basic abc", "test"])
def test_a_request_without_an_api_key_gets_401(authorization: str | None) -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        body = {"model": "deepseek-flash", "messages": _messages()}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                sim.url + "/chat/completions", json=body, headers=headers
            ) as reply,
        ):
            assert reply.status == 401
            assert reply.headers["x-request-id"]
            error = (await reply.json())["error"]
        assert {"message", "type", "code"} <= set(error)
        assert error["type"] == "authentication_error"

    _run(scenario)


def test_unknown_models_and_streaming_are_refused_with_400() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        async with _client(sim) as client:
            with pytest.raises(openai.BadRequestError, match="Model Not Exist"):
                await client.chat.completions.create(
                    model="gpt-4o", messages=_messages()
                )
            with pytest.raises(openai.BadRequestError, match="Streaming"):
                await client.chat.completions.create(
                    model="deepseek-flash", messages=_messages(), stream=True
                )

    _run(scenario)


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        (FaultKind.RATE_LIMITED, openai.RateLimitError, 429),
        (FaultKind.SERVER_ERROR, openai.InternalServerError, 500),
        (FaultKind.OVERLOADED, openai.InternalServerError, 503),
        (FaultKind.INSUFFICIENT_BALANCE, openai.APIStatusError, 402),
        (FaultKind.UNAUTHORIZED, openai.AuthenticationError, 401),
        (FaultKind.CONTENT_REFUSAL, openai.BadRequestError, 400),
    ],
)
def test_error_faults_answer_with_their_status(
    kind: FaultKind, error: type[openai.APIStatusError], status: int
) -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        async with _client(sim) as client:
            with pytest.raises(error) as raised:
                await _create(client)
        stats = await _get_json(sim, "/stats")

        assert raised.value.status_code == status
        assert raised.value.response.headers["x-request-id"]
        if kind is FaultKind.CONTENT_REFUSAL:
            assert "Content Exists Risk" in str(raised.value)
        assert stats["faults_by_kind"] == {kind.value: 1}
        assert stats["responses_by_status"] == {str(status): 1}

    _run(scenario, _faulty(kind))


def test_blank_and_whitespace_content_finish_with_stop() -> None:
    async def scenario(sim: SimulatorHandle) -> list[Any]:
        async with _client(sim) as client:
            return [await _create(client) for _ in range(2)]

    blank = _run(scenario, _faulty(FaultKind.BLANK_CONTENT))
    spaces = _run(scenario, _faulty(FaultKind.WHITESPACE_CONTENT))

    for completion in blank:
        assert completion.choices[0].message.content == ""
        assert completion.choices[0].finish_reason == "stop"
    for completion in spaces:
        content = completion.choices[0].message.content
        assert content and not content.strip()
        assert completion.choices[0].finish_reason == "stop"


def test_truncated_content_is_half_a_json_object_with_length() -> None:
    async def scenario(sim: SimulatorHandle) -> Any:
        async with _client(sim) as client:
            return await _create(client)

    completion = _run(scenario, _faulty(FaultKind.TRUNCATED))

    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "length"
    assert content.startswith('{"summary":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_reasoning_only_spends_the_budget_without_content() -> None:
    async def scenario(sim: SimulatorHandle) -> Any:
        async with _client(sim) as client:
            return await _create(client)

    completion = _run(scenario, _faulty(FaultKind.REASONING_ONLY))

    message = completion.choices[0].message
    assert message.content is None
    assert (message.model_extra or {})["reasoning_content"]
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens_details.reasoning_tokens == 300


def test_keepalive_sends_200_then_blank_lines_then_closes() -> None:
    config = _faulty(
        FaultKind.KEEPALIVE_THEN_CLOSE,
        keepalive_interval_s=0.05,
        keepalive_duration_s=0.3,
    )

    async def scenario(sim: SimulatorHandle) -> None:
        body = {"model": "deepseek-flash", "messages": _messages()}
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                sim.url + "/chat/completions", json=body, headers=AUTH
            ) as reply,
        ):
            headers_after = time.monotonic() - started
            assert reply.status == 200
            assert reply.headers.get("Connection", "").lower() == "close"
            first = await reply.content.readline()
            payload = first + await reply.read()
        elapsed = time.monotonic() - started

        assert headers_after < 0.25
        assert first == b"\n"
        assert payload.strip() == b""
        assert payload.count(b"\n") >= 4
        assert elapsed >= 0.29

        # The openai client sees a 200 whose body holds no JSON at all.
        async with _client(sim) as client:
            with pytest.raises((json.JSONDecodeError, openai.APIError)):
                await _create(client)

    _run(scenario, config)


def test_never_answers_holds_until_the_client_gives_up() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        started = time.monotonic()
        async with _client(sim, timeout=0.3) as client:
            with pytest.raises(openai.APITimeoutError):
                await _create(client)
        assert 0.3 <= time.monotonic() - started < 2.0

        for _ in range(40):
            stats = await _get_json(sim, "/stats")
            if stats["in_flight"] == 0:
                break
            await asyncio.sleep(0.05)
        assert stats["in_flight"] == 0
        assert stats["responses_by_status"] == {}
        assert stats["faults_by_kind"] == {"never_answers": 1}

    _run(scenario, _faulty(FaultKind.NEVER_ANSWERS))


def test_slow_drip_sends_a_valid_body_a_few_bytes_at_a_time() -> None:
    config = _faulty(
        FaultKind.SLOW_DRIP, slow_drip_interval_s=0.02, slow_drip_chunk_bytes=64
    )

    async def scenario(sim: SimulatorHandle) -> None:
        body = {"model": "deepseek-flash", "messages": _messages(), "max_tokens": 300}
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                sim.url + "/chat/completions", json=body, headers=AUTH
            ) as reply,
        ):
            assert reply.status == 200
            chunks = [chunk async for chunk in reply.content.iter_any()]
        elapsed = time.monotonic() - started
        payload = b"".join(chunks)

        completion = json.loads(payload)
        assert completion["choices"][0]["finish_reason"] == "stop"
        assert len(chunks) > 3
        assert elapsed >= (len(payload) // 64 - 1) * 0.02

        async with _client(sim) as client:
            answer = (await _create(client)).choices[0].message.content
        jsonschema.validate(json.loads(answer), TICKET_SCHEMA)

    _run(scenario, config)


def test_stats_count_requests_and_reset_zeroes_them() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        async with _client(sim) as client:
            completions = [await _create(client, f"order {n}") for n in range(3)]
        stats = await _get_json(sim, "/stats")

        assert stats["requests_total"] == 3
        assert stats["responses_by_status"] == {"200": 3}
        assert stats["latency_seconds_count"] == 3
        assert stats["latency_seconds_sum"] >= 0.0
        assert stats["completion_tokens"] == sum(
            completion.usage.completion_tokens for completion in completions
        )
        assert stats["in_flight"] == 0

        status, reset = await _post_json(sim, "/stats/reset", {})
        assert status == 200
        assert reset["requests_total"] == 0
        assert reset["responses_by_status"] == {}
        assert reset["completion_tokens"] == 0
        assert reset["latency_seconds_count"] == 0
        assert await _get_json(sim, "/health") == {"status": "ok"}

    _run(scenario)


def test_admin_faults_read_replace_and_validate() -> None:
    async def scenario(sim: SimulatorHandle) -> None:
        assert (await _get_json(sim, "/admin/faults"))["rates"] == {}

        wanted = {"rates": {"rate_limited": 1.0}, "keepalive_duration_s": 5}
        status, applied = await _post_json(sim, "/admin/faults", wanted)
        assert status == 200
        assert applied == await _get_json(sim, "/admin/faults")
        assert applied["rates"] == {"rate_limited": 1.0}
        async with _client(sim) as client:
            with pytest.raises(openai.RateLimitError):
                await _create(client)

        status, error = await _post_json(sim, "/admin/faults", {"rates": {"x": 2}})
        assert status == 422
        assert "error" in error
        assert (await _get_json(sim, "/admin/faults"))["rates"] == {"rate_limited": 1.0}

    _run(scenario)


def test_a_schedule_window_starts_again_from_each_replacement() -> None:
    window = {"kind": "overloaded", "start_s": 0, "end_s": 0.3, "rate": 1.0}

    async def scenario(sim: SimulatorHandle) -> None:
        await _post_json(sim, "/admin/faults", {"schedule": [window]})
        async with _client(sim) as client:
            with pytest.raises(openai.InternalServerError):
                await _create(client)
            await asyncio.sleep(0.35)
            assert (await _create(client)).choices[0].finish_reason == "stop"

    _run(scenario)


def test_the_same_seed_gives_the_same_faults_in_the_same_order() -> None:
    config = SimulatorConfig.from_mapping(
        {"latency_mean_ms": 0, "seed": 11, "error_rate": 0.5}
    )

    async def scenario(sim: SimulatorHandle) -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as session:
            body = {"model": "deepseek-flash", "messages": _messages()}
            for _ in range(40):
                async with session.post(
                    sim.url + "/chat/completions", json=body, headers=AUTH
                ) as reply:
                    statuses.append(reply.status)
        return statuses

    first = _run(scenario, config)

    assert first == _run(scenario, config)
    assert {200, 429, 500, 503} == set(first)


def test_latency_is_waited_and_reported() -> None:
    config = SimulatorConfig(latency_mean_ms=150, latency_sigma=0.0)

    async def scenario(sim: SimulatorHandle) -> None:
        started = time.monotonic()
        async with _client(sim) as client:
            await _create(client)
        assert time.monotonic() - started >= 0.15

        stats = await _get_json(sim, "/stats")
        assert 0.15 <= stats["latency_seconds_mean"] < 0.5

    _run(scenario, config)


def test_a_thousand_concurrent_requests_are_all_answered() -> None:
    # A constant latency long enough for every request to arrive before the
    # first one is answered, so all 1,000 are in flight at once.
    config = SimulatorConfig(latency_mean_ms=2000, latency_sigma=0.0)

    async def scenario(sim: SimulatorHandle) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(number: int) -> int:
                body = {
                    "model": "deepseek-flash",
                    "messages": _messages(f"where is my order {number:08d}"),
                    "max_tokens": 300,
                }
                async with session.post(
                    sim.url + "/chat/completions", json=body, headers=AUTH
                ) as reply:
                    await reply.read()
                    return reply.status

            started = time.monotonic()
            statuses = await asyncio.gather(*(one(n) for n in range(1000)))
            elapsed = time.monotonic() - started
        stats = await _get_json(sim, "/stats")

        assert statuses == [200] * 1000
        assert elapsed < 15.0
        assert stats["max_in_flight"] == 1000

    _run(scenario, config)


def test_run_prints_its_address_and_stops_on_sigterm() -> None:
    code = (
        "from streams.simulator import SimulatorConfig, run\n"
        "run(SimulatorConfig(latency_mean_ms=0), '127.0.0.1', 0)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        assert line.startswith("simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]

        async def health() -> Any:
            async with (
                aiohttp.ClientSession() as session,
                session.get(url + "/health") as reply,
            ):
                return await reply.json()

        assert asyncio.run(health()) == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
