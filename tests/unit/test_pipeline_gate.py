"""Spend budgets and off-peak deferral: when a pipeline is closed, and until when."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.llm.pricing import PriceList
from streams.llm.spend_budget import SpendBudget
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.pipeline.gate import Closure, PipelineGate
from streams.settings import PeakWindow, PricingSettings

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday


class FakeTime:
    """A UTC clock that moves when someone sleeps."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def with_limits(pipeline: Pipeline, **fields: Any) -> Pipeline:
    return dataclasses.replace(
        pipeline, config=pipeline.config.model_copy(update=fields)
    )


def gate_for(
    clock: FakeTime, *pipelines: Pipeline, metrics: Metrics | None = None
) -> PipelineGate:
    return PipelineGate(
        pipelines,
        PriceList(PricingSettings()),
        clock=clock,
        sleep=clock.sleep,
        metrics=metrics,
    )


# -- the budget alone ------------------------------------------------------------


def test_the_budget_is_reached_at_its_amount_and_counts_per_calendar_hour() -> None:
    budget = SpendBudget(per_hour=1.0)
    at = MONDAY.replace(hour=14, minute=10)
    budget.record(0.6, at)
    assert budget.reached(at) is None
    assert budget.remaining_usd("hour", at) == pytest.approx(0.4)
    budget.record(0.4, at.replace(minute=59, second=59))
    assert budget.reached(at) == ("hour", MONDAY.replace(hour=15))
    assert budget.reached(MONDAY.replace(hour=15)) is None
    assert budget.remaining_usd("hour", MONDAY.replace(hour=15)) == pytest.approx(1.0)
    assert budget.remaining_usd("day", at) is None


def test_a_reached_day_outlasts_the_hour_rolling_over() -> None:
    budget = SpendBudget(per_hour=1.0, per_day=1.5)
    at = MONDAY.replace(hour=9)
    budget.record(1.0, at)
    budget.record(0.6, at.replace(hour=10))
    assert budget.reached(at.replace(hour=10)) == ("day", MONDAY + timedelta(days=1))
    assert budget.reached(MONDAY + timedelta(days=1)) is None


# -- the gate: budgets -----------------------------------------------------------


def test_a_pipeline_closes_when_its_hourly_budget_is_spent_and_reopens_next_hour(
    pipelines: dict[str, Pipeline],
) -> None:
    tickets = with_limits(pipelines["tickets"], budget_usd_per_hour=0.01)
    clock = FakeTime(MONDAY.replace(hour=12, minute=30))
    metrics = Metrics()
    gate = gate_for(clock, tickets, pipelines["emails"], metrics=metrics)
    value = metrics.registry.get_sample_value

    gate.record_spend("tickets", 0.004)
    assert gate.closure("tickets") is None
    assert value(
        "streams_budget_remaining_usd", {"pipeline": "tickets", "window": "hour"}
    ) == pytest.approx(0.006)
    gate.record_spend("tickets", 0.007)
    gate.record_spend("emails", 5.0)  # no budget: never closed

    assert gate.closure("tickets") == Closure("budget_hour", MONDAY.replace(hour=13))
    assert gate.closure("emails") is None
    labels = {"pipeline": "tickets", "reason": "budget_hour"}
    assert value("streams_pipeline_paused", labels) == 1
    assert value(
        "streams_budget_remaining_usd", {"pipeline": "tickets", "window": "hour"}
    ) == pytest.approx(0.0)
    assert value("streams_budget_usd", {"pipeline": "tickets", "window": "hour"}) == (
        pytest.approx(0.01)
    )

    clock.now = MONDAY.replace(hour=13)
    assert gate.closure("tickets") is None
    assert value("streams_pipeline_paused", labels) == 0
    assert value(
        "streams_budget_remaining_usd", {"pipeline": "tickets", "window": "hour"}
    ) == pytest.approx(0.01)


