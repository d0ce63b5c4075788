"""Turning a record's value into a validated event, or a clear refusal.

Each refusal is a :class:`~streams.errors.DecodeError` whose reason is one of:

================  ==========================================================
reason            when
================  ==========================================================
tombstone         the value is null (a delete marker), unless skipped
empty_value       the value is zero bytes
invalid_utf8      the value is not UTF-8 (for example Latin-1 text)
invalid_json      the value is UTF-8 but not JSON, or holds an unpaired
                  surrogate escape that no encoder can write back
schema_violation  JSON, but not what the pipeline's input schema allows
================  ==========================================================

Integers beyond 64 bits are kept exact (see :mod:`streams.json_codec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fastjsonschema

from streams import json_codec
from streams.errors import DecodeError
from streams.pipeline.config import Pipeline, schema_problem


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded, schema-valid input event."""

    event_id: str
    event_type: str
    body: dict[str, Any]


def decode_event(value: bytes | None, pipeline: Pipeline) -> Event:
    """Decodes and validates one record value.

    Args:
        value: The record's value bytes; None for a tombstone.
        pipeline: The pipeline whose input schema applies.

    Returns:
        The event.

    Raises:
        DecodeError: The value cannot become an event; ``reason`` says why.
    """
    if value is None:
        raise DecodeError("record value is null (tombstone)", reason="tombstone")
    if not value:
        raise DecodeError("record value is empty (zero bytes)", reason="empty_value")

    try:
        body = json_codec.loads(value)
    except json_codec.JSONError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as utf8_exc:
            raise DecodeError(
                f"record value is not UTF-8 ({utf8_exc.reason} at byte "
                f"{utf8_exc.start})",
                reason="invalid_utf8",
            ) from exc
        raise DecodeError(
            f"record value is not JSON: {exc}", reason="invalid_json"
        ) from exc

    if not isinstance(body, dict):
        raise DecodeError(
            f"record value is a JSON {type(body).__name__}, not an object",
            reason="schema_violation",
        )
    try:
        pipeline.validate_input(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        event_id = body.get("id")
        raise DecodeError(
            f"record does not match {pipeline.config.input_schema}: "
            f"{schema_problem(exc)}",
            reason="schema_violation",
            event_id=event_id if isinstance(event_id, str) else None,
        ) from exc
    return Event(event_id=body["id"], event_type=body["type"], body=body)
