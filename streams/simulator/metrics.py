"""The simulator's counters in the Prometheus text format (``GET /metrics``).

A collector reads :class:`~streams.simulator.stats.SimulatorStats` at scrape
time, so the JSON ``/stats`` and the metrics never disagree. Metric names
start with ``streams_simulator_`` to keep them apart from the worker's.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.simulator.fault_catalogue import FaultKind
from streams.simulator.stats import SimulatorStats


class SimulatorCollector(Collector):
    """Exposes one simulator's counters.

    Args:
        stats: The counters to read at each scrape.
    """

    def __init__(self, stats: SimulatorStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats
        requests = CounterMetricFamily(
            "streams_simulator_requests", "Chat-completions requests received."
        )
        requests.add_metric([], stats.requests_total)
        yield requests

        responses = CounterMetricFamily(
            "streams_simulator_responses",
            "Responses sent, by HTTP status.",
            labels=["status"],
        )
        for status, count in sorted(stats.responses_by_status.items()):
            responses.add_metric([str(status)], count)
        yield responses

        faults = CounterMetricFamily(
            "streams_simulator_faults",
            "Faults injected, by kind.",
            labels=["kind"],
        )
        for kind in FaultKind:
            faults.add_metric([kind.value], stats.faults_by_kind.get(kind, 0))
        yield faults

        tokens = CounterMetricFamily(
            "streams_simulator_tokens",
            "Tokens reported in usage, by kind.",
            labels=["kind"],
        )
        tokens.add_metric(["cache_hit"], stats.prompt_cache_hit_tokens)
        tokens.add_metric(["cache_miss"], stats.prompt_cache_miss_tokens)
        tokens.add_metric(["completion"], stats.completion_tokens)
        yield tokens

        latency = CounterMetricFamily(
            "streams_simulator_response_seconds",
            "Sum of the time from arrival to the end of each answered request.",
        )
        latency.add_metric([], stats.latency_seconds_sum)
        yield latency

        in_flight = GaugeMetricFamily(
            "streams_simulator_in_flight", "Requests being answered now."
        )
        in_flight.add_metric([], stats.in_flight)
        yield in_flight


def render_metrics(stats: SimulatorStats) -> bytes:
    """The Prometheus text exposition of ``stats``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SimulatorCollector(stats))
    return generate_latest(registry)
