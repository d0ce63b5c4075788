"""Packed requests through the simulator over real HTTP: one answer, whole usage.

Each test starts its own in-process simulator on a free loopback port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import openai

from streams import paths
from streams.pipeline.config import load_pipelines
from streams.pipeline.decode import decode_event
from streams.pipeline.packed_request import build_packed_messages
from streams.pipeline.prompt import render_event_text
from streams.simulator import SimulatorConfig, SimulatorHandle, serve
from streams.simulator.prompt_cache import render_prompt
from streams.simulator.tokens import count_tokens
from tests.unit.conftest import ticket_bytes

T = TypeVar("T")
TICKETS = next(
    p
    for p in load_pipelines(paths.PIPELINES_DIR, paths.SCHEMAS_DIR).values()
    if p.name == "tickets"
)
TEXTS = [f"I want to cancel order {1000 + index} today" for index in range(5)]


def _run(
    scenario: Callable[[SimulatorHandle], Awaitable[T]], config: SimulatorConfig
) -> T:
    async def main() -> T:
        async with await serve(config) as sim:
            return await scenario(sim)

    return asyncio.run(main())


def _messages() -> list[dict[str, str]]:
    rendered = [
        render_event_text(TICKETS, decode_event(ticket_bytes(text), TICKETS))
        for text in TEXTS
    ]
    return build_packed_messages(TICKETS, rendered)


async def _create(sim: SimulatorHandle) -> Any:
    async with openai.AsyncOpenAI(
        base_url=sim.url, api_key="test", max_retries=0
    ) as client:
        return await client.chat.completions.create(
            model="deepseek-flash",
            messages=_messages(),  # type: ignore[arg-type]
            response_format={"type": "json_object"},
            max_tokens=1500,
        )


async def _stats(sim: SimulatorHandle) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.url + "/stats") as reply,
    ):
        return await reply.json()


def test_a_packed_request_gets_one_element_per_item_and_whole_usage() -> None:
    async def scenario(sim: SimulatorHandle) -> tuple[Any, Any]:
        return await _create(sim), await _stats(sim)

    completion, stats = _run(scenario, SimulatorConfig(latency_mean_ms=0))

    content = completion.choices[0].message.content
    answer = json.loads(content)
    assert [element["id"] for element in answer["items"]] == ["1", "2", "3", "4", "5"]
    for element in answer["items"]:
        TICKETS.validate_output({k: v for k, v in element.items() if k != "id"})
    prompt = render_prompt((m["role"], m["content"]) for m in _messages())
    assert completion.usage.prompt_tokens == count_tokens(prompt)
    assert completion.usage.completion_tokens == count_tokens(content)
    assert stats["requests_total"] == 1
    assert stats["completion_tokens"] == completion.usage.completion_tokens


def test_the_dropped_item_fault_leaves_out_one_element() -> None:
    config = SimulatorConfig.from_mapping(
        {"latency_mean_ms": 0, "faults": {"rates": {"packed_item_dropped": 1.0}}}
    )

    completion = _run(_create, config)

    answer = json.loads(completion.choices[0].message.content)
    assert len(answer["items"]) == 4
