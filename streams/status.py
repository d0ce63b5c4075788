"""``streams status``: a terminal view of one worker, read from its ``/metrics``.

The view is built in three steps, each usable alone:

* reading: :func:`read_metrics` parses the Prometheus text format into a
  :class:`Reading`, the counter totals and gauges of one instant;
* comparing: :func:`build_snapshot` turns two readings into rates. A rate is
  the increase of a counter divided by the seconds between the readings; a
  counter that went down was reset by a restart, so its whole current value
  is the increase;
* showing: :func:`render_snapshot` builds the rich table.

:func:`scrape` fetches the text and :func:`watch_status` repeats the three
steps every interval. Lag is the sum of ``streams_consumer_lag_records`` over
the partitions of a pipeline's input topic that this worker owns, so with
several workers each shows its own share.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.errors import StreamsError
from streams.pipeline.config import PipelineConfig

logger = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9108
SCRAPE_TIMEOUT_S = 5.0
MIN_WATCH_INTERVAL_S = 0.5

# streams_circuit_state values, as streams.service sets them.
CIRCUIT_STATES = {0: "closed", 1: "half open", 2: "open"}
_CIRCUIT_STYLES = {"closed": "green", "half open": "yellow", "open": "bold red"}

# Per-pipeline counters, by the field of PipelineReading they fill.
_PIPELINE_COUNTERS = {
    "consumed": "streams_records_consumed_total",
    "enriched": "streams_records_enriched_total",
    "dead_lettered": "streams_records_dead_lettered_total",
    "retries": "streams_llm_retries_total",
    "cost_usd": "streams_llm_cost_usd_total",
}

Samples = dict[str, list[tuple[dict[str, str], float]]]


class MetricsUnavailableError(StreamsError):
    """The metrics endpoint did not answer, or not with Prometheus text."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="metrics_unavailable")


# -- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineReading:
    """One pipeline's counter totals and lag at one instant.

    ``lag`` is None when the worker owns no partition of the pipeline's topic.
    """

    topics: tuple[str, ...] = ()
    lag: float | None = None
    consumed: float = 0.0
    enriched: float = 0.0
    dead_lettered: float = 0.0
    retries: float = 0.0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Reading:
    """Everything the view needs from one scrape."""

    taken_at: float
    pipelines: dict[str, PipelineReading]
    in_flight: float = 0.0
    buffered: float = 0.0
    buffered_limit: float = 0.0
    partitions_paused: float = 0.0
    worker_up: bool = False
    circuits: dict[str, float] = field(default_factory=dict)


def read_metrics(
    text: str,
    *,
    taken_at: float,
    topic_pipelines: Mapping[str, str] | None = None,
) -> Reading:
    """Parses a ``/metrics`` body into a :class:`Reading`.

    Args:
        text: The Prometheus text exposition of one worker.
        taken_at: When it was read, in seconds of a monotonic clock.
        topic_pipelines: Input topic to pipeline name, from the local pipeline
            files; the worker's own ``streams_records_consumed_total`` labels
            win, and a topic known to neither is shown under its own name.

    Returns:
        The reading.

    Raises:
        MetricsUnavailableError: The text is not the Prometheus format.
    """
    samples = _samples_by_name(text)

    pipeline_of = dict(topic_pipelines or {})
    for labels, _value in samples.get("streams_records_consumed_total", []):
        if "topic" in labels and "pipeline" in labels:
            pipeline_of[labels["topic"]] = labels["pipeline"]

    names = set(pipeline_of.values())
    for metric in _PIPELINE_COUNTERS.values():
        names.update(labels["pipeline"] for labels, _ in samples.get(metric, []))
    lag_by_topic = _sum_by_label(samples, "streams_consumer_lag_records", "topic")
    names.update(pipeline_of.get(topic, topic) for topic in lag_by_topic)

    counters = {
        key: _sum_by_label(samples, metric, "pipeline")
        for key, metric in _PIPELINE_COUNTERS.items()
    }
    pipelines: dict[str, PipelineReading] = {}
    for name in sorted(names):
        topics = tuple(sorted(t for t, p in pipeline_of.items() if p == name))
        if not topics and name in lag_by_topic:
            topics = (name,)
        owned = [lag_by_topic[t] for t in topics if t in lag_by_topic]
        pipelines[name] = PipelineReading(
            topics=topics,
            lag=sum(owned) if owned else None,
            **{key: sums.get(name, 0.0) for key, sums in counters.items()},
        )

    return Reading(
        taken_at=taken_at,
        pipelines=pipelines,
        in_flight=_total(samples, "streams_records_in_flight"),
        buffered=_total(samples, "streams_records_buffered"),
        buffered_limit=_total(samples, "streams_records_buffered_limit"),
        partitions_paused=_total(samples, "streams_partitions_paused"),
        worker_up=_total(samples, "streams_worker_up") >= 1,
        circuits=_sum_by_label(samples, "streams_circuit_state", "endpoint"),
    )


