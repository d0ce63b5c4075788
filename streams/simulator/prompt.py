"""Reading the pipeline's prompt convention: requested keys and event fields.

The system message names the keys of the JSON answer in a sentence such as
"Reply with a JSON object with exactly these keys: summary, category and
intent." The user message carries the event as ``label: value`` lines; a
value may continue over the following lines until the next known label.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

_KEYS_SENTENCE = re.compile(
    r"exactly\s+these\s+keys\s*:\s*(?P<keys>.*?)(?:\.(?=\s)|\.?\Z)",
    re.IGNORECASE | re.DOTALL,
)
_KEY_SEPARATOR = re.compile(r",|;|\n|\band\b", re.IGNORECASE)
_KEY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_KEY_DECORATION = " \t\r\"'`*-•"

KNOWN_LABELS: frozenset[str] = frozenset(
    {
        "text",
        "subject",
        "body",
        "attachments",
        "change",
        "changed_fields",
        "previous",
        "contact",
        "title",
        "description",
    }
)
"""Labels that start a new field wherever they appear at the start of a line."""

_LABEL_LINE = re.compile(r"^(?P<label>[a-z][a-z0-9_]{0,40}):(?: (?P<value>.*))?$")


class EventKind(StrEnum):
    """The kind of business event a prompt is about, guessed from its labels."""

    TICKET = "ticket"
    EMAIL = "email"
    CRM = "crm"


@dataclass(frozen=True)
class EventFields:
    """The labelled fields of the user message.

    Attributes:
        values: Field values by label, in order of appearance; a repeated
            label keeps its first value.
        raw: The whole user message.
    """

    values: dict[str, str]
    raw: str

    @property
    def kind(self) -> EventKind:
        """CRM when contact fields are present, e-mail when subject or body are."""
        labels = self.values.keys()
        if labels & {"contact", "change", "changed_fields", "previous"}:
            return EventKind.CRM
        if labels & {"subject", "body"}:
            return EventKind.EMAIL
        return EventKind.TICKET

    def get(self, label: str) -> str:
        """Return the value of ``label``, or an empty string."""
        return self.values.get(label, "")

    @property
    def main_text(self) -> str:
        """The free text the heuristics read for this kind of event."""
        if self.kind is EventKind.EMAIL:
            return f"{self.get('subject')}\n{self.get('body')}".strip()
        for label in ("text", "description", "body", "title"):
            if self.get(label).strip():
                return self.get(label).strip()
        return self.raw.strip()


def parse_requested_keys(system_text: str) -> list[str]:
    """Return the keys the system message asks for, in order, without repeats.

    Args:
        system_text: The system message.

    Returns:
        The key names; empty when no "exactly these keys:" sentence is found.
    """
    return list(_requested_keys(system_text))


@functools.lru_cache(maxsize=64)
def _requested_keys(system_text: str) -> tuple[str, ...]:
    match = _KEYS_SENTENCE.search(system_text)
    if match is None:
        return ()

    keys: list[str] = []
    for piece in _KEY_SEPARATOR.split(match.group("keys")):
        name = piece.strip(_KEY_DECORATION).rstrip(".:")
        if _KEY_NAME.match(name) and name not in keys:
            keys.append(name)
    return tuple(keys)


def parse_event_fields(user_text: str) -> EventFields:
    """Split the user message into labelled fields.

    A line ``label: value`` starts a field when the label is known, or when
    it is the first labelled line of the message; other lines continue the
    current field. Text before the first label becomes the ``text`` field.

    Args:
        user_text: The user message.

    Returns:
        The fields, each value stripped of surrounding whitespace.
    """
    values: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in user_text.splitlines():
        match = _LABEL_LINE.match(line)
        if match and (match.group("label") in KNOWN_LABELS or not values):
            label = match.group("label")
            current = [match.group("value") or ""]
            values.setdefault(label, current)
            continue
        if current is None:
            current = []
            values["text"] = current
        current.append(line)

    joined = {label: "\n".join(lines).strip() for label, lines in values.items()}
    return EventFields(values=joined, raw=user_text)
