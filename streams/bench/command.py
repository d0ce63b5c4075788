"""``streams bench``: start what is needed, run every row, write the report.

The broker is the local one on ``STREAMS_BROKER__PORT`` (started here unless
one already answers there, and then stopped at the end) or the configured
cluster; the simulator is started here with the requested latency. Each row
has its own topics, group and contender process; whatever was started is
stopped on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
from rich.console import Console

from streams.bench.plan import BenchOptions, plan_rows
from streams.bench.report import BenchReport, command_line, machine_facts
from streams.bench.row import BenchEnvironment, RowResult, run_row
from streams.bench.simulators import SimulatorPool
from streams.demo.local_services import (
    ensure_broker,
    release_broker,
    with_local_broker,
)
from streams.settings import Settings

logger = logging.getLogger(__name__)


def run_bench(
    settings: Settings,
    options: BenchOptions,
    *,
    work_dir: Path,
    markdown: Path | None = None,
    json_path: Path | None = None,
    plot: Path | None = None,
    console: Console | None = None,
) -> BenchReport:
    """Runs the benchmark and writes the report files asked for.

    Args:
        settings: Where the broker is (the LLM settings are not used: every
            contender talks to the simulator started here).
        options: Rows, levels, counts and latency.
        work_dir: Contender logs and pipeline copies go here.
        markdown: Also write the Markdown report here.
        json_path: Write the JSON report here.
        plot: Write the throughput plot (PNG) here.
        console: Where progress goes (stderr by default).

    Returns:
        The report (also printed as Markdown to stdout).
    """
    console = console or Console(stderr=True)
    began = time.monotonic()
    machine = machine_facts()
    settings = with_local_broker(settings)
    started_broker = ensure_broker(settings)
    rows: list[RowResult] = []
    work_dir.mkdir(parents=True, exist_ok=True)
    simulator_args = [
        "--latency-mean-ms",
        str(options.latency_mean_ms),
        "--latency-sigma",
        str(options.latency_sigma),
    ]
    try:
        with (work_dir / "simulator.log").open("wb") as simulator_log:
            simulator = SimulatorPool(
                options.simulator_processes, simulator_args, simulator_log
            )
            try:
                environment = BenchEnvironment(
                    bootstrap=settings.kafka.bootstrap_servers,
                    simulator=simulator,
                    work_dir=work_dir,
                    partitions=options.partitions,
                    worker_settings=dict(options.worker_settings),
                )
                for spec in plan_rows(options):
                    console.print(
                        f"bench: {spec.name} C={spec.concurrency} events={spec.count:,}"
                    )
                    result = run_row(environment, spec)
                    rows.append(result)
                    console.print(
                        f"bench: {spec.name} C={spec.concurrency} -> {_summary(result)}"
                    )
            finally:
                simulator.stop()
    finally:
        release_broker(settings, started_broker)

    machine["load_average_at_end"] = [round(v, 2) for v in _load_average()]
    report = BenchReport(
        options, rows, machine, command_line(), wall_s=time.monotonic() - began
    )
    text = report.as_markdown()
    print(text)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(
            orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2)
        )
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        report.write_plot(plot)
    return report


def _load_average() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


def _summary(result: RowResult) -> str:
    if result.events_per_s is None:
        return f"no throughput: {result.error}"
    latency = (
        f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms"
        if result.p50_ms is not None and result.p99_ms is not None
        else "latency not measured"
    )
    text = (
        f"{result.events_per_s:,.1f} events/s, {result.completed}/{result.events} "
        f"done, {latency}, CPU {result.cpu_s_per_1k or 0:.2f} s/1k, "
        f"RSS {result.peak_rss_mb or 0:.0f} MB"
    )
    if result.error:
        text += f" ({result.error})"
    return text
