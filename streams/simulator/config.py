"""Settings of the DeepSeek test double: latency, faults, seed and limits.

``SimulatorConfig`` is frozen; the fault section (``FaultSettings``) is the
only part that changes at runtime, by replacing it whole through
``POST /admin/faults``. ``SimulatorConfig.from_mapping`` builds a config from
plain data, as the command line and tests supply it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.simulator.fault_catalogue import FaultKind

_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FaultWindow(BaseModel):
    """A time window during which one fault kind is injected at a given rate.

    Times are seconds since the server started or since the fault settings
    were last replaced, whichever is later (or, when they were replaced with
    ``?clock=first-request``, since the first request after that). A window
    is active for ``start_s <= elapsed < end_s``; ``end_s`` of ``None`` never
    ends.
    """

    model_config = _FROZEN

    kind: FaultKind = Field(description="Fault kind injected during the window.")
    start_s: float = Field(ge=0.0, description="Start of the window, in seconds.")
    end_s: float | None = Field(
        default=None, description="End of the window in seconds; null never ends."
    )
    rate: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Probability per request."
    )

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s must be greater than start_s")
        return self

    def is_active(self, elapsed_s: float) -> bool:
        """Return whether the window covers ``elapsed_s`` seconds."""
        end = math.inf if self.end_s is None else self.end_s
        return self.start_s <= elapsed_s < end


class FaultSettings(BaseModel):
    """Which faults to inject, how often, and how the slow ones behave.

    The per-request probability of a kind is the sum of its ``rates`` entry,
    a third of ``error_rate`` for 429, 500 and 503, and the rates of its
    active schedule windows. When the probabilities of all kinds add up to
    more than 1, every request gets a fault and kinds are drawn in
    proportion to their probabilities.
    """

    model_config = _FROZEN

    error_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Probability of a transient error, spread over 429, 500, 503.",
    )
    rates: dict[FaultKind, float] = Field(
        default_factory=dict, description="Probability per request of each kind."
    )
    schedule: tuple[FaultWindow, ...] = Field(
        default=(), description="Time windows with their own fault rates."
    )
    keepalive_interval_s: float = Field(
        default=1.0, gt=0.0, description="Gap between blank keep-alive lines."
    )
    keepalive_duration_s: float = Field(
        default=60.0, ge=0.0, description="How long keep-alive lines are sent."
    )
    slow_drip_interval_s: float = Field(
        default=1.0, gt=0.0, description="Gap between slow-drip body chunks."
    )
    slow_drip_chunk_bytes: int = Field(
        default=8, ge=1, description="Bytes of body sent per slow-drip chunk."
    )

    @model_validator(mode="after")
    def _check_rates(self) -> Self:
        for kind, rate in self.rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate of {kind.value} must be within [0, 1]")
        return self


class SimulatorConfig(BaseModel):
    """Everything the simulator needs to start.

    Latency is lognormal with the configured mean: ``mu = ln(mean) -
    sigma**2 / 2``, each draw clamped to ``[0, 10 * mean]``; a mean of 0
    answers without waiting.
    """

    model_config = _FROZEN

    seed: int = Field(default=0, description="Seed of every random decision.")
    latency_mean_ms: float = Field(
        default=300.0, ge=0.0, description="Mean simulated latency in milliseconds."
    )
    latency_sigma: float = Field(
        default=0.5, ge=0.0, description="Sigma of the lognormal latency."
    )
    faults: FaultSettings = Field(
        default_factory=FaultSettings, description="Fault injection settings."
    )
    prompt_cache_entries: int = Field(
        default=200_000, ge=1, description="Prefix hashes the prompt cache keeps."
    )
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest accepted body."
    )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> SimulatorConfig:
        """Build a config from plain data such as parsed command-line options.

        Top-level keys whose value is ``None`` count as absent, so unset
        options fall back to the defaults. A top-level ``error_rate`` is a
        shorthand for ``faults.error_rate``; when the faults section sets
        its own, a top-level 0 (the command-line default) yields to it.

        Args:
            mapping: Field values; ``faults`` may be a mapping or a
                ``FaultSettings``.

        Returns:
            The validated config.

        Raises:
            ValueError: A value is invalid, a key is unknown, or a non-zero
                top-level ``error_rate`` contradicts ``faults.error_rate``.
        """
        data = {key: value for key, value in mapping.items() if value is not None}
        error_rate = data.pop("error_rate", None)
        if error_rate is not None:
            faults = data.get("faults", {})
            if isinstance(faults, FaultSettings):
                faults = faults.model_dump(exclude_unset=True)
            if "error_rate" not in faults:
                data["faults"] = {**faults, "error_rate": error_rate}
            elif error_rate not in (0, faults["error_rate"]):
                raise ValueError("error_rate differs between top level and faults")
        return cls.model_validate(data)
