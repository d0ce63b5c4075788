"""Several simulator processes share one port, and their counters add up."""

from __future__ import annotations

from pathlib import Path

import openai

from streams import paths
from streams.bench.corpus import distinct_records
from streams.bench.job import load_bench_pipeline, request_arguments
from streams.bench.simulators import SimulatorPool


def test_pool_shares_a_port_and_adds_up_the_stats(tmp_path: Path) -> None:
    pipeline = load_bench_pipeline(paths.PIPELINES_DIR / "tickets.yaml")
    with (tmp_path / "simulator.log").open("wb") as log:
        pool = SimulatorPool(2, ["--latency-mean-ms", "5"], log)
        try:
            pool.reset()
            for record in distinct_records(12):
                # A fresh connection per call lets the kernel pick a process.
                with openai.OpenAI(
                    base_url=pool.url, api_key="test", max_retries=0
                ) as fresh:
                    fresh.chat.completions.create(
                        **request_arguments(pipeline, record.value)
                    )
            stats = pool.stats()
            cpu = pool.cpu_seconds()
        finally:
            pool.stop()

    assert len(set(pool.pids)) == 2
    assert stats["requests_total"] == 12
    assert 0 < stats["service_seconds_mean"] <= stats["latency_seconds_mean"]
    assert cpu > 0
