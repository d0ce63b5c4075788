"""Records with one known defect each, to check how the worker treats bad input.

Every builder returns one ``MalformedRecord`` for a pipeline, built from a small
valid event of that pipeline and then broken in exactly one way. The record
says what the worker must do with it (``expected_outcome``) and, for a
dead-letter, which reason it must give (``expected_reason``):

============================  ===========  ================  ==========================
kind                          outcome      reason            defect
============================  ===========  ================  ==========================
invalid_json                  dead_letter  invalid_json      value cut in half
invalid_utf8                  dead_letter  invalid_utf8      French text in Latin-1
invalid_utf8_key_and_header   enriched     (none)            key and a header not UTF-8
missing_required_field        dead_letter  schema_violation  main text field absent
wrong_type                    dead_letter  schema_violation  a string field holds 42
tombstone                     dead_letter  tombstone         value null, no headers
empty_value                   dead_letter  empty_value       value of zero bytes
lone_surrogate                dead_letter  invalid_json      a string holds \\ud800
big_integer                   enriched     (none)            a 30-digit legacy_id
not_an_object                 dead_letter  schema_violation  value is a JSON array
unknown_event_type            dead_letter  schema_violation  type not the pipeline's
============================  ===========  ================  ==========================

The lone surrogate is rejected when the value is decoded, before any model is
paid for: a strict JSON decoder (orjson) refuses it, and Python's ``json``, which
accepts it, would hand over a string that no UTF-8 encoder can write back. The
big integer must come out of the worker with all 30 digits, which rules out
decoders that turn it into a float (orjson does). The main text field is
``data.text`` for tickets, ``data.body`` for emails and ``data.contact`` for CRM
changes; ``event_id`` is ``None`` where the value yields no id without repair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson

from streams.data.edge_templates import edge_template
from streams.data.events import (
    EVENT_HEADERS,
    PIPELINE_TOPICS,
    ExpectedOutcome,
    Headers,
    encode_event,
)

BIG_INTEGER: Final = 123456789012345678901234567890
"""The integer placed in ``data.legacy_id``; it needs 97 bits."""


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A record with one deliberate defect and the behaviour it must cause.

    Attributes:
        topic: Input topic the record is written to.
        key: Record key; ``None`` for no key.
        value: Record value; ``None`` for a tombstone.
        headers: Record headers, values as raw bytes.
        kind: One of ``MALFORMED_KINDS``.
        expected_outcome: ``enriched`` or ``dead_letter``.
        expected_reason: The dead-letter reason; ``None`` when enriched.
        event_id: The envelope id when it can be read without repair, else ``None``.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    kind: str
    expected_outcome: ExpectedOutcome
    expected_reason: str | None
    event_id: str | None


_UNKNOWN_TYPES: Final = {
    "tickets": "support.ticket.deleted",
    "emails": "customer.email.bounced",
    "crm": "crm.contact.merged",
}
_MAIN_FIELDS: Final = {"tickets": "text", "emails": "body", "crm": "contact"}
_STRING_FIELDS: Final = {"tickets": "text", "emails": "body", "crm": "contact_id"}


def _record(
    pipeline: str,
    kind: str,
    key: bytes | None,
    value: bytes | None,
    *,
    reason: str | None,
    event_id: str | None,
    headers: Headers = EVENT_HEADERS,
) -> MalformedRecord:
    return MalformedRecord(
        topic=PIPELINE_TOPICS[pipeline],
        key=key,
        value=value,
        headers=headers,
        kind=kind,
        expected_outcome="enriched" if reason is None else "dead_letter",
        expected_reason=reason,
        event_id=event_id,
    )


def invalid_json(pipeline: str) -> MalformedRecord:
    """Build a valid event whose value is truncated halfway."""
    key, envelope, _ = edge_template(pipeline, "invalid_json")
    value = encode_event(envelope)
    return _record(
        pipeline,
        "invalid_json",
        key.encode(),
        value[: len(value) // 2],
        reason="invalid_json",
        event_id=None,
    )


def invalid_utf8(pipeline: str) -> MalformedRecord:
    """Build an event whose whole value is encoded as Latin-1."""
    key, envelope, _ = edge_template(pipeline, "invalid_utf8")
    text = orjson.dumps(envelope).decode("utf-8")
    return _record(
        pipeline,
        "invalid_utf8",
        key.encode(),
        text.encode("latin-1"),
        reason="invalid_utf8",
        event_id=None,
    )


def invalid_utf8_key_and_header(pipeline: str) -> MalformedRecord:
    """Build a valid event whose key and ``x-origin`` header are not UTF-8."""
    key, envelope, _ = edge_template(pipeline, "invalid_utf8_key_and_header")
    return _record(
        pipeline,
        "invalid_utf8_key_and_header",
        key.encode() + b"-\xe9t\xe9\xff",
        encode_event(envelope),
        reason=None,
        event_id=str(envelope["id"]),
        headers=(*EVENT_HEADERS, ("x-origin", b"caf\xe9-desk")),
    )


def missing_required_field(pipeline: str) -> MalformedRecord:
    """Build an event that lacks its main text field."""
    key, envelope, data = edge_template(pipeline, "missing_required_field")
    del data[_MAIN_FIELDS[pipeline]]
    return _record(
        pipeline,
        "missing_required_field",
        key.encode(),
        encode_event(envelope),
        reason="schema_violation",
        event_id=str(envelope["id"]),
    )


def wrong_type(pipeline: str) -> MalformedRecord:
    """Build an event where a required string field holds a number."""
    key, envelope, data = edge_template(pipeline, "wrong_type")
    data[_STRING_FIELDS[pipeline]] = 42
    return _record(
        pipeline,
        "wrong_type",
        key.encode(),
        encode_event(envelope),
        reason="schema_violation",
        event_id=str(envelope["id"]),
    )


def tombstone(pipeline: str) -> MalformedRecord:
    """Build a record with a key, no value and no headers."""
    key, _, _ = edge_template(pipeline, "tombstone")
    return _record(
        pipeline,
        "tombstone",
        key.encode(),
        None,
        reason="tombstone",
        event_id=None,
        headers=(),
    )


def empty_value(pipeline: str) -> MalformedRecord:
    """Build a record whose value is zero bytes."""
    key, _, _ = edge_template(pipeline, "empty_value")
    return _record(
        pipeline, "empty_value", key.encode(), b"", reason="empty_value", event_id=None
    )


def lone_surrogate(pipeline: str) -> MalformedRecord:
    """Build an event whose main text holds the escape of an unpaired surrogate."""
    key, envelope, data = edge_template(pipeline, "lone_surrogate")
    marker = "@@surrogate@@"
    data[_STRING_FIELDS[pipeline]] = f"Colis abîmé {marker} à l'arrivée"
    value = encode_event(envelope).replace(marker.encode(), b"\\ud800")
    return _record(
        pipeline,
        "lone_surrogate",
        key.encode(),
        value,
        reason="invalid_json",
        event_id=str(envelope["id"]),
    )


def big_integer(pipeline: str) -> MalformedRecord:
    """Build a valid event with ``data.legacy_id`` set to a 30-digit integer."""
    key, envelope, data = edge_template(pipeline, "big_integer")
    # orjson refuses integers beyond 64 bits, so the literal is spliced in.
    marker = "@@big-integer@@"
    data["legacy_id"] = marker
    value = encode_event(envelope).replace(
        f'"{marker}"'.encode(), str(BIG_INTEGER).encode()
    )
    return _record(
        pipeline,
        "big_integer",
        key.encode(),
        value,
        reason=None,
        event_id=str(envelope["id"]),
    )


def not_an_object(pipeline: str) -> MalformedRecord:
    """Build a value that is a JSON array wrapping a valid event."""
    key, envelope, _ = edge_template(pipeline, "not_an_object")
    return _record(
        pipeline,
        "not_an_object",
        key.encode(),
        orjson.dumps([envelope]),
        reason="schema_violation",
        event_id=None,
    )


def unknown_event_type(pipeline: str) -> MalformedRecord:
    """Build an event whose ``type`` the pipeline's schema does not allow."""
    key, envelope, _ = edge_template(pipeline, "unknown_event_type")
    envelope["type"] = _UNKNOWN_TYPES[pipeline]
    return _record(
        pipeline,
        "unknown_event_type",
        key.encode(),
        encode_event(envelope),
        reason="schema_violation",
        event_id=str(envelope["id"]),
    )


MALFORMED_BUILDERS: Final[dict[str, Callable[[str], MalformedRecord]]] = {
    builder.__name__: builder
    for builder in (
        invalid_json,
        invalid_utf8,
        invalid_utf8_key_and_header,
        missing_required_field,
        wrong_type,
        tombstone,
        empty_value,
        lone_surrogate,
        big_integer,
        not_an_object,
        unknown_event_type,
    )
}
"""Every builder, keyed by the kind it builds, in a fixed order."""

MALFORMED_KINDS: Final[tuple[str, ...]] = tuple(MALFORMED_BUILDERS)


def build_malformed_records(pipeline: str) -> list[MalformedRecord]:
    """Build one record of every kind for a pipeline's topic, in a fixed order.

    Args:
        pipeline: One of ``tickets``, ``emails`` or ``crm``.

    Returns:
        One ``MalformedRecord`` per entry of ``MALFORMED_KINDS``.

    Raises:
        KeyError: If the pipeline is unknown.
    """
    if pipeline not in PIPELINE_TOPICS:
        raise KeyError(pipeline)
    return [build(pipeline) for build in MALFORMED_BUILDERS.values()]
