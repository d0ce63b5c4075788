"""The ``streams`` command line.

Subcommands: ``broker start|stop|status``, ``simulate-llm``, ``topics``,
``produce``, ``run``, ``demo``, ``chaos``, ``bench``, ``cost-report``,
``status`` and ``dlq inspect|replay``. Every
command reads the settings (file and environment, see
:mod:`streams.settings`), so the same command runs against the local broker
or a user's cluster.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
from confluent_kafka import KafkaException

from streams import event_loop
from streams.bench.arguments import add_bench_parser
from streams.errors import StreamsError
from streams.observability.logging import configure_logging
from streams.settings import Settings, load_settings

logger = logging.getLogger(__name__)


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.broker import broker_status, start_broker, stop_broker

    if args.action == "start":
        status = start_broker(settings.broker)
        print(f"broker running pid={status.pid} bootstrap={status.bootstrap}")
    elif args.action == "stop":
        stopped = stop_broker(settings.broker)
        print("broker stopped" if stopped else "no broker was running")
    else:
        status = broker_status(settings.broker)
        state = "running" if status.running else "not running"
        print(f"broker {state} bootstrap={status.bootstrap} log={status.log_file}")
        return 0 if status.running else 3
    return 0


def _simulate(args: argparse.Namespace, _settings: Settings) -> int:
    from streams.simulator import SimulatorConfig, run

    mapping: dict[str, object] = {
        "latency_mean_ms": args.latency_mean_ms,
        "latency_sigma": args.latency_sigma,
        "error_rate": args.error_rate,
        "seed": args.seed,
    }
    if args.faults:
        mapping["faults"] = orjson.loads(args.faults)
    run(
        SimulatorConfig.from_mapping(mapping),
        host=args.host,
        port=args.port,
        reuse_port=args.reuse_port,
        admin_port=args.admin_port,
    )
    return 0


def _topics(_args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka.retry_topics import retry_tiers
    from streams.pipeline.config import load_pipelines
    from streams.service import create_worker_topics

    pipelines = load_pipelines(
        settings.pipelines_dir, settings.schemas_dir, settings.pipelines
    )
    create_worker_topics(settings, pipelines)
    tiers = [tier.topic for tier in retry_tiers(settings.retry)]
    print(
        "topics ready: "
        + ", ".join(
            [
                *pipelines,
                settings.kafka.output_topic,
                settings.kafka.dead_letter_topic,
                *tiers,
            ]
        )
    )
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from streams.data.produce import produce_events
    from streams.pipeline.config import load_pipelines
    from streams.service import create_worker_topics

    pipelines = load_pipelines(
        settings.pipelines_dir, settings.schemas_dir, settings.pipelines
    )
    create_worker_topics(settings, pipelines)
    report = produce_events(
        settings.kafka.bootstrap_servers,
        data_dir=args.data_dir,
        pipelines={p.name for p in pipelines.values()},
        limit_per_source=args.limit,
        duplicate_ratio=args.duplicate_ratio,
        malformed=not args.no_malformed,
        topics={p.name: p.config.input_topic for p in pipelines.values()},
        extra_config={
            k: str(v)
            for k, v in settings.kafka.common_config().items()
            if k != "bootstrap.servers"
        },
    )
    if args.report:
        args.report.write_text(report.to_json())
    print(f"produced {len(report.records)} records")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.broker.runtime import is_reachable
    from streams.kafka.retry_topics import retry_tiers
    from streams.kafka.stranded_tiers import warn_about_stranded_tiers
    from streams.kafka.topics import missing_topics
    from streams.service import (
        build_service,
        create_worker_topics,
        output_topics,
        run_until_signal,
    )

    bootstrap = settings.kafka.bootstrap_servers
    if not is_reachable(settings.kafka.common_config(), timeout_s=10):
        print(
            f"streams run: cannot reach Kafka at {bootstrap}: start the local broker "
            "with `streams broker start`, or set STREAMS_KAFKA__BOOTSTRAP_SERVERS",
            file=sys.stderr,
        )
        return 1
    service = build_service(settings)
    if args.create_topics:
        create_worker_topics(settings, service.pipelines)
    else:
        # A topic the worker writes to must exist before the first record
        # needs it; finding out then would stop the worker mid-run.
        missing = missing_topics(
            settings.kafka.common_config(), output_topics(settings)
        )
        if missing:
            print(
                f"streams run: topics {', '.join(missing)} do not exist: create them "
                "with `streams topics`, or run with --create-topics",
                file=sys.stderr,
            )
            return 1
    stranded = warn_about_stranded_tiers(
        settings.kafka.common_config(),
        settings.kafka.group_id,
        settings.retry.topic_prefix,
        {tier.topic for tier in retry_tiers(settings.retry)},
    )
    for topic, count in stranded.items():
        print(
            f"streams run: {count} records wait in {topic}, a retry tier no longer "
            "in retry.tiers_s; they are not read until it is configured again",
            file=sys.stderr,
        )
    stats = event_loop.run(run_until_signal(service))
    print(orjson.dumps(stats.as_dict()).decode())
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.demo.runner import run_demo

    if args.metrics_port is not None:
        observability = settings.observability.model_copy(
            update={"metrics_port": args.metrics_port}
        )
        settings = settings.model_copy(update={"observability": observability})
    summary = run_demo(
        settings,
        data_dir=args.data_dir,
        limit=args.limit,
        duplicate_ratio=args.duplicate_ratio,
        summary_json=args.summary_json,
        hold=args.hold,
    )
    balanced = summary["inputs"] == summary["enriched"] + summary["dead_lettered"]
    return 0 if balanced and summary["lost"] == 0 else 1


def _cost_report(args: argparse.Namespace, settings: Settings) -> int:
    from streams.cost_report import run_cost_report

    run_cost_report(
        settings,
        duplicate_ratio=args.duplicate_ratio,
        limit=args.limit,
        json_path=args.json,
    )
    return 0


def _chaos(args: argparse.Namespace, settings: Settings) -> int:
    from streams.chaos.runner import ChaosOptions, run_scenario

    summary = run_scenario(
        settings,
        args.scenario,
        ChaosOptions(
            limit_per_source=args.limit_per_source,
            fault_s=args.fault_seconds,
            timeout_s=args.timeout,
            latency_mean_ms=args.latency_mean_ms,
            run_dir=args.run_dir,
            data_dir=args.data_dir,
        ),
        summary_json=args.summary_json,
    )
    return 0 if summary["passed"] else 1


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from streams.status import configured_topics, default_url, watch_status

    return watch_status(
        args.url or default_url(settings.observability.metrics_port),
        interval_s=args.interval,
        once=args.once,
        topic_pipelines=configured_topics(settings.pipelines_dir),
    )


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from streams.dead_letters import (
        Selection,
        inspect_dead_letters,
        replay_dead_letters,
    )

    since = args.since if args.last is None else datetime.now(UTC) - args.last
    selection = Selection.of(
        reasons=args.reason,
        pipelines=args.pipeline,
        event_ids=args.event_id,
        since=since,
        until=args.until,
    )
    if args.action == "inspect":
        inspect_dead_letters(
            settings,
            selection=selection,
            sample_size=args.sample,
            show_payloads=args.show_payloads,
            as_json=args.json,
        )
    else:
        replay_dead_letters(settings, selection=selection, execute=args.execute)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="streams", description="Kafka enrichment service for LLM workloads."
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ...")
    commands = parser.add_subparsers(dest="command", required=True)

    broker = commands.add_parser("broker", help="run a local single-node Kafka broker")
    broker.add_argument("action", choices=["start", "stop", "status"])
    broker.set_defaults(handler=_broker)

    simulate = commands.add_parser(
        "simulate-llm", help="serve a DeepSeek-compatible test double on loopback"
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    simulate.add_argument("--latency-mean-ms", type=float, default=300.0)
    simulate.add_argument("--latency-sigma", type=float, default=0.5)
    simulate.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of requests answered 429/500/503",
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--faults", default=None, help="fault settings as JSON")
    simulate.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT, so several simulator processes share a port",
    )
    simulate.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="also listen on this port of this process's own (0 picks one), "
        "to read its /stats when the main port is shared",
    )
    simulate.set_defaults(handler=_simulate)

    topics = commands.add_parser(
        "topics", help="create the input, output and DLQ topics"
    )
    topics.set_defaults(handler=_topics)

    produce = commands.add_parser("produce", help="write the sample events to Kafka")
    produce.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with tickets/emails/contacts (default: data/sample)",
    )
    produce.add_argument("--limit", type=int, default=None, help="records per source")
    produce.add_argument("--duplicate-ratio", type=float, default=0.1)
    produce.add_argument("--no-malformed", action="store_true")
    produce.add_argument(
        "--report", type=Path, default=None, help="write a JSON report"
    )
    produce.set_defaults(handler=_produce)

    run = commands.add_parser("run", help="run the enrichment worker")
    run.add_argument("--create-topics", action="store_true")
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo", help="the whole path on sample data, with a summary"
    )
    demo.add_argument("--data-dir", type=Path, default=None)
    demo.add_argument("--limit", type=int, default=None, help="records per source")
    demo.add_argument("--duplicate-ratio", type=float, default=0.1)
    demo.add_argument("--summary-json", type=Path, default=None)
    demo.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve the worker's /metrics, /healthz and /readyz on this port",
    )
    demo.add_argument(
        "--hold",
        action="store_true",
        help="keep the worker and its metrics up after the run, until Ctrl-C",
    )
    demo.set_defaults(handler=_demo)

    cost = commands.add_parser(
        "cost-report",
        help="cost per 1,000 tickets, naive against ours and ours with request "
        "packing, on a local simulator",
    )
    cost.add_argument("--limit", type=int, default=None, help="tickets to read")
    cost.add_argument("--duplicate-ratio", type=float, default=0.1)
    cost.add_argument("--json", type=Path, default=None, help="also write JSON here")
    cost.set_defaults(handler=_cost_report)
    from streams.chaos.scenarios import (
        DEFAULT_LIMIT_PER_SOURCE,
        DEFAULT_TIMEOUT_S,
        SCENARIOS,
    )

    chaos = commands.add_parser(
        "chaos",
        help="run one failure scenario against the real broker and check the result",
        description="Scenarios: "
        + "; ".join(f"{s.name}: {s.summary}" for s in SCENARIOS.values())
        + ". Exits 1 when an expectation fails.",
    )
    chaos.add_argument("--scenario", required=True, choices=list(SCENARIOS))
    chaos.add_argument("--summary-json", type=Path, default=None)
    chaos.add_argument(
        "--limit-per-source",
        type=int,
        default=DEFAULT_LIMIT_PER_SOURCE,
        help=f"rows of each sample source (default {DEFAULT_LIMIT_PER_SOURCE})",
    )
    chaos.add_argument(
        "--fault-seconds",
        type=float,
        default=None,
        help="length of the outage/account fault window (default 30 / 20)",
    )
    chaos.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="longest wait for every input to have an outcome, in seconds",
    )
    chaos.add_argument(
        "--latency-mean-ms",
        type=float,
        default=None,
        help="the simulator's mean latency (default: the scenario's)",
    )
    chaos.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="logs and copied pipelines (default: a new folder in out/chaos)",
    )
    chaos.add_argument("--data-dir", type=Path, default=None)
    chaos.set_defaults(handler=_chaos)
    add_bench_parser(commands)

    status = commands.add_parser(
        "status", help="live view of a worker's lag, throughput, errors and cost"
    )
    status.add_argument(
        "--url",
        default=None,
        help="the worker's metrics endpoint (default: "
        "http://127.0.0.1:STREAMS_OBSERVABILITY__METRICS_PORT, else 9108)",
    )
    status.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="seconds between scrapes (at least 0.5 while watching)",
    )
    status.add_argument(
        "--once",
        action="store_true",
        help="print one table (rates over one interval) and exit",
    )
    status.set_defaults(handler=_status)

    from streams.dead_letters.selection import duration_argument, time_argument

    dlq = commands.add_parser(
        "dlq", help="inspect the dead-letter topic and replay records from it"
    )
    dlq_actions = dlq.add_subparsers(dest="action", required=True)
    dlq_inspect = dlq_actions.add_parser(
        "inspect", help="counts by reason, pipeline, stage and hour, with a sample"
    )
    dlq_window = dlq_inspect.add_mutually_exclusive_group()
    dlq_window.add_argument(
        "--since",
        type=time_argument,
        metavar="ISO",
        help="only records dead-lettered since then",
    )
    dlq_window.add_argument(
        "--last",
        type=duration_argument,
        metavar="DURATION",
        help="only records dead-lettered this recently, e.g. 2h, 30m, 1d",
    )
    dlq_replay = dlq_actions.add_parser(
        "replay", help="produce dead letters back to their topics (dry run first)"
    )
    dlq_replay.add_argument(
        "--since",
        type=time_argument,
        metavar="ISO",
        help="only records dead-lettered since then",
    )
    dlq_replay.add_argument(
        "--until",
        type=time_argument,
        metavar="ISO",
        help="only records dead-lettered before then",
    )
    for action in (dlq_inspect, dlq_replay):
        action.add_argument(
            "--reason", action="extend", nargs="+", metavar="R", help="error reasons"
        )
        action.add_argument(
            "--pipeline", action="extend", nargs="+", metavar="P", help="pipelines"
        )
    dlq_inspect.add_argument(
        "--sample", type=int, default=10, metavar="N", help="newest records shown"
    )
    dlq_inspect.add_argument(
        "--show-payloads",
        action="store_true",
        help="show sampled keys and values (UTF-8 text or hex, first 500 bytes)",
    )
    dlq_inspect.add_argument("--json", action="store_true", help="one JSON object")
    dlq_inspect.set_defaults(handler=_dlq, event_id=None, until=None)
    dlq_replay.add_argument(
        "--event-id", action="extend", nargs="+", metavar="ID", help="event ids"
    )
    dlq_replay.add_argument(
        "--execute",
        action="store_true",
        help="produce the records; without it nothing is written",
    )
    dlq_replay.set_defaults(handler=_dlq, last=None)
    return parser


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one subcommand; returns the process exit code."""
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so whatever a command started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = load_settings()
    except Exception as exc:  # any invalid setting ends here, explained
        print(f"streams: invalid settings: {exc}", file=sys.stderr)
        return 2
    secrets = [settings.llm.api_key.get_secret_value()] if settings.llm.api_key else []
    secrets += [
        value.get_secret_value()
        for value in settings.kafka.client_secret_config.values()
    ]
    configure_logging(
        args.log_level or settings.observability.log_level,
        settings.observability.log_format,
        secrets,
    )
    try:
        result: int = args.handler(args, settings)
    except StreamsError as exc:
        logger.error(  # noqa: TRY400  # the reason explains it; a traceback would bury it
            "command.failed command=%s reason=%s error=%s",
            args.command,
            exc.reason,
            exc,
        )
        print(f"streams {args.command}: {exc}", file=sys.stderr)
        return 1
    except KafkaException as exc:
        logger.error(  # noqa: TRY400  # the Kafka error explains it; no traceback
            "command.failed command=%s reason=kafka error=%s", args.command, exc
        )
        print(
            f"streams {args.command}: Kafka error: {exc.args[0].str()}", file=sys.stderr
        )
        return 1
    except OSError as exc:
        print(f"streams {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"streams {args.command}: interrupted", file=sys.stderr)
        return 130
    return result
