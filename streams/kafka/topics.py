"""Creating the topics a run needs, idempotently."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.broker.runtime import is_reachable
from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 30.0
REACH_TIMEOUT_S = 10.0


def ensure_topics(
    client_config: dict[str, Any],
    topics: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    topic_config: dict[str, str] | None = None,
) -> list[str]:
    """Creates the topics that do not exist yet.

    Args:
        client_config: librdkafka properties (bootstrap and security).
        topics: Topic names.
        partitions: Partitions of each new topic.
        replication_factor: Replicas of each new topic; 1 for a local broker.
        topic_config: Topic properties for new topics.

    Returns:
        The names that were created.

    Raises:
        ConfigurationError: The cluster is unreachable or refused a topic.
    """
    bootstrap = client_config.get("bootstrap.servers")
    if not is_reachable(client_config, timeout_s=REACH_TIMEOUT_S):
        raise ConfigurationError(
            f"cannot reach Kafka at {bootstrap}: start the local broker with "
            "`streams broker start`, or set STREAMS_KAFKA__BOOTSTRAP_SERVERS"
        )
    wanted = missing_topics(client_config, topics)
    if not wanted:
        return []
    admin = AdminClient(client_config)
    futures = admin.create_topics(
        [
            NewTopic(topic, partitions, replication_factor, config=topic_config or {})
            for topic in wanted
        ],
        operation_timeout=ADMIN_TIMEOUT_S,
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
            created.append(topic)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise ConfigurationError(f"cannot create topic {topic}: {exc}") from exc
    _wait_for_leaders(admin, created)
    logger.info("topics.created topics=%s", ",".join(created))
    return created


def missing_topics(client_config: dict[str, Any], topics: Iterable[str]) -> list[str]:
    """The given topics that do not exist on the cluster, in the given order.

    Raises:
        ConfigurationError: The cluster is unreachable.
    """
    admin = AdminClient(client_config)
    try:
        existing = set(admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics)
    except KafkaException as exc:
        raise ConfigurationError(
            f"cannot reach Kafka at {client_config.get('bootstrap.servers')}: {exc}"
        ) from exc
    return [topic for topic in dict.fromkeys(topics) if topic not in existing]


def _wait_for_leaders(admin: AdminClient, topics: list[str]) -> None:
    """Waits until every partition of new topics has a leader.

    A topic exists before its partitions have leaders; reading offsets or
    producing in that moment fails with NOT_LEADER_FOR_PARTITION.
    """
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while topics and time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        if all(
            topic in metadata
            and metadata[topic].error is None
            and metadata[topic].partitions
            and all(p.leader >= 0 for p in metadata[topic].partitions.values())
            for topic in topics
        ):
            return
        time.sleep(0.1)
    raise ConfigurationError(f"topics {topics} have no partition leaders yet")
