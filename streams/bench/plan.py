"""Which rows a run measures, and with how many events each.

Event counts follow the concurrency, so every LLM-bound row lasts about the
same time at its ceiling: ``rounds`` calls per slot, that is ``rounds * C``
events for concurrency ``C`` (``rounds * C * L / C = rounds * L`` seconds at
mean latency ``L``). The naive row makes one call at a time, so it gets a
fixed, small count. Rows without LLM calls (pass-through, cache hit) get
``no_llm_events``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from streams.bench.corpus import distinct_records, identical_records, warmup_record
from streams.bench.names import (
    FAUST,
    NAIVE,
    OURS,
    OURS_CACHE_HIT,
    OURS_MEMORY,
    PASSTHROUGH,
)
from streams.bench.row import RowSpec

FULL_CONCURRENCY = (16, 64, 256, 512)
QUICK_CONCURRENCY = (16, 256)
CACHE_HIT_CONCURRENCY = 256
MEMORY_CONCURRENCY = 512


@dataclass(frozen=True)
class BenchOptions:
    """Everything the command line decides."""

    quick: bool = False
    concurrency: tuple[int, ...] = FULL_CONCURRENCY
    latency_mean_ms: float = 500.0
    latency_sigma: float = 0.5
    rounds: int = 40
    naive_events: int = 120
    no_llm_events: int = 50_000
    memory_backlog: int = 1_000_000
    memory_duration_s: float = 90.0
    partitions: int = 3
    rows: tuple[str, ...] = (
        OURS,
        NAIVE,
        FAUST,
        PASSTHROUGH,
        OURS_CACHE_HIT,
        OURS_MEMORY,
    )
    data_dir: Path | None = None
    simulator_processes: int = 1
    worker_settings: tuple[tuple[str, str], ...] = ()

    @classmethod
    def quick_defaults(cls) -> dict[str, object]:
        """The values ``--quick`` changes, unless given explicitly."""
        return {
            "concurrency": QUICK_CONCURRENCY,
            "rounds": 10,
            "naive_events": 20,
            "no_llm_events": 5_000,
            "memory_backlog": 20_000,
            "memory_duration_s": 20.0,
        }


def plan_rows(options: BenchOptions) -> list[RowSpec]:
    """The rows of one run, in the order they run."""
    latency_s = options.latency_mean_ms / 1000
    data = options.data_dir
    fresh = warmup_record(data, same_as_duplicates=False)
    rows: list[RowSpec] = []

    def llm_row(name: str, concurrency: int) -> RowSpec:
        count = options.rounds * concurrency
        return RowSpec(
            name,
            concurrency,
            partial(distinct_records, count, data),
            fresh,
            count,
            expected_s=options.rounds * latency_s,
        )

    for concurrency in options.concurrency:
        if OURS in options.rows:
            rows.append(llm_row(OURS, concurrency))
        if FAUST in options.rows:
            rows.append(llm_row(FAUST, concurrency))
    if NAIVE in options.rows:
        rows.append(
            RowSpec(
                NAIVE,
                1,
                partial(distinct_records, options.naive_events, data),
                fresh,
                options.naive_events,
                expected_s=options.naive_events * latency_s,
            )
        )
    no_llm_s = options.no_llm_events / 1000
    if PASSTHROUGH in options.rows:
        rows.append(
            RowSpec(
                PASSTHROUGH,
                1,
                partial(distinct_records, options.no_llm_events, data),
                fresh,
                options.no_llm_events,
                expected_s=no_llm_s,
            )
        )
    if OURS_CACHE_HIT in options.rows:
        rows.append(
            RowSpec(
                OURS_CACHE_HIT,
                CACHE_HIT_CONCURRENCY,
                partial(identical_records, options.no_llm_events, data),
                warmup_record(data, same_as_duplicates=True),
                options.no_llm_events,
                expected_s=no_llm_s,
            )
        )
    if OURS_MEMORY in options.rows and options.memory_backlog > 0:
        rows.append(
            RowSpec(
                OURS_MEMORY,
                MEMORY_CONCURRENCY,
                partial(distinct_records, options.memory_backlog, data),
                fresh,
                options.memory_backlog,
                expected_s=options.memory_duration_s,
                backlog_first=True,
                duration_s=options.memory_duration_s,
            )
        )
    return rows
