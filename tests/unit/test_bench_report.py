"""The benchmark report (ceilings, targets, JSON shape) and the packed row."""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.bench.contenders import write_pipeline_file
from streams.bench.plan import PACKING, BenchOptions, plan_rows
from streams.bench.report import BenchReport
from streams.bench.row import RowResult
from streams.pipeline.config import PackingConfig


def _row(name: str, concurrency: int, rate: float | None, **extra: object) -> RowResult:
    row = RowResult(name, concurrency, 1000, completed=1000, events_per_s=rate)
    row.simulator_service_mean_ms = 500.0
    row.simulator_requests = 1000
    for key, value in extra.items():
        setattr(row, key, value)
    return row


def _report(rows: list[RowResult]) -> BenchReport:
    options = BenchOptions(concurrency=(256,), latency_mean_ms=500.0)
    return BenchReport(
        options,
        rows,
        {"cores": 2, "cpu_model": "", "load_average_at_start": [0, 0, 0]},
        "streams bench",
    )


def test_targets_met_and_missed_with_margins() -> None:
    report = _report(
        [
            _row("ours", 256, 480.0),
            _row("faust", 256, 300.0),
            _row("naive", 1, 2.0),
            _row("passthrough", 1, 10_000.0),
            _row("ours-cache-hit", 256, 4_000.0),
            _row("ours-memory", 512, 900.0, peak_rss_mb=320.0),
        ]
    )

    statuses = {target.name: target.status for target in report.targets()}
    assert report.ceilings() == {"256": 512.0}
    assert list(statuses.values()) == [
        "met",
        "met",
        "met",
        "missed",
        "met (smaller backlog)",
    ]
    details = [target.detail for target in report.targets()]
    assert "94% of 512" in details[0]
    assert "240.0x" in details[1]
    assert "short by 10 points" in details[3]


def test_a_failed_faust_row_is_reported_not_compared() -> None:
    failed = _row("faust", 256, None, error="exited with code 1: UnsupportedCodecError")
    report = _report([_row("ours", 256, 480.0), failed])

    faust_target = report.targets()[2]
    assert faust_target.status == "not measured"
    assert "UnsupportedCodecError" in faust_target.detail
    document = report.as_json()
    assert [row["name"] for row in document["rows"]] == ["ours", "faust"]
    assert document["rows"][1]["error"].startswith("exited")
    assert document["ceiling_events_per_s"] == {"256": 512.0}
    assert document["memory"] is None
    assert "| faust | 256 |" in report.as_markdown()


def test_a_slow_simulator_is_flagged() -> None:
    slow = _row("ours", 256, 300.0, simulator_service_mean_ms=800.0)
    report = _report([slow])

    assert report.ceilings() == {"256": 320.0}
    assert len(report.simulator_findings()) == 1


def test_packed_row_reports_calls_and_cost_next_to_ours() -> None:
    ours = _row("ours", 256, 480.0, llm_calls=1000, cost_per_1k_usd=0.0412)
    packed = _row("ours-packed", 256, 900.0, llm_calls=125, cost_per_1k_usd=0.0395)
    report = _report([ours, packed, _row("naive", 1, 2.0)])

    document = report.as_json()
    assert [row["name"] for row in document["rows"]] == ["ours", "ours-packed", "naive"]
    assert document["rows"][1]["llm_calls"] == 125
    assert document["rows"][1]["cost_per_1k_usd"] == 0.0395
    assert document["rows"][2]["llm_calls"] is None
    assert document["rows"][2]["cost_per_1k_usd"] is None
    # The ceiling counts calls; a packed row may pass it.
    assert document["ceiling_events_per_s"] == {"256": 512.0}
    markdown = report.as_markdown()
    assert "| LLM calls | USD/1k off-peak |" in markdown
    assert "| ours-packed | 256 | 1000/1000 | 900.0 |" in markdown
    assert "| 176% |" in markdown
    assert "| 125 | 0.03950 |" in markdown
    assert "0.125 against 1.000 LLM calls per event" in report.packing_summary()
    assert "(-4.1%)" in report.packing_summary()


def test_packed_row_runs_at_the_highest_quick_level_or_256() -> None:
    quick = BenchOptions(quick=True, concurrency=(16, 64), rows=("ours-packed",))
    full = BenchOptions(concurrency=(16, 512), rows=("ours", "ours-packed"))

    (packed,) = plan_rows(quick)
    assert (packed.name, packed.concurrency, packed.count) == ("ours-packed", 64, 2560)
    assert packed.packing == PACKING
    assert PACKING["max_items"] == 8
    levels = [(spec.name, spec.concurrency) for spec in plan_rows(full)]
    assert levels == [("ours", 16), ("ours", 512), ("ours-packed", 256)]
    assert all(spec.packing is None for spec in plan_rows(full)[:2])


def test_the_packed_row_gets_a_pipeline_file_with_a_packing_section(
    tmp_path: Path,
) -> None:
    plain = write_pipeline_file(tmp_path / "plain", "in", 256)
    packed = write_pipeline_file(tmp_path / "packed", "in", 256, PACKING)

    assert "packing" not in yaml.safe_load(plain.read_text())
    section = yaml.safe_load(packed.read_text())["packing"]
    assert section == {"max_items": 8, "max_prompt_tokens": 3000, "max_wait_ms": 20}
    # The worker reads it as a valid packing section.
    assert PackingConfig.model_validate(section).max_items == 8
