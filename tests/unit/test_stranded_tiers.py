"""Finding retry tier topics that are no longer read but still hold records."""

from __future__ import annotations

from streams.kafka.stranded_tiers import dropped_tier_topics, unread_records


def test_only_tier_shaped_topics_of_the_prefix_that_are_not_current_count() -> None:
    topics = [
        "events.retry.30s",
        "events.retry.5m",
        "events.retry.1500ms",
        "events.retry.1h",
        "events.retry.chaos-flaky-ab12.2s",  # another run's prefix
        "events.retry",
        "events.enriched",
        "other.retry.30s",
    ]
    current = {"events.retry.5m", "events.retry.1h"}
    assert dropped_tier_topics(topics, "events.retry", current) == [
        "events.retry.1500ms",
        "events.retry.30s",
    ]


def test_unread_records_start_at_the_committed_offset_or_the_low_watermark() -> None:
    offsets = {
        "events.retry.30s": [(0, 10, 4), (0, 3, -1), (5, 5, -1)],
        "events.retry.2m": [(0, 7, 7)],
    }
    unread = unread_records(
        {"events.retry.30s": [0, 1, 2], "events.retry.2m": [0]},
        lambda topic, _numbers: offsets[topic],
    )
    assert unread == {"events.retry.30s": 9}
