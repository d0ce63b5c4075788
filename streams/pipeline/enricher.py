"""The enrichment step: one event in, one validated enrichment out.

It owns the retry loop around the chat model, the circuit breaker check
before each attempt, the in-flight bounds (per pipeline, and overall through
the adaptive limit of :mod:`streams.llm.concurrency`), the requests and tokens
per minute (:mod:`streams.llm.rate_limit`), the pipeline gate (spend budgets
and off-peak deferral, :mod:`streams.pipeline.gate`), and the judgement of
each answer:

* content null with reasoning present, or ``finish_reason="length"``:
  truncated; retried with ``max_tokens`` doubled, up to four times the
  pipeline's setting, then once more at that size when an attempt is left
  (sampling varies an answer's length), then dead-lettered;
* blank or whitespace-only content: retried (``blank_content``);
* content that is not a JSON object: retried (``invalid_json``);
* a JSON object the output schema rejects: dead-lettered at once
  (``output_schema_violation``).

A transient failure that leaves the endpoint's circuit open (the one that
opened it, and every one while it is open or probing) is the provider's
fault, not the event's: it is not counted as an attempt, and the call waits
for the circuit like an account-level failure does. So an outage pauses work
instead of dead-lettering it.

A closed pipeline's calls wait before the circuit and the slots, and the gate
is asked again just before sending, inside the pipeline's slot: a call that
finds it closed there goes back to waiting without counting as an attempt, so
at most the pipeline's ``max_concurrency`` calls overshoot a budget.

Every attempt's tokens are billed, so usage and cost add up over attempts and
travel with a failure too; each attempt's cost counts towards the pipeline's
spend budget. This module imports neither Kafka nor HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import fastjsonschema

from streams import json_codec
from streams.errors import (
    LLMBadOutputError,
    PermanentError,
    RetryableError,
    StreamsError,
)
from streams.llm.circuit_breaker import CircuitBreaker, CircuitState
from streams.llm.client import AccountError, ChatRequest, ChatResponse
from streams.llm.concurrency import AdaptiveLimit
from streams.llm.pricing import PriceList
from streams.llm.rate_limit import RateLimiter
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.pipeline.config import Pipeline, schema_problem
from streams.pipeline.decode import Event
from streams.pipeline.gate import PipelineGate
from streams.pipeline.prompt import build_prompt
from streams.pipeline.trimming import Trim

logger = logging.getLogger(__name__)

MAX_TOKENS_GROWTH = 4
TRUNCATIONS_AT_LARGEST = 2
JudgedT = TypeVar("JudgedT")


class ChatModel(Protocol):
    """Anything that answers a chat request (the HTTP client, or a fake)."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Makes one call."""
        ...


@dataclass(frozen=True, slots=True)
class Enrichment:
    """A validated answer and what it took to get it."""

    values: dict[str, Any]
    model: str
    usage: Usage
    cost_usd: float
    latency_s: float
    attempts: int
    request_id: str | None
    trimmed: Trim | None = None


class EnrichmentFailed(PermanentError):
    """The event could not be enriched; it goes to the dead letters.

    Args:
        cause: The last classified error.
        attempts: Attempts made.
        usage: Tokens spent over all attempts.
        cost_usd: Their cost.
        model: The model called.
    """

    def __init__(
        self,
        cause: StreamsError,
        *,
        attempts: int,
        usage: Usage,
        cost_usd: float,
        model: str,
    ) -> None:
        super().__init__(
            str(cause),
            reason=cause.reason,
            status=getattr(cause, "status", None),
            request_id=getattr(cause, "request_id", None),
        )
        self.cause = cause
        self.attempts = attempts
        self.usage = usage
        self.cost_usd = cost_usd
        self.model = model


