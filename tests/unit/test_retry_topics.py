"""Retry tiers: topic names, the retry.* headers, and what a dead letter keeps."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from streams.kafka.dead_letter import DeadLetter, SourceRecord, dead_letter_record
from streams.kafka.retry_topics import (
    InvalidRetryHeadersError,
    RetryTier,
    check_tier_delays,
    next_tier,
    read_retry_record,
    retry_headers,
    retry_tiers,
    tier_label,
)
from streams.settings import RetrySettings, Settings

NOW = datetime(2026, 12, 4, 18, 0, 0, tzinfo=UTC)
TIERS = (RetryTier(30.0, "events.retry.30s"), RetryTier(300.0, "events.retry.5m"))


def original(headers: list[tuple[str, bytes | None]] | None = None) -> SourceRecord:
    return SourceRecord(
        "events.tickets",
        2,
        41,
        1_700_000_000_000,
        b"\xffkey",
        b"R\xe9siliation",
        headers if headers is not None else [("trace", b"\xfe\xff"), ("empty", None)],
    )


def as_consumed_from(
    tier: RetryTier, headers: list[tuple[str, bytes | None]]
) -> SourceRecord:
    """The record as the worker reads it back from the tier topic."""
    source = original()
    return replace(
        source, topic=tier.topic, partition=0, offset=7, timestamp_ms=1, headers=headers
    )


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (30, "30s"),
        (90, "90s"),
        (300, "5m"),
        (3600, "1h"),
        (7200, "2h"),
        (5400, "90m"),
        (86_400, "1d"),
        (1, "1s"),
        (1.5, "1500ms"),
        (0.25, "250ms"),
        (61.5, "61500ms"),
    ],
)
def test_tier_labels_use_the_largest_exact_unit(seconds: float, label: str) -> None:
    assert tier_label(seconds) == label


@pytest.mark.parametrize(
    ("delays", "problem"),
    [
        ([0], "at least 1 ms"),
        ([-5], "at least 1 ms"),
        ([math.inf], "at least 1 ms"),
        ([math.nan], "at least 1 ms"),
        ([30, 30], "must increase"),
        ([300, 30], "must increase"),
        ([1, 1.0001], "distinct names"),
    ],
)
def test_unusable_tier_delays_are_refused(delays: list[float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_tier_delays(delays)


def test_default_tiers_and_an_empty_list_are_valid() -> None:
    assert [tier.topic for tier in retry_tiers(RetrySettings())] == [
        "events.retry.30s",
        "events.retry.5m",
        "events.retry.1h",
    ]
    assert retry_tiers(RetrySettings(tiers_s=[])) == ()


def test_tiers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_RETRY__TIERS_S", "[1,2]")
    monkeypatch.setenv("STREAMS_RETRY__TOPIC_PREFIX", "retry.test")
    settings = Settings()
    assert [tier.topic for tier in retry_tiers(settings.retry)] == [
        "retry.test.1s",
        "retry.test.2s",
    ]
    monkeypatch.setenv("STREAMS_RETRY__TIERS_S", "[2,1]")
    with pytest.raises(ValidationError, match="must increase"):
        Settings()


def test_next_tier_follows_the_count_and_ends_after_the_last() -> None:
    first = original()
    assert next_tier(TIERS, first) == TIERS[0]
    in_second = read_retry_record(
        as_consumed_from(TIERS[1], retry_headers(first, TIERS[1], "timeout", NOW))
    )
    assert in_second.retry is not None and in_second.retry.count == 1
    assert next_tier(TIERS, in_second) == TIERS[1]
    last = read_retry_record(
        as_consumed_from(TIERS[1], retry_headers(in_second, TIERS[1], "timeout", NOW))
    )
    assert next_tier(TIERS, last) is None
    assert next_tier((), first) is None


def test_headers_round_trip_and_keep_the_original_through_later_tiers() -> None:
    first_headers = retry_headers(original(), TIERS[0], "rate_limited", NOW)
    names = dict(first_headers)
    assert names["trace"] == b"\xfe\xff" and names["empty"] is None
    assert names["retry.count"] == b"1"
    assert (
        names["retry.due.timestamp"]
        == str(int((NOW + timedelta(seconds=30)).timestamp() * 1000)).encode()
    )
    assert names["retry.original.topic"] == b"events.tickets"

    read_back = read_retry_record(as_consumed_from(TIERS[0], first_headers))
    assert (read_back.topic, read_back.partition, read_back.offset) == (
        "events.tickets",
        2,
        41,
    )
    assert read_back.timestamp_ms == 1_700_000_000_000
    assert read_back.key == b"\xffkey" and read_back.value == b"R\xe9siliation"
    assert read_back.headers == original().headers
    assert read_back.retry is not None
    assert read_back.retry.first_reason == read_back.retry.last_reason == "rate_limited"
    assert read_back.retry.first_failure == NOW

    later = NOW + timedelta(seconds=31)
    second_headers = retry_headers(read_back, TIERS[1], "timeout", later)
    again = read_retry_record(as_consumed_from(TIERS[1], second_headers))
    assert again.retry is not None
    assert again.retry.count == 2
    assert again.retry.first_reason == "rate_limited"
    assert again.retry.last_reason == "timeout"
    assert again.retry.first_failure == NOW
    assert again.retry.due_ms == int(
        (later + timedelta(seconds=300)).timestamp() * 1000
    )
    assert (again.topic, again.partition, again.offset) == ("events.tickets", 2, 41)
    # One set of retry.* headers, never stacked.
    assert sum(name == "retry.count" for name, _ in second_headers) == 1


def test_stale_retry_headers_on_an_input_are_replaced() -> None:
    stale = original([("retry.count", b"9"), ("trace", b"t")])
    headers = retry_headers(stale, TIERS[0], "timeout", NOW)
    assert [value for name, value in headers if name == "retry.count"] == [b"1"]


def test_the_due_decision_is_inclusive() -> None:
    state = read_retry_record(
        as_consumed_from(TIERS[0], retry_headers(original(), TIERS[0], "timeout", NOW))
    ).retry
    assert state is not None
    assert not state.is_due(state.due_ms - 1)
    assert state.is_due(state.due_ms)
    assert state.is_due(state.due_ms + 60_000)


def good_headers() -> list[tuple[str, bytes | None]]:
    return retry_headers(original(), TIERS[0], "timeout", NOW)


def without(name: str) -> list[tuple[str, bytes | None]]:
    return [(n, v) for n, v in good_headers() if n != name]


def changed(name: str, value: bytes | None) -> list[tuple[str, bytes | None]]:
    return [(n, value if n == name else v) for n, v in good_headers()]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        without("retry.original.topic"),
        without("retry.due.timestamp"),
        changed("retry.count", b"0"),
        changed("retry.count", b"two"),
        changed("retry.original.offset", b"-1"),
        changed("retry.original.partition", None),
        changed("retry.first.failure.time", b"yesterday"),
        changed("retry.last.error.reason", b"\xff\xfe"),
    ],
)
def test_garbled_retry_headers_are_reported_not_guessed(
    headers: list[tuple[str, bytes | None]],
) -> None:
    with pytest.raises(InvalidRetryHeadersError) as raised:
        read_retry_record(as_consumed_from(TIERS[0], headers))
    assert raised.value.reason == "invalid_retry_headers"


def test_a_dead_letter_after_the_tiers_names_the_original_and_the_tier_count() -> None:
    in_second = read_retry_record(
        as_consumed_from(
            TIERS[1],
            retry_headers(
                read_retry_record(
                    as_consumed_from(
                        TIERS[0], retry_headers(original(), TIERS[0], "overloaded", NOW)
                    )
                ),
                TIERS[1],
                "timeout",
                NOW + timedelta(seconds=30),
            ),
        )
    )
    letter = DeadLetter("enrich", "LLMTimeoutError", "timeout", "too slow", "tickets")
    value, headers = dead_letter_record(in_second, letter, "group", 1_000_000)
    names = dict(headers)
    assert value == b"R\xe9siliation"
    assert names["dlq.original.topic"] == b"events.tickets"
    assert names["dlq.original.partition"] == b"2"
    assert names["dlq.original.offset"] == b"41"
    assert names["dlq.original.timestamp"] == b"1700000000000"
    assert names["dlq.retry.count"] == b"2"
    assert names["dlq.first.error.reason"] == b"overloaded"
    assert names["dlq.error.reason"] == b"timeout"
    assert names["dlq.first.failure.time"] == b"2026-12-04T18:00:00.000Z"
    assert names["trace"] == b"\xfe\xff"
    assert not any(name.startswith("retry.") for name in names)


def test_a_dead_letter_without_tiers_says_so() -> None:
    letter = DeadLetter("decode", "DecodeError", "invalid_utf8", "not UTF-8", "tickets")
    _value, headers = dead_letter_record(original(), letter, "group", 1_000_000)
    names = dict(headers)
    assert names["dlq.retry.count"] == b"0"
    assert "dlq.first.error.reason" not in names
