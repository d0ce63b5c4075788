"""Small valid events that ``streams.data.malformed`` breaks, one defect each.

A template is a well-formed event of one pipeline, apart from the sample data,
with ids that say what it is for: event id ``{tkt|eml|crm}-edge-{kind}`` and a
key such as ``T-edge-{kind}``. Its time is one week after ``BASE_EVENT_TIME``,
later than any event the loaders derive from the public files.

Every template holds accented French text, so that its Latin-1 encoding is not
valid UTF-8, and a number derived from the kind (a CRC-32 folded into
1000-9999), so that no two kinds share the text the worker hashes and the two
kinds that must be enriched each get an enrichment of their own.
"""

from __future__ import annotations

import zlib
from typing import Final, NamedTuple

from streams.data.crm import CONTACT_CREATED, CRM_SOURCE
from streams.data.emails import EMAIL_EVENT_TYPE, EMAIL_SOURCE
from streams.data.events import JsonObject, build_envelope, event_time
from streams.data.tickets import TICKET_EVENT_TYPE, TICKET_SOURCE

EDGE_OFFSET_SECONDS: Final = 7 * 86_400

_PREFIXES: Final = {"tickets": "tkt", "emails": "eml", "crm": "crm"}


class EdgeTemplate(NamedTuple):
    """A valid event to break.

    Attributes:
        key: The record key, before encoding.
        envelope: The CloudEvents envelope; ``data`` is the same object as below.
        data: The envelope's ``data``, for builders that change a field.
    """

    key: str
    envelope: JsonObject
    data: JsonObject


def _ticket(kind: str, number: int) -> tuple[str, JsonObject]:
    key = f"T-edge-{kind}"
    return key, {
        "ticket_id": key,
        "channel": "web",
        "text": f"Résiliation: I was charged twice for order {number}, "
        "please refund one of the two payments.",
    }


def _email(kind: str, number: int) -> tuple[str, JsonObject]:
    key = "client.edge@example.com"
    return key, {
        "message_id": f"<eml-edge-{kind}@melusine.example>",
        "from": f"Client Edge <{key}>",
        "to": "demandes@melusine.example",
        "subject": "Résiliation de mon contrat habitation",
        "body": f"Bonjour, je souhaite la résiliation du contrat {number} "
        "à la fin du mois. Cordialement.",
        "sent_at": event_time(EDGE_OFFSET_SECONDS),
        "attachments": [],
    }


def _contact(kind: str, number: int) -> tuple[str, JsonObject]:
    key = f"contact-edge-{kind}"
    contact: JsonObject = {
        "FirstName": "Hélène",
        "LastName": "Lefèvre",
        "MailingCity": "Orléans",
        "MailingPostalCode": f"45{number % 1000:03d}",
        "Email": "helene.lefevre@example.com",
    }
    return key, {"contact_id": key, "change": "created", "contact": contact}


def edge_template(pipeline: str, kind: str) -> EdgeTemplate:
    """Return a fresh valid event of a pipeline, named after a defect kind.

    Args:
        pipeline: ``tickets``, ``emails`` or ``crm``.
        kind: The defect the caller will introduce; it goes into the ids.

    Returns:
        A new template; the caller may change it freely.

    Raises:
        KeyError: If the pipeline is unknown.
    """
    number = 1000 + zlib.crc32(kind.encode()) % 9000
    builders = {
        "tickets": (_ticket, TICKET_EVENT_TYPE, TICKET_SOURCE),
        "emails": (_email, EMAIL_EVENT_TYPE, EMAIL_SOURCE),
        "crm": (_contact, CONTACT_CREATED, CRM_SOURCE),
    }
    build, event_type, source = builders[pipeline]
    key, data = build(kind, number)
    envelope = build_envelope(
        event_id=f"{_PREFIXES[pipeline]}-edge-{kind}",
        source=source,
        event_type=event_type,
        time=event_time(EDGE_OFFSET_SECONDS),
        subject=key,
        data=data,
    )
    return EdgeTemplate(key, envelope, data)
