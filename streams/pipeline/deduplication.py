"""Deduplication by content hash, marked only after success.

Three outcomes for a hash:

* ``hit``: an enrichment for it was produced and acknowledged before; it is
  served from the bounded in-memory result cache, without an LLM call.
* ``joined``: a call for it is in flight; the caller waits for that call
  instead of making its own.
* ``lead``: nobody has it; the caller makes the call and must report back
  with :meth:`Deduplicator.complete` or :meth:`Deduplicator.fail`.

A hash enters the cache only in :meth:`Deduplicator.complete`, which the
worker calls once the enriched record is acknowledged by the broker: marking
on first sight would drop the duplicates of an event whose call then failed.
When a leader fails for a reason about the content itself (a refusal, a
schema violation), waiting followers share that failure; otherwise one of them
becomes the new leader and tries again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from streams.errors import PermanentError

ResultT = TypeVar("ResultT")

CONTENT_REASONS = frozenset({"content_refused", "output_schema_violation"})


@dataclass(frozen=True, slots=True)
class Lookup(Generic[ResultT]):
    """What :meth:`Deduplicator.acquire` found."""

    kind: Literal["hit", "joined", "lead"]
    result: ResultT | None = None
    lease: object | None = None
    """For ``lead``: pass it back to complete() or fail()."""


@dataclass(frozen=True, slots=True)
class _Outcome(Generic[ResultT]):
    result: ResultT | None
    error: PermanentError | None


class Deduplicator(Generic[ResultT]):
    """The result cache and the table of calls in flight.

    Args:
        capacity: Results kept, least recently used evicted first; 0 keeps
            none (in-flight joining still works).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._results: OrderedDict[str, ResultT] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[_Outcome[ResultT]]] = {}

    def __len__(self) -> int:
        return len(self._results)

    @property
    def in_flight(self) -> int:
        """Hashes with a call in flight."""
        return len(self._in_flight)

    async def acquire(self, content_hash: str) -> Lookup[ResultT]:
        """Finds a result for the hash, joins its call, or makes the caller lead.

        Raises:
            PermanentError: The call this caller joined failed for a reason
                about the content, which would fail again.
        """
        joined = False
        while True:
            cached = self._results.get(content_hash)
            if cached is not None:
                self._results.move_to_end(content_hash)
                return Lookup("joined" if joined else "hit", cached)
            pending = self._in_flight.get(content_hash)
            if pending is None:
                lease = asyncio.get_running_loop().create_future()
                self._in_flight[content_hash] = lease
                return Lookup("lead", lease=lease)
            outcome = await asyncio.shield(pending)
            joined = True
            if outcome.result is not None:
                return Lookup("joined", outcome.result)
            if outcome.error is not None:
                raise outcome.error

    def complete(self, content_hash: str, result: ResultT, lease: object) -> None:
        """Stores the leader's result and wakes the callers that joined it."""
        if self._capacity > 0:
            self._results[content_hash] = result
            self._results.move_to_end(content_hash)
            while len(self._results) > self._capacity:
                self._results.popitem(last=False)
        self._resolve(content_hash, lease, _Outcome(result, None))

    def fail(
        self, content_hash: str, lease: object, error: Exception | None = None
    ) -> None:
        """The leader gave up; followers share a content failure, else retry.

        A lease that is no longer current (reported twice, or after a new
        leader took over) changes nothing.
        """
        shared = (
            error
            if isinstance(error, PermanentError) and error.reason in CONTENT_REASONS
            else None
        )
        self._resolve(content_hash, lease, _Outcome(None, shared))

    def _resolve(
        self, content_hash: str, lease: object, outcome: _Outcome[ResultT]
    ) -> None:
        pending = self._in_flight.get(content_hash)
        if pending is None or pending is not lease:
            return
        del self._in_flight[content_hash]
        if not pending.done():
            pending.set_result(outcome)
