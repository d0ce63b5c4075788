"""Whether a pipeline may call the model now, and if not, why and until when.

A pipeline is closed while

* one of its spend budgets is reached (``budget_hour``, ``budget_day``; see
  :mod:`streams.llm.spend_budget`), until that calendar UTC window rolls over;
* it is ``deferrable`` and the provider's peak hours are on (``peak_hours``;
  the windows are the ``pricing.peak_windows`` settings), until the peak ends.
  Pipelines that are not deferrable are never deferred.

Two parts of the worker ask the same question: the enricher waits in
:meth:`PipelineGate.wait_open` before each attempt, and the poll loop pauses
the partitions of closed pipelines (polling goes on, so the worker stays in
its group) and resumes them once the gate opens. Records already received
wait, uncommitted; nothing is dead-lettered because a pipeline is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.llm.pricing import PriceList
from streams.llm.spend_budget import SpendBudget
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline

logger = logging.getLogger(__name__)

CLOSURE_REASONS = ("budget_hour", "budget_day", "peak_hours")
MAX_WAIT_S = 30.0
"""Longest single sleep of a waiting call; it then asks again, so a changed
clock or window never strands it."""


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Closure:
    """Why a pipeline may not call now, and when it may again."""

    reason: str
    """One of :data:`CLOSURE_REASONS`."""
    until: datetime


class PipelineGate:
    """Answers, per pipeline, whether its LLM calls may go out now.

    Args:
        pipelines: The pipelines; their budgets and ``deferrable`` are read.
        prices: The price list, whose peak windows defer deferrable pipelines.
        clock: The current UTC time; injectable for tests.
        sleep: Waits; injectable for tests.
        metrics: Where to publish budgets and closures; none when None.
    """

    def __init__(
        self,
        pipelines: Iterable[Pipeline],
        prices: PriceList,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        pipelines = list(pipelines)
        self._prices = prices
        self._clock = clock
        self._sleep = sleep
        self._metrics = metrics
        self._deferrable = {p.name for p in pipelines if p.config.deferrable}
        self._budgets = {
            p.name: SpendBudget(
                p.config.budget_usd_per_hour, p.config.budget_usd_per_day
            )
            for p in pipelines
        }
        self._closed: dict[str, Closure] = {}
        for name, budget in self._budgets.items():
            self._publish_budget(name, budget, self._clock())
            if metrics is None:
                continue
            for reason in CLOSURE_REASONS:
                metrics.pipeline_paused.labels(name, reason).set(0)
            for window, usd in (("hour", budget.per_hour), ("day", budget.per_day)):
                if usd is not None:
                    metrics.budget.labels(name, window).set(usd)

    @property
    def active(self) -> bool:
        """Whether any pipeline can ever be closed (a budget or deferral is set)."""
        return bool(self._deferrable) or any(
            budget.limited for budget in self._budgets.values()
        )

    def closure(self, pipeline: str) -> Closure | None:
        """Why ``pipeline`` may not call now, or None when it may."""
        now = self._clock()
        found: Closure | None = None
        budget = self._budgets.get(pipeline)
        if budget is not None and budget.limited:
            reached = budget.reached(now)
            if reached is not None:
                found = Closure(f"budget_{reached[0]}", reached[1])
            self._publish_budget(pipeline, budget, now)
        if pipeline in self._deferrable:
            peak_ends = self._prices.peak_ends(now)
            if peak_ends is not None and (found is None or peak_ends > found.until):
                found = Closure("peak_hours", peak_ends)
        self._note(pipeline, found)
        return found

    def record_spend(self, pipeline: str, cost_usd: float) -> None:
        """Counts one attempt's cost towards the pipeline's budgets."""
        budget = self._budgets.get(pipeline)
        if budget is None or not budget.limited or cost_usd <= 0:
            return
        now = self._clock()
        budget.record(cost_usd, now)
        self._publish_budget(pipeline, budget, now)

    async def wait_open(self, pipeline: str) -> float:
        """Waits until ``pipeline`` may call; returns the seconds waited."""
        waited = 0.0
        while (closure := self.closure(pipeline)) is not None:
            remaining = (closure.until - self._clock()).total_seconds()
            wait_s = min(MAX_WAIT_S, max(0.05, remaining))
            await self._sleep(wait_s)
            waited += wait_s
        return waited

    def _note(self, pipeline: str, closure: Closure | None) -> None:
        previous = self._closed.get(pipeline)
        if previous == closure:
            return
        if closure is None:
            del self._closed[pipeline]
            logger.info("pipeline.reopened pipeline=%s", pipeline)
        else:
            self._closed[pipeline] = closure
            logger.warning(
                "pipeline.closed pipeline=%s reason=%s until=%s "
                "consequence=calls_wait_partitions_paused_records_uncommitted",
                pipeline,
                closure.reason,
                closure.until.isoformat(timespec="seconds"),
            )
        if self._metrics is not None:
            paused = self._metrics.pipeline_paused
            if previous is not None:
                paused.labels(pipeline, previous.reason).set(0)
            if closure is not None:
                paused.labels(pipeline, closure.reason).set(1)

    def _publish_budget(
        self, pipeline: str, budget: SpendBudget, now: datetime
    ) -> None:
        if self._metrics is None:
            return
        for window in budget.windows():
            remaining = budget.remaining_usd(window, now)
            assert remaining is not None  # a listed window has a budget
            self._metrics.budget_remaining.labels(pipeline, window).set(remaining)