class EventEnricher(Protocol):
    """What the worker needs from the enrichment step (an Enricher, or a router)."""

    @property
    def calls(self) -> int:
        """LLM calls made so far."""
        ...

    @property
    def retries(self) -> int:
        """Retries scheduled so far."""
        ...

    def model_for(self, pipeline: Pipeline) -> str:
        """The model this pipeline's calls use."""
        ...

    async def enrich(self, pipeline: Pipeline, event: Event) -> Enrichment:
        """Enriches one event; raises EnrichmentFailed when it cannot."""
        ...


class _GateClosed(Exception):
    """The pipeline closed between waiting at the gate and sending."""


AttemptObserver = Callable[[str, str, float, Usage], None]
"""Called after each attempt with (pipeline, outcome reason, seconds, usage)."""


def judge_response(pipeline: Pipeline, response: ChatResponse) -> dict[str, Any]:
    """Turns an answer into validated values, or raises a classified error."""
    if response.finish_reason == "length" or (
        response.content is None and response.reasoning_present
    ):
        reason = "truncated" if response.content else "reasoning_only"
        raise LLMBadOutputError(
            "the answer was cut off by max_tokens", reason=reason, grow_max_tokens=True
        )
    content = response.content or ""
    if not content.strip():
        raise LLMBadOutputError("the answer was blank", reason="blank_content")
    try:
        values = json_codec.loads(content.encode())
    except json_codec.JSONError as exc:
        raise LLMBadOutputError(
            "the answer was not JSON", reason="invalid_json"
        ) from exc
    if not isinstance(values, dict):
        raise LLMBadOutputError(
            "the answer was not a JSON object", reason="invalid_json"
        )
    try:
        pipeline.validate_output(values)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise PermanentError(
            f"the answer does not match {pipeline.config.output_schema}: "
            f"{schema_problem(exc)}",
            reason="output_schema_violation",
            request_id=response.request_id,
        ) from exc
    return values


