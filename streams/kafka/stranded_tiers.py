"""Retry tier topics a worker no longer reads that still hold unread records.

Changing ``retry.tiers_s`` drops tiers from the subscription; records left in
a dropped tier's topic are neither enriched nor dead-lettered, and, with no
committed offset to compare against, no lag gauge shows them. At start the
worker looks for such topics (``<prefix>.<delay>``, for example
``events.retry.30s``, that are not among today's tiers) and says how many
records each still holds past the group's committed offsets, so an operator
can put the tier back until they drain.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

logger = logging.getLogger(__name__)

_TIER_LABEL = re.compile(r"\d+(ms|s|m|h|d)")
TIMEOUT_S = 10.0

Offsets = Callable[[str, list[int]], list[tuple[int, int, int]]]
"""(topic, partitions) -> (low, high, committed or -1) per partition."""


def dropped_tier_topics(
    topics: Iterable[str], prefix: str, current: Collection[str]
) -> list[str]:
    """Topics named like a tier of ``prefix`` that are not a current tier."""
    head = prefix + "."
    return sorted(
        topic
        for topic in topics
        if topic.startswith(head)
        and _TIER_LABEL.fullmatch(topic[len(head) :])
        and topic not in current
    )


def unread_records(
    partitions: dict[str, list[int]], offsets: Offsets
) -> dict[str, int]:
    """Records past the committed offset (or the start) per topic; zeros left out."""
    unread: dict[str, int] = {}
    for topic, numbers in partitions.items():
        total = sum(
            max(0, high - (committed if committed >= 0 else low))
            for low, high, committed in offsets(topic, numbers)
        )
        if total:
            unread[topic] = total
    return unread


def stranded_tier_records(
    client_config: dict[str, Any], group_id: str, prefix: str, current: Collection[str]
) -> dict[str, int]:
    """Unread records per dropped tier topic for this group; {} when none.

    Raises:
        KafkaException: The cluster did not answer.
    """
    consumer = Consumer(
        {**client_config, "group.id": group_id, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=TIMEOUT_S).topics
        dropped = dropped_tier_topics(metadata, prefix, current)
        partitions = {topic: sorted(metadata[topic].partitions) for topic in dropped}

        def offsets(topic: str, numbers: list[int]) -> list[tuple[int, int, int]]:
            committed = _committed(
                consumer, [TopicPartition(topic, n) for n in numbers]
            )
            result = []
            for tp in committed:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, tp.partition), timeout=TIMEOUT_S
                )
                result.append((low, high, tp.offset))
            return result

        return unread_records(partitions, offsets)
    finally:
        consumer.close()


def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> Any:
    """The group's committed offsets, waiting out a coordinator still moving.

    A broker that just started, or a group whose coordinator moves, answers
    NOT_COORDINATOR for a moment; that is retried for up to ``TIMEOUT_S``.
    """
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return consumer.committed(partitions, timeout=TIMEOUT_S)
        except KafkaException as exc:
            if not exc.args[0].retriable() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def warn_about_stranded_tiers(
    client_config: dict[str, Any], group_id: str, prefix: str, current: Collection[str]
) -> dict[str, int]:
    """Logs a warning per dropped tier topic with unread records; returns them."""
    try:
        stranded = stranded_tier_records(client_config, group_id, prefix, current)
    except KafkaException as exc:
        logger.warning("retry.stranded_check_failed error=%s", exc)
        return {}
    for topic, count in stranded.items():
        logger.warning(
            "retry.tier_topic_not_read topic=%s unread_records=%d "
            "consequence=not_enriched_until_the_tier_is_configured_again",
            topic,
            count,
        )
    return stranded
