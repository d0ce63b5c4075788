"""``streams demo``: the whole path, on real data, with a summary.

Steps: start the local broker (unless an external cluster is configured) and
the LLM simulator (unless an API key is configured); create the topics;
produce the sample events with replayed duplicates and one record of each
malformed kind; run the worker until every produced record has an enriched
or dead-letter outcome; stop the worker gracefully; print the summary; stop
what was started.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from streams import event_loop
from streams.data.produce import ProduceReport, produce_events
from streams.demo.ledger import Coordinates, OutputLedger
from streams.demo.local_services import (
    SimulatorProcess,
    ensure_broker,
    release_broker,
    start_simulator,
    with_local_broker,
)
from streams.observability.health_server import HealthServer
from streams.pipeline.config import load_pipelines
from streams.service import build_service, create_worker_topics
from streams.settings import Settings

logger = logging.getLogger(__name__)

SIMULATOR_API_KEY = "simulator-local-key"


def with_simulator(settings: Settings, url: str) -> Settings:
    """The settings pointed at a local simulator."""
    llm = settings.llm.model_copy(
        update={"base_url": url, "api_key": SecretStr(SIMULATOR_API_KEY)}
    )
    return settings.model_copy(update={"llm": llm})


def summarise(
    report: ProduceReport,
    ledger: OutputLedger,
    *,
    llm_calls: int,
    retries: int,
    retried: int = 0,
    circuit_opened: int = 0,
    elapsed_s: float,
) -> dict[str, Any]:
    """The run summary, computed from what reached the output topics."""
    expected = {(r.topic, r.partition, r.offset): r for r in report.records}
    enriched = dead_lettered = deduplicated = duplicates = unexpected = 0
    hit_tokens = miss_tokens = completion_tokens = reasoning_tokens = trimmed = 0
    cost = 0.0
    reasons: Counter[str] = Counter()
    for coordinates, produced in expected.items():
        outcomes = ledger.outcomes.get(coordinates, [])
        if not outcomes:
            continue
        duplicates += len(outcomes) - 1
        first = outcomes[0]
        if first.kind == "enriched":
            enriched += 1
            deduplicated += first.dedup in ("hit", "joined")
            trimmed += "trimmed" in first.metadata
        else:
            dead_lettered += 1
            reasons[first.reason or "unknown"] += 1
        if first.kind != produced.expected_outcome:
            unexpected += 1
        for outcome in outcomes:
            usage = outcome.metadata.get("usage", {})
            hit_tokens += usage.get("prompt_cache_hit_tokens", 0)
            miss_tokens += usage.get("prompt_cache_miss_tokens", 0)
            completion_tokens += usage.get("completion_tokens", 0)
            reasoning_tokens += usage.get("reasoning_tokens", 0)
            cost += outcome.metadata.get("cost_usd", 0.0)
            cost += float(outcome.headers.get("dlq.cost.usd", b"0") or b"0")
    return {
        "inputs": len(expected),
        "enriched": enriched,
        "dead_lettered": dead_lettered,
        "deduplicated": deduplicated,
        "lost": len(ledger.missing(set(expected))),
        "duplicates": duplicates,
        "unexpected_outcomes": unexpected,
        "dead_letter_reasons": dict(sorted(reasons.items())),
        "llm_calls": llm_calls,
        "retries": retries,
        "retried": retried,
        "circuit_opened": circuit_opened,
        "prompt_cache_hit_tokens": hit_tokens,
        "prompt_cache_miss_tokens": miss_tokens,
        "completion_tokens": completion_tokens,
        "reasoning_tokens": reasoning_tokens,
        "trimmed": trimmed,
        "cost_usd": round(cost, 8),
        "elapsed_s": round(elapsed_s, 2),
    }


async def _run_until_accounted(
    settings: Settings,
    report: ProduceReport,
    ledger: OutputLedger,
    console: Console,
    timeout_s: float,
    hold: bool = False,
) -> tuple[int, int, int, int]:
    service = build_service(settings)
    observability = settings.observability
    health: HealthServer | None = None
    if observability.metrics_port is not None:
        health = HealthServer(service.worker, service.breaker)
        await health.start(observability.metrics_host, observability.metrics_port)
        console.print(
            f"metrics: http://{observability.metrics_host}:{health.port}/metrics "
            f"(watch with: streams status --url "
            f"http://{observability.metrics_host}:{health.port})"
        )
    stop = asyncio.Event()
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted.set)
    worker_task = asyncio.create_task(service.worker.run(stop))
    expected: set[Coordinates] = {
        (r.topic, r.partition, r.offset) for r in report.records
    }
    deadline = time.monotonic() + timeout_s
    columns = (
        TextColumn("[bold]enriching"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            bar = progress.add_task("records", total=len(expected), detail="")
            while (
                time.monotonic() < deadline
                and not worker_task.done()
                and not interrupted.is_set()
            ):
                await asyncio.to_thread(ledger.poll, 0.3)
                done = len(expected) - len(ledger.missing(expected))
                stats = service.worker.stats
                progress.update(
                    bar,
                    completed=done,
                    detail=f"llm calls {service.worker.stats.llm_calls}  "
                    f"dedup {stats.deduplicated}  dead letters {stats.dead_lettered}"
                    + (f"  retry tiers {stats.retried}" if stats.retried else ""),
                )
                if done == len(expected):
                    break
        if interrupted.is_set():
            console.print(
                "interrupted: stopping the worker; unfinished records stay "
                "uncommitted and are redone by the next run"
            )
        elif hold and health is not None:
            console.print("every record is accounted for; metrics stay up until Ctrl-C")
            await interrupted.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stop.set()
        await worker_task
        await service.chat.close()
        if health is not None:
            await health.stop()
    ledger.poll(1.0)
    stats = service.worker.stats
    return stats.llm_calls, stats.retries, stats.retried, service.breaker.open_count


def run_demo(
    settings: Settings,
    *,
    data_dir: Path | None = None,
    limit: int | None = None,
    duplicate_ratio: float = 0.1,
    summary_json: Path | None = None,
    timeout_s: float = 900.0,
    console: Console | None = None,
    hold: bool = False,
) -> dict[str, Any]:
    """Runs the demo end to end and returns its summary."""
    console = console or Console(stderr=True)
    settings = with_local_broker(settings)
    started_broker = ensure_broker(settings)
    simulator: SimulatorProcess | None = None
    try:
        if settings.llm.api_key is None:
            simulator = start_simulator()
            settings = with_simulator(settings, simulator.url)
            console.print(f"LLM: DeepSeek-compatible simulator at {simulator.url}")
        else:
            console.print(f"LLM: {settings.llm.base_url} (API key configured)")
        console.print(f"Kafka: {settings.kafka.bootstrap_servers}")

        service_pipelines = load_pipelines(
            settings.pipelines_dir, settings.schemas_dir, settings.pipelines
        )
        create_worker_topics(settings, service_pipelines)
        ledger = OutputLedger(
            settings.kafka.common_config(),
            settings.kafka.output_topic,
            settings.kafka.dead_letter_topic,
        )
        try:
            began = time.monotonic()
            report = produce_events(
                settings.kafka.bootstrap_servers,
                data_dir=data_dir,
                pipelines={p.name for p in service_pipelines.values()},
                limit_per_source=limit,
                duplicate_ratio=duplicate_ratio,
                topics={
                    p.name: p.config.input_topic for p in service_pipelines.values()
                },
                extra_config={
                    k: str(v)
                    for k, v in settings.kafka.common_config().items()
                    if k != "bootstrap.servers"
                },
            )
            console.print(f"produced {len(report.records)} records")
            llm_calls, retries, retried, circuit_opened = event_loop.run(
                _run_until_accounted(settings, report, ledger, console, timeout_s, hold)
            )
            summary = summarise(
                report,
                ledger,
                llm_calls=llm_calls,
                retries=retries,
                retried=retried,
                circuit_opened=circuit_opened,
                elapsed_s=time.monotonic() - began,
            )
        finally:
            ledger.close()
    finally:
        if simulator is not None:
            simulator.stop()
        release_broker(settings, started_broker)

    print_summary(summary, console)
    if summary_json is not None:
        summary_json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        console.print(f"summary written to {summary_json}")
    return summary


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Prints the summary as a table."""
    table = Table(title="streams demo summary")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, float):
            value = f"{value:.6f}" if name == "cost_usd" else f"{value:.2f}"
        table.add_row(name, str(value))
    console.print(table)
