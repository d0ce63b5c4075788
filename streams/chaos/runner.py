"""``streams chaos``: one scenario against the real broker, with a verdict.

Steps: start the local broker unless a cluster answers (as ``streams demo``
does); give the run topics and a consumer group of its own (the pipelines
are copied with a suffix on their input topics), so earlier runs and other
users of the broker do not mix in; start the LLM simulator; produce the
sample events; set the scenario's faults; start the worker as a ``streams
run`` child process; perform the scenario's disruptions as progress passes
their marks; wait until every input has an outcome or the timeout passes;
stop everything started here; evaluate the expectations and write the
summary.

The simulator is always used, whatever API key is configured: the faults
are the simulator's, and a chaos run must never reach a real provider.
"""

from __future__ import annotations

import logging
import time
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from rich.console import Console

from streams import paths
from streams.broker.runtime import broker_status
from streams.chaos.expectations import Observation, evaluate
from streams.chaos.progress import ChaosRun, wait_for_outcomes
from streams.chaos.scenarios import (
    DEFAULT_LIMIT_PER_SOURCE,
    DEFAULT_TIMEOUT_S,
    SCENARIOS,
    Action,
    Scenario,
)
from streams.chaos.worker_process import WorkerProcess
from streams.data.produce import produce_events
from streams.demo.ledger import OutputLedger
from streams.demo.local_services import (
    SimulatorProcess,
    ensure_broker,
    release_broker,
    start_simulator,
    with_local_broker,
)
from streams.demo.runner import SIMULATOR_API_KEY, summarise
from streams.errors import ConfigurationError
from streams.pipeline.config import load_pipelines
from streams.service import create_worker_topics
from streams.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_RUNS_DIR = paths.PROJECT_ROOT / "out" / "chaos"


@dataclass(frozen=True)
class ChaosOptions:
    """How one run is sized and where it keeps its files.

    Attributes:
        limit_per_source: Rows read from each sample source file.
        fault_s: The fault window; ``None`` takes the scenario's default.
        timeout_s: Longest wait for every input to have an outcome.
        duplicate_ratio: Share of events replayed byte for byte.
        latency_mean_ms: The simulator's mean latency; ``None`` takes the
            scenario's.
        run_dir: Logs, the copied pipelines and the summary; a new folder
            under ``out/chaos`` when ``None``.
        data_dir: Sample data folder; the shipped sample when ``None``.
    """

    limit_per_source: int | None = DEFAULT_LIMIT_PER_SOURCE
    fault_s: float | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    duplicate_ratio: float = 0.1
    latency_mean_ms: float | None = None
    run_dir: Path | None = None
    data_dir: Path | None = None


def isolate_run(
    settings: Settings, run_dir: Path, suffix: str, scenario: Scenario
) -> Settings:
    """Settings with this run's own topics, group, retry tiers and pipelines."""
    pipelines_dir = run_dir / "pipelines"
    pipelines_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(settings.pipelines_dir.glob("*.yaml")):
        config = yaml.safe_load(source.read_text())
        config["input_topic"] = f"{config['input_topic']}.{suffix}"
        (pipelines_dir / source.name).write_text(
            yaml.safe_dump(config, sort_keys=False)
        )
    kafka = settings.kafka.model_copy(
        update={
            "group_id": f"{settings.kafka.group_id}.{suffix}",
            "output_topic": f"{settings.kafka.output_topic}.{suffix}",
            "dead_letter_topic": f"{settings.kafka.dead_letter_topic}.{suffix}",
        }
    )
    retry = settings.retry.model_copy(
        update={"topic_prefix": f"{settings.retry.topic_prefix}.{suffix}"}
    )
    if scenario.retry_tiers_s is not None:
        retry = retry.model_copy(
            update={"tiers_s": orjson.loads(scenario.retry_tiers_s)}
        )
    return settings.model_copy(
        update={"kafka": kafka, "retry": retry, "pipelines_dir": pipelines_dir}
    )