class Enricher:
    """Calls the model for events, with retries, bounds and a circuit breaker.

    Args:
        chat: The chat model.
        policy: When to retry and how long to wait.
        breaker: The endpoint's circuit breaker.
        prices: The price list for cost accounting.
        max_in_flight: Calls in flight across all pipelines, when no
            ``concurrency`` is given.
        model_override: A model that replaces every pipeline's model.
        observe_attempt: Optional per-attempt callback, for metrics.
        observe_retry: Optional callback with (pipeline, reason) per retry.
        concurrency: The overall in-flight limit; a fixed one of
            ``max_in_flight`` when None.
        rate_limiter: Requests and tokens per minute; none when None.
        gate: Spend budgets and off-peak deferral; none when None.
    """

    def __init__(
        self,
        chat: ChatModel,
        *,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        prices: PriceList,
        max_in_flight: int,
        model_override: str | None = None,
        observe_attempt: AttemptObserver | None = None,
        observe_retry: Callable[[str, str], None] | None = None,
        concurrency: AdaptiveLimit | None = None,
        rate_limiter: RateLimiter | None = None,
        gate: PipelineGate | None = None,
    ) -> None:
        self._chat = chat
        self._policy = policy
        self._breaker = breaker
        self._prices = prices
        self._limit = concurrency or AdaptiveLimit(
            floor=max_in_flight, ceiling=max_in_flight
        )
        self._rate_limiter = rate_limiter
        self._gate = gate
        self._pipeline_slots: dict[str, asyncio.Semaphore] = {}
        self._model_override = model_override
        self._observe = observe_attempt
        self._observe_retry = observe_retry
        self.calls = 0
        self.retries = 0

    def model_for(self, pipeline: Pipeline) -> str:
        """The model this pipeline's calls use."""
        return self._model_override or pipeline.config.model

    def _slots(self, pipeline: Pipeline) -> asyncio.Semaphore:
        slots = self._pipeline_slots.get(pipeline.name)
        if slots is None:
            slots = asyncio.Semaphore(pipeline.config.max_concurrency)
            self._pipeline_slots[pipeline.name] = slots
        return slots

    async def _attempt(self, pipeline: Pipeline, request: ChatRequest) -> ChatResponse:
        async with self._slots(pipeline):
            if self._gate is not None and self._gate.closure(pipeline.name) is not None:
                raise _GateClosed
            permit = (
                await self._rate_limiter.acquire(request)
                if self._rate_limiter is not None
                else None
            )
            usage = Usage()
            try:
                async with self._limit.slot():
                    self.calls += 1
                    try:
                        response = await self._chat.complete(request)
                    except StreamsError as exc:
                        self._limit.record_failure(exc.reason)
                        raise
                    self._limit.record_answer(response.latency_s)
                    usage = response.usage
                    return response
            finally:
                if permit is not None and self._rate_limiter is not None:
                    self._rate_limiter.settle(permit, usage)

    async def enrich(self, pipeline: Pipeline, event: Event) -> Enrichment:
        """Enriches one event.

        Raises:
            EnrichmentFailed: Permanently failed, or retries ran out; carries
                the attempts, tokens and cost spent.
            FatalError: The configuration is unusable; the worker stops.
        """
        model = self.model_for(pipeline)
        max_tokens = pipeline.config.max_tokens
        prompt = build_prompt(pipeline, event)
        messages = prompt.messages
        if prompt.trimmed is not None:
            logger.debug(
                "prompt.trimmed pipeline=%s event_id=%s original_tokens=%d "
                "sent_tokens=%d steps=%s",
                pipeline.name,
                event.event_id,
                prompt.trimmed.original_tokens,
                prompt.trimmed.sent_tokens,
                ",".join(prompt.trimmed.steps),
            )
        usage = Usage()
        attempts = 0
        active_s = 0.0  # time in attempts and backoffs; circuit waits excluded
        truncated_at_largest = 0
        while True:
            if self._gate is not None:
                await self._gate.wait_open(pipeline.name)
            probe = await self._breaker.admit()
            started = time.monotonic()
            response: ChatResponse | None = None
            error: StreamsError | None = None
            try:
                response = await self._attempt(
                    pipeline, ChatRequest(model, messages, max_tokens)
                )
            except _GateClosed:
                if probe:
                    self._breaker.release_probe()
                continue
            except AccountError as exc:
                # Not the event's fault: the attempt is not counted, and the
                # next admit() waits for the circuit to close.
                self._breaker.record_failure(account_level=True, probe=probe)
                self._notify(pipeline, exc.reason, started, Usage())
                continue
            except RetryableError as exc:
                self._breaker.record_failure(account_level=False, probe=probe)
                if self._breaker.state is not CircuitState.CLOSED:
                    # The endpoint is failing, not this event: like an account
                    # error, the attempt is not counted and admit() waits.
                    self._notify(pipeline, exc.reason, started, Usage())
                    continue
                error = exc
            except PermanentError as exc:
                self._breaker.record_success(probe)
                error = exc
            except BaseException:
                if probe:
                    self._breaker.release_probe()
                raise
            attempts += 1

            if response is not None:
                self._breaker.record_success(probe)
                usage = usage + response.usage
                self._warn_on_reasoning(pipeline, event, response)
                try:
                    values = judge_response(pipeline, response)
                except (RetryableError, PermanentError) as exc:
                    error = exc
            spent = response.usage if response is not None else Usage()
            self._notify(pipeline, error.reason if error else "ok", started, spent)
            active_s += time.monotonic() - started
            if error is None:
                assert response is not None  # no error means an answer came
                return Enrichment(
                    values=values,
                    model=response.model,
                    usage=usage,
                    cost_usd=self._prices.cost_usd(model, usage),
                    latency_s=active_s,
                    attempts=attempts,
                    request_id=response.request_id,
                    trimmed=prompt.trimmed,
                )

            if isinstance(error, LLMBadOutputError) and error.grow_max_tokens:
                grown = min(
                    max_tokens * 2, pipeline.config.max_tokens * MAX_TOKENS_GROWTH
                )
                if grown == max_tokens:
                    truncated_at_largest += 1
                # Cut off at the largest size with no attempt left here: a
                # retry tier would start again from the smallest size.
                if truncated_at_largest >= TRUNCATIONS_AT_LARGEST or (
                    truncated_at_largest and attempts >= self._policy.max_attempts
                ):
                    error = PermanentError(
                        "the answer stayed truncated at the largest max_tokens allowed",
                        reason=error.reason,
                    )
                max_tokens = grown
            if not isinstance(error, RetryableError) or not self._policy.should_retry(
                error, attempts, active_s
            ):
                raise EnrichmentFailed(
                    error,
                    attempts=attempts,
                    usage=usage,
                    cost_usd=self._prices.cost_usd(model, usage),
                    model=model,
                )
            delay = self._policy.delay_s(error, attempts)
            self.retries += 1
            if self._observe_retry is not None:
                self._observe_retry(pipeline.name, error.reason)
            logger.warning(
                "llm.retry_scheduled pipeline=%s event_id=%s attempt=%d reason=%s "
                "wait_s=%.2f",
                pipeline.name,
                event.event_id,
                attempts,
                error.reason,
                delay,
            )
            await asyncio.sleep(delay)
            active_s += delay

    async def call_once(
        self,
        pipeline: Pipeline,
        request: ChatRequest,
        judge: Callable[[ChatResponse], tuple[JudgedT, str]],
    ) -> tuple[ChatResponse, JudgedT]:
        """Makes one call outside the retry loop, for a caller that owns recovery.

        Request packing uses it: a packed request that fails is not retried as
        a whole, its events are enriched one by one instead. The call waits for
        the circuit, holds the same in-flight slots as :meth:`enrich`, and
        reports its outcome to the circuit breaker and the attempt observer;
        a closed pipeline gate holds it like it holds :meth:`enrich`.
        ``judge`` reads the answer and returns its verdict together with the
        outcome to report (``ok``, or a reason such as ``blank_content``).

        Returns:
            The answer and the verdict of ``judge`` on it.

        Raises:
            RetryableError: Transient, or an account failure (AccountError).
            PermanentError: The request was refused.
            FatalError: The configuration is unusable; the worker stops.
        """
        while True:
            if self._gate is not None:
                await self._gate.wait_open(pipeline.name)
            probe = await self._breaker.admit()
            started = time.monotonic()
            try:
                response = await self._attempt(pipeline, request)
            except _GateClosed:
                if probe:
                    self._breaker.release_probe()
                continue
            except RetryableError as exc:
                account_level = isinstance(exc, AccountError)
                self._breaker.record_failure(account_level=account_level, probe=probe)
                self._notify(pipeline, exc.reason, started, Usage())
                raise
            except PermanentError as exc:
                self._breaker.record_success(probe)
                self._notify(pipeline, exc.reason, started, Usage())
                raise
            except BaseException:
                if probe:
                    self._breaker.release_probe()
                raise
            break
        self._breaker.record_success(probe)
        judged, outcome = judge(response)
        self._notify(pipeline, outcome, started, response.usage)
        return response, judged

    @staticmethod
    def _warn_on_reasoning(
        pipeline: Pipeline, event: Event, response: ChatResponse
    ) -> None:
        if response.usage.reasoning_tokens:
            logger.warning(
                "llm.reasoning_tokens pipeline=%s event_id=%s tokens=%d "
                "consequence=billed_as_output",
                pipeline.name,
                event.event_id,
                response.usage.reasoning_tokens,
            )

    def _notify(
        self, pipeline: Pipeline, outcome: str, started: float, usage: Usage
    ) -> None:
        if self._gate is not None and usage.prompt_tokens + usage.completion_tokens:
            cost_usd = self._prices.cost_usd(self.model_for(pipeline), usage)
            self._gate.record_spend(pipeline.name, cost_usd)
        if self._observe is not None:
            self._observe(pipeline.name, outcome, time.monotonic() - started, usage)
