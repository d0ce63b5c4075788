"""CRM contact events from the Coral Cloud contact export.

The source file is a Salesforce data tree, ``{"records": [...]}``, one contact
per record. Each contact becomes a ``crm.contact.created`` event on
``events.crm``; some contacts then change, which gives
``crm.contact.updated`` events. Everything is derived from the position in the
file, so a rerun produces the same events:

- contact ``i`` (0-based) gets number ``n = i + 1`` and the event id
  ``crm-{n:05d}-c``; its updates are ``crm-{n:05d}-u1`` and ``crm-{n:05d}-u2``;
- the contact id (and record key) is ``External_Id__c``; a contact without one,
  or whose id an earlier contact already took (the export repeats about fifty),
  gets ``contact-{n:05d}`` instead;
- contacts whose number is a multiple of 3 get one update, and those whose
  number is a multiple of 6 a second one on top of the first;
- the created event is at ``BASE_EVENT_TIME + i * 45 s`` and update ``k`` is
  ``k`` days later; the returned list is sorted by time, so in files of up to
  1,920 contacts every created event comes before any update.

Updates cycle through nine changes in file order: a move to another city, a
new mobile number, a new e-mail address and a new last name are clean; three
of the nine introduce a data-quality fault an enrichment should flag (a blank
e-mail, an e-mail without ``@``, a last name in lower case). ``changed_fields``
lists only the fields whose value really changes, and ``previous`` their values
before the change (``null`` where the contact lacked the field). New phone
numbers use the fictional 555-01xx range and new addresses ``example.com``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

import orjson

from streams.data.events import (
    JsonObject,
    SourceEvent,
    build_envelope,
    event_time,
    make_source_event,
)

logger = logging.getLogger(__name__)

CRM_SOURCE: Final = "/crm/coral-cloud"
CONTACT_CREATED: Final = "crm.contact.created"
CONTACT_UPDATED: Final = "crm.contact.updated"
CONTACT_SPACING_SECONDS: Final = 45
UPDATE_STEP_SECONDS: Final = 86_400
UPDATED_EVERY: Final = 3
TWICE_UPDATED_EVERY: Final = 6

FieldChange = Callable[[JsonObject, int], JsonObject]
"""Given a contact and the update's ordinal, return the new values of fields."""

_CITIES: Final = (
    ("Portland", "Oregon", "97205"),
    ("Austin", "Texas", "78701"),
    ("Denver", "Colorado", "80202"),
    ("Savannah", "Georgia", "31401"),
    ("Madison", "Wisconsin", "53703"),
)
_LAST_NAMES: Final = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Delgado")


def _move_city(contact: JsonObject, ordinal: int) -> JsonObject:
    city, state, postal_code = _CITIES[ordinal % len(_CITIES)]
    if contact.get("MailingCity") == city:
        city, state, postal_code = _CITIES[(ordinal + 1) % len(_CITIES)]
    return {
        "MailingCity": city,
        "MailingState": state,
        "MailingPostalCode": postal_code,
    }


def _new_mobile(contact: JsonObject, ordinal: int) -> JsonObject:
    old = str(contact.get("MobilePhone") or "")
    area = old[:3] if old[:3].isdigit() else "415"
    return {"MobilePhone": f"{area}-555-01{ordinal % 100:02d}"}


def _new_email(contact: JsonObject, ordinal: int) -> JsonObject:
    first = "".join(c for c in str(contact.get("FirstName") or "") if c.isalnum())
    last = "".join(c for c in str(contact.get("LastName") or "") if c.isalnum())
    return {"Email": f"{first}.{last}{ordinal % 100}@example.com".lower()}


def _new_last_name(contact: JsonObject, ordinal: int) -> JsonObject:
    name = _LAST_NAMES[ordinal % len(_LAST_NAMES)]
    if contact.get("LastName") == name:
        name = _LAST_NAMES[(ordinal + 1) % len(_LAST_NAMES)]
    return {"LastName": name}


def _blank_email(contact: JsonObject, ordinal: int) -> JsonObject:
    return {"Email": ""}


def _email_without_at(contact: JsonObject, ordinal: int) -> JsonObject:
    return {"Email": str(contact.get("Email") or "unknown").replace("@", ".")}


def _lowercase_last_name(contact: JsonObject, ordinal: int) -> JsonObject:
    return {"LastName": str(contact.get("LastName") or "unknown").lower()}


CHANGE_CYCLE: Final[tuple[FieldChange, ...]] = (
    _move_city,
    _new_mobile,
    _blank_email,
    _new_email,
    _new_last_name,
    _email_without_at,
    _move_city,
    _new_mobile,
    _lowercase_last_name,
)
"""The change applied by the k-th update of the file is ``CHANGE_CYCLE[k % 9]``."""


