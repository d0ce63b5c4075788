"""A dropped retry tier's unread records are found on a real broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from streams.kafka.stranded_tiers import stranded_tier_records
from streams.kafka.topics import ensure_topics

pytestmark = pytest.mark.broker


def test_records_left_in_a_dropped_tier_are_counted(kafka_bootstrap: str) -> None:
    prefix = f"events.retry.t{uuid.uuid4().hex[:8]}"
    prefix = prefix.replace(".t", "-t", 1)  # one name step, like events.retry
    dropped, kept = f"{prefix}.30s", f"{prefix}.5m"
    config = {"bootstrap.servers": kafka_bootstrap}
    ensure_topics(config, [dropped, kept], partitions=2)
    producer = Producer(config)
    for index in range(5):
        producer.produce(dropped, value=b"x", partition=index % 2)
        producer.produce(kept, value=b"y")
    assert producer.flush(30) == 0

    stranded = stranded_tier_records(config, "stranded-test", prefix, {kept})

    assert stranded == {dropped: 5}
