"""The mutable state one simulator instance shares between its handlers."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from dataclasses import dataclass, field

from aiohttp import web

from streams.simulator.config import SimulatorConfig
from streams.simulator.faults import FaultSchedule
from streams.simulator.latency import LatencyModel
from streams.simulator.prompt_cache import PromptCache
from streams.simulator.stats import SimulatorStats


@dataclass
class RequestTicket:
    """Identity of one accepted chat request.

    Attributes:
        sequence: Position among accepted requests, from 0.
        request_id: Hex id, sent as ``x-request-id`` and in the completion id.
        rng: Generator seeded from the config seed and ``sequence`` only, so
            each request's random decisions depend on nothing else.
    """

    sequence: int
    request_id: str
    rng: random.Random


@dataclass
class SimulatorState:
    """Configuration, counters and caches of a running simulator."""

    config: SimulatorConfig
    schedule: FaultSchedule = field(init=False)
    latency: LatencyModel = field(init=False)
    prompt_cache: PromptCache = field(init=False)
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    _arrivals: int = 0
    _accepted: int = 0

    def __post_init__(self) -> None:
        self.schedule = FaultSchedule(self.config.faults, time.monotonic())
        self.latency = LatencyModel(
            self.config.latency_mean_ms, self.config.latency_sigma
        )
        self.prompt_cache = PromptCache(self.config.prompt_cache_entries)

    def arrival_id(self, body: bytes) -> str:
        """Return a request id derived from the arrival counter and the body."""
        self._arrivals += 1
        digest = hashlib.blake2b(body, digest_size=12)
        digest.update(f"{self.config.seed}/{self._arrivals}".encode())
        return digest.hexdigest()

    def accept(self, request_id: str) -> RequestTicket:
        """Number an accepted request and give it its random generator."""
        sequence = self._accepted
        self._accepted += 1
        rng = random.Random(f"{self.config.seed}/{sequence}")
        return RequestTicket(sequence=sequence, request_id=request_id, rng=rng)


STATE_KEY = web.AppKey("simulator_state", SimulatorState)
"""Where the application keeps its ``SimulatorState``."""
