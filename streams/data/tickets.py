"""Support-ticket events from the Bitext customer-support CSV.

Each CSV row becomes one ``support.ticket.created`` event on ``events.tickets``.
The row carries no id, time or channel, so they are derived from the row alone
and a rerun produces the same events:

- row ``i`` (0-based, header excluded) gets number ``n = i + 1``, event id
  ``tkt-{n:05d}`` and ticket id ``T-{n:05d}``, which is also the record key;
- the event time is ``BASE_EVENT_TIME + i * 30 s``;
- ``channel`` and the optional ``customer_id`` come from a CRC-32 of the ticket
  id: the channel is ``CHANNELS[crc % 4]``, and four tickets in five name one of
  2,000 customers.

The gold labels (``category``, ``intent``) stay out of the event so that an
enrichment cannot copy them; ``ticket_gold_labels`` returns them by event id for
scoring.
"""

from __future__ import annotations

import csv
import logging
import zlib
from pathlib import Path
from typing import Final, TypedDict

from streams.data.events import (
    JsonObject,
    SourceEvent,
    build_envelope,
    event_time,
    make_source_event,
)

logger = logging.getLogger(__name__)

TICKET_SOURCE: Final = "/helpdesk/bitext"
TICKET_EVENT_TYPE: Final = "support.ticket.created"
TICKET_SPACING_SECONDS: Final = 30
CHANNELS: Final[tuple[str, ...]] = ("chat", "email", "phone", "web")
REQUIRED_COLUMNS: Final[frozenset[str]] = frozenset(
    {"instruction", "category", "intent"}
)
"""Columns the loader reads; the others are kept only in the shipped sample."""

_CUSTOMER_COUNT: Final = 2000


class GoldLabel(TypedDict):
    """The labels Bitext assigned to a ticket, for scoring an enrichment."""

    category: str
    intent: str


def ticket_event_id(index: int) -> str:
    """Return the event id of the ticket at 0-based row ``index``."""
    return f"tkt-{index + 1:05d}"


def ticket_id(index: int) -> str:
    """Return the ticket id (and record key) of the ticket at row ``index``."""
    return f"T-{index + 1:05d}"


def read_ticket_rows(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """Read the CSV rows in file order.

    Args:
        path: A CSV file with the Bitext header.
        limit: Read at most this many rows; ``None`` reads all.

    Returns:
        One dictionary per row, keyed by column name.

    Raises:
        ValueError: If a column the loader needs is missing.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks the columns {sorted(missing)}")

        rows: list[dict[str, str]] = []
        for row in reader:
            if limit is not None and len(rows) >= limit:
                break
            rows.append(row)
    return rows


def build_ticket_data(index: int, text: str) -> JsonObject:
    """Build the ``data`` object of the ticket at row ``index``.

    Args:
        index: 0-based row index.
        text: The customer's request.

    Returns:
        ``ticket_id``, ``channel``, the optional ``customer_id``, and ``text``.
    """
    number = ticket_id(index)
    digest = zlib.crc32(number.encode("ascii"))
    data: JsonObject = {
        "ticket_id": number,
        "channel": CHANNELS[digest % len(CHANNELS)],
    }

    # One ticket in five comes from a visitor who is not signed in.
    if (digest >> 8) % 5:
        data["customer_id"] = f"C-{(digest >> 16) % _CUSTOMER_COUNT:05d}"
    data["text"] = text
    return data


def load_tickets(path: Path, limit: int | None = None) -> list[SourceEvent]:
    """Load ticket events from the CSV, in file order.

    Args:
        path: A CSV file with the Bitext header.
        limit: Load at most this many rows; ``None`` loads all.

    Returns:
        One event per row.

    Raises:
        ValueError: If a column the loader needs is missing.
    """
    events: list[SourceEvent] = []
    for index, row in enumerate(read_ticket_rows(path, limit)):
        data = build_ticket_data(index, row["instruction"])
        envelope = build_envelope(
            event_id=ticket_event_id(index),
            source=TICKET_SOURCE,
            event_type=TICKET_EVENT_TYPE,
            time=event_time(index * TICKET_SPACING_SECONDS),
            subject=ticket_id(index),
            data=data,
        )
        events.append(make_source_event("tickets", ticket_id(index), envelope))

    logger.info("tickets.loaded events=%d", len(events))
    return events


def ticket_gold_labels(path: Path, limit: int | None = None) -> dict[str, GoldLabel]:
    """Return the Bitext labels of each ticket, keyed by event id.

    Args:
        path: The CSV the events were loaded from.
        limit: The same limit as passed to ``load_tickets``.

    Returns:
        ``{event_id: {"category": ..., "intent": ...}}`` for every loaded row.

    Raises:
        ValueError: If a column the loader needs is missing.
    """
    return {
        ticket_event_id(index): GoldLabel(
            category=row["category"], intent=row["intent"]
        )
        for index, row in enumerate(read_ticket_rows(path, limit))
    }
