"""A run in motion: its workers, its disruptions, and the wait for outcomes.

:class:`ChaosRun` owns the worker processes of one run and performs the
scenario's steps on them (or on the broker). :func:`wait_for_outcomes` reads
the ledger until every produced input has an outcome, scraping the workers'
metrics every second and performing each step once progress passes its
mark; it ends early, with a message naming what is missing, on a timeout or
when a worker exits without being told to.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from streams.broker.runtime import restart_broker
from streams.chaos.scenarios import Action, Scenario, Step
from streams.chaos.worker_process import (
    METRICS_PORT_TIMEOUT_S,
    WorkerProcess,
    wait_for_metrics,
)
from streams.data.produce import ProduceReport
from streams.demo.ledger import Coordinates, OutputLedger
from streams.settings import Settings

SCRAPE_INTERVAL_S = 1.0
PROGRESS_INTERVAL_S = 10.0
MISSING_SHOWN = 10


def describe_missing(
    report: ProduceReport, missing: set[Coordinates], limit: int = MISSING_SHOWN
) -> str:
    """Names the inputs without an outcome: coordinates, kind and event id."""
    records = [r for r in report.records if (r.topic, r.partition, r.offset) in missing]
    shown = "; ".join(
        f"{r.topic}[{r.partition}]@{r.offset} {r.kind} event_id={r.event_id}"
        for r in records[:limit]
    )
    more = f" and {len(records) - limit} more" if len(records) > limit else ""
    return f"{len(records)} of {report.total} inputs have no outcome: {shown}{more}"


class ChaosRun:
    """The moving parts of one run, and the disruptions applied to them."""

    def __init__(
        self,
        settings: Settings,
        scenario: Scenario,
        env: dict[str, str],
        run_dir: Path,
        console: Console,
    ) -> None:
        self.settings = settings
        self.scenario = scenario
        self.env = env
        self.run_dir = run_dir
        self.console = console
        self.workers: list[WorkerProcess] = []
        self.primary: WorkerProcess | None = None
        self.added: list[WorkerProcess] = []
        self.performed: list[Step] = []
        self.actions: list[dict[str, Any]] = []
        self.began = time.monotonic()

    def start_worker(self) -> WorkerProcess:
        name = f"worker-{len(self.workers) + 1}"
        worker = WorkerProcess(name, self.env, self.run_dir / f"{name}.log")
        self.workers.append(worker)
        wait_for_metrics(worker, METRICS_PORT_TIMEOUT_S)
        return worker

    def note(self, text: str) -> None:
        elapsed = time.monotonic() - self.began
        self.actions.append({"at_s": round(elapsed, 2), "action": text})
        self.console.print(f"[{elapsed:6.1f} s] {text}")

    def ready(self, step: Step) -> bool:
        """Whether the step may happen now (beyond its progress mark)."""
        if step.action is Action.STOP_ADDED_WORKER:
            # Leaving only counts once the newcomer took part in the group.
            if not self.added:
                return False
            reading = self.added[-1].last_reading
            return reading is not None and reading.rebalances.get("assign", 0) > 0
        return True

    def perform(self, step: Step) -> None:
        if step.action is Action.KILL_WORKER:
            assert self.primary is not None  # started before any step
            self.primary.kill()
            self.note(f"SIGKILL {self.primary.name}")
            self.primary = self.start_worker()
            self.note(f"started {self.primary.name} in its place")
        elif step.action is Action.ADD_WORKER:
            worker = self.start_worker()
            self.added.append(worker)
            self.note(f"started {worker.name} (joins the group)")
        elif step.action is Action.STOP_ADDED_WORKER:
            worker = self.added[-1]
            code = worker.stop()
            self.note(f"SIGTERM {worker.name}: it left with exit code {code}")
        elif step.action is Action.RESTART_BROKER:
            self.note("stopping the broker")
            restart_broker(self.settings.broker)
            self.note("broker started again on its data")
        self.performed.append(step)

    def scrape(self) -> None:
        for worker in self.workers:
            worker.scrape()

    def unexpected_exit(self) -> WorkerProcess | None:
        """A worker that exited without being told to."""
        for worker in self.workers:
            if not worker.running and worker.signal_sent is None:
                return worker
        return None

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()


def wait_for_outcomes(
    run: ChaosRun,
    report: ProduceReport,
    ledger: OutputLedger,
    timeout_s: float,
) -> str | None:
    """Reads outcomes and performs the steps until every input has one.

    Returns:
        None when every input has an outcome; else why the wait ended.
    """
    expected = {(r.topic, r.partition, r.offset) for r in report.records}
    pending = list(run.scenario.steps)
    deadline = time.monotonic() + timeout_s
    next_scrape = next_progress = time.monotonic()
    while True:
        ledger.poll(0.3)
        missing = ledger.missing(expected)
        progress = 1 - len(missing) / len(expected) if expected else 1.0
        now = time.monotonic()
        if now >= next_scrape:
            run.scrape()
            next_scrape = now + SCRAPE_INTERVAL_S
        if not missing:
            return None
        while pending and progress >= pending[0].at_progress and run.ready(pending[0]):
            run.perform(pending.pop(0))
        exited = run.unexpected_exit()
        if exited is not None:
            return (
                f"{exited.name} exited on its own with code "
                f"{exited.process.returncode}; {describe_missing(report, missing)}; "
                f"log tail:\n{exited.log_tail()}"
            )
        if now >= next_progress:
            run.console.print(
                f"[{now - run.began:6.1f} s] outcomes "
                f"{len(expected) - len(missing)}/{len(expected)}"
            )
            next_progress = now + PROGRESS_INTERVAL_S
        if now >= deadline:
            waiting = ", ".join(
                f"{s.action.value}@{s.at_progress:.0%}" for s in pending
            )
            return (
                f"timed out after {timeout_s:.0f} s: "
                f"{describe_missing(report, missing)}"
                + (f"; steps not performed: {waiting}" if waiting else "")
            )