def _samples_by_name(text: str) -> Samples:
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(
                    (dict(sample.labels), float(sample.value))
                )
    except ValueError as exc:
        raise MetricsUnavailableError(
            f"the answer is not Prometheus text: {exc}"
        ) from exc
    return samples


def _total(samples: Samples, name: str) -> float:
    return sum(value for _labels, value in samples.get(name, []))


def _sum_by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    sums: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        key = labels.get(label)
        if key is not None:
            sums[key] = sums.get(key, 0.0) + value
    return sums


def configured_topics(pipelines_dir: Path) -> dict[str, str]:
    """Input topic to pipeline name, from the pipeline files of a folder.

    Only names and topics are read (no schemas are compiled); a file that
    cannot be read is left out, because the worker's metrics name the
    pipelines of every topic it has consumed from anyway.
    """
    topics: dict[str, str] = {}
    for path in sorted(pipelines_dir.glob("*.yaml")):
        try:
            config = PipelineConfig.model_validate(yaml.safe_load(path.read_text()))
        except (OSError, yaml.YAMLError, ValidationError):
            logger.debug("status.pipeline_file_skipped path=%s", path)
            continue
        topics[config.input_topic] = config.name
    return topics


# -- comparing -----------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStatus:
    """One row of the view: a pipeline's lag, rates and spend.

    Rates are per second over the interval between two readings, None after
    a single reading. ``dead_letter_share`` is the dead-lettered share of the
    records finished in the interval, None when none finished.
    """

    name: str
    topics: tuple[str, ...]
    lag: float | None
    consumed_per_s: float | None
    enriched_per_s: float | None
    dead_lettered_per_s: float | None
    dead_letter_share: float | None
    retries_per_s: float | None
    cost_usd: float
    cost_usd_per_hour: float | None


@dataclass(frozen=True)
class StatusSnapshot:
    """What the view shows at one moment."""

    url: str
    interval_s: float | None
    pipelines: tuple[PipelineStatus, ...]
    total: PipelineStatus
    in_flight: float
    buffered: float
    buffered_limit: float
    partitions_paused: float
    worker_up: bool
    circuits: dict[str, str]


def build_snapshot(
    current: Reading, previous: Reading | None = None, *, url: str
) -> StatusSnapshot:
    """Compares two readings of one worker.

    Args:
        current: The latest reading.
        previous: An earlier reading; without one, rates are None.
        url: The endpoint, for the title.

    Returns:
        The snapshot, with a row per pipeline and one for all of them.
    """
    elapsed = None
    if previous is not None and current.taken_at > previous.taken_at:
        elapsed = current.taken_at - previous.taken_at

    rows = []
    for name, now in current.pipelines.items():
        before = previous.pipelines.get(name) if previous is not None else None
        rows.append(_pipeline_status(name, now, before, elapsed))

    total = _total_status(rows)

    return StatusSnapshot(
        url=url,
        interval_s=elapsed,
        pipelines=tuple(rows),
        total=total,
        in_flight=current.in_flight,
        buffered=current.buffered,
        buffered_limit=current.buffered_limit,
        partitions_paused=current.partitions_paused,
        worker_up=current.worker_up,
        circuits={
            endpoint: CIRCUIT_STATES.get(int(value), f"unknown ({value:g})")
            for endpoint, value in sorted(current.circuits.items())
        },
    )


