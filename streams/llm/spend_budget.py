"""A spend budget per calendar UTC hour and day.

Windows are calendar windows in UTC: the hour 14:00:00-14:59:59 and the day
00:00-24:00. Spend counts towards the window in which it was recorded; when a
new hour (day) begins, that window's spend starts again at zero. This is easy
to explain and to check against a bill ("at most X per clock hour"); the price
is that up to two budgets' worth can be spent within one hour across a
boundary (the end of one window and the start of the next).

A window is *reached* once its spend is at or above its budget; the pipeline
is then closed until the window rolls over. Calls already in flight when the
budget is reached still finish and are counted, so the spend can exceed the
budget by the cost of up to the pipeline's ``max_concurrency`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

WINDOWS = ("hour", "day")


def window_start(window: str, at: datetime) -> datetime:
    """The start of the calendar UTC window that contains ``at``."""
    utc = at.astimezone(UTC)
    if window == "hour":
        return utc.replace(minute=0, second=0, microsecond=0)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def window_end(window: str, at: datetime) -> datetime:
    """The end (exclusive) of the calendar UTC window that contains ``at``."""
    length = timedelta(hours=1) if window == "hour" else timedelta(days=1)
    return window_start(window, at) + length


@dataclass
class _Window:
    budget_usd: float
    started: datetime | None = None
    spent_usd: float = 0.0

    def roll(self, name: str, at: datetime) -> None:
        start = window_start(name, at)
        if self.started != start:
            self.started = start
            self.spent_usd = 0.0


@dataclass
class SpendBudget:
    """One pipeline's budgets, in US dollars per hour and per day.

    Args:
        per_hour: Budget of each calendar UTC hour; None for no limit.
        per_day: Budget of each calendar UTC day; None for no limit.
    """

    per_hour: float | None = None
    per_day: float | None = None
    _windows: dict[str, _Window] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for name, budget in (("hour", self.per_hour), ("day", self.per_day)):
            if budget is not None:
                self._windows[name] = _Window(budget)

    @property
    def limited(self) -> bool:
        """Whether any budget is set."""
        return bool(self._windows)

    def windows(self) -> tuple[str, ...]:
        """The names of the windows with a budget."""
        return tuple(self._windows)

    def record(self, cost_usd: float, at: datetime) -> None:
        """Counts ``cost_usd`` spent at ``at`` towards every window."""
        for name, window in self._windows.items():
            window.roll(name, at)
            window.spent_usd += cost_usd

    def remaining_usd(self, window: str, at: datetime) -> float | None:
        """Budget left in the window at ``at`` (never below 0); None if unset."""
        state = self._windows.get(window)
        if state is None:
            return None
        state.roll(window, at)
        return max(0.0, state.budget_usd - state.spent_usd)

    def reached(self, at: datetime) -> tuple[str, datetime] | None:
        """The reached window that reopens last, with when it reopens; or None.

        When both windows are reached, the day decides: the hour rolling over
        does not reopen the pipeline.
        """
        found: tuple[str, datetime] | None = None
        for name, state in self._windows.items():
            state.roll(name, at)
            if state.spent_usd >= state.budget_usd:
                reopens = window_end(name, at)
                if found is None or reopens > found[1]:
                    found = (name, reopens)
        return found
