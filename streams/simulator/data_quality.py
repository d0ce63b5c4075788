"""Data-quality checks and summaries for CRM contact changes.

The ``contact`` field of a CRM event is a JSON object in the Salesforce
contact format (``FirstName``, ``Email``, ``MailingStreet`` ...). A value of
``"[redacted]"`` was removed before the text left the pipeline: it counts as
present and is not checked further.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from streams.simulator.signals import clip

REDACTED = "[redacted]"

_PHONE_FIELDS = ("MobilePhone", "Phone", "HomePhone", "OtherPhone")
_YEAR = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")

_FLAG_SUBJECTS: dict[str, str] = {
    "missing_email": "e-mail address",
    "invalid_email": "e-mail address",
    "missing_phone": "phone number",
    "invalid_phone": "phone number",
    "missing_address": "mailing address",
    "missing_name": "full name",
    "implausible_birthdate": "birth date",
}
_FLAG_LABELS: dict[str, str] = {
    "missing_email": "missing e-mail",
    "invalid_email": "invalid e-mail",
    "missing_phone": "missing phone",
    "invalid_phone": "invalid phone",
    "missing_address": "missing address",
    "missing_name": "missing name",
    "implausible_birthdate": "implausible birth date",
    "inconsistent_name_case": "inconsistent name case",
}


def parse_json_value(value: str) -> Any:
    """Parse a field value as JSON, returning ``None`` when it is not JSON.

    The standard library parser is used because it keeps integers beyond 64
    bits exact, where ``orjson`` would turn them into floats.
    """
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


def quality_flags(contact: Mapping[str, Any], today: dt.date) -> list[str]:
    """Return the sorted, unique data-quality flags of a contact record.

    Args:
        contact: The contact's fields.
        today: The date after which a birth date lies in the future.

    Returns:
        Flag names from the CRM enrichment schema.
    """
    flags: set[str] = set()

    email = _text(contact.get("Email"))
    if not email:
        flags.add("missing_email")
    elif email != REDACTED and "@" not in email:
        flags.add("invalid_email")

    phones = [_text(contact.get(field)) for field in _PHONE_FIELDS]
    phones = [phone for phone in phones if phone]
    if not phones:
        flags.add("missing_phone")
    elif all(
        phone != REDACTED and sum(char.isdigit() for char in phone) < 7
        for phone in phones
    ):
        flags.add("invalid_phone")

    if not _text(contact.get("MailingStreet")) or not _text(contact.get("MailingCity")):
        flags.add("missing_address")

    first_name = _text(contact.get("FirstName"))
    last_name = _text(contact.get("LastName"))
    if not first_name or not last_name:
        flags.add("missing_name")
    if any(_badly_cased(name) for name in (first_name, last_name)):
        flags.add("inconsistent_name_case")

    if _implausible_birthdate(_text(contact.get("Birthdate")), today):
        flags.add("implausible_birthdate")

    return sorted(flags)


def change_summary(
    change: str, changed_fields: list[str], contact_size: int, flags: list[str]
) -> str:
    """Describe a contact change in one or two English sentences.

    Field names are mentioned, field values never are.
    """
    if re.search(r"creat|insert|\bnew\b|add", change, re.IGNORECASE):
        first = f"New contact created with {contact_size} populated fields."
    elif changed_fields:
        names = changed_fields[:8]
        listed = ", ".join(names)
        if len(changed_fields) > len(names):
            listed += f" and {len(changed_fields) - len(names)} more"
        first = f"Contact updated: {listed} changed."
    elif change.strip():
        first = f"Contact record changed ({clip(change.strip(), 60)})."
    else:
        first = "Contact record received without change details."

    if flags:
        issues = ", ".join(_FLAG_LABELS[flag] for flag in flags)
        second = f" Data quality issues: {issues}."
    else:
        second = " No data quality issues found."
    return clip(first + second, 400)


def next_action(flags: list[str], change: str) -> str:
    """Return the one-sentence next step for a contact with ``flags``."""
    subjects: list[str] = []
    for flag in flags:
        subject = _FLAG_SUBJECTS.get(flag)
        if subject and subject not in subjects:
            subjects.append(subject)

    fix_case = "inconsistent_name_case" in flags
    if subjects:
        listed = _join_words(subjects)
        sentence = f"Ask the contact to confirm their {listed}"
        if fix_case:
            sentence += ", then normalise the capitalisation of their name"
        return sentence + "."
    if fix_case:
        return "Normalise the capitalisation of the contact's name."
    if re.search(r"creat|insert|\bnew\b|add", change, re.IGNORECASE):
        return "Send the welcome message to the new contact."
    return "No action needed; the contact record is complete."


def as_field_list(value: str) -> list[str]:
    """Read ``changed_fields`` given as a JSON list or as comma-separated text."""
    parsed = parse_json_value(value)
    if isinstance(parsed, list):
        return [str(item) for item in parsed if str(item).strip()]
    if isinstance(parsed, dict):
        return [str(key) for key in parsed]
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _badly_cased(name: str) -> bool:
    """True for a name written all in lower case or all in upper case."""
    if name == REDACTED or sum(char.isalpha() for char in name) < 2:
        return False
    return name == name.lower() or name == name.upper()


def _implausible_birthdate(value: str, today: dt.date) -> bool:
    if not value or value == REDACTED:
        return False
    match = _YEAR.match(value)
    if match is None:
        return False
    year, month, day = (int(group) for group in match.groups())
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return True
    return year < 1900 or born > today


def _join_words(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]