def worker_env(
    settings: Settings, scenario: Scenario, simulator_url: str
) -> dict[str, str]:
    """The ``STREAMS_*`` variables of every worker process of a run."""
    kafka = settings.kafka
    env = {
        "STREAMS_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMS_KAFKA__GROUP_ID": kafka.group_id,
        "STREAMS_KAFKA__OUTPUT_TOPIC": kafka.output_topic,
        "STREAMS_KAFKA__DEAD_LETTER_TOPIC": kafka.dead_letter_topic,
        # A killed member holds its partitions until its session times out.
        "STREAMS_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "STREAMS_PIPELINES_DIR": str(settings.pipelines_dir),
        "STREAMS_WORKER__MAX_BUFFERED": str(scenario.max_buffered),
        "STREAMS_WORKER__COMMIT_INTERVAL_S": "0.5",
        "STREAMS_WORKER__SHUTDOWN_GRACE_S": "15",
        "STREAMS_LLM__BASE_URL": simulator_url,
        "STREAMS_LLM__API_KEY": SIMULATOR_API_KEY,
        "STREAMS_OBSERVABILITY__METRICS_HOST": "127.0.0.1",
        "STREAMS_OBSERVABILITY__METRICS_PORT": "0",
        "STREAMS_OBSERVABILITY__LOG_FORMAT": "json",
        "STREAMS_OBSERVABILITY__LOG_LEVEL": "INFO",
        **scenario.worker_env,
    }
    env["STREAMS_RETRY__TIERS_S"] = orjson.dumps(settings.retry.tiers_s).decode()
    env["STREAMS_RETRY__TOPIC_PREFIX"] = settings.retry.topic_prefix
    return env


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # The simulator's own loopback URL, not user input.
    with urllib.request.urlopen(request, timeout=5.0) as response:
        data: dict[str, Any] = orjson.loads(response.read())
    return data


def _sum_worker_counts(
    workers: list[WorkerProcess],
) -> tuple[int, int, dict[str, int]]:
    """Retries, records sent to a retry tier, and rebalances by kind, summed
    over every worker process of the run.

    A worker that shut down cleanly reports exact counts in its final stats;
    a killed one counts from its last scrape, taken just before the signal.
    """
    retries = 0
    retried = 0
    rebalances: dict[str, int] = {}
    for worker in workers:
        stats = worker.final_stats() or {}
        reading = worker.last_reading
        stats_retries = stats.get("retries")
        if isinstance(stats_retries, int):
            retries += stats_retries
        elif reading is not None:
            retries += int(reading.retries)
        stats_retried = stats.get("retried")
        if isinstance(stats_retried, int):
            retried += stats_retried
        elif reading is not None:
            retried += int(reading.retried)
        if reading is not None:
            for kind, count in reading.rebalances.items():
                rebalances[kind] = rebalances.get(kind, 0) + int(count)
    return retries, retried, rebalances


def _resolve(name: str) -> Scenario:
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ConfigurationError(
            f"unknown chaos scenario {name!r}; choose one of {', '.join(SCENARIOS)}"
        )
    return scenario


def _restarts_broker(scenario: Scenario) -> bool:
    return any(step.action is Action.RESTART_BROKER for step in scenario.steps)


def _check_broker_control(settings: Settings, scenario: Scenario) -> None:
    """A scenario that restarts the broker needs the local one it can stop."""
    if not _restarts_broker(scenario):
        return
    local = f"{settings.broker.host}:{settings.broker.port}"
    if settings.kafka.bootstrap_servers != local:
        raise ConfigurationError(
            f"the {scenario.name} scenario stops and starts the local broker; it "
            f"cannot run against the cluster at {settings.kafka.bootstrap_servers}"
        )