def test_a_waiting_call_sleeps_until_the_window_rolls_over(
    pipelines: dict[str, Pipeline],
) -> None:
    tickets = with_limits(pipelines["tickets"], budget_usd_per_hour=0.01)
    clock = FakeTime(MONDAY.replace(hour=12, minute=59, second=20))
    gate = gate_for(clock, tickets)
    gate.record_spend("tickets", 0.02)
    waited = asyncio.run(gate.wait_open("tickets"))
    assert waited == pytest.approx(40.0)
    assert clock.sleeps == [pytest.approx(30.0), pytest.approx(10.0)]
    assert clock.now == MONDAY.replace(hour=13)


def test_an_open_pipeline_does_not_wait(pipelines: dict[str, Pipeline]) -> None:
    clock = FakeTime(MONDAY.replace(hour=2))  # peak, but tickets is urgent
    gate = gate_for(clock, with_limits(pipelines["tickets"], budget_usd_per_day=1.0))
    assert asyncio.run(gate.wait_open("tickets")) == 0.0
    assert clock.sleeps == []


# -- the gate: off-peak deferral --------------------------------------------------


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (MONDAY.replace(hour=1), MONDAY.replace(hour=4)),
        (MONDAY.replace(hour=3, minute=59), MONDAY.replace(hour=4)),
        (MONDAY.replace(hour=6, minute=30), MONDAY.replace(hour=10)),
        (MONDAY.replace(hour=4), None),
        (MONDAY.replace(hour=0, minute=59), None),
        (MONDAY.replace(hour=10), None),
        (MONDAY.replace(hour=2) + timedelta(days=5), None),  # Saturday
    ],
    ids=[
        "peak-start",
        "peak-last-minute",
        "second-peak",
        "end-exclusive",
        "before",
        "after",
        "weekend",
    ],
)
def test_a_deferrable_pipeline_waits_out_the_peak_hours(
    pipelines: dict[str, Pipeline], now: datetime, until: datetime | None
) -> None:
    deferred = with_limits(pipelines["crm"], deferrable=True)
    gate = gate_for(FakeTime(now), deferred)
    expected = Closure("peak_hours", until) if until is not None else None
    assert gate.closure("crm") == expected


def test_an_urgent_pipeline_is_never_deferred(pipelines: dict[str, Pipeline]) -> None:
    gate = gate_for(FakeTime(MONDAY.replace(hour=2)), pipelines["tickets"])
    assert not pipelines["tickets"].config.deferrable
    assert gate.closure("tickets") is None
    assert not gate.active


def test_adjacent_peak_windows_are_one_peak(pipelines: dict[str, Pipeline]) -> None:
    prices = PriceList(
        PricingSettings(
            peak_windows=[
                PeakWindow(start="01:00", end="04:00"),
                PeakWindow(start="04:00", end="05:30"),
            ]
        )
    )
    clock = FakeTime(MONDAY.replace(hour=2))
    deferred = with_limits(pipelines["crm"], deferrable=True)
    gate = PipelineGate([deferred], prices, clock=clock, sleep=clock.sleep)
    assert gate.closure("crm") == Closure(
        "peak_hours", MONDAY.replace(hour=5, minute=30)
    )


def test_a_deferred_pipeline_over_budget_waits_for_the_later_reopening(
    pipelines: dict[str, Pipeline],
) -> None:
    crm = with_limits(pipelines["crm"], deferrable=True, budget_usd_per_hour=0.01)
    clock = FakeTime(MONDAY.replace(hour=6, minute=30))
    metrics = Metrics()
    gate = gate_for(clock, crm, metrics=metrics)
    gate.record_spend("crm", 1.0)
    assert gate.closure("crm") == Closure("peak_hours", MONDAY.replace(hour=10))
    clock.now = MONDAY.replace(hour=10)
    assert gate.closure("crm") is None
    clock.now = MONDAY.replace(hour=10, minute=15)
    gate.record_spend("crm", 1.0)
    assert gate.closure("crm") == Closure("budget_hour", MONDAY.replace(hour=11))
    value = metrics.registry.get_sample_value
    assert not value(
        "streams_pipeline_paused", {"pipeline": "crm", "reason": "peak_hours"}
    )
    assert value(
        "streams_pipeline_paused", {"pipeline": "crm", "reason": "budget_hour"}
    )
