"""Each malformed record really has its defect, and only that one."""

from __future__ import annotations

import json

import orjson
import pytest

from streams.data.events import CLOUDEVENTS_CONTENT_TYPE, PIPELINE_TOPICS, PIPELINES
from streams.data.malformed import (
    BIG_INTEGER,
    MALFORMED_KINDS,
    MalformedRecord,
    build_malformed_records,
)

EXPECTED_REASONS = {
    "invalid_json": "invalid_json",
    "invalid_utf8": "invalid_utf8",
    "invalid_utf8_key_and_header": None,
    "missing_required_field": "schema_violation",
    "wrong_type": "schema_violation",
    "tombstone": "tombstone",
    "empty_value": "empty_value",
    "lone_surrogate": "invalid_json",
    "big_integer": None,
    "not_an_object": "schema_violation",
    "unknown_event_type": "schema_violation",
}


def records_of(pipeline: str) -> dict[str, MalformedRecord]:
    return {record.kind: record for record in build_malformed_records(pipeline)}


def test_every_kind_is_built_once_per_topic() -> None:
    assert set(MALFORMED_KINDS) == set(EXPECTED_REASONS)
    for pipeline in PIPELINES:
        records = build_malformed_records(pipeline)
        assert [r.kind for r in records] == list(MALFORMED_KINDS)
        assert {r.topic for r in records} == {PIPELINE_TOPICS[pipeline]}


def test_unknown_pipeline_is_refused() -> None:
    with pytest.raises(KeyError):
        build_malformed_records("invoices")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_outcomes_and_reasons_follow_the_table(pipeline: str) -> None:
    for kind, record in records_of(pipeline).items():
        assert record.expected_reason == EXPECTED_REASONS[kind]
        expected = "enriched" if EXPECTED_REASONS[kind] is None else "dead_letter"
        assert record.expected_outcome == expected


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_building_twice_gives_identical_records(pipeline: str) -> None:
    assert build_malformed_records(pipeline) == build_malformed_records(pipeline)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_truncated_json_does_not_parse(pipeline: str) -> None:
    record = records_of(pipeline)["invalid_json"]
    assert record.value is not None

    text = record.value.decode("utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(record.value)
    assert record.event_id is None


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_latin1_value_is_not_utf8_but_is_french_json(pipeline: str) -> None:
    record = records_of(pipeline)["invalid_utf8"]
    assert record.value is not None

    with pytest.raises(UnicodeDecodeError):
        record.value.decode("utf-8")
    text = record.value.decode("latin-1")
    assert json.loads(text)["id"].endswith("-edge-invalid_utf8")
    assert any(letter in text for letter in "éèà")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_bad_key_and_header_leave_the_value_valid(pipeline: str) -> None:
    record = records_of(pipeline)["invalid_utf8_key_and_header"]
    assert record.key is not None
    assert record.value is not None

    with pytest.raises(UnicodeDecodeError):
        record.key.decode("utf-8")
    headers = dict(record.headers)
    with pytest.raises(UnicodeDecodeError):
        headers["x-origin"].decode("utf-8")
    assert headers["content-type"] == CLOUDEVENTS_CONTENT_TYPE.encode()
    assert orjson.loads(record.value)["id"] == record.event_id


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_tombstone_and_empty_value(pipeline: str) -> None:
    records = records_of(pipeline)

    assert records["tombstone"].value is None
    assert records["tombstone"].key
    assert records["tombstone"].headers == ()
    assert records["empty_value"].value == b""
    assert records["empty_value"].key


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_lone_surrogate_escape_is_refused_by_a_strict_decoder(pipeline: str) -> None:
    record = records_of(pipeline)["lone_surrogate"]
    assert record.value is not None

    assert b"\\ud800" in record.value
    record.value.decode("utf-8")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(record.value)

    # The lenient decoder accepts it, and the result cannot be written as UTF-8.
    lenient = json.loads(record.value)
    assert lenient["id"] == record.event_id
    with pytest.raises(UnicodeEncodeError):
        json.dumps(lenient, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_big_integer_survives_an_exact_decoder(pipeline: str) -> None:
    record = records_of(pipeline)["big_integer"]
    assert record.value is not None

    assert b'"legacy_id":123456789012345678901234567890' in record.value
    decoded = json.loads(record.value)
    assert decoded["data"]["legacy_id"] == BIG_INTEGER
    assert type(decoded["data"]["legacy_id"]) is int
    # orjson turns it into a float: the worker must not decode with it unchanged.
    assert isinstance(orjson.loads(record.value)["data"]["legacy_id"], float)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_json_array_and_unknown_type(pipeline: str) -> None:
    records = records_of(pipeline)

    array = orjson.loads(records["not_an_object"].value or b"")
    assert isinstance(array, list)
    assert isinstance(array[0], dict)
    envelope = orjson.loads(records["unknown_event_type"].value or b"")
    assert envelope["type"] not in {
        "support.ticket.created",
        "customer.email.received",
        "crm.contact.created",
        "crm.contact.updated",
    }


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_field_defects_keep_the_event_readable(pipeline: str) -> None:
    records = records_of(pipeline)
    main_field = {"tickets": "text", "emails": "body", "crm": "contact"}[pipeline]

    missing = orjson.loads(records["missing_required_field"].value or b"")
    assert main_field not in missing["data"]
    wrong = orjson.loads(records["wrong_type"].value or b"")
    assert 42 in wrong["data"].values()
    for kind in ("missing_required_field", "wrong_type", "unknown_event_type"):
        assert orjson.loads(records[kind].value or b"")["id"] == records[kind].event_id


def test_texts_differ_between_kinds_so_each_gets_its_own_enrichment() -> None:
    records = records_of("tickets")
    texts = {
        orjson.loads(records[kind].value or b"")["data"]["text"]
        for kind in ("invalid_utf8_key_and_header", "big_integer", "unknown_event_type")
    }
    assert len(texts) == 3
