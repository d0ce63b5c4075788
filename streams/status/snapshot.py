"""Two readings into rates, per pipeline and in total."""

import logging
from dataclasses import dataclass

from streams.status.readings import CIRCUIT_STATES, PipelineReading, Reading

logger = logging.getLogger(__name__)


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
NUMBER_COLUMNS = ("lag", "in/s", "out/s", "DLQ/s", "DLQ %", "retry/s", "USD", "USD/h")
