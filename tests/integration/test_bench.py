"""``streams bench`` in its smallest form against the session broker.

It checks the machinery and the report's shape, not speed: every row must
have finished its events with a positive throughput, and our worker's rows
(with and without packing) report their LLM calls and cost.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from rich.console import Console

from streams.bench.command import run_bench
from streams.bench.names import OURS, OURS_MEMORY, OURS_PACKED, ROW_NAMES
from streams.bench.plan import BenchOptions
from streams.settings import KafkaSettings, Settings

pytestmark = pytest.mark.broker


def test_smallest_bench_reports_every_row(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = BenchOptions(
        quick=True,
        concurrency=(4,),
        latency_mean_ms=20.0,
        rounds=5,
        naive_events=3,
        no_llm_events=200,
        memory_backlog=300,
        memory_duration_s=5.0,
        partitions=2,
    )
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap))
    json_path = tmp_path / "bench.json"
    markdown = tmp_path / "bench.md"
    plot = tmp_path / "bench.png"

    run_bench(
        settings,
        options,
        work_dir=tmp_path / "work",
        markdown=markdown,
        json_path=json_path,
        plot=plot,
        console=Console(file=(tmp_path / "progress.txt").open("w")),
    )

    report = orjson.loads(json_path.read_bytes())
    assert {row["name"] for row in report["rows"]} == set(ROW_NAMES)
    for row in report["rows"]:
        assert row["error"] is None, row
        assert row["completed"] == row["events"], row
        assert row["events_per_s"] > 0, row
        for field in ("p50_ms", "p99_ms", "cpu_s_per_1k", "peak_rss_mb"):
            assert row[field] is not None and row[field] >= 0, (field, row)
        assert row["peak_rss_mb"] > 0
        if row["name"] in (OURS, OURS_PACKED):
            assert 0 < row["llm_calls"] <= row["events"], row
            assert row["cost_per_1k_usd"] > 0, row
        else:
            assert row["llm_calls"] is None and row["cost_per_1k_usd"] is None, row
    packed = next(row for row in report["rows"] if row["name"] == OURS_PACKED)
    assert packed["concurrency"] == 4  # the highest quick level
    assert set(report["ceiling_events_per_s"]) == {"4"}
    assert report["ceiling_events_per_s"]["4"] > 0
    assert report["memory"]["name"] == OURS_MEMORY
    assert report["memory"]["peak_rss_mb"] > 0
    assert report["machine"]["cores"] >= 1
    assert report["command"]
    assert len(report["targets"]) == 5
    assert "| ours |" in markdown.read_text()
    assert "| ours-packed | 4 |" in markdown.read_text()
    assert plot.read_bytes().startswith(b"\x89PNG")
