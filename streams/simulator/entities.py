"""Entity extraction from ticket text with regular expressions.

Recognised: e-mail addresses (``email``), money amounts (``amount``),
account tiers such as "gold account" (``account_type``) and runs of five or
more digits, typed by the words just before them (``invoice_id``,
``order_id``, ``policy_number``, ``account_number``, else
``reference_number``). Template slots like ``{{Order Number}}`` are removed
first, so they never become entities. Matches that overlap an earlier,
higher-priority match are skipped.
"""

from __future__ import annotations

import re

from streams.simulator.signals import PLACEHOLDER

MAX_ENTITIES = 20
MAX_VALUE_CHARS = 200

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_AMOUNT = re.compile(
    r"[$€£]\s?\d[\d,]*(?:\.\d{1,2})?"
    r"|\b\d[\d,]*(?:[.,]\d{1,2})?\s?(?:dollars?|usd|euros?|eur|pounds?|€|\$|£)",
    re.IGNORECASE,
)
_ACCOUNT_TYPE = re.compile(
    r"\b(standard|gold|platinum|premium|freemium|pro|basic|business)\s+account",
    re.IGNORECASE,
)
_DIGIT_RUN = re.compile(r"\b\d{5,}\b")
_NUMBER_CONTEXT: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("invoice_id", re.compile(r"invoice|\bbill|receipt|factur", re.IGNORECASE)),
    (
        "order_id",
        re.compile(r"order|purchase|item|package|shipment|track|commande", re.I),
    ),
    ("policy_number", re.compile(r"polic|contra[ct]t|sociétaire", re.IGNORECASE)),
    ("account_number", re.compile(r"account|compte", re.IGNORECASE)),
)
_CONTEXT_CHARS = 40


def extract_entities(text: str) -> list[dict[str, str]]:
    """Return ``{"type", "value"}`` entities in order of appearance.

    Args:
        text: Free text of the event.

    Returns:
        At most 20 distinct entities, each value at most 200 characters.
    """
    clean = PLACEHOLDER.sub(" ", text)
    found: list[tuple[int, int, str, str]] = []

    def add(start: int, end: int, kind: str, value: str) -> None:
        if any(
            start < taken_end and taken_start < end
            for taken_start, taken_end, *_ in found
        ):
            return
        found.append((start, end, kind, value.strip()[:MAX_VALUE_CHARS]))

    for match in _EMAIL.finditer(clean):
        add(match.start(), match.end(), "email", match.group())
    for match in _AMOUNT.finditer(clean):
        add(match.start(), match.end(), "amount", match.group())
    for match in _ACCOUNT_TYPE.finditer(clean):
        add(match.start(1), match.end(1), "account_type", match.group(1))
    for match in _DIGIT_RUN.finditer(clean):
        context = clean[max(0, match.start() - _CONTEXT_CHARS) : match.start()]
        add(match.start(), match.end(), _number_kind(context), match.group())

    entities: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for _, _, kind, value in sorted(found):
        if value and (kind, value) not in seen:
            seen.add((kind, value))
            entities.append({"type": kind, "value": value})
    return entities[:MAX_ENTITIES]


def _number_kind(context: str) -> str:
    """Type a digit run by the nearest preceding keyword within the context."""
    best_kind = "reference_number"
    best_position = -1
    for kind, pattern in _NUMBER_CONTEXT:
        for match in pattern.finditer(context):
            if match.start() > best_position:
                best_kind, best_position = kind, match.start()
    return best_kind
