"""Deciding, request by request, which fault (if any) to inject.

The decision is a pure function of the settings, the time elapsed since they
took effect, and one uniform draw in ``[0, 1)`` that the server derives from
the seed and the request's sequence number; the same seed and request order
therefore give the same faults.
"""

from __future__ import annotations

import logging

from streams.simulator.config import FaultSettings
from streams.simulator.fault_catalogue import TRANSIENT_KINDS, FaultKind

logger = logging.getLogger(__name__)


def fault_rates(settings: FaultSettings, elapsed_s: float) -> dict[FaultKind, float]:
    """Return the probability of each fault kind at a moment.

    Args:
        settings: The fault settings in effect.
        elapsed_s: Seconds since the settings took effect.

    Returns:
        Probability per kind, before any scaling; kinds at zero are left out.
    """
    rates: dict[FaultKind, float] = {}
    for kind, rate in settings.rates.items():
        rates[kind] = rates.get(kind, 0.0) + rate
    for kind in TRANSIENT_KINDS:
        share = settings.error_rate / len(TRANSIENT_KINDS)
        rates[kind] = rates.get(kind, 0.0) + share
    for window in settings.schedule:
        if window.is_active(elapsed_s):
            rates[window.kind] = rates.get(window.kind, 0.0) + window.rate
    return {kind: rate for kind, rate in rates.items() if rate > 0.0}


def choose_fault(
    settings: FaultSettings, elapsed_s: float, draw: float
) -> FaultKind | None:
    """Pick the fault for one request, or ``None`` for a normal answer.

    Kinds take consecutive slices of ``[0, 1)`` in catalogue order, each as
    wide as its probability; the draw falls in one slice or in the remainder,
    which means no fault. When the probabilities add up to more than 1 the
    slices are scaled to fill ``[0, 1)`` exactly.

    Args:
        settings: The fault settings in effect.
        elapsed_s: Seconds since the settings took effect.
        draw: A uniform number in ``[0, 1)``.

    Returns:
        The chosen kind, or ``None``.
    """
    rates = fault_rates(settings, elapsed_s)
    total = sum(rates.values())
    if total <= 0.0:
        return None

    scale = 1.0 / total if total > 1.0 else 1.0
    upper = 0.0
    last: FaultKind | None = None
    for kind in FaultKind:
        rate = rates.get(kind)
        if rate is None:
            continue
        upper += rate * scale
        last = kind
        if draw < upper:
            return kind
    # Scaled slices can sum to a hair below 1.0 through rounding; a draw in
    # that sliver belongs to the last slice rather than to "no fault".
    return last if total > 1.0 else None


class FaultSchedule:
    """The fault settings in effect and the moment they took effect.

    Args:
        settings: Initial fault settings.
        now_s: Monotonic time at which they take effect.
    """

    def __init__(self, settings: FaultSettings, now_s: float) -> None:
        self._settings = settings
        self._epoch_s: float | None = now_s

    @property
    def settings(self) -> FaultSettings:
        """The fault settings in effect."""
        return self._settings

    def replace(
        self, settings: FaultSettings, now_s: float, *, from_first_request: bool = False
    ) -> None:
        """Put new settings in effect; schedule windows restart from ``now_s``,
        or, with ``from_first_request``, from the next request to arrive (so a
        client's start-up time does not use up a window)."""
        self._settings = settings
        self._epoch_s = None if from_first_request else now_s
        logger.info(
            "simulator.faults_replaced error_rate=%s rates=%s windows=%s",
            settings.error_rate,
            len(settings.rates),
            len(settings.schedule),
        )

    def choose(self, now_s: float, draw: float) -> FaultKind | None:
        """Pick the fault for a request arriving at ``now_s`` with ``draw``."""
        if self._epoch_s is None:
            self._epoch_s = now_s
        return choose_fault(self._settings, now_s - self._epoch_s, draw)
