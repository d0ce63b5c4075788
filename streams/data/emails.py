"""Customer-email events from the Melusine sample mailbox.

Each email of the JSON list becomes one ``customer.email.received`` event on
``events.emails``. The source fields map as follows: ``header`` to
``data.subject``, ``body`` to ``data.body``, ``from`` and ``to`` unchanged,
``date`` to ``data.sent_at`` (normalised, see ``normalise_sent_at``) and
``attachments`` to ``data.attachments``.

Ids are derived from the position in the file, so a rerun produces the same
events: email ``i`` (0-based) gets number ``n = i + 1``, event id
``eml-{n:05d}``, message id ``<eml-{n:05d}@melusine.example>`` and the event
time ``BASE_EVENT_TIME + i * 120 s``.

The record key is the sender's address taken from ``data.from``: for
``Monsieur Dupont <dupont@example.com>`` it is ``dupont@example.com``, so the
mails of one sender stay in order on one partition whatever display name they
carry. ``data.from`` itself keeps the header as written.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
from pathlib import Path
from typing import Final

import orjson

from streams.data.events import (
    JsonObject,
    SourceEvent,
    build_envelope,
    event_time,
    format_rfc3339,
    make_source_event,
)

logger = logging.getLogger(__name__)

EMAIL_SOURCE: Final = "/mailbox/melusine"
EMAIL_EVENT_TYPE: Final = "customer.email.received"
EMAIL_SPACING_SECONDS: Final = 120
LOCAL_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def email_event_id(index: int) -> str:
    """Return the event id of the email at 0-based position ``index``."""
    return f"eml-{index + 1:05d}"


def email_message_id(index: int) -> str:
    """Return the message id of the email at 0-based position ``index``."""
    return f"<{email_event_id(index)}@melusine.example>"


def normalise_sent_at(raw: object) -> str:
    """Turn the source's ``date`` into an RFC 3339 UTC time where possible.

    Accepted forms: an integer (or a string of digits) counting milliseconds
    since the Unix epoch, and ``YYYY-MM-DD HH:MM:SS``, which carries no zone and
    is read as UTC. Anything else, including a time that is already RFC 3339,
    is returned as text unchanged so that no information is lost.

    Args:
        raw: The ``date`` value as decoded from JSON.

    Returns:
        The normalised time, or ``str(raw)`` when it cannot be parsed.
    """
    if isinstance(raw, str) and raw.strip().isdigit():
        return normalise_sent_at(int(raw.strip()))

    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return format_rfc3339(_EPOCH + dt.timedelta(milliseconds=raw))
        except OverflowError:
            return str(raw)

    if isinstance(raw, str):
        try:
            local = dt.datetime.strptime(raw.strip(), LOCAL_TIME_FORMAT)
        except ValueError:
            return raw
        return format_rfc3339(local.replace(tzinfo=dt.UTC))

    return str(raw)


def sender_address(from_header: str) -> str:
    """Return the bare address of a ``From`` header, or the header if it has none.

    Args:
        from_header: Such as ``Name <user@example.com>`` or ``user@example.com``.

    Returns:
        ``user@example.com``, or the stripped header when no address is found.
    """
    _, address = email.utils.parseaddr(from_header)
    return address or from_header.strip()


def build_email_data(index: int, source: JsonObject) -> JsonObject:
    """Build the ``data`` object of the email at position ``index``.

    Args:
        index: 0-based position in the file.
        source: The email as decoded from the Melusine file.

    Returns:
        ``message_id``, ``from``, ``to``, ``subject``, ``body``, ``sent_at`` and
        ``attachments``; missing text fields become empty strings.
    """
    attachments = source.get("attachments") or []
    if not isinstance(attachments, list):
        attachments = [attachments]

    return {
        "message_id": email_message_id(index),
        "from": str(source.get("from") or ""),
        "to": str(source.get("to") or ""),
        "subject": str(source.get("header") or ""),
        "body": str(source.get("body") or ""),
        "sent_at": normalise_sent_at(source.get("date")),
        "attachments": [str(name) for name in attachments],
    }


def read_emails(path: Path, limit: int | None = None) -> list[JsonObject]:
    """Read the Melusine JSON list, in file order.

    Args:
        path: A JSON file holding a list of email objects.
        limit: Read at most this many emails; ``None`` reads all.

    Returns:
        The decoded emails.

    Raises:
        ValueError: If the file is not a list of objects.
    """
    decoded = orjson.loads(path.read_bytes())
    if not isinstance(decoded, list) or not all(isinstance(m, dict) for m in decoded):
        raise ValueError(f"{path} is not a JSON list of email objects")

    emails: list[JsonObject] = decoded
    return emails if limit is None else emails[:limit]


def load_emails(path: Path, limit: int | None = None) -> list[SourceEvent]:
    """Load email events from the Melusine file, in file order.

    Args:
        path: A JSON file holding a list of email objects.
        limit: Load at most this many emails; ``None`` loads all.

    Returns:
        One event per email, keyed by the sender's address.

    Raises:
        ValueError: If the file is not a list of objects.
    """
    events: list[SourceEvent] = []
    for index, source in enumerate(read_emails(path, limit)):
        data = build_email_data(index, source)
        envelope = build_envelope(
            event_id=email_event_id(index),
            source=EMAIL_SOURCE,
            event_type=EMAIL_EVENT_TYPE,
            time=event_time(index * EMAIL_SPACING_SECONDS),
            subject=email_message_id(index),
            data=data,
        )
        key = sender_address(str(data["from"]))
        events.append(make_source_event("emails", key, envelope))

    logger.info("emails.loaded events=%d", len(events))
    return events
