"""Counting dead letters, sampling the newest, and showing them safely."""

from __future__ import annotations

import io
from collections import Counter

import orjson
import pytest
from rich.console import Console

from streams.dead_letters.inspection import failure_hour, inspect_records, ranked
from streams.dead_letters.preview import PREVIEW_BYTES, preview, printable
from streams.dead_letters.record import DeadLetterRecord
from streams.dead_letters.selection import Selection
from streams.dead_letters.view import render_inspection
from tests.unit.test_dlq_record import DEAD_LETTERED_MS, make_dead_letter

HOUR_MS = 3_600_000


def sample_topic() -> list[DeadLetterRecord]:
    """Seven dead letters over three pipelines, two hours and three reasons."""
    spec = [
        ("invalid_json", "tickets", "decode", "2026-11-02T08:10:00.000Z"),
        ("invalid_json", "emails", "decode", "2026-11-02T08:50:00.000Z"),
        ("schema_violation", "tickets", "decode", "2026-11-02T08:59:59.999Z"),
        ("schema_violation", "crm", "decode", "2026-11-02T09:00:00.000Z"),
        ("schema_violation", "crm", "decode", "2026-11-02T09:30:00.000Z"),
        ("timeout", "tickets", "enrich", "2026-11-02T09:45:00.000Z"),
        ("timeout", "tickets", "enrich", "2026-11-02T09:46:00.000+01:00"),
    ]
    return [
        make_dead_letter(
            reason=reason,
            pipeline=pipeline,
            stage=stage,
            last_failure=last_failure,
            dlq_partition=index % 2,
            dlq_offset=index,
            timestamp_ms=DEAD_LETTERED_MS + index * 60_000,
            event_id=f"tkt-{index}",
        )
        for index, (reason, pipeline, stage, last_failure) in enumerate(spec)
    ]


def test_counts_by_reason_pipeline_stage_and_hour_each_add_up() -> None:
    inspection = inspect_records(
        sample_topic(), topic="dlq", selection=Selection(), sample_size=3
    )

    assert (inspection.read, inspection.matched) == (7, 7)
    assert inspection.by_reason == Counter(
        invalid_json=2, schema_violation=3, timeout=2
    )
    assert inspection.by_pipeline == Counter(tickets=4, crm=2, emails=1)
    assert inspection.by_stage == Counter(decode=5, enrich=2)
    assert inspection.by_retry_tiers == Counter({"0": 7})  # none passed a tier
    # 09:46+01:00 is 08:46 UTC.
    assert inspection.by_hour == Counter(
        {"2026-11-02T08:00Z": 4, "2026-11-02T09:00Z": 3}
    )
    for counts in (inspection.by_reason, inspection.by_pipeline, inspection.by_hour):
        assert sum(counts.values()) == inspection.matched


def test_filters_apply_to_counts_and_sample_but_every_record_is_read() -> None:
    inspection = inspect_records(
        sample_topic(),
        topic="dlq",
        selection=Selection.of(reasons=["timeout"]),
        sample_size=10,
    )

    assert (inspection.read, inspection.matched) == (7, 2)
    assert set(inspection.by_reason) == {"timeout"}
    assert {record.reason for record in inspection.sample} == {"timeout"}


def test_the_sample_is_the_newest_records_newest_first() -> None:
    records = sample_topic()

    inspection = inspect_records(
        reversed(records), topic="dlq", selection=Selection(), sample_size=3
    )

    assert [record.source.offset for record in inspection.sample] == [6, 5, 4]
    assert (
        inspect_records(
            records, topic="dlq", selection=Selection(), sample_size=0
        ).sample
        == []
    )


def test_missing_headers_are_counted_as_unknown() -> None:
    record = make_dead_letter(last_failure="not a time")

    inspection = inspect_records(
        [record], topic="dlq", selection=Selection(), sample_size=1
    )

    assert failure_hour(record) == "unknown"
    assert inspection.by_hour == Counter(unknown=1)
    assert inspection.unreadable_headers == 1


def test_ranked_orders_by_count_then_name() -> None:
    assert list(ranked(Counter(b=2, a=2, c=5))) == ["c", "a", "b"]


