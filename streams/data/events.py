"""CloudEvents envelopes for the records that the sample producers write.

Every input record value is one CloudEvents 1.0 event in structured mode: a JSON
object that holds the context attributes (``specversion``, ``id``, ``source``,
``type``, ``time``, ``datacontenttype``, optionally ``subject``) and the business
payload under ``data``. The record carries the header
``content-type: application/cloudevents+json`` so that a consumer can tell the
mode without parsing the value.

Event times are reproducible: every loader adds a fixed offset per source row to
``BASE_EVENT_TIME``, so two runs over the same file produce byte-identical
values. Values are serialised with orjson, which writes compact UTF-8 and keeps
the key order of the dictionaries built here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

import orjson

JsonObject: TypeAlias = dict[str, object]
"""A decoded JSON object, as the loaders build it before serialising."""

Headers: TypeAlias = tuple[tuple[str, bytes], ...]
"""Record headers in produce order; values are raw bytes."""

ExpectedOutcome: TypeAlias = Literal["enriched", "dead_letter"]
"""What the enrichment worker must do with a record: enrich it or dead-letter it."""

PIPELINES: Final[tuple[str, ...]] = ("tickets", "emails", "crm")
"""The pipeline names, in the order the producer writes them."""

PIPELINE_TOPICS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "tickets": "events.tickets",
        "emails": "events.emails",
        "crm": "events.crm",
    }
)
"""Input topic of each pipeline, as the pipeline configuration names it."""

SPEC_VERSION: Final = "1.0"
DATA_CONTENT_TYPE: Final = "application/json"
CONTENT_TYPE_HEADER: Final = "content-type"
CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"
EVENT_HEADERS: Final[Headers] = (
    (CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE.encode()),
)
"""The headers every well-formed input record carries."""

BASE_EVENT_TIME: Final = dt.datetime(2026, 11, 2, 8, 0, 0, tzinfo=dt.UTC)
"""Time of the first event of every source; later rows add a fixed step."""


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One well-formed input record, ready to be produced.

    Attributes:
        topic: Input topic of the pipeline.
        key: Record key as UTF-8 bytes (ticket id, sender address or contact id).
        value: The serialised CloudEvents envelope.
        event_id: The envelope's ``id``; replays of the event keep it.
        pipeline: Name of the pipeline that consumes the topic.
    """

    topic: str
    key: bytes
    value: bytes
    event_id: str
    pipeline: str

    @property
    def headers(self) -> Headers:
        """Headers to produce with the record."""
        return EVENT_HEADERS


def format_rfc3339(moment: dt.datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a ``Z`` suffix.

    Fractions of a second are written as milliseconds and only when present, so
    whole-second times read ``2026-11-02T08:00:00Z``.

    Args:
        moment: A timezone-aware datetime.

    Returns:
        The formatted time.

    Raises:
        ValueError: If ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise ValueError("an event time must carry a timezone")

    utc = moment.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def event_time(offset_seconds: float) -> str:
    """Return the event time ``offset_seconds`` after ``BASE_EVENT_TIME``."""
    return format_rfc3339(BASE_EVENT_TIME + dt.timedelta(seconds=offset_seconds))


def build_envelope(
    *,
    event_id: str,
    source: str,
    event_type: str,
    time: str,
    data: JsonObject,
    subject: str | None = None,
) -> JsonObject:
    """Build a CloudEvents 1.0 structured-mode envelope.

    Args:
        event_id: Event id, unique per event and stable across reruns.
        source: URI reference of the producing system, such as ``/helpdesk/bitext``.
        event_type: Reverse-dotted event type, such as ``support.ticket.created``.
        time: RFC 3339 time of the occurrence.
        data: The business payload.
        subject: Optional subject within the source, such as the ticket id.

    Returns:
        The envelope, with the attributes in a fixed order.
    """
    envelope: JsonObject = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time,
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if subject is not None:
        envelope["subject"] = subject
    envelope["data"] = data
    return envelope


def encode_event(envelope: JsonObject) -> bytes:
    """Serialise an envelope to compact UTF-8 JSON."""
    return orjson.dumps(envelope)


def make_source_event(pipeline: str, key: str, envelope: JsonObject) -> SourceEvent:
    """Serialise an envelope into a ``SourceEvent`` for a pipeline's topic.

    Args:
        pipeline: One of ``PIPELINES``.
        key: Record key; encoded as UTF-8.
        envelope: An envelope from ``build_envelope``.

    Returns:
        The event, addressed to the pipeline's input topic.

    Raises:
        KeyError: If the pipeline is unknown.
    """
    return SourceEvent(
        topic=PIPELINE_TOPICS[pipeline],
        key=key.encode("utf-8"),
        value=encode_event(envelope),
        event_id=str(envelope["id"]),
        pipeline=pipeline,
    )
