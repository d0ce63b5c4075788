"""The ordered list of records one producer run writes, built without a broker.

A run writes, in this order:

1. every loaded event once, pipeline by pipeline;
2. a share of those events again, byte for byte (key, value and headers), the
   way a producer that retried after a lost acknowledgement would. No marker
   header is added: a real retry carries none, so the worker must recognise a
   replay by its content or event id, never by a hint from the producer;
3. when asked, one record of every malformed kind per chosen topic.

Which events are replayed depends only on the seed and the event ids: an event
is replayed when its BLAKE2b digest of ``"{seed}:{event_id}"`` is among the
``round(ratio * n)`` smallest of its pipeline (halves round up), so the choice
is the same on every run and every Python version.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streams.data.events import ExpectedOutcome, Headers, SourceEvent
from streams.data.malformed import build_malformed_records
from streams.data.report import DUPLICATE_KIND, EVENT_KIND, MALFORMED_KIND_PREFIX


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """One record to produce, with what the worker must do with it.

    Attributes:
        topic: Topic to write to.
        key: Record key; ``None`` for no key.
        value: Record value; ``None`` for a tombstone.
        headers: Record headers.
        event_id: The envelope id, or ``None`` when the value yields none.
        kind: ``event``, ``duplicate`` or ``malformed:<kind>``.
        expected_outcome: ``enriched`` or ``dead_letter``.
        expected_reason: The dead-letter reason; ``None`` when enriched.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    event_id: str | None
    kind: str
    expected_outcome: ExpectedOutcome
    expected_reason: str | None


def replay_count(total: int, ratio: float) -> int:
    """Return how many of ``total`` events a ``ratio`` replays, rounding half up.

    Raises:
        ValueError: If ``ratio`` is not a finite number between 0 and 1.
    """
    if not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"duplicate ratio must lie in [0, 1], got {ratio!r}")
    return math.floor(total * ratio + 0.5)


def _replay_rank(seed: int, event_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{event_id}".encode(), digest_size=16).digest()


def select_replays(
    events: Sequence[SourceEvent], ratio: float, *, seed: int
) -> list[SourceEvent]:
    """Choose the events to replay, as described in the module docstring.

    Args:
        events: The events of one pipeline, in produce order.
        ratio: Share of the events to replay, between 0 and 1.
        seed: Changes the choice; the same seed always gives the same choice.

    Returns:
        The chosen events, in their original order.

    Raises:
        ValueError: If ``ratio`` is outside [0, 1] or not finite.
    """
    count = replay_count(len(events), ratio)
    ranked = sorted(
        range(len(events)), key=lambda i: _replay_rank(seed, events[i].event_id)
    )
    return [events[i] for i in sorted(ranked[:count])]


def _from_event(event: SourceEvent, kind: str) -> PlannedRecord:
    return PlannedRecord(
        topic=event.topic,
        key=event.key,
        value=event.value,
        headers=event.headers,
        event_id=event.event_id,
        kind=kind,
        expected_outcome="enriched",
        expected_reason=None,
    )


def plan_records(
    events_by_pipeline: Mapping[str, Sequence[SourceEvent]],
    *,
    duplicate_ratio: float = 0.1,
    malformed: bool = True,
    seed: int = 7,
) -> list[PlannedRecord]:
    """List the records of one run in produce order.

    Args:
        events_by_pipeline: Loaded events, keyed by pipeline name.
        duplicate_ratio: Share of each pipeline's events to replay, in [0, 1].
        malformed: Whether to add one malformed record of every kind per topic.
        seed: Selects which events are replayed.

    Returns:
        Originals, then replays, then malformed records.

    Raises:
        ValueError: If ``duplicate_ratio`` is outside [0, 1] or not finite.
        KeyError: If a pipeline name is unknown.
    """
    planned = [
        _from_event(event, EVENT_KIND)
        for events in events_by_pipeline.values()
        for event in events
    ]
    for events in events_by_pipeline.values():
        replays = select_replays(events, duplicate_ratio, seed=seed)
        planned.extend(_from_event(event, DUPLICATE_KIND) for event in replays)

    if malformed:
        for pipeline in events_by_pipeline:
            planned.extend(
                PlannedRecord(
                    topic=record.topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    event_id=record.event_id,
                    kind=MALFORMED_KIND_PREFIX + record.kind,
                    expected_outcome=record.expected_outcome,
                    expected_reason=record.expected_reason,
                )
                for record in build_malformed_records(pipeline)
            )
    return planned