def run_scenario(
    settings: Settings,
    name: str,
    options: ChaosOptions | None = None,
    *,
    summary_json: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Runs one chaos scenario end to end and returns its summary.

    Args:
        settings: The settings the run starts from (broker, topics, pipelines).
        name: A key of :data:`~streams.chaos.scenarios.SCENARIOS`.
        options: Sizes, fault window, timeout and the run's folder.
        summary_json: Where to write the summary as JSON, if anywhere.
        console: Where progress goes; stderr by default.

    Returns:
        The summary: counts, the expectations with their verdicts, ``passed``.

    Raises:
        ConfigurationError: Unknown scenario, or a broker-restart run against a
            cluster it cannot stop.
    """
    scenario = _resolve(name)
    options = options or ChaosOptions()
    console = console or Console(stderr=True)
    settings = with_local_broker(settings)
    _check_broker_control(settings, scenario)
    suffix = f"chaos-{scenario.name}-{uuid.uuid4().hex[:6]}"
    run_dir = options.run_dir or DEFAULT_RUNS_DIR / suffix
    run_dir.mkdir(parents=True, exist_ok=True)
    fault_s = (
        options.fault_s if options.fault_s is not None else scenario.default_fault_s
    )
    latency_ms = (
        options.latency_mean_ms
        if options.latency_mean_ms is not None
        else scenario.latency_mean_ms
    )

    started_broker = ensure_broker(settings)
    with ExitStack() as cleanup:
        cleanup.callback(release_broker, settings, started_broker)
        if _restarts_broker(scenario) and broker_status(settings.broker).pid is None:
            raise ConfigurationError(
                "the broker at this address was not started from these broker "
                "settings (no pid file in its state folder), so it cannot be "
                "restarted here"
            )
        settings = isolate_run(settings, run_dir, suffix, scenario)
        pipelines = load_pipelines(
            settings.pipelines_dir, settings.schemas_dir, settings.pipelines
        )
        create_worker_topics(settings, pipelines)
        console.print(
            f"chaos {scenario.name}: {scenario.summary}\n"
            f"Kafka {settings.kafka.bootstrap_servers}, topics *.{suffix}, "
            f"files in {run_dir}"
        )

        simulator_log = cleanup.enter_context((run_dir / "simulator.log").open("wb"))
        simulator: SimulatorProcess = start_simulator(
            ["--latency-mean-ms", str(latency_ms)], log=simulator_log
        )
        cleanup.callback(simulator.stop)

        report = produce_events(
            settings.kafka.bootstrap_servers,
            data_dir=options.data_dir,
            pipelines={p.name for p in pipelines.values()},
            limit_per_source=options.limit_per_source,
            duplicate_ratio=options.duplicate_ratio,
            malformed=scenario.malformed,
            topics={p.name: p.config.input_topic for p in pipelines.values()},
            extra_config={
                k: str(v)
                for k, v in settings.kafka.common_config().items()
                if k != "bootstrap.servers"
            },
        )
        console.print(f"produced {report.total} records")
        ledger = OutputLedger(
            settings.kafka.common_config(),
            settings.kafka.output_topic,
            settings.kafka.dead_letter_topic,
            from_beginning=True,
        )
        cleanup.callback(ledger.close)

        env = worker_env(settings, scenario, simulator.url)
        run = ChaosRun(settings, scenario, env, run_dir, console)
        cleanup.callback(run.stop_all)
        # The fault windows start at the worker's first call, not while it
        # starts or joins its group, and not after it has already finished.
        _post_json(
            f"{simulator.url}/admin/faults?clock=first-request",
            scenario.faults(fault_s),
        )
        run.primary = run.start_worker()
        began = run.began = time.monotonic()
        run.note(f"{run.primary.name} is up; faults start at its first call")
        error = wait_for_outcomes(run, report, ledger, options.timeout_s)
        if error is not None:
            console.print(f"[red]{error}[/red]")
        run.stop_all()
        ledger.poll(1.0)
        elapsed_s = time.monotonic() - began
        with urllib.request.urlopen(f"{simulator.url}/stats", timeout=5.0) as answer:
            provider: dict[str, Any] = orjson.loads(answer.read())

        retries, retried, rebalances = _sum_worker_counts(run.workers)
        observation = Observation(
            scenario=scenario,
            report=report,
            outcomes=dict(ledger.outcomes),
            workers=run.workers,
            performed=run.performed,
            max_buffered=scenario.max_buffered,
        )
        expectations = evaluate(observation)
        counts = summarise(
            report,
            ledger,
            llm_calls=int(provider.get("requests_total", 0)),
            retries=retries,
            retried=retried,
            elapsed_s=elapsed_s,
        )

    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "passed": error is None and all(e.passed for e in expectations),
        **counts,
        "expectations": [e.as_dict() for e in expectations],
        "error": error,
        "actions": run.actions,
        "workers": [
            {
                "name": w.name,
                "exit_code": w.process.returncode,
                "signal": w.signal_sent,
                "log": str(w.log_path),
            }
            for w in run.workers
        ],
        "rebalances": rebalances,
        "provider": {
            "requests_total": provider.get("requests_total"),
            "responses_by_status": provider.get("responses_by_status"),
            "faults_by_kind": provider.get("faults_by_kind"),
        },
        "options": {
            "limit_per_source": options.limit_per_source,
            "fault_s": fault_s,
            "latency_mean_ms": latency_ms,
            "max_buffered": scenario.max_buffered,
            "timeout_s": options.timeout_s,
            "retry_tiers_s": env.get("STREAMS_RETRY__TIERS_S"),
            "worker_env": scenario.worker_env,
        },
        "run_dir": str(run_dir),
    }
    _print_verdict(summary, console)
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        console.print(f"summary written to {summary_json}")
    return summary


def _print_verdict(summary: dict[str, Any], console: Console) -> None:
    console.print(
        f"inputs {summary['inputs']}  enriched {summary['enriched']}  "
        f"dead_lettered {summary['dead_lettered']}  lost {summary['lost']}  "
        f"duplicates {summary['duplicates']}  llm_calls {summary['llm_calls']}  "
        f"retries {summary['retries']}  elapsed {summary['elapsed_s']:.1f} s"
    )
    for expectation in summary["expectations"]:
        mark = "[green]pass[/green]" if expectation["passed"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {expectation['name']}: {expectation['detail']}")
    verdict = "[green]passed[/green]" if summary["passed"] else "[red]failed[/red]"
    console.print(f"chaos {summary['scenario']}: {verdict}")
