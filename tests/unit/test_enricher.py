"""The retry loop, the answer's judgement, the circuit and the limits, against a
scripted model."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.errors import PermanentError, RetryableError
from streams.llm.circuit_breaker import CircuitBreaker, CircuitState
from streams.llm.client import AccountError, ChatRequest, ChatResponse
from streams.llm.concurrency import AdaptiveLimit
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.pipeline.decode import decode_event
from streams.pipeline.enricher import Enricher, EnrichmentFailed
from streams.pipeline.gate import PipelineGate
from streams.settings import PricingSettings
from tests.unit.conftest import ticket_bytes

GOOD = orjson.dumps(
    {
        "summary": "Customer wants to cancel an order.",
        "category": "ORDER",
        "intent": "cancel_order",
        "urgency": "medium",
        "sentiment": "neutral",
        "entities": [{"type": "order_id", "value": "1234567"}],
    }
).decode()
USAGE = Usage(
    prompt_cache_hit_tokens=128, prompt_cache_miss_tokens=40, completion_tokens=50
)

Step = ChatResponse | Exception


def answer(
    content: str | None = GOOD, finish: str = "stop", reasoning: bool = False
) -> ChatResponse:
    return ChatResponse(
        content, finish, reasoning, USAGE, "deepseek-flash", "req-1", 0.01
    )


class ScriptedModel:
    """Answers each call with the next scripted step and records the request."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def make_enricher(
    model: ScriptedModel, **breaker_args: float
) -> tuple[Enricher, CircuitBreaker]:
    breaker = CircuitBreaker("test", **breaker_args)  # type: ignore[arg-type]
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=3, wait=False),
        breaker=breaker,
        prices=PriceList(PricingSettings()),
        max_in_flight=4,
    )
    return enricher, breaker


def run(
    pipelines: dict[str, Pipeline], model: ScriptedModel, **breaker_args: float
) -> Callable[[], object]:
    enricher, _ = make_enricher(model, **breaker_args)
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    return lambda: asyncio.run(enricher.enrich(pipelines["tickets"], event))


def test_a_good_answer_is_validated_and_priced(pipelines: dict[str, Pipeline]) -> None:
    model = ScriptedModel([answer()])
    enrichment = run(pipelines, model)()
    assert enrichment.values["category"] == "ORDER"  # type: ignore[attr-defined]
    assert enrichment.attempts == 1  # type: ignore[attr-defined]
    expected = (128 * 0.003 + 40 * 0.15 + 50 * 0.60) / 1e6
    assert enrichment.cost_usd in (pytest.approx(expected), pytest.approx(2 * expected))  # type: ignore[attr-defined]
    request = model.requests[0]
    assert request.max_tokens == pipelines["tickets"].config.max_tokens
    assert request.messages[0]["role"] == "system"


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (answer(""), "blank_content"),
        (answer("   \n  "), "blank_content"),
        (answer('{"summary": '), "invalid_json"),
        (answer("[1, 2]"), "invalid_json"),
        (RetryableError("503", reason="overloaded", status=503), "overloaded"),
    ],
    ids=["blank", "whitespace", "not-json", "array", "503"],
)
def test_transient_failures_are_retried_then_dead_lettered(
    pipelines: dict[str, Pipeline], step: Step, reason: str
) -> None:
    model = ScriptedModel([step])
    with pytest.raises(EnrichmentFailed) as caught:
        run(pipelines, model, failure_threshold=100)()
    assert caught.value.reason == reason
    assert caught.value.attempts == 3
    assert len(model.requests) == 3


def test_a_transient_failure_then_success_is_enriched(
    pipelines: dict[str, Pipeline],
) -> None:
    model = ScriptedModel([answer(""), answer()])
    enrichment = run(pipelines, model)()
    assert enrichment.attempts == 2  # type: ignore[attr-defined]
    assert enrichment.usage.completion_tokens == 100  # type: ignore[attr-defined]  # both billed


@pytest.mark.parametrize(
    "step",
    [
        answer('{"summary": "half', finish="length"),
        answer(None, finish="length", reasoning=True),
    ],
    ids=["truncated", "reasoning-only"],
)
def test_truncated_answers_are_retried_with_more_tokens(
    pipelines: dict[str, Pipeline], step: ChatResponse
) -> None:
    model = ScriptedModel([step, answer()])
    run(pipelines, model)()
    budget = pipelines["tickets"].config.max_tokens
    assert [r.max_tokens for r in model.requests] == [budget, budget * 2]


