"""Dead-letter headers decode into typed fields, and never fail to decode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.dead_letters.record import (
    DeadLetterRecord,
    decode_record,
    ledger_key,
)
from streams.kafka.dead_letter import DeadLetter, SourceRecord, dead_letter_record

DEAD_LETTER_TOPIC = "events.dead-letter"
INPUT_HEADERS: list[tuple[str, bytes | None]] = [
    ("content-type", b"application/cloudevents+json"),
    ("x-origin", b"caf\xe9-desk"),
    ("empty", None),
]
DEAD_LETTERED_MS = 1_793_606_400_000  # 2026-11-02T08:00:00Z


def make_dead_letter(
    *,
    reason: str = "schema_violation",
    pipeline: str = "tickets",
    stage: str = "decode",
    event_id: str | None = "tkt-1",
    topic: str = "events.tickets",
    partition: int = 1,
    offset: int = 41,
    dlq_partition: int = 0,
    dlq_offset: int = 0,
    timestamp_ms: int = DEAD_LETTERED_MS,
    key: bytes | None = b"T-1",
    value: bytes | None = b'{"id":"tkt-1"}',
    headers: list[tuple[str, bytes | None]] | None = None,
    max_bytes: int = 1_000_000,
    last_failure: str | None = None,
    cost_usd: float = 0.0,
) -> DeadLetterRecord:
    """A dead-letter record built by the worker's own code, then read back."""
    source = SourceRecord(
        topic,
        partition,
        offset,
        1_793_600_000_000,
        key,
        value,
        list(INPUT_HEADERS if headers is None else headers),
    )
    letter = DeadLetter(
        stage,
        "DecodeError",
        reason,
        "what went wrong",
        pipeline,
        event_id=event_id,
        attempts=0 if stage == "decode" else 3,
        cost_usd=cost_usd,
    )
    dlq_value, dlq_headers = dead_letter_record(
        source, letter, "streams-enricher", max_bytes
    )
    if last_failure is not None:
        dlq_headers = [
            (name, last_failure.encode() if name == "dlq.last.failure.time" else raw)
            for name, raw in dlq_headers
        ]
    return decode_record(
        SourceRecord(
            DEAD_LETTER_TOPIC,
            dlq_partition,
            dlq_offset,
            timestamp_ms,
            key,
            dlq_value,
            dlq_headers,
        )
    )


def test_every_header_the_worker_writes_decodes_to_its_field() -> None:
    record = make_dead_letter(stage="enrich", cost_usd=0.000123)

    assert record.original_topic == "events.tickets"
    assert (record.original_partition, record.original_offset) == (1, 41)
    assert record.original_timestamp_ms == 1_793_600_000_000
    assert record.consumer_group == "streams-enricher"
    assert (record.pipeline, record.event_id, record.stage) == (
        "tickets",
        "tkt-1",
        "enrich",
    )
    assert (record.error_class, record.reason) == ("DecodeError", "schema_violation")
    assert record.message == "what went wrong"
    assert record.attempts == 3
    assert record.tokens == 0
    assert record.cost_usd == pytest.approx(0.000123)
    assert record.first_failure_time is not None
    assert record.last_failure_time is not None
    assert record.last_failure_time.tzinfo is not None
    assert not record.payload_omitted and not record.headers_omitted
    assert record.problems == ()


def test_original_headers_keep_order_bytes_and_nulls_without_dlq_headers() -> None:
    record = make_dead_letter()

    assert record.original_headers == INPUT_HEADERS
    assert any(name.startswith("dlq.") for name, _ in record.source.headers)


def test_identity_and_timestamp_come_from_the_dead_letter_record_itself() -> None:
    record = make_dead_letter(dlq_partition=2, dlq_offset=17)

    assert (
        record.key == "events.dead-letter:2:17" == ledger_key(DEAD_LETTER_TOPIC, 2, 17)
    )
    assert record.timestamp == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_a_value_too_large_to_carry_is_flagged_as_omitted() -> None:
    record = make_dead_letter(value=b"x" * 5_000, max_bytes=2_000)

    assert record.payload_omitted
    assert record.source.value is not None
    assert b'"payload_omitted":true' in record.source.value


def test_headers_that_do_not_exist_are_none() -> None:
    source = SourceRecord(DEAD_LETTER_TOPIC, 0, 3, 0, None, b"v", [("trace", b"t")])

    record = decode_record(source)

    assert record.original_topic is None and record.reason is None
    assert record.attempts is None and record.cost_usd is None
    assert record.problems == ()
    assert record.original_headers == [("trace", b"t")]


@pytest.mark.parametrize(
    ("name", "raw", "field"),
    [
        ("dlq.original.partition", b"two", "original_partition"),
        ("dlq.original.offset", b"-", "original_offset"),
        ("dlq.attempts", b"", "attempts"),
        ("dlq.cost.usd", b"nan", "cost_usd"),
        ("dlq.cost.usd", b"inf", "cost_usd"),
        ("dlq.cost.usd", b"cheap", "cost_usd"),
        ("dlq.error.reason", b"\xff\xfe", "reason"),
        ("dlq.last.failure.time", b"yesterday", "last_failure_time"),
        ("dlq.payload.omitted", b"yes", "payload_omitted"),
    ],
)
def test_an_unreadable_header_becomes_empty_and_is_named(
    name: str, raw: bytes, field: str
) -> None:
    source = SourceRecord(DEAD_LETTER_TOPIC, 0, 3, 0, None, b"v", [(name, raw)])

    record = decode_record(source)

    assert getattr(record, field) in (None, False)
    assert record.problems == (name,)


def test_a_time_without_zone_is_read_as_utc_and_a_repeated_header_keeps_its_last() -> (
    None
):
    headers: list[tuple[str, bytes | None]] = [
        ("dlq.error.reason", b"timeout"),
        ("dlq.error.reason", b"rate_limited"),
        ("dlq.last.failure.time", b"2026-11-02T08:30:00"),
    ]

    record = decode_record(SourceRecord(DEAD_LETTER_TOPIC, 0, 3, 0, None, b"", headers))

    assert record.reason == "rate_limited"
    assert record.last_failure_time == datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def test_earlier_replays_are_read_from_the_inputs_own_headers() -> None:
    first = make_dead_letter()
    again = make_dead_letter(
        headers=[
            *INPUT_HEADERS,
            ("streams.replayed-from", b"events.dead-letter:0:1"),
            ("streams.replayed-from", b"events.dead-letter:2:9"),
        ]
    )

    assert first.replayed_from == []
    assert again.replayed_from == ["events.dead-letter:0:1", "events.dead-letter:2:9"]
