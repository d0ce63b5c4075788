"""Counters the simulator exposes on ``GET /stats``.

They let a test or benchmark check what the server actually did: how many
requests arrived, how they were answered, which faults were injected, how
many prompt tokens hit the cache, and the measured latency (sum and count,
so the mean of a run can be computed). Latency runs from the request's
arrival to the end of its response; service time runs from the moment its
body was read, so it leaves out a client that is slow to send the body
(a starved client process) and measures the simulator's own part. ``in_flight`` and
``max_in_flight`` show the concurrency a client really achieved.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.simulator.fault_catalogue import FaultKind
from streams.simulator.prompt_cache import CacheUsage


class SimulatorStats:
    """Mutable counters; all updates happen on the event loop thread."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter; ``in_flight`` keeps counting open requests."""
        self.requests_total = 0
        self.responses_by_status: Counter[int] = Counter()
        self.faults_by_kind: Counter[FaultKind] = Counter()
        self.prompt_cache_hit_tokens = 0
        self.prompt_cache_miss_tokens = 0
        self.completion_tokens = 0
        self.latency_seconds_sum = 0.0
        self.latency_seconds_count = 0
        self.service_seconds_sum = 0.0
        self.max_in_flight = self.in_flight

    def request_started(self) -> None:
        """Count a chat-completions request as it arrives."""
        self.requests_total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def request_finished(
        self, status: int | None, latency_s: float, service_s: float | None = None
    ) -> None:
        """Count the end of a request.

        Args:
            status: The status sent, or ``None`` when the client went away
                before any response was sent; only answered requests count
                towards the latency.
            latency_s: Seconds from arrival to the end of the response.
            service_s: Seconds from the body read to the end of the
                response; ``latency_s`` when not given.
        """
        self.in_flight -= 1
        if status is None:
            return
        self.responses_by_status[status] += 1
        self.latency_seconds_sum += latency_s
        self.latency_seconds_count += 1
        self.service_seconds_sum += latency_s if service_s is None else service_s

    def fault_injected(self, kind: FaultKind) -> None:
        """Count one injected fault."""
        self.faults_by_kind[kind] += 1

    def tokens_used(self, cache: CacheUsage, completion_tokens: int) -> None:
        """Add the token usage reported to a client."""
        self.prompt_cache_hit_tokens += cache.hit_tokens
        self.prompt_cache_miss_tokens += cache.miss_tokens
        self.completion_tokens += completion_tokens

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as plain JSON-ready data."""
        count = self.latency_seconds_count
        mean = self.latency_seconds_sum / count if count else 0.0
        service_mean = self.service_seconds_sum / count if count else 0.0
        return {
            "requests_total": self.requests_total,
            "responses_by_status": {
                str(status): count
                for status, count in sorted(self.responses_by_status.items())
            },
            "faults_by_kind": {
                kind.value: count for kind, count in sorted(self.faults_by_kind.items())
            },
            "prompt_cache_hit_tokens": self.prompt_cache_hit_tokens,
            "prompt_cache_miss_tokens": self.prompt_cache_miss_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_seconds_sum": self.latency_seconds_sum,
            "latency_seconds_count": self.latency_seconds_count,
            "latency_seconds_mean": mean,
            "service_seconds_sum": self.service_seconds_sum,
            "service_seconds_mean": service_mean,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }
