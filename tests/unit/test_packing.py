"""Request packing against a scripted model: when packs close, and what items get."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import ConfigurationError, RetryableError
from streams.llm.circuit_breaker import CircuitBreaker
from streams.llm.client import ChatRequest, ChatResponse
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.pipeline.config import PackingConfig, Pipeline
from streams.pipeline.decode import Event, decode_event
from streams.pipeline.enricher import Enricher, Enrichment, EnrichmentFailed
from streams.pipeline.packed_request import (
    PACKING_INSTRUCTION,
    estimate_tokens,
    split_by_weight,
    split_usage,
)
from streams.pipeline.packing import PackingRouter
from streams.pipeline.prompt import build_messages
from streams.settings import PricingSettings
from streams.simulator.packed import parse_packed_items
from tests.unit.conftest import ticket_bytes

SINGLE_USAGE = Usage(
    prompt_cache_hit_tokens=128, prompt_cache_miss_tokens=40, completion_tokens=50
)
PRICES = PriceList(PricingSettings())

Elements = list[dict[str, Any]]


def values_for(text: str) -> dict[str, Any]:
    """A schema-valid answer that names the event it belongs to."""
    return {
        "summary": text.removeprefix("text: ")[:200],
        "category": "ORDER",
        "intent": "cancel_order",
        "urgency": "medium",
        "sentiment": "neutral",
        "entities": [],
    }


def packed_usage(items: int) -> Usage:
    return Usage(
        prompt_cache_hit_tokens=192,
        prompt_cache_miss_tokens=41 * items + 7,
        completion_tokens=47 * items + 5,
        reasoning_tokens=3,
    )


def is_packed(request: ChatRequest) -> bool:
    return request.messages[-1]["content"].startswith(PACKING_INSTRUCTION)


def reply(content: str | None, usage: Usage, finish: str = "stop") -> ChatResponse:
    return ChatResponse(content, finish, False, usage, "deepseek-flash", "req", 0.01)


class ItemModel:
    """Answers packed requests item by item, single requests whole.

    Args:
        tamper: Changes the elements of a packed answer before it is sent.
        packed_failure: What every packed call gets instead of an answer.
    """

    def __init__(
        self,
        tamper: Callable[[Elements], None] | None = None,
        packed_failure: ChatResponse | Exception | None = None,
    ) -> None:
        self.tamper = tamper
        self.packed_failure = packed_failure
        self.requests: list[ChatRequest] = []
        self.usage = Usage()

    def packed(self) -> list[ChatRequest]:
        return [r for r in self.requests if is_packed(r)]

    def single(self) -> list[ChatRequest]:
        return [r for r in self.requests if not is_packed(r)]

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        await asyncio.sleep(0)
        items = parse_packed_items(request.messages[-1]["content"])
        if items is None:
            response = reply(
                orjson.dumps(values_for(request.messages[-1]["content"])).decode(),
                SINGLE_USAGE,
            )
        elif isinstance(self.packed_failure, Exception):
            raise self.packed_failure
        elif self.packed_failure is not None:
            response = self.packed_failure
        else:
            elements = [{"id": item_id, **values_for(text)} for item_id, text in items]
            if self.tamper is not None:
                self.tamper(elements)
            content = orjson.dumps({"items": elements}).decode()
            response = reply(content, packed_usage(len(items)))
        self.usage = self.usage + response.usage
        return response


def packing(pipeline: Pipeline, **settings: Any) -> Pipeline:
    config = pipeline.config.model_copy(update={"packing": PackingConfig(**settings)})
    return dataclasses.replace(pipeline, config=config)


def make_router(model: ItemModel, pipeline: Pipeline) -> PackingRouter:
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=3, wait=False),
        breaker=CircuitBreaker("test", failure_threshold=100),
        prices=PRICES,
        max_in_flight=64,
    )
    return PackingRouter(enricher, PRICES, [pipeline])


def events(pipeline: Pipeline, count: int, words: int = 8) -> list[Event]:
    return [
        decode_event(
            ticket_bytes(f"ticket {index} " + "please cancel order " * (words // 3)),
            pipeline,
        )
        for index in range(count)
    ]


def enrich_all(
    router: PackingRouter, pipeline: Pipeline, batch: list[Event]
) -> list[Enrichment | BaseException]:
    async def scenario() -> list[Enrichment | BaseException]:
        return await asyncio.gather(
            *(router.enrich(pipeline, event) for event in batch),
            return_exceptions=True,
        )

    return asyncio.run(scenario())


def summaries(results: list[Enrichment | BaseException]) -> list[str]:
    return [
        result.values["summary"] if isinstance(result, Enrichment) else repr(result)
        for result in results
    ]


def expected_summaries(batch: list[Event]) -> list[str]:
    return [values_for(f"text: {e.body['data']['text']}")["summary"] for e in batch]


def test_a_full_pack_is_sent_at_once_and_answers_each_event(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=4, max_wait_ms=10_000)
    model = ItemModel()
    batch = events(pipeline, 8)

    results = enrich_all(make_router(model, pipeline), pipeline, batch)

    assert summaries(results) == expected_summaries(batch)
    assert len(model.requests) == 2
    assert [r.max_tokens for r in model.requests] == [4 * 300, 4 * 300]
    assert all(isinstance(r, Enrichment) and r.attempts == 1 for r in results)


def test_the_packed_prompt_keeps_the_single_prefix_and_numbers_items(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=3)
    model = ItemModel()
    batch = events(pipeline, 3)

    enrich_all(make_router(model, pipeline), pipeline, batch)

    (request,) = model.requests
    single = build_messages(pipeline, batch[0])
    assert request.messages[0] == single[0]  # byte-identical system message
    user = request.messages[1]["content"]
    assert user.startswith(PACKING_INSTRUCTION)
    assert [item_id for item_id, _ in parse_packed_items(user) or []] == ["1", "2", "3"]
    assert batch[0].event_id not in user


def test_the_token_limit_closes_packs_early_and_long_events_go_alone(
    pipelines: dict[str, Pipeline],
) -> None:
    base = pipelines["tickets"]
    fixed = estimate_tokens(base.config.instructions) + estimate_tokens(
        PACKING_INSTRUCTION
    )
    # Room for about two 30-word items beside the fixed text, not four.
    pipeline = packing(base, max_items=8, max_prompt_tokens=fixed + 120, max_wait_ms=30)
    model = ItemModel()
    short = events(pipeline, 4, words=30)
    long = events(pipeline, 1, words=600)

    results = enrich_all(make_router(model, pipeline), pipeline, short + long)

    assert summaries(results) == expected_summaries(short + long)
    sizes = [
        len(parse_packed_items(r.messages[1]["content"]) or []) for r in model.packed()
    ]
    assert max(sizes) < 4  # the token limit, not max_items, closed the packs
    assert len(model.single()) >= 1  # the long event
    assert sum(sizes) + len(model.single()) == 5


def test_a_pack_closes_after_max_wait_and_a_lone_item_goes_alone(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=8, max_wait_ms=5)
    model = ItemModel()
    router = make_router(model, pipeline)

    async def scenario() -> None:
        first = asyncio.gather(
            *(router.enrich(pipeline, e) for e in events(pipeline, 3))
        )
        await first
        await router.enrich(pipeline, events(pipeline, 1)[0])

    asyncio.run(scenario())

    assert len(model.packed()) == 1
    assert len(parse_packed_items(model.packed()[0].messages[1]["content"]) or []) == 3
    assert len(model.single()) == 1
    assert router.packers[pipeline.name].stats.alone == 1


def drop_second(elements: Elements) -> None:
    del elements[1]


def break_second(elements: Elements) -> None:
    elements[1]["urgency"] = "whenever"


def repeat_second(elements: Elements) -> None:
    elements.append(dict(elements[1]))


@pytest.mark.parametrize(
    "tamper",
    [drop_second, break_second, repeat_second],
    ids=["missing", "invalid", "repeated"],
)
def test_an_unusable_item_is_retried_alone_and_billed_for_both_calls(
    pipelines: dict[str, Pipeline], tamper: Callable[[Elements], None]
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=4)
    model = ItemModel(tamper=tamper)
    batch = events(pipeline, 4)
    router = make_router(model, pipeline)

    results = enrich_all(router, pipeline, batch)

    assert summaries(results) == expected_summaries(batch)
    (alone,) = model.single()
    assert "ticket 1 " in alone.messages[1]["content"]
    retried = results[1]
    assert isinstance(retried, Enrichment)
    assert retried.attempts == 2
    assert retried.usage.prompt_tokens > SINGLE_USAGE.prompt_tokens
    stats = router.packers[pipeline.name].stats
    assert (stats.answered, stats.retried_alone) == (3, 1)


@pytest.mark.parametrize(
    "failure",
    [
        reply("", packed_usage(4)),
        reply("   ", packed_usage(4)),
        reply('{"items": [{"id": "1", "summ', packed_usage(4), finish="length"),
        reply("not json", packed_usage(4)),
        reply('{"answers": []}', packed_usage(4)),
        RetryableError("503", reason="overloaded", status=503),
        ConfigurationError("404 from the API"),
    ],
    ids=["blank", "whitespace", "truncated", "not-json", "no-items", "503", "fatal"],
)
def test_a_failed_packed_call_falls_back_to_single_events(
    pipelines: dict[str, Pipeline], failure: ChatResponse | Exception
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=4)
    model = ItemModel(packed_failure=failure)
    batch = events(pipeline, 4)
    router = make_router(model, pipeline)

    results = enrich_all(router, pipeline, batch)

    if isinstance(failure, ConfigurationError):
        assert all(result is failure for result in results)
        return
    assert summaries(results) == expected_summaries(batch)
    assert len(model.packed()) == 1
    assert len(model.single()) == 4
    stats = router.packers[pipeline.name].stats
    assert (stats.failed_calls, stats.fallback, stats.answered) == (1, 4, 0)
    assert all(isinstance(r, Enrichment) and r.attempts == 2 for r in results)


def test_per_event_usage_and_cost_add_up_to_the_calls_made(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=5)
    model = ItemModel(tamper=drop_second)
    batch = events(pipeline, 13)

    results = enrich_all(make_router(model, pipeline), pipeline, batch)

    enrichments = [r for r in results if isinstance(r, Enrichment)]
    assert len(enrichments) == 13
    total = Usage()
    for enrichment in enrichments:
        total = total + enrichment.usage
    assert total == model.usage
    cost = sum(enrichment.cost_usd for enrichment in enrichments)
    assert cost == pytest.approx(PRICES.cost_usd("deepseek-flash", model.usage))


def test_a_failed_single_retry_carries_the_packed_share(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=2)
    model = ItemModel(tamper=drop_second)
    batch = events(pipeline, 2)
    router = make_router(model, pipeline)
    refused = ChatResponse('{"summary": "x"}', "stop", False, SINGLE_USAGE, "m", "r", 0)

    async def refuse(request: ChatRequest) -> ChatResponse:
        if is_packed(request):
            return await ItemModel.complete(model, request)
        model.requests.append(request)
        model.usage = model.usage + refused.usage
        return refused

    model.complete = refuse  # type: ignore[method-assign]
    results = enrich_all(router, pipeline, batch)

    failed = results[1]
    assert isinstance(failed, EnrichmentFailed)
    assert failed.reason == "output_schema_violation"
    assert failed.attempts == 2
    first = results[0]
    assert isinstance(first, Enrichment)
    assert first.usage + failed.usage == model.usage


def test_a_cancelled_event_is_left_out_of_its_pack(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=8, max_wait_ms=20)
    model = ItemModel()
    router = make_router(model, pipeline)
    batch = events(pipeline, 3)

    async def scenario() -> list[Enrichment]:
        doomed = asyncio.create_task(router.enrich(pipeline, batch[0]))
        others = [asyncio.create_task(router.enrich(pipeline, e)) for e in batch[1:]]
        await asyncio.sleep(0)
        doomed.cancel()
        return await asyncio.gather(*others)

    results = asyncio.run(scenario())

    assert [r.values["summary"] for r in results] == expected_summaries(batch[1:])
    (request,) = model.packed()
    assert len(parse_packed_items(request.messages[1]["content"]) or []) == 2


def test_pipelines_without_packing_go_straight_to_the_enricher(
    pipelines: dict[str, Pipeline],
) -> None:
    model = ItemModel()
    router = make_router(model, pipelines["tickets"])
    batch = events(pipelines["tickets"], 3)

    results = enrich_all(router, pipelines["tickets"], batch)

    assert summaries(results) == expected_summaries(batch)
    assert len(model.single()) == 3 and not model.packed()
    assert router.packers == {}
    assert router.calls == 3


def test_max_items_shrinks_to_the_completion_cap(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_items=8, max_completion_tokens=900)
    model = ItemModel()

    enrich_all(make_router(model, pipeline), pipeline, events(pipeline, 6))

    assert [r.max_tokens for r in model.requests] == [900, 900]


@given(
    st.integers(0, 10_000),
    st.lists(st.integers(0, 5_000), min_size=1, max_size=64),
)
def test_weighted_shares_always_add_up(total: int, weights: list[int]) -> None:
    shares = split_by_weight(total, weights)
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    if sum(weights) > 0:
        for share, weight in zip(shares, weights, strict=True):
            assert abs(share - total * weight / sum(weights)) < 1


def test_prompt_tokens_split_evenly_and_completion_by_answer_bytes() -> None:
    usage = Usage(
        prompt_cache_hit_tokens=128,
        prompt_cache_miss_tokens=31,
        completion_tokens=100,
        reasoning_tokens=0,
    )

    shares = split_usage(usage, [300, 100, 0])

    assert [s.prompt_cache_hit_tokens for s in shares] == [43, 43, 42]
    assert [s.prompt_cache_miss_tokens for s in shares] == [11, 10, 10]
    assert [s.completion_tokens for s in shares] == [75, 25, 0]


def test_a_cap_below_two_items_sends_every_event_alone(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = packing(pipelines["tickets"], max_completion_tokens=500)
    model = ItemModel()
    router = make_router(model, pipeline)

    results = enrich_all(router, pipeline, events(pipeline, 3))

    assert all(isinstance(result, Enrichment) for result in results)
    assert len(model.single()) == 3 and not model.packed()
    assert router.packers[pipeline.name].stats.alone == 3


def test_an_event_over_the_input_token_limit_goes_alone_and_is_trimmed(
    pipelines: dict[str, Pipeline],
) -> None:
    base = pipelines["tickets"]
    limited = dataclasses.replace(
        base, config=base.config.model_copy(update={"input_token_limit": 64})
    )
    pipeline = packing(limited, max_items=8, max_wait_ms=30)
    model = ItemModel()
    short = events(pipeline, 3, words=9)
    long = events(pipeline, 1, words=300)

    results = enrich_all(make_router(model, pipeline), pipeline, short + long)

    (alone,) = model.single()
    assert "[...]" in alone.messages[1]["content"]  # cut by the trimming rule
    assert isinstance(results[-1], Enrichment)
    assert results[-1].trimmed is not None
