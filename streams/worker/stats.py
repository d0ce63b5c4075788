"""Counters a run reports in its summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from streams.llm.usage import Usage


@dataclass
class WorkerStats:
    """What one worker did, for the run summary (metrics carry the same)."""

    consumed: int = 0
    enriched: int = 0
    dead_lettered: int = 0
    retried: int = 0
    """Records sent to a retry tier topic (one count per tier passed)."""
    deduplicated: int = 0
    llm_calls: int = 0
    retries: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    circuit_opened: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        data = asdict(self)
        data.pop("usage")
        data.update(self.usage.as_dict())
        return data
