"""The replay ledger: a compacted topic naming every dead letter replayed.

The ledger of dead-letter topic ``T`` is the topic ``T.replayed``. Each entry
is keyed by the dead-letter record's identity, ``T:<partition>:<offset>`` (see
:func:`~streams.dead_letters.record.ledger_key`), and its value says where
the replayed record landed and when, as JSON. Compaction keeps the last entry
per key, so the ledger stays as large as the number of replayed records.

A replay reads the whole ledger before it selects anything and leaves out
every dead letter found there. To let a dead letter be replayed again on
purpose, write a tombstone (a null value) under its key: a key whose last
entry is a tombstone counts as not replayed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams import json_codec
from streams.dead_letters.reader import MissingTopicError, TopicReader
from streams.dead_letters.record import DeadLetterRecord
from streams.dead_letters.selection import format_time
from streams.kafka.topics import ensure_topics

logger = logging.getLogger(__name__)

LEDGER_SUFFIX = ".replayed"
LEDGER_TOPIC_CONFIG = {"cleanup.policy": "compact"}


def ledger_topic(dead_letter_topic: str) -> str:
    """The ledger of a dead-letter topic: ``<dead-letter topic>.replayed``."""
    return dead_letter_topic + LEDGER_SUFFIX


@dataclass(frozen=True)
class Delivery:
    """Where a replayed record landed.

    Attributes:
        record: The dead letter that was replayed.
        topic: The topic it was produced to, its original topic.
        partition: The partition the broker stored it in.
        offset: Its new offset there.
    """

    record: DeadLetterRecord
    topic: str
    partition: int
    offset: int


def read_replayed(
    client_config: dict[str, Any], dead_letter_topic: str, **reader_options: Any
) -> set[str]:
    """The keys of every dead letter the ledger marks as replayed.

    Args:
        client_config: librdkafka properties (bootstrap and security).
        dead_letter_topic: The dead-letter topic whose ledger to read.
        **reader_options: Passed to :class:`TopicReader`.

    Returns:
        The ``<topic>:<partition>:<offset>`` keys; empty when the ledger does
        not exist yet.
    """
    topic = ledger_topic(dead_letter_topic)
    try:
        reader = TopicReader(client_config, topic, **reader_options)
    except MissingTopicError:
        logger.info("replay_ledger.absent topic=%s; nothing replayed yet", topic)
        return set()
    replayed: set[str] = set()
    with reader:
        for entry in reader:
            if entry.key is None:
                continue
            key = entry.key.decode(errors="replace")
            # The last entry of a key decides: a tombstone takes the mark back.
            if entry.value is None:
                replayed.discard(key)
            else:
                replayed.add(key)
    logger.info("replay_ledger.read topic=%s replayed=%d", topic, len(replayed))
    return replayed


def ensure_ledger_topic(
    client_config: dict[str, Any], dead_letter_topic: str, *, replication_factor: int
) -> str:
    """Creates the compacted ledger topic if it does not exist yet.

    Args:
        client_config: librdkafka properties (bootstrap and security).
        dead_letter_topic: The dead-letter topic the ledger belongs to.
        replication_factor: Replicas of a new ledger; the dead-letter topic's
            own, so the ledger is as durable as what it describes.

    Returns:
        The ledger topic's name.

    Raises:
        ConfigurationError: The cluster is unreachable or refused the topic.
    """
    topic = ledger_topic(dead_letter_topic)
    ensure_topics(
        client_config,
        [topic],
        partitions=1,
        replication_factor=replication_factor,
        topic_config=LEDGER_TOPIC_CONFIG,
    )
    return topic


def ledger_entry(delivery: Delivery, replayed_at: datetime) -> bytes:
    """The value of the ledger entry of one replayed dead letter (JSON)."""
    return json_codec.dumps(
        {
            "dead_letter": delivery.record.key,
            "event_id": delivery.record.event_id,
            "reason": delivery.record.reason,
            "replayed_to": {
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
            },
            "replayed_at": format_time(replayed_at),
        }
    )
