"""Dead letters keep the original bytes, and always fit the size limit."""

from __future__ import annotations

from streams.kafka.dead_letter import (
    DeadLetter,
    SourceRecord,
    dead_letter_record,
    record_size,
)

LETTER = DeadLetter("decode", "DecodeError", "invalid_utf8", "not UTF-8", "tickets")


def source(value: bytes, headers: list[tuple[str, bytes | None]]) -> SourceRecord:
    return SourceRecord(
        "events.tickets", 2, 41, 1_700_000_000_000, b"\xffkey", value, headers
    )


def test_original_key_value_and_headers_are_kept_and_reasons_added() -> None:
    original = source(b"R\xe9siliation", [("trace", b"\xfe\xff"), ("empty", None)])
    value, headers = dead_letter_record(original, LETTER, "group", 1_000_000)
    names = dict(headers)
    assert value == b"R\xe9siliation"
    assert names["trace"] == b"\xfe\xff" and names["empty"] is None
    assert names["dlq.error.reason"] == b"invalid_utf8"
    assert names["dlq.original.offset"] == b"41"
    assert names["dlq.consumer.group"] == b"group"
    assert "dlq.payload.omitted" not in names


def test_a_value_that_would_not_fit_becomes_a_pointer() -> None:
    original = source(b"x" * 2_000, [("trace", b"t")])
    value, headers = dead_letter_record(original, LETTER, "group", 1_500)
    names = dict(headers)
    assert value is not None and b'"payload_omitted":true' in value
    assert b'"offset":41' in value
    assert names["dlq.payload.omitted"] == b"true"
    assert names["trace"] == b"t"
    assert record_size(original.key, value, headers) <= 1_500


def test_headers_that_would_not_fit_are_dropped_last() -> None:
    big_headers: list[tuple[str, bytes | None]] = [
        (f"h{i}", b"y" * 1_000) for i in range(50)
    ]
    original = source(b"small", big_headers)
    value, headers = dead_letter_record(original, LETTER, "group", 5_000)
    names = dict(headers)
    assert names["dlq.headers.omitted"] == b"true"
    assert not any(name.startswith("h") for name in names)
    assert record_size(original.key, value, headers) <= 5_000
