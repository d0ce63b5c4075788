"""Simulated response latency: a lognormal draw with a configured mean.

For a mean ``m`` and sigma ``s``, ``mu = ln(m) - s**2 / 2`` makes the mean
of ``exp(N(mu, s))`` equal to ``m``. Draws are clamped to ``[0, 10 * m]``
so a rare tail value cannot stall a test; the clamp lowers the true mean by
well under one percent for sigma up to 1.
"""

from __future__ import annotations

import math
import random


class LatencyModel:
    """Draws simulated latencies.

    Args:
        mean_ms: Mean latency in milliseconds; 0 means no wait at all.
        sigma: Standard deviation of the underlying normal; 0 gives a
            constant latency equal to the mean.
    """

    def __init__(self, mean_ms: float, sigma: float) -> None:
        self._mean_s = mean_ms / 1000.0
        self._sigma = sigma
        self._mu = math.log(self._mean_s) - sigma * sigma / 2 if mean_ms > 0 else 0.0

    @property
    def mean_s(self) -> float:
        """The configured mean, in seconds."""
        return self._mean_s

    def draw_s(self, rng: random.Random) -> float:
        """Return one latency in seconds drawn from ``rng``.

        One value is always consumed from ``rng`` so that later draws on the
        same generator do not depend on the latency settings.
        """
        value = rng.lognormvariate(self._mu, self._sigma)
        if self._mean_s <= 0.0:
            return 0.0
        return min(max(value, 0.0), 10.0 * self._mean_s)
