"""Which rows a run measures, and with how many events each.

Event counts follow the concurrency, so every LLM-bound row lasts about the
same time at its ceiling: ``rounds`` calls per slot, that is ``rounds * C``
events for concurrency ``C`` (``rounds * C * L / C = rounds * L`` seconds at
mean latency ``L``). The naive row makes one call at a time, so it gets a
fixed, small count. Rows without LLM calls (pass-through, cache hit) get
``no_llm_events``. The packed row runs at one level, 256 (the highest
``--concurrency`` level with ``--quick``), with the tickets pipeline's
``packing`` section :data:`PACKING`.
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
    OURS_PACKED,
    PASSTHROUGH,
)
from streams.bench.row import RowSpec

FULL_CONCURRENCY = (16, 64, 256, 512)
QUICK_CONCURRENCY = (16, 256)
CACHE_HIT_CONCURRENCY = 256
MEMORY_CONCURRENCY = 512
PACKED_CONCURRENCY = 256
PACKING: dict[str, float] = {
    "max_items": 8,
    "max_prompt_tokens": 3000,
    "max_wait_ms": 20,
}
"""The packed row's ``packing`` section, as ``docs/packing.md`` measured it."""


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
        OURS_PACKED,
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


def packed_concurrency(options: BenchOptions) -> int:
    """The packed row's level: the highest quick level, else 256."""
    if options.quick:
        return max(options.concurrency)
    return PACKED_CONCURRENCY


def plan_rows(options: BenchOptions) -> list[RowSpec]:
    """The rows of one run, in the order they run."""
    latency_s = options.latency_mean_ms / 1000
    data = options.data_dir
    fresh = warmup_record(data, same_as_duplicates=False)
    rows: list[RowSpec] = []

    def llm_row(
        name: str, concurrency: int, packing: dict[str, float] | None = None
    ) -> RowSpec:
        count = options.rounds * concurrency
        return RowSpec(
            name,
            concurrency,
            partial(distinct_records, count, data),
            fresh,
            count,
            expected_s=options.rounds * latency_s,
            packing=packing,
        )

    for concurrency in options.concurrency:
        if OURS in options.rows:
            rows.append(llm_row(OURS, concurrency))
        if FAUST in options.rows:
            rows.append(llm_row(FAUST, concurrency))
    if OURS_PACKED in options.rows:
        rows.append(llm_row(OURS_PACKED, packed_concurrency(options), dict(PACKING)))
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
