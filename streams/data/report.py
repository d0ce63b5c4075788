"""What the sample producer wrote, and what the worker must make of it.

A ``ProduceReport`` is the answer key of a run: for every record it names the
place the broker gave it (topic, partition, offset), the event it carries, why
it was written (``kind``) and what the enrichment worker must do with it. A
test or a demo reads the worker's outputs and dead letters back and compares
them against this key.

``kind`` is ``event`` for a first write, ``duplicate`` for a byte-identical
replay of an event, and ``malformed:<kind>`` for a record from
``streams.data.malformed``. A duplicate is expected to be ``enriched`` with the
same enrichment as its original, since it carries the same event id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import orjson

from streams.data.events import ExpectedOutcome, JsonObject

EVENT_KIND = "event"
DUPLICATE_KIND = "duplicate"
MALFORMED_KIND_PREFIX = "malformed:"


@dataclass(frozen=True, slots=True)
class ProducedRecord:
    """One record as the broker acknowledged it.

    Attributes:
        topic: Topic written to.
        partition: Partition from the delivery report.
        offset: Offset from the delivery report.
        event_id: The envelope id, or ``None`` when the value yields none.
        kind: ``event``, ``duplicate`` or ``malformed:<kind>``.
        expected_outcome: ``enriched`` or ``dead_letter``.
        expected_reason: The dead-letter reason; ``None`` when enriched.
    """

    topic: str
    partition: int
    offset: int
    event_id: str | None
    kind: str
    expected_outcome: ExpectedOutcome
    expected_reason: str | None


@dataclass(frozen=True, slots=True)
class ProduceReport:
    """Every record of one producer run, in the order they were produced.

    Attributes:
        records: The acknowledged records.
    """

    records: tuple[ProducedRecord, ...]

    @property
    def total(self) -> int:
        """Number of records written."""
        return len(self.records)

    def count_by_kind(self) -> dict[str, int]:
        """Return how many records of each kind were written."""
        return dict(Counter(record.kind for record in self.records))

    def count_by_topic(self) -> dict[str, int]:
        """Return how many records each topic received."""
        return dict(Counter(record.topic for record in self.records))

    def count_by_outcome(self) -> dict[str, int]:
        """Return how many records must be enriched and how many dead-lettered."""
        return dict(Counter(record.expected_outcome for record in self.records))

    def count_by_topic_and_kind(self) -> dict[str, dict[str, int]]:
        """Return the kind counts of each topic."""
        counts: dict[str, Counter[str]] = {}
        for record in self.records:
            counts.setdefault(record.topic, Counter())[record.kind] += 1
        return {topic: dict(kinds) for topic, kinds in counts.items()}

    def to_dict(self) -> JsonObject:
        """Return the report as plain JSON-ready data: counts, then records."""
        return {
            "total": self.total,
            "counts": {
                "by_topic": self.count_by_topic(),
                "by_kind": self.count_by_kind(),
                "by_outcome": self.count_by_outcome(),
                "by_topic_and_kind": self.count_by_topic_and_kind(),
            },
            "records": [asdict(record) for record in self.records],
        }

    def to_json(self) -> str:
        """Return the report as indented JSON text."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode("utf-8")