def _next_change(contact: JsonObject, ordinal: int) -> JsonObject:
    """Apply ``CHANGE_CYCLE[ordinal]``, keeping only the fields it really alters.

    A change that would alter nothing (a blank e-mail that is already blank)
    gives way to the next one in the cycle; moving to another city always alters
    the city, so the search ends within one cycle.
    """
    for step in range(len(CHANGE_CYCLE)):
        change = CHANGE_CYCLE[(ordinal + step) % len(CHANGE_CYCLE)]
        proposed = change(contact, ordinal + step)
        altered = {k: v for k, v in proposed.items() if contact.get(k) != v}
        if altered:
            return altered
    raise AssertionError("the change cycle always moves the contact to another city")


def read_contacts(path: Path, limit: int | None = None) -> list[JsonObject]:
    """Read the contact records of a data-tree file, in file order.

    Args:
        path: A JSON file shaped ``{"records": [...]}``.
        limit: Read at most this many contacts; ``None`` reads all.

    Returns:
        The decoded records, ``attributes`` included.

    Raises:
        ValueError: If the file does not have that shape.
    """
    decoded = orjson.loads(path.read_bytes())
    records = decoded.get("records") if isinstance(decoded, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{path} is not a data tree of contact records")

    contacts: list[JsonObject] = records
    return contacts if limit is None else contacts[:limit]


def update_count(index: int) -> int:
    """Return how many updates the contact at 0-based ``index`` receives (0-2)."""
    number = index + 1
    return (number % UPDATED_EVERY == 0) + (number % TWICE_UPDATED_EVERY == 0)


def _contact_ids(contacts: list[JsonObject]) -> list[str]:
    ids: list[str] = []
    taken: set[str] = set()
    for index, contact in enumerate(contacts):
        external = contact.get("External_Id__c")
        contact_id = str(external) if isinstance(external, str | int) else ""
        if not contact_id or contact_id in taken:
            contact_id = f"contact-{index + 1:05d}"
        taken.add(contact_id)
        ids.append(contact_id)
    return ids


def _envelope(
    event_id: str, event_type: str, offset: int, contact_id: str, data: JsonObject
) -> JsonObject:
    return build_envelope(
        event_id=event_id,
        source=CRM_SOURCE,
        event_type=event_type,
        time=event_time(offset),
        subject=contact_id,
        data=data,
    )


def load_contacts(path: Path, limit: int | None = None) -> list[SourceEvent]:
    """Load created and updated contact events, ordered by event time.

    Args:
        path: A JSON file shaped ``{"records": [...]}``.
        limit: Read at most this many contacts; ``None`` reads all. Updates are
            added on top, so more events than contacts come back.

    Returns:
        The events, keyed by contact id, every created event first.

    Raises:
        ValueError: If the file does not have the data-tree shape.
    """
    contacts = read_contacts(path, limit)
    timed: list[tuple[int, SourceEvent]] = []
    ordinal = 0

    for index, (record, contact_id) in enumerate(
        zip(contacts, _contact_ids(contacts), strict=True)
    ):
        number = index + 1
        created_at = index * CONTACT_SPACING_SECONDS
        contact: JsonObject = {k: v for k, v in record.items() if k != "attributes"}
        created: JsonObject = {
            "contact_id": contact_id,
            "change": "created",
            "contact": contact,
        }
        envelope = _envelope(
            f"crm-{number:05d}-c", CONTACT_CREATED, created_at, contact_id, created
        )
        timed.append((created_at, make_source_event("crm", contact_id, envelope)))

        # Each update starts from the state the previous one left behind.
        for step in range(1, update_count(index) + 1):
            new_values = _next_change(contact, ordinal)
            ordinal += 1
            previous = {field: contact.get(field) for field in new_values}
            contact = {**contact, **new_values}
            updated: JsonObject = {
                "contact_id": contact_id,
                "change": "updated",
                "changed_fields": list(new_values),
                "previous": previous,
                "contact": contact,
            }
            offset = created_at + step * UPDATE_STEP_SECONDS
            envelope = _envelope(
                f"crm-{number:05d}-u{step}",
                CONTACT_UPDATED,
                offset,
                contact_id,
                updated,
            )
            timed.append((offset, make_source_event("crm", contact_id, envelope)))

    timed.sort(key=lambda pair: pair[0])
    events = [event for _, event in timed]
    logger.info("crm.loaded contacts=%d events=%d", len(contacts), len(events))
    return events