def test_content_refusal_is_permanent_and_not_retried(
    pipelines: dict[str, Pipeline],
) -> None:
    refusal = PermanentError("refused", reason="content_refused", status=400)
    model = ScriptedModel([refusal])
    with pytest.raises(EnrichmentFailed) as caught:
        run(pipelines, model)()
    assert caught.value.reason == "content_refused"
    assert len(model.requests) == 1


def test_an_answer_outside_the_schema_is_permanent(
    pipelines: dict[str, Pipeline],
) -> None:
    model = ScriptedModel([answer('{"summary": "x"}')])
    with pytest.raises(EnrichmentFailed) as caught:
        run(pipelines, model)()
    assert caught.value.reason == "output_schema_violation"
    assert len(model.requests) == 1


def test_account_errors_open_the_circuit_and_cost_no_attempt(
    pipelines: dict[str, Pipeline],
) -> None:
    declined = AccountError("402", reason="insufficient_balance", status=402)
    model = ScriptedModel([declined, declined, answer()])
    enricher, breaker = make_enricher(model, cooldown_s=0.01, max_cooldown_s=0.02)
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    enrichment = asyncio.run(enricher.enrich(pipelines["tickets"], event))
    assert enrichment.attempts == 1
    assert breaker.open_count == 2  # opened at once, probe failed once more
    assert breaker.state is CircuitState.CLOSED


def test_a_cancelled_probe_does_not_make_waiters_spin() -> None:
    async def scenario() -> float:
        breaker = CircuitBreaker("test", cooldown_s=0.0)
        breaker.record_failure(account_level=True)
        probe = await breaker.admit()
        assert probe
        waiters = [asyncio.create_task(breaker.admit()) for _ in range(3)]
        await asyncio.sleep(0.01)
        breaker.release_probe()
        await asyncio.sleep(0.01)
        started = time.process_time()
        await asyncio.sleep(0.5)
        busy = time.process_time() - started
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        return busy

    assert asyncio.run(scenario()) < 0.2


def test_an_outage_pauses_the_event_instead_of_using_up_its_attempts(
    pipelines: dict[str, Pipeline],
) -> None:
    """Ten 503s in a row open the circuit; only the failures before it count."""
    unavailable = RetryableError("503", reason="service_unavailable", status=503)
    model = ScriptedModel([*[unavailable] * 10, answer()])
    enricher, breaker = make_enricher(
        model, failure_threshold=2, cooldown_s=0.01, max_cooldown_s=0.02
    )
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    enrichment = asyncio.run(enricher.enrich(pipelines["tickets"], event))
    assert len(model.requests) == 11
    assert enrichment.attempts == 2  # one counted failure, then the answer
    assert breaker.state is CircuitState.CLOSED


# -- the limits around each attempt ------------------------------------------------


