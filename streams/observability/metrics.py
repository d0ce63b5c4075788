"""Every Prometheus metric the worker exports, created in one place.

Metrics are registered on an injected registry, so tests and several workers
in one process never collide. Units are base units (seconds, USD); counters
end in ``_total``; label values come from small fixed sets: pipeline names,
topics, outcome and reason codes, status classes. Never an event id or hash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LLM_LATENCY_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)


_STATUS_CLASS = {
    "rate_limited": "4xx",
    "unauthorized": "4xx",
    "insufficient_balance": "4xx",
    "content_refused": "4xx",
    "bad_request": "4xx",
    "server_error": "5xx",
    "overloaded": "5xx",
    "timeout": "none",
    "deadline_exceeded": "none",
    "connection_error": "none",
    "bad_response": "none",
}


def status_class(outcome: str) -> str:
    """The HTTP status class of an attempt's outcome: 2xx, 4xx, 5xx or none.

    Answers that arrived but were unusable (blank, truncated, not JSON, not
    valid) came with a 200, so they are 2xx.
    """
    return _STATUS_CLASS.get(outcome, "2xx")


class Metrics:
    """The worker's metrics.

    Args:
        registry: Where to register; a fresh one per worker by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_consumed = Counter(
            "streams_records_consumed_total",
            "Records read from input topics.",
            ["pipeline", "topic"],
            registry=r,
        )
        self.records_enriched = Counter(
            "streams_records_enriched_total",
            "Enriched records acknowledged by the broker.",
            ["pipeline", "dedup"],
            registry=r,
        )
        self.records_dead_lettered = Counter(
            "streams_records_dead_lettered_total",
            "Dead-letter records acknowledged by the broker.",
            ["pipeline", "stage", "reason"],
            registry=r,
        )
        self.records_retried = Counter(
            "streams_records_retried_total",
            "Records sent to a retry tier topic, acknowledged by the broker.",
            ["pipeline", "tier"],
            registry=r,
        )
        self.records_deduplicated = Counter(
            "streams_records_deduplicated_total",
            "Records served without their own LLM call.",
            ["pipeline", "kind"],
            registry=r,
        )
        self.records_in_flight = Gauge(
            "streams_records_in_flight",
            "Records received and not finished.",
            registry=r,
        )
        self.records_buffered = Gauge(
            "streams_records_buffered",
            "Records received and not yet committed; intake pauses at the bound.",
            registry=r,
        )
        self.records_buffered_limit = Gauge(
            "streams_records_buffered_limit",
            "The bound on buffered records (worker.max_buffered).",
            registry=r,
        )
        self.llm_in_flight_limit = Gauge(
            "streams_llm_in_flight_limit",
            "Most LLM calls in flight, per pipeline and overall (pipeline=all); "
            "the overall limit adapts between llm.concurrency_floor and "
            "llm.max_in_flight.",
            ["pipeline"],
            registry=r,
        )
        self.llm_concurrency_changes = Counter(
            "streams_llm_concurrency_changes_total",
            "Changes of the adaptive in-flight limit, by cause: increase, "
            "rate_limited, overloaded, latency.",
            ["cause"],
            registry=r,
        )
        self.llm_rate_limit_wait = Counter(
            "streams_llm_rate_limit_wait_seconds_total",
            "Time calls waited for the requests or tokens per minute limit.",
            ["limit"],
            registry=r,
        )
        self.budget = Gauge(
            "streams_budget_usd",
            "A pipeline's spend budget per calendar UTC window (hour, day).",
            ["pipeline", "window"],
            registry=r,
        )
        self.budget_remaining = Gauge(
            "streams_budget_remaining_usd",
            "Spend budget left in the current calendar UTC window (hour, day).",
            ["pipeline", "window"],
            registry=r,
        )
        self.pipeline_paused = Gauge(
            "streams_pipeline_paused",
            "1 while a pipeline's calls wait and its partitions are paused, by "
            "reason: budget_hour, budget_day, peak_hours.",
            ["pipeline", "reason"],
            registry=r,
        )
        self.pipeline_partitions_paused = Gauge(
            "streams_pipeline_partitions_paused",
            "Partitions paused because their pipeline is closed (budget or "
            "peak hours); not counted in streams_partitions_paused.",
            ["pipeline"],
            registry=r,
        )
        self.worker_up = Gauge(
            "streams_worker_up",
            "1 while the poll loop runs.",
            registry=r,
        )
        self.partitions_paused = Gauge(
            "streams_partitions_paused",
            "Partitions paused for back-pressure.",
            registry=r,
        )
        self.retry_partitions_waiting = Gauge(
            "streams_retry_partitions_waiting",
            "Retry tier partitions paused until their next record is due.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "streams_consumer_lag_records",
            "High watermark minus committed offset, per partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.commits = Counter(
            "streams_commits_total",
            "Offset commits.",
            ["outcome"],
            registry=r,
        )
        self.commit_latency = Histogram(
            "streams_commit_latency_seconds",
            "Time of one synchronous commit.",
            registry=r,
        )
        self.rebalances = Counter(
            "streams_rebalances_total",
            "Partition assignment changes.",
            ["kind"],
            registry=r,
        )
        self.llm_requests = Counter(
            "streams_llm_requests_total",
            "LLM attempts by outcome (ok or a reason code) and HTTP status class.",
            ["pipeline", "model", "status_class", "outcome"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "streams_llm_request_duration_seconds",
            "Duration of one LLM attempt.",
            ["pipeline"],
            buckets=LLM_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "streams_llm_tokens_total",
            "Tokens reported by the provider.",
            ["pipeline", "kind"],
            registry=r,
        )
        self.llm_cost = Counter(
            "streams_llm_cost_usd_total",
            "Spend in US dollars.",
            ["pipeline"],
            registry=r,
        )
        self.llm_retries = Counter(
            "streams_llm_retries_total",
            "In-process retries scheduled.",
            ["pipeline", "reason"],
            registry=r,
        )
        self.llm_packed_items = Counter(
            "streams_llm_packed_items_total",
            "Events of packing pipelines by how they left a pack: answered, "
            "retried_alone, fallback or alone.",
            ["pipeline", "outcome"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "streams_circuit_state",
            "LLM circuit: 0 closed, 1 half open, 2 open.",
            ["endpoint"],
            registry=r,
        )
        self.produce_backpressure = Counter(
            "streams_produce_backpressure_total",
            "Times the producer queue was full and intake waited.",
            registry=r,
        )