def _pipeline_status(
    name: str,
    now: PipelineReading,
    before: PipelineReading | None,
    elapsed: float | None,
) -> PipelineStatus:
    def rate(key: str) -> float | None:
        if elapsed is None:
            return None
        current = float(getattr(now, key))
        earlier = float(getattr(before, key)) if before is not None else 0.0
        increase = current - earlier if current >= earlier else current
        return increase / elapsed

    enriched = rate("enriched")
    dead_lettered = rate("dead_lettered")
    share = None
    if enriched is not None and dead_lettered is not None:
        finished = enriched + dead_lettered
        share = dead_lettered / finished if finished > 0 else None
    cost_per_s = rate("cost_usd")

    return PipelineStatus(
        name=name,
        topics=now.topics,
        lag=now.lag,
        consumed_per_s=rate("consumed"),
        enriched_per_s=enriched,
        dead_lettered_per_s=dead_lettered,
        dead_letter_share=share,
        retries_per_s=rate("retries"),
        cost_usd=now.cost_usd,
        cost_usd_per_hour=cost_per_s * 3600 if cost_per_s is not None else None,
    )


def _total_status(rows: list[PipelineStatus]) -> PipelineStatus:
    """The "all" row: sums of the pipelines' rows, and the share recomputed."""

    def add(values: list[float | None]) -> float | None:
        known = [value for value in values if value is not None]
        return sum(known) if known else None

    enriched = add([row.enriched_per_s for row in rows])
    dead_lettered = add([row.dead_lettered_per_s for row in rows])
    finished = (enriched or 0.0) + (dead_lettered or 0.0)
    return PipelineStatus(
        name="all",
        topics=tuple(sorted(topic for row in rows for topic in row.topics)),
        lag=add([row.lag for row in rows]),
        consumed_per_s=add([row.consumed_per_s for row in rows]),
        enriched_per_s=enriched,
        dead_lettered_per_s=dead_lettered,
        dead_letter_share=(dead_lettered or 0.0) / finished if finished > 0 else None,
        retries_per_s=add([row.retries_per_s for row in rows]),
        cost_usd=sum(row.cost_usd for row in rows),
        cost_usd_per_hour=add([row.cost_usd_per_hour for row in rows]),
    )


# -- showing -------------------------------------------------------------------

# The numeric columns, in the order of _cells: lag in records; consumed
# ("in") and enriched ("out") records per second; dead-lettered records per
# second and their share of the records finished; retries per second; spend
# so far and per hour at the current rate. Short, so the table fits 80 columns.
_NUMBER_COLUMNS = ("lag", "in/s", "out/s", "DLQ/s", "DLQ %", "retry/s", "USD", "USD/h")


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
    for heading in _NUMBER_COLUMNS:
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


def default_url(metrics_port: int | None) -> str:
    """The local worker's endpoint: the configured metrics port, else 9108."""
    return f"http://127.0.0.1:{metrics_port or DEFAULT_METRICS_PORT}/metrics"


def metrics_url(url: str) -> str:
    """The endpoint to scrape: ``/metrics`` when ``url`` names no path.

    Raises:
        MetricsUnavailableError: The URL is not http or https.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetricsUnavailableError(
            f"not an http(s) URL: {url!r}; e.g. http://127.0.0.1:9108"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urlunsplit(parts)


def scrape(url: str, *, timeout_s: float = SCRAPE_TIMEOUT_S) -> str:
    """Fetches the text of a metrics endpoint.

    Raises:
        MetricsUnavailableError: No answer within ``timeout_s``, a refused
            connection, or an HTTP error status.
    """
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise MetricsUnavailableError(
            f"{url} answered HTTP {exc.code} {exc.reason}"
        ) from exc
    except urllib.error.URLError as exc:
        raise MetricsUnavailableError(
            f"no answer from {url}: {exc.reason}; is `streams run` serving "
            "metrics there (STREAMS_OBSERVABILITY__METRICS_PORT)?"
        ) from exc
    except (TimeoutError, OSError) as exc:
        raise MetricsUnavailableError(f"no answer from {url}: {exc}") from exc
    return body.decode("utf-8", errors="replace")


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
