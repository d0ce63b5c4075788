"""Deciding, for every selected dead letter, whether it can be replayed.

Every record that passes the selection ends in exactly one of three lists,
so the counts always add up to what was selected:

* ``already_replayed``: the replay ledger has its key;
* ``skipped``: it cannot be replayed, with the reason (its value was replaced
  by a pointer because the record was too large, it names no original topic,
  or that topic no longer exists);
* ``to_replay``: everything else, in the order it was read.

Planning needs no network: the caller hands over the records, the ledger's
keys and the topics that exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streams.dead_letters.record import DeadLetterRecord
from streams.dead_letters.selection import Selection


@dataclass(frozen=True)
class Skipped:
    """A selected dead letter that cannot be replayed, and why."""

    record: DeadLetterRecord
    reason: str


@dataclass
class ReplayPlan:
    """What a replay will do with each selected dead letter.

    Attributes:
        dead_letter_topic: The topic the records were read from.
        selection: The filters applied.
        read: Records read from the dead-letter topic.
        to_replay: Records to produce back to their original topics.
        already_replayed: Records the ledger marks as replayed.
        skipped: Records that cannot be replayed, each with its reason.
        partitions: Partition count of every topic that exists.
    """

    dead_letter_topic: str
    selection: Selection
    read: int = 0
    to_replay: list[DeadLetterRecord] = field(default_factory=list)
    already_replayed: list[DeadLetterRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    partitions: Mapping[str, int] = field(default_factory=dict)

    @property
    def selected(self) -> int:
        """Records that passed the selection; the sum of the three lists."""
        return len(self.to_replay) + len(self.already_replayed) + len(self.skipped)

    def by_topic_and_reason(self) -> list[tuple[str, str, int]]:
        """How many records go back to each topic, per reason, most first."""
        counts = Counter(
            (record.original_topic or "", record.reason or "unknown")
            for record in self.to_replay
        )
        return sorted(
            ((topic, reason, count) for (topic, reason), count in counts.items()),
            key=lambda row: (-row[2], row[0], row[1]),
        )

    def destination_partition(self, record: DeadLetterRecord) -> int | None:
        """The record's original partition while it exists, else ``None``.

        Going back to the same partition keeps records of one key together
        even when the original producer partitioned keys differently from
        this one; ``None`` leaves the choice to the producer's partitioner.
        """
        partition = record.original_partition
        count = self.partitions.get(record.original_topic or "", 0)
        if partition is None or not 0 <= partition < count:
            return None
        return partition


def skip_reason(
    record: DeadLetterRecord, partitions: Mapping[str, int], dead_letter_topic: str
) -> str | None:
    """Why the record cannot be replayed, or ``None`` when it can.

    Args:
        record: A selected dead letter.
        partitions: Partition count of every topic that exists.
        dead_letter_topic: The topic the record was read from.
    """
    topic = record.original_topic
    if record.payload_omitted:
        where = f"{topic}:{record.original_partition}:{record.original_offset}"
        return (
            "payload omitted: the record was too large to dead-letter whole; "
            f"the original is at {where} while retention keeps it"
        )
    if topic is None:
        return "no dlq.original.topic header: the original topic is unknown"
    if topic == dead_letter_topic:
        return "the original topic is the dead-letter topic itself"
    if topic not in partitions:
        return f"the original topic {topic} does not exist"
    return None


def plan_replay(
    records: Iterable[DeadLetterRecord],
    *,
    dead_letter_topic: str,
    selection: Selection,
    replayed: set[str],
    partitions: Mapping[str, int],
) -> ReplayPlan:
    """Sorts the selected records into to replay, already replayed and skipped.

    Args:
        records: Decoded dead-letter records, in the order read.
        dead_letter_topic: Where they were read.
        selection: Which records to consider.
        replayed: Keys the replay ledger marks as replayed.
        partitions: Partition count of every topic that exists.

    Returns:
        The plan; nothing has been produced.
    """
    plan = ReplayPlan(
        dead_letter_topic=dead_letter_topic,
        selection=selection,
        partitions=dict(partitions),
    )
    for record in records:
        plan.read += 1
        if not selection.matches(record):
            continue
        if record.key in replayed:
            plan.already_replayed.append(record)
            continue
        reason = skip_reason(record, partitions, dead_letter_topic)
        if reason is not None:
            plan.skipped.append(Skipped(record, reason))
        else:
            plan.to_replay.append(record)
    return plan