def test_the_json_document_has_counts_and_a_sample_without_payloads() -> None:
    inspection = inspect_records(
        sample_topic(), topic="dlq", selection=Selection(), sample_size=2
    )

    document = orjson.loads(orjson.dumps(inspection.as_dict()))

    assert document["by_reason"] == {
        "schema_violation": 3,
        "invalid_json": 2,
        "timeout": 2,
    }
    assert list(document["by_hour"]) == ["2026-11-02T08:00Z", "2026-11-02T09:00Z"]
    newest = document["sample"][0]
    assert newest["dead_letter"] == {
        "topic": "events.dead-letter",
        "partition": 0,
        "offset": 6,
        "timestamp": "2026-11-02T08:06:00Z",
    }
    assert newest["original"] == {
        "topic": "events.tickets",
        "partition": 1,
        "offset": 41,
    }
    assert newest["event_id"] == "tkt-6" and newest["attempts"] == 3
    assert "key" not in newest and "value" not in newest

    shown = inspection.as_dict(show_payloads=True)["sample"][0]
    assert shown["value"]["text"] == '{"id":"tkt-1"}'
    assert shown["key"]["encoding"] == "utf-8"


@pytest.mark.parametrize(
    ("value", "encoding", "text", "truncated"),
    [
        (b'{"a":1}', "utf-8", '{"a":1}', False),
        (b"R\xe9siliation", "hex", "52e973696c696174696f6e", False),
        (b"", "utf-8", "", False),
        (b"\x1b[2Jclear", "utf-8", "\\x1b[2Jclear", False),
        ("é".encode() * 300, "utf-8", "é" * 250, True),
        (b"\xff" * 600, "hex", "ff" * PREVIEW_BYTES, True),
    ],
)
def test_preview_is_text_when_utf8_else_hex_and_at_most_500_bytes(
    value: bytes, encoding: str, text: str, truncated: bool
) -> None:
    full = preview(value)

    assert full is not None
    assert (full.encoding, full.truncated, full.size_bytes) == (
        encoding,
        truncated,
        len(value),
    )
    assert full.text == text


def test_preview_of_no_value_is_none_and_a_cut_character_is_dropped() -> None:
    assert preview(None) is None
    shown = preview("aé".encode(), limit=2)  # the limit cuts é in half
    assert shown is not None and shown.text == "a" and shown.truncated


def test_printable_escapes_control_and_format_characters() -> None:
    assert printable("a\x1b[31mb\x07\u202e\n") == "a\\x1b[31mb\\x07\\u202e\\x0a"
    assert printable("line\nnext\ttab", keep_newlines=True) == "line\nnext\ttab"
    assert printable("Résiliation 😀") == "Résiliation 😀"


def render(records: list[DeadLetterRecord], *, show_payloads: bool) -> str:
    inspection = inspect_records(
        records, topic="events.dead-letter", selection=Selection(), sample_size=5
    )
    output = io.StringIO()
    console = Console(file=output, width=250, color_system=None)
    render_inspection(inspection, console, show_payloads=show_payloads)
    return output.getvalue()


def test_text_view_shows_counts_and_sample_and_hides_payloads() -> None:
    text = render(sample_topic(), show_payloads=False)

    assert "events.dead-letter: 7 read, 7 matched" in text
    assert "schema_violation" in text and "2026-11-02T09:00Z" in text
    assert "tkt-6" in text and "events.tickets:1:41" in text
    assert '{"id":"tkt-1"}' not in text


def test_text_view_shows_payloads_only_when_asked_and_inertly() -> None:
    hostile = make_dead_letter(
        value=b"[bold]\x1b[2J", key=b"\xff\x00", event_id="[red]x"
    )

    text = render([hostile], show_payloads=True)

    assert "[bold]\\x1b[2J" in text
    assert "hex:ff00" in text
    assert "[red]x" in text
    assert "\x1b" not in text


def test_text_view_of_nothing_says_so() -> None:
    assert "no dead letters match" in render([], show_payloads=False)


def test_records_that_failed_again_after_a_replay_are_counted_and_named() -> None:
    again = make_dead_letter(
        dlq_offset=8,
        headers=[("streams.replayed-from", b"events.dead-letter:0:1")],
    )

    inspection = inspect_records(
        [make_dead_letter(), again], topic="dlq", selection=Selection(), sample_size=2
    )

    assert inspection.previously_replayed == 1
    entries = inspection.as_dict()["sample"]
    assert [entry.get("replayed_from") for entry in entries] == [
        ["events.dead-letter:0:1"],
        None,
    ]
    assert "1 failed again after an earlier replay" in render(
        [again], show_payloads=False
    )
