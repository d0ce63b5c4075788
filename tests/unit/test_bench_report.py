"""The benchmark report: ceilings, targets and the JSON shape."""

from __future__ import annotations

from streams.bench.plan import BenchOptions
from streams.bench.report import BenchReport
from streams.bench.row import RowResult


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