class SlowModel(ScriptedModel):
    """Takes a moment per call, so concurrent enrichments overlap."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(0.01)
        return await super().complete(request)


class GateClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


def limited_enricher(
    model: ScriptedModel,
    pipeline: Pipeline,
    clock: GateClock,
    concurrency: AdaptiveLimit | None = None,
) -> tuple[Enricher, PipelineGate]:
    prices = PriceList(PricingSettings())
    gate = PipelineGate([pipeline], prices, clock=clock, sleep=clock.sleep)
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=3, wait=False),
        breaker=CircuitBreaker("test"),
        prices=prices,
        max_in_flight=4,
        concurrency=concurrency,
        gate=gate,
    )
    return enricher, gate


def test_a_429_through_the_enricher_lowers_the_adaptive_limit(
    pipelines: dict[str, Pipeline],
) -> None:
    limited = RetryableError("429", reason="rate_limited", status=429)
    model = ScriptedModel([limited, answer()])
    limit = AdaptiveLimit(floor=1, ceiling=4, decrease_factor=0.5)
    enricher, _ = limited_enricher(
        model, pipelines["tickets"], GateClock(datetime.now(UTC)), limit
    )
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    asyncio.run(enricher.enrich(pipelines["tickets"], event))
    assert limit.limit == 2
    assert limit.in_flight == 0


def test_every_attempt_counts_towards_the_budget_failed_ones_too(
    pipelines: dict[str, Pipeline],
) -> None:
    tickets = dataclasses.replace(
        pipelines["tickets"],
        config=pipelines["tickets"].config.model_copy(
            update={"budget_usd_per_hour": 1.0}
        ),
    )
    clock = GateClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    model = ScriptedModel([answer(""), answer()])
    metrics = Metrics()
    prices = PriceList(PricingSettings())
    gate = PipelineGate([tickets], prices, clock=clock, metrics=metrics)
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=3, wait=False),
        breaker=CircuitBreaker("test"),
        prices=prices,
        max_in_flight=4,
        gate=gate,
    )
    event = decode_event(ticket_bytes(), tickets)
    enrichment = asyncio.run(enricher.enrich(tickets, event))
    remaining = metrics.registry.get_sample_value(
        "streams_budget_remaining_usd", {"pipeline": "tickets", "window": "hour"}
    )
    spent = 1.0 - (remaining or 0.0)
    assert spent == pytest.approx(enrichment.cost_usd)
    assert enrichment.attempts == 2


def test_a_spent_budget_holds_calls_until_the_next_hour(
    pipelines: dict[str, Pipeline],
) -> None:
    """Two events, one slot: the second finds the budget spent when its turn comes."""
    tickets = dataclasses.replace(
        pipelines["tickets"],
        config=pipelines["tickets"].config.model_copy(
            update={"budget_usd_per_hour": 1e-6, "max_concurrency": 1}
        ),
    )
    clock = GateClock(datetime(2026, 11, 30, 12, 59, 50, tzinfo=UTC))
    model = SlowModel([answer()])
    enricher, gate = limited_enricher(model, tickets, clock)
    first = decode_event(ticket_bytes("my order 1 is late"), tickets)
    second = decode_event(ticket_bytes("my order 2 is late"), tickets)

    async def scenario() -> None:
        await asyncio.gather(
            enricher.enrich(tickets, first), enricher.enrich(tickets, second)
        )

    asyncio.run(scenario())
    assert len(model.requests) == 2
    assert enricher.calls == 2
    assert clock.sleeps  # the second call waited for the window to roll over
    assert clock.now >= datetime(2026, 11, 30, 13, tzinfo=UTC)
    assert gate.closure("tickets") is not None  # the second call spent the new hour


@pytest.mark.parametrize(
    "step",
    [
        answer('{"summary": "half', finish="length"),
        answer(None, finish="length", reasoning=True),
    ],
    ids=["truncated", "reasoning-only"],
)
def test_an_answer_that_stays_cut_off_is_dead_lettered_once_the_budget_is_spent(
    pipelines: dict[str, Pipeline], step: ChatResponse
) -> None:
    """max_tokens doubles up to four times the pipeline's, is tried once more
    at that size, and then it is permanent."""
    model = ScriptedModel([step])
    breaker = CircuitBreaker("test")
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=10, wait=False),
        breaker=breaker,
        prices=PriceList(PricingSettings()),
        max_in_flight=4,
    )
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    with pytest.raises(EnrichmentFailed) as caught:
        asyncio.run(enricher.enrich(pipelines["tickets"], event))
    budget = pipelines["tickets"].config.max_tokens
    sizes = [r.max_tokens for r in model.requests]
    assert sizes == [budget, budget * 2, budget * 4, budget * 4]
    assert caught.value.reason in ("truncated", "reasoning_only")
    assert isinstance(caught.value.cause, PermanentError)
    assert caught.value.usage.completion_tokens == 4 * 50  # every attempt billed
    assert breaker.state is CircuitState.CLOSED


def test_reasoning_tokens_are_logged_as_a_warning(
    pipelines: dict[str, Pipeline], caplog: pytest.LogCaptureFixture
) -> None:
    thinking = Usage(
        prompt_cache_miss_tokens=40, completion_tokens=90, reasoning_tokens=40
    )
    model = ScriptedModel(
        [ChatResponse(GOOD, "stop", True, thinking, "deepseek-flash", "r", 0.01)]
    )
    with caplog.at_level("WARNING", logger="streams.pipeline.enricher"):
        run(pipelines, model)()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "llm.reasoning_tokens" in line and "tokens=40" in line for line in warnings
    ), warnings


def test_a_refusal_never_opens_the_circuit(pipelines: dict[str, Pipeline]) -> None:
    refusal = PermanentError("refused", reason="content_refused", status=400)
    model = ScriptedModel([refusal])
    enricher, breaker = make_enricher(model, failure_threshold=1)
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    for _ in range(3):
        with pytest.raises(EnrichmentFailed):
            asyncio.run(enricher.enrich(pipelines["tickets"], event))
    assert len(model.requests) == 3  # one per event, none retried
    assert breaker.state is CircuitState.CLOSED
    assert breaker.open_count == 0


def test_with_three_attempts_an_answer_cut_off_at_the_largest_size_is_permanent(
    pipelines: dict[str, Pipeline],
) -> None:
    """No retry tier starts it over from the smallest size."""
    model = ScriptedModel([answer('{"summary": "half', finish="length")])
    with pytest.raises(EnrichmentFailed) as caught:
        run(pipelines, model)()
    budget = pipelines["tickets"].config.max_tokens
    assert [r.max_tokens for r in model.requests] == [budget, budget * 2, budget * 4]
    assert isinstance(caught.value.cause, PermanentError)
