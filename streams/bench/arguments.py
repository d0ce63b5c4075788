"""The ``streams bench`` command line: its options, and turning them into a run.

``--quick`` replaces the defaults of the counts, levels and memory row (see
:meth:`BenchOptions.quick_defaults`); an option given explicitly wins over
both.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.bench.names import OURS_MEMORY, ROW_NAMES

if TYPE_CHECKING:
    from streams.settings import Settings


def _concurrency_list(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text}") from exc
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be positive")
    return levels


def _setting_argument(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name.startswith("STREAMS_"):
        raise argparse.ArgumentTypeError(f"expected STREAMS_NAME=VALUE, got {text}")
    return name, value


def run_bench_command(args: argparse.Namespace, settings: Settings) -> int:
    """Runs ``streams bench``; non-zero when no row measured anything."""
    from streams.bench.command import run_bench
    from streams.bench.plan import BenchOptions

    values: dict[str, object] = {"quick": args.quick}
    if args.quick:
        values.update(BenchOptions.quick_defaults())
    given = {
        "concurrency": args.concurrency,
        "latency_mean_ms": args.latency_mean_ms,
        "latency_sigma": args.latency_sigma,
        "rounds": args.rounds,
        "naive_events": args.naive_events,
        "no_llm_events": args.no_llm_events,
        "memory_backlog": args.memory_backlog,
        "memory_duration_s": args.memory_duration_s,
        "partitions": args.partitions,
        "simulator_processes": args.simulator_processes,
        "worker_settings": tuple(args.worker_setting) if args.worker_setting else None,
        "rows": tuple(args.rows) if args.rows else None,
    }
    values.update({key: value for key, value in given.items() if value is not None})
    report = run_bench(
        settings,
        BenchOptions(**values),  # type: ignore[arg-type]  # checked by argparse
        work_dir=args.work_dir,
        markdown=args.markdown,
        json_path=args.json,
        plot=args.plot,
    )
    return 0 if any(row.events_per_s for row in report.rows) else 1


def add_bench_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Adds ``bench`` and its options to the ``streams`` subcommands."""
    bench = commands.add_parser(
        "bench",
        help="throughput, latency, CPU and memory of ours against naive, faust "
        "and pass-through (see docs/benchmark.md)",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="small counts and levels 16,256 (a few minutes), for routine checks",
    )
    bench.add_argument(
        "--concurrency",
        type=_concurrency_list,
        default=None,
        metavar="LIST",
        help="comma-separated levels for ours and faust (default 16,64,256,512)",
    )
    bench.add_argument(
        "--latency-mean-ms",
        type=float,
        default=None,
        help="simulator mean latency (default 500)",
    )
    bench.add_argument(
        "--latency-sigma", type=float, default=None, help="lognormal sigma (0.5)"
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="events per unit of concurrency in LLM rows (default 40, quick 10)",
    )
    bench.add_argument(
        "--naive-events", type=int, default=None, help="events of the naive row"
    )
    bench.add_argument(
        "--no-llm-events",
        type=int,
        default=None,
        help="events of the pass-through and cache-hit rows (default 50000)",
    )
    bench.add_argument(
        "--memory-backlog",
        type=int,
        default=None,
        help="backlog of the memory row (default 1000000, quick 20000; 0 skips it)",
    )
    bench.add_argument(
        "--memory-duration-s",
        type=float,
        default=None,
        help="how long the memory row runs (default 90, quick 20)",
    )
    bench.add_argument(
        "--partitions", type=int, default=None, help="partitions per input topic (3)"
    )
    bench.add_argument(
        "--simulator-processes",
        type=int,
        default=None,
        help="simulator processes sharing one port (SO_REUSEPORT), for machines "
        "where one cannot answer C/L requests per second (default 1)",
    )
    bench.add_argument(
        "--worker-setting",
        type=_setting_argument,
        action="append",
        default=None,
        metavar="STREAMS_X=VALUE",
        help="a setting for our worker in every ours row, e.g. "
        "STREAMS_WORKER__MAX_BUFFERED=8000 (repeatable; reported in the JSON)",
    )
    bench.add_argument(
        "--rows",
        nargs="+",
        choices=[*ROW_NAMES, OURS_MEMORY],
        default=None,
        help="only these rows",
    )
    bench.add_argument("--markdown", type=Path, default=None, metavar="PATH")
    bench.add_argument("--json", type=Path, default=None, metavar="PATH")
    bench.add_argument("--plot", type=Path, default=None, metavar="PATH")
    bench.add_argument(
        "--work-dir",
        type=Path,
        default=Path("out/bench"),
        help="contender logs and pipeline copies (default out/bench)",
    )
    bench.set_defaults(handler=run_bench_command)
