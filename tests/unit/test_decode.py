"""Every malformed kind is refused with a clear reason; odd but valid input passes."""

from __future__ import annotations

import pytest

from streams import json_codec
from streams.data.malformed import big_integer
from streams.errors import DecodeError
from streams.pipeline.config import Pipeline
from streams.pipeline.content_hash import content_hash
from streams.pipeline.decode import Event, decode_event
from tests.unit.conftest import ticket_body, ticket_bytes


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        (b"", "empty_value"),
        ("Résiliation de mon contrat".encode("latin-1"), "invalid_utf8"),
        (b'{"specversion": "1.0", "id": ', "invalid_json"),
        (b'{"specversion": "1.0", "id": "\\ud800"}', "invalid_json"),
        (b"[1, 2, 3]", "schema_violation"),
        (b'"just a string"', "schema_violation"),
        (
            json_codec.dumps({**ticket_body(), "type": "unknown.type"}),
            "schema_violation",
        ),
        (
            json_codec.dumps(
                {**ticket_body(), "data": {"ticket_id": "T", "channel": "chat"}}
            ),
            "schema_violation",
        ),
        (
            json_codec.dumps(
                {
                    **ticket_body(),
                    "data": {"ticket_id": "T", "channel": "chat", "text": 42},
                }
            ),
            "schema_violation",
        ),
    ],
    ids=[
        "tombstone",
        "empty",
        "latin1",
        "truncated-json",
        "lone-surrogate",
        "array",
        "string",
        "unknown-type",
        "missing-text",
        "wrong-type",
    ],
)
def test_malformed_values_are_refused_with_their_reason(
    pipelines: dict[str, Pipeline], value: bytes | None, reason: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(value, pipelines["tickets"])
    assert caught.value.reason == reason
    assert str(caught.value)


def test_lone_surrogate_next_to_a_long_integer_is_refused(
    pipelines: dict[str, Pipeline],
) -> None:
    raw = ticket_bytes("PLACEHOLDER").replace(b"PLACEHOLDER", b"broken \\ud800 text")
    raw = raw.replace(b'"channel"', b'"legacy_id":12345678901234567890123,"channel"')
    with pytest.raises(DecodeError) as caught:
        decode_event(raw, pipelines["tickets"])
    assert caught.value.reason == "invalid_json"


def test_integers_beyond_64_bits_survive_decode_hash_and_encode(
    pipelines: dict[str, Pipeline],
) -> None:
    raw = ticket_bytes().replace(
        b'"channel"', b'"legacy_id":123456789012345678901234567890,"channel"'
    )
    event = decode_event(raw, pipelines["tickets"])
    assert event.body["data"]["legacy_id"] == 123456789012345678901234567890
    assert b"123456789012345678901234567890" in json_codec.dumps(event.body)
    assert len(content_hash(pipelines["tickets"], event, "deepseek-flash")) == 64


def test_valid_event_decodes(pipelines: dict[str, Pipeline]) -> None:
    event = decode_event(ticket_bytes(), pipelines["tickets"])
    assert event.event_id == "tkt-1"
    assert event.event_type == "support.ticket.created"


def test_hash_ignores_ids_and_times_but_not_content(
    pipelines: dict[str, Pipeline],
) -> None:
    tickets = pipelines["tickets"]
    first = decode_event(ticket_bytes("where is my refund"), tickets)
    other_id = ticket_body("where is my refund")
    other_id["id"], other_id["time"] = "tkt-2", "2026-11-03T09:00:00Z"
    second = decode_event(json_codec.dumps(other_id), tickets)
    third = decode_event(ticket_bytes("where is my refund?"), tickets)
    assert content_hash(tickets, first, "m") == content_hash(tickets, second, "m")
    assert content_hash(tickets, first, "m") != content_hash(tickets, third, "m")
    assert content_hash(tickets, first, "m") != content_hash(
        tickets, first, "other-model"
    )


def test_integers_beyond_64_bits_in_content_change_the_hash_digit_by_digit(
    pipelines: dict[str, Pipeline],
) -> None:
    """Two ids one apart are the same float; their hashes must still differ."""
    crm = pipelines["crm"]
    template = big_integer("crm").value
    assert template is not None

    def event_with(number: bytes) -> Event:
        raw = template.replace(
            b'"contact":{', b'"contact":{"AccountNumber":' + number + b","
        )
        return decode_event(raw, crm)

    first = event_with(b"123456789012345678901234567890")
    second = event_with(b"123456789012345678901234567891")
    assert float(123456789012345678901234567890) == float(
        123456789012345678901234567891
    )
    assert (
        first.body["data"]["contact"]["AccountNumber"] == 123456789012345678901234567890
    )
    assert content_hash(crm, first, "m") != content_hash(crm, second, "m")
    assert b"123456789012345678901234567890" in json_codec.dumps(first.body)
