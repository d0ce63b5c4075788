"""Deterministic answers: the JSON object a model would return for an event.

The system message names the keys; each key has a generator that reads the
event text with simple rules (see ``intents``, ``signals``, ``entities``,
``language`` and ``data_quality``). The same prompt always gives the same
object, serialised to the same bytes, and every generated value fits the
ticket, e-mail and CRM enrichment schemas. A key without a generator gets a
short string taken from the text, so the object always has every key asked
for. When the system message names no keys, the keys of the schema that
matches the event kind are used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cached_property
from typing import Any

import orjson

from streams.simulator import data_quality, intents
from streams.simulator.entities import extract_entities
from streams.simulator.language import detect_language
from streams.simulator.prompt import (
    EventFields,
    EventKind,
    parse_event_fields,
    parse_requested_keys,
)
from streams.simulator.signals import (
    PLACEHOLDER,
    clip,
    detect_sentiment,
    detect_urgency,
    first_sentence,
    normalize_space,
)

DEFAULT_KEYS: dict[EventKind, tuple[str, ...]] = {
    EventKind.TICKET: (
        "summary",
        "category",
        "intent",
        "urgency",
        "sentiment",
        "entities",
    ),
    EventKind.EMAIL: ("language", "intent", "summary", "urgency", "requested_action"),
    EventKind.CRM: ("change_summary", "data_quality_flags", "next_action"),
}
"""Keys answered when the system message does not name any."""

_SUMMARY_CHARS = 300
_LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
}


class _EventReading:
    """Everything the generators read from one event, each computed once."""

    def __init__(self, fields: EventFields, today: dt.date) -> None:
        self.fields = fields
        self.kind = fields.kind
        self.today = today

    @cached_property
    def text(self) -> str:
        return self.fields.main_text

    @cached_property
    def plain_text(self) -> str:
        return normalize_space(PLACEHOLDER.sub(" ", self.text))

    @cached_property
    def ticket_intent(self) -> str:
        return intents.ticket_intent(self.text)

    @cached_property
    def intent(self) -> str:
        if self.kind is EventKind.EMAIL:
            return intents.email_intent(
                self.fields.get("subject"), self.fields.get("body")
            )
        if self.kind is EventKind.CRM:
            return "create_contact" if self._is_creation else "update_contact"
        return self.ticket_intent

    @cached_property
    def language(self) -> str:
        return detect_language(self.plain_text)

    @cached_property
    def contact(self) -> dict[str, Any]:
        parsed = data_quality.parse_json_value(self.fields.get("contact"))
        return parsed if isinstance(parsed, dict) else {}

    @cached_property
    def flags(self) -> list[str]:
        if self.kind is not EventKind.CRM or not self.contact:
            return []
        return data_quality.quality_flags(self.contact, self.today)

    @cached_property
    def _is_creation(self) -> bool:
        change = self.fields.get("change").lower()
        return any(word in change for word in ("creat", "insert", "new", "add"))

    def summary(self) -> str:
        if self.kind is EventKind.CRM:
            return self.change_summary()
        if self.kind is EventKind.EMAIL:
            return self._email_summary()
        goal = intents.ticket_goal(self.ticket_intent)
        sentence = first_sentence(self.text, 200)
        summary = f"The customer wants to {goal}"
        return clip(
            f"{summary}: {sentence}" if sentence else f"{summary}.", _SUMMARY_CHARS
        )

    def _email_summary(self) -> str:
        language = _LANGUAGE_NAMES.get(self.language, "Foreign-language")
        summary = f"{language} e-mail {intents.email_topic(self.intent)}"
        subject = normalize_space(self.fields.get("subject"))
        if subject:
            summary += f' (subject: "{clip(subject, 120)}")'
        summary += "."
        attachments = self._attachment_count()
        if attachments:
            plural = "s" if attachments > 1 else ""
            summary += f" {attachments} attachment{plural}."
        return clip(summary, _SUMMARY_CHARS)

    def _attachment_count(self) -> int:
        value = self.fields.get("attachments")
        parsed = data_quality.parse_json_value(value)
        if isinstance(parsed, list):
            return len(parsed)
        return len([part for part in value.split(",") if part.strip()])

    def change_summary(self) -> str:
        if self.kind is not EventKind.CRM:
            return self.summary()
        fields = data_quality.as_field_list(self.fields.get("changed_fields"))
        populated = sum(
            1 for key, value in self.contact.items() if key != "attributes" and value
        )
        return data_quality.change_summary(
            self.fields.get("change"), fields, populated, self.flags
        )

    def requested_action(self) -> str:
        if self.kind is EventKind.EMAIL:
            return intents.email_action(self.intent)
        if self.kind is EventKind.CRM:
            return self.next_action()
        return f"Help the customer {intents.ticket_goal(self.ticket_intent)}."

    def next_action(self) -> str:
        if self.kind is not EventKind.CRM:
            return self.requested_action()
        return data_quality.next_action(self.flags, self.fields.get("change"))

    def fallback(self) -> str:
        return first_sentence(self.plain_text, 120) or "not available"


_Generator = Callable[[_EventReading], Any]

_GENERATORS: dict[str, _Generator] = {
    "summary": _EventReading.summary,
    "change_summary": _EventReading.change_summary,
    "category": lambda event: intents.ticket_category(event.ticket_intent),
    "intent": lambda event: event.intent,
    "urgency": lambda event: detect_urgency(event.plain_text, event.intent),
    "sentiment": lambda event: detect_sentiment(event.plain_text),
    "entities": lambda event: extract_entities(event.text),
    "language": lambda event: event.language,
    "requested_action": _EventReading.requested_action,
    "data_quality_flags": lambda event: event.flags,
    "next_action": _EventReading.next_action,
}


def build_answer(
    system_text: str, user_text: str, today: dt.date | None = None
) -> dict[str, Any]:
    """Return the answer object for a prompt.

    Args:
        system_text: The system message, which names the keys.
        user_text: The user message with the event's ``label: value`` lines.
        today: Reference date for birth-date checks; today's UTC date when
            omitted.

    Returns:
        An object with exactly the requested keys, in the requested order.
    """
    fields = parse_event_fields(user_text)
    event = _EventReading(fields, today or dt.datetime.now(dt.UTC).date())
    keys = parse_requested_keys(system_text) or list(DEFAULT_KEYS[event.kind])
    return {key: _GENERATORS.get(key, _EventReading.fallback)(event) for key in keys}


def render_answer(answer: dict[str, Any]) -> str:
    """Serialise an answer as compact JSON, byte-identical for equal answers."""
    return orjson.dumps(answer).decode()
