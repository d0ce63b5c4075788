"""Showing a snapshot as a rich table, once or refreshing."""

import logging
import time
from collections.abc import Callable, Mapping

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.status.readings import (
    MetricsUnavailableError,
    Reading,
    metrics_url,
    read_metrics,
    scrape,
)
from streams.status.snapshot import (
    NUMBER_COLUMNS,
    PipelineStatus,
    StatusSnapshot,
    build_snapshot,
)

logger = logging.getLogger(__name__)

MIN_WATCH_INTERVAL_S = 0.5
_CIRCUIT_STYLES = {"closed": "green", "half open": "yellow", "open": "bold red"}


def render_snapshot(
    snapshot: StatusSnapshot, *, problem: str | None = None
) -> RenderableType:
    """The view: a table of pipelines, a line about the worker, its circuits.

    Args:
        snapshot: What to show.
        problem: Shown in red at the bottom, e.g. a failed refresh.
    """
    interval = (
        f"rates over {snapshot.interval_s:.1f} s"
        if snapshot.interval_s is not None
        else "rates need a second scrape"
    )
    table = Table(
        title=f"streams status  {snapshot.url}",
        caption=interval,
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("pipeline", no_wrap=True)
    for heading in NUMBER_COLUMNS:
        table.add_column(heading, justify="right", no_wrap=True)

    for row in snapshot.pipelines:
        table.add_row(*_cells(row))
    table.add_section()
    table.add_row(*_cells(snapshot.total), style="bold")

    worker = Text("worker ")
    if snapshot.worker_up:
        worker.append("up", "green")
    else:
        worker.append("down", "bold red")
    worker.append(f"  in flight {snapshot.in_flight:.0f}")
    worker.append(f"  buffered {snapshot.buffered:.0f}/{snapshot.buffered_limit:.0f}")
    worker.append(f"  paused partitions {snapshot.partitions_paused:.0f}")

    parts: list[RenderableType] = [table, worker]
    for endpoint, state in snapshot.circuits.items():
        circuit = Text(f"circuit {endpoint} ")
        circuit.append(state, _CIRCUIT_STYLES.get(state, "bold red"))
        parts.append(circuit)
    if problem is not None:
        parts.append(Text(problem, style="bold red"))
    return Group(*parts)


def _cells(row: PipelineStatus) -> list[str]:
    return [
        row.name,
        _number(row.lag, "{:.0f}"),
        _number(row.consumed_per_s, "{:.1f}"),
        _number(row.enriched_per_s, "{:.1f}"),
        _number(row.dead_lettered_per_s, "{:.1f}"),
        _number(row.dead_letter_share, "{:.1%}"),
        _number(row.retries_per_s, "{:.1f}"),
        f"{row.cost_usd:.4f}",
        _number(row.cost_usd_per_hour, "{:.4f}"),
    ]


def _number(value: float | None, template: str) -> str:
    return "-" if value is None else template.format(value)


# -- fetching and the loop -------------------------------------------------------


def watch_status(
    url: str,
    *,
    interval_s: float,
    once: bool,
    topic_pipelines: Mapping[str, str] | None = None,
    console: Console | None = None,
    fetch: Callable[[str], str] = scrape,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Shows the worker's status until interrupted, or once.

    Args:
        url: The worker's metrics endpoint (see :func:`metrics_url`).
        interval_s: Seconds between scrapes; at least
            :data:`MIN_WATCH_INTERVAL_S` while watching.
        once: Print one table and return. It compares two scrapes taken
            ``interval_s`` apart, so rates are real; with 0 it scrapes once
            and shows totals and gauges only.
        topic_pipelines: Input topic to pipeline name (see
            :func:`configured_topics`).
        console: Where to draw; standard output by default.
        fetch: Returns the endpoint's text; :func:`scrape` by default.
        clock: Monotonic seconds, for rates.
        sleep: Waits between scrapes.

    Returns:
        The exit code: 0.

    Raises:
        MetricsUnavailableError: The first scrape failed. Later failures are
            shown under the last table while the view keeps retrying.
    """
    console = console or Console()
    url = metrics_url(url)

    def read() -> Reading:
        return read_metrics(
            fetch(url), taken_at=clock(), topic_pipelines=topic_pipelines
        )

    previous = read()
    if once:
        current = previous
        if interval_s > 0:
            sleep(interval_s)
            current = read()
        snapshot = build_snapshot(current, previous, url=url)
        console.print(render_snapshot(snapshot))
        return 0

    interval_s = max(interval_s, MIN_WATCH_INTERVAL_S)
    snapshot = build_snapshot(previous, url=url)
    try:
        with Live(
            render_snapshot(snapshot), console=console, auto_refresh=False
        ) as live:
            while True:
                sleep(interval_s)
                try:
                    current = read()
                except MetricsUnavailableError as exc:
                    live.update(render_snapshot(snapshot, problem=str(exc)))
                    live.refresh()
                    continue
                snapshot = build_snapshot(current, previous, url=url)
                previous = current
                live.update(render_snapshot(snapshot))
                live.refresh()
    except KeyboardInterrupt:
        return 0
