"""What a call costs, from the provider's price list.

cost_usd = (hit x price.cache_hit + miss x price.cache_miss
            + completion x price.output) / 1,000,000 x multiplier

where the multiplier is ``peak_multiplier`` inside a peak window (UTC, on the
listed weekdays, start inclusive, end exclusive) and 1 otherwise. A model
missing from the table costs nothing and is reported once as a warning, so a
new model never stops the pipeline but its spend is visibly unknown.

For work that may run at any hour, ``average_multiplier`` is the multiplier
averaged over the minutes of a week: with two-times peak hours Mon-Fri
01:00-04:00 and 06:00-10:00 UTC that is (35 h x 2 + 133 h x 1) / 168 h,
about 1.21.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from streams.llm.usage import Usage
from streams.settings import PricingSettings

logger = logging.getLogger(__name__)

_MINUTES_PER_WEEK = 7 * 24 * 60
_A_MONDAY = datetime(2026, 11, 2, tzinfo=UTC)


def _parse_clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class PriceList:
    """Prices per model and the peak-hour rule."""

    def __init__(self, settings: PricingSettings) -> None:
        self._settings = settings
        self._windows = [
            (set(window.weekdays), _parse_clock(window.start), _parse_clock(window.end))
            for window in settings.peak_windows
        ]
        self._unknown_models: set[str] = set()

    def is_peak(self, at: datetime) -> bool:
        """Whether ``at`` falls in a peak window."""
        utc = at.astimezone(UTC)
        clock = utc.time()
        return any(
            utc.weekday() in weekdays and start <= clock < end
            for weekdays, start, end in self._windows
        )

    def average_multiplier(self) -> float:
        """The peak multiplier averaged over every minute of a week."""
        peak_minutes = sum(
            self.is_peak(_A_MONDAY + timedelta(minutes=minute))
            for minute in range(_MINUTES_PER_WEEK)
        )
        extra = (self._settings.peak_multiplier - 1.0) * peak_minutes
        return 1.0 + extra / _MINUTES_PER_WEEK

    def peak_ends(self, at: datetime) -> datetime | None:
        """When the peak that ``at`` falls in ends; None when ``at`` is off-peak.

        Adjacent or overlapping windows count as one peak: the search steps
        from one window's end to the next, at most a week of steps.
        """
        moment = at.astimezone(UTC)
        if not self.is_peak(moment):
            return None
        for _ in range(7 * 24):
            ends = [
                datetime.combine(moment.date(), end, UTC)
                for weekdays, start, end in self._windows
                if moment.weekday() in weekdays and start <= moment.time() < end
            ]
            if not ends:
                return moment
            moment = max(ends)
        return moment

    def base_cost_usd(self, model: str, usage: Usage) -> float:
        """The off-peak price of ``usage`` on ``model`` (multiplier 1)."""
        price = self._settings.models.get(model)
        if price is None:
            if model not in self._unknown_models:
                self._unknown_models.add(model)
                logger.warning("pricing.unknown_model model=%s cost_reported=0", model)
            return 0.0
        return (
            usage.prompt_cache_hit_tokens * price.cache_hit
            + usage.prompt_cache_miss_tokens * price.cache_miss
            + usage.completion_tokens * price.output
        ) / 1_000_000

    def cost_usd(self, model: str, usage: Usage, at: datetime | None = None) -> float:
        """The price of ``usage`` on ``model`` at time ``at`` (now by default)."""
        base = self.base_cost_usd(model, usage)
        multiplier = (
            self._settings.peak_multiplier
            if self.is_peak(at or datetime.now(UTC))
            else 1.0
        )
        return base * multiplier
