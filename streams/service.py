"""Assembling a worker from the settings, and running it until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from streams.kafka.retry_topics import retry_tiers
from streams.kafka.topics import ensure_topics
from streams.llm.circuit_breaker import CircuitBreaker, CircuitState
from streams.llm.client import ChatTransport, open_chat_client
from streams.llm.concurrency import AdaptiveLimit
from streams.llm.pricing import PriceList
from streams.llm.rate_limit import RateLimiter
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.observability.health_server import HealthServer
from streams.observability.metrics import Metrics, status_class
from streams.pipeline.config import Pipeline, load_pipelines
from streams.pipeline.enricher import Enricher
from streams.pipeline.gate import PipelineGate
from streams.pipeline.packing import PackingRouter
from streams.settings import LLMSettings, Settings
from streams.worker import Worker, WorkerStats

logger = logging.getLogger(__name__)

_CIRCUIT_VALUES = {
    CircuitState.CLOSED: 0,
    CircuitState.HALF_OPEN: 1,
    CircuitState.OPEN: 2,
}


@dataclass
class Service:
    """A worker and what it owns."""

    worker: Worker
    chat: ChatTransport
    breaker: CircuitBreaker
    pipelines: dict[str, Pipeline]
    settings: Settings


def build_service(settings: Settings, metrics: Metrics | None = None) -> Service:
    """Wires pipelines, LLM client, retry policy, circuit breaker and worker."""
    metrics = metrics or Metrics()
    pipelines = load_pipelines(
        settings.pipelines_dir, settings.schemas_dir, settings.pipelines
    )
    chat = open_chat_client(settings.llm)
    endpoint = settings.llm.base_url

    def circuit_changed(state: CircuitState) -> None:
        metrics.circuit_state.labels(endpoint).set(_CIRCUIT_VALUES[state])

    breaker = CircuitBreaker(
        endpoint,
        failure_threshold=settings.llm.circuit_failure_threshold,
        cooldown_s=settings.llm.circuit_cooldown_s,
        max_cooldown_s=max(
            settings.llm.circuit_cooldown_s, settings.llm.circuit_max_cooldown_s
        ),
        on_change=circuit_changed,
    )
    metrics.circuit_state.labels(endpoint).set(0)

    def observe_attempt(
        pipeline: str, outcome: str, seconds: float, usage: Usage
    ) -> None:
        model = settings.llm.model or pipelines_by_name[pipeline].config.model
        metrics.llm_requests.labels(
            pipeline, model, status_class(outcome), outcome
        ).inc()
        metrics.llm_latency.labels(pipeline).observe(seconds)
        tokens = metrics.llm_tokens
        tokens.labels(pipeline, "cache_hit").inc(usage.prompt_cache_hit_tokens)
        tokens.labels(pipeline, "cache_miss").inc(usage.prompt_cache_miss_tokens)
        tokens.labels(pipeline, "completion").inc(usage.completion_tokens)
        tokens.labels(pipeline, "reasoning").inc(usage.reasoning_tokens)

    def observe_retry(pipeline: str, reason: str) -> None:
        metrics.llm_retries.labels(pipeline, reason).inc()

    pipelines_by_name = {p.name: p for p in pipelines.values()}
    for pipeline in pipelines_by_name.values():
        metrics.llm_in_flight_limit.labels(pipeline.name).set(
            pipeline.config.max_concurrency
        )
    metrics.llm_in_flight_limit.labels("all").set(settings.llm.max_in_flight)
    _create_series(metrics, pipelines)
    for tier in retry_tiers(settings.retry):
        for pipeline in pipelines_by_name.values():
            metrics.records_retried.labels(pipeline.name, tier.label)
    metrics.records_buffered_limit.set(settings.worker.max_buffered)

    def observe_pack(pipeline: str, outcome: str, items: int) -> None:
        metrics.llm_packed_items.labels(pipeline, outcome).inc(items)

    prices = PriceList(settings.pricing)
    gate = PipelineGate(pipelines.values(), prices, metrics=metrics)
    enricher = Enricher(
        chat,
        policy=RetryPolicy.from_settings(settings.llm),
        breaker=breaker,
        prices=prices,
        max_in_flight=settings.llm.max_in_flight,
        model_override=settings.llm.model,
        observe_attempt=observe_attempt,
        observe_retry=observe_retry,
        concurrency=build_concurrency_limit(settings.llm, metrics),
        rate_limiter=build_rate_limiter(settings.llm, metrics),
        gate=gate,
    )
    # Pipelines with a packing section share calls; the others go straight
    # to the enricher.
    router = PackingRouter(enricher, prices, pipelines.values(), observe=observe_pack)
    worker = Worker(
        settings, pipelines, router, metrics=metrics, gate=gate, on_stopped=chat.close
    )
    return Service(
        worker=worker,
        chat=chat,
        breaker=breaker,
        pipelines=pipelines,
        settings=settings,
    )


def build_concurrency_limit(llm: LLMSettings, metrics: Metrics) -> AdaptiveLimit:
    """The overall in-flight limit: adaptive, or fixed at ``max_in_flight``."""

    def limit_changed(limit: int, cause: str) -> None:
        metrics.llm_in_flight_limit.labels("all").set(limit)
        metrics.llm_concurrency_changes.labels(cause).inc()

    for cause in ("increase", "rate_limited", "overloaded", "latency"):
        metrics.llm_concurrency_changes.labels(cause)
    return AdaptiveLimit(
        floor=llm.concurrency_floor if llm.adaptive_concurrency else llm.max_in_flight,
        ceiling=llm.max_in_flight,
        decrease_factor=llm.concurrency_decrease_factor,
        cooldown_s=llm.concurrency_cooldown_s,
        latency_target_s=llm.latency_target_s,
        on_change=limit_changed,
    )


def build_rate_limiter(llm: LLMSettings, metrics: Metrics) -> RateLimiter | None:
    """The requests and tokens per minute limits; None when neither is set."""
    if llm.requests_per_minute is None and llm.tokens_per_minute is None:
        return None

    def waited(limit: str, seconds: float) -> None:
        metrics.llm_rate_limit_wait.labels(limit).inc(seconds)

    return RateLimiter(
        requests_per_minute=llm.requests_per_minute,
        tokens_per_minute=llm.tokens_per_minute,
        on_wait=waited,
    )


def _create_series(metrics: Metrics, pipelines: dict[str, Pipeline]) -> None:
    """Creates each pipeline's counters at zero, so the first increment shows.

    A series that appears already at its first value has no earlier sample,
    and ``rate()`` misses that first increase.
    """
    for topic, pipeline in pipelines.items():
        name = pipeline.name
        metrics.records_consumed.labels(name, topic)
        for dedup in ("miss", "hit", "joined"):
            metrics.records_enriched.labels(name, dedup)
        for kind in ("hit", "joined"):
            metrics.records_deduplicated.labels(name, kind)
        for kind in ("cache_hit", "cache_miss", "completion", "reasoning"):
            metrics.llm_tokens.labels(name, kind)
        metrics.llm_cost.labels(name)
        if pipeline.config.packing is not None:
            for outcome in ("answered", "retried_alone", "fallback", "alone"):
                metrics.llm_packed_items.labels(name, outcome)


def output_topics(settings: Settings) -> list[str]:
    """The topics a worker writes to: output, dead letters and retry tiers."""
    return [
        settings.kafka.output_topic,
        settings.kafka.dead_letter_topic,
        *(tier.topic for tier in retry_tiers(settings.retry)),
    ]


def create_worker_topics(settings: Settings, pipelines: dict[str, Pipeline]) -> None:
    """Creates the input, output, dead-letter and retry tier topics where missing."""
    ensure_topics(
        settings.kafka.common_config(), [*pipelines, *output_topics(settings)]
    )


async def run_until_signal(
    service: Service, stop: asyncio.Event | None = None
) -> WorkerStats:
    """Runs the worker until SIGTERM or SIGINT (or ``stop``), then shuts down."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    observability = service.settings.observability
    health: HealthServer | None = None
    if observability.metrics_port is not None:
        health = HealthServer(
            service.worker,
            service.breaker,
            circuit_open_limit_s=observability.readiness_circuit_open_s,
        )
        await health.start(observability.metrics_host, observability.metrics_port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        stats = await service.worker.run(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await service.chat.close()
        if health is not None:
            await health.stop()
    stats.circuit_opened = service.breaker.open_count
    return stats
