"""Packed requests: several events in one prompt, one answer per item.

A packed user message holds items, each between a line ``<item id="ID">``
and a line ``</item>``, after a fixed instruction that asks for the answer
``{"items": [{"id": "ID", ...keys}, ...]}``. A user message is read as packed
when it has at least one such item and mentions ``"items"``. Each item is
answered with exactly the rules of a single event (``answers.build_answer``),
in the order given. The item faults then damage one item, chosen by the
request's random generator: it is left out, or loses its last key.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

from streams.simulator.answers import build_answer
from streams.simulator.fault_catalogue import ITEM_FAULTS, FaultKind

_ITEM_OPEN = re.compile(r'^<item id="(?P<id>[^"\n]{1,40})">$')
_ITEM_CLOSE = "</item>"
_ANSWER_KEY = '"items"'


def parse_packed_items(user_text: str) -> list[tuple[str, str]] | None:
    """Return the ``(id, text)`` items of a packed message, or None if not packed.

    Lines outside items (the packing instruction) are skipped; an item
    without its closing line is not counted.
    """
    if _ANSWER_KEY not in user_text:
        return None
    items: list[tuple[str, str]] = []
    current_id: str | None = None
    lines: list[str] = []
    for line in user_text.splitlines():
        if current_id is None:
            opening = _ITEM_OPEN.match(line)
            if opening is not None:
                current_id, lines = opening.group("id"), []
            continue
        if line == _ITEM_CLOSE:
            items.append((current_id, "\n".join(lines)))
            current_id = None
            continue
        lines.append(line)
    return items or None


def build_packed_answer(
    system_text: str, items: list[tuple[str, str]], today: dt.date | None = None
) -> dict[str, Any]:
    """Answer every item as a single event, each element led by its id."""
    return {
        "items": [
            {"id": item_id, **build_answer(system_text, text, today)}
            for item_id, text in items
        ]
    }


def damage_one_item(
    answer: dict[str, Any], fault: FaultKind, rng: random.Random
) -> None:
    """Apply an item fault to a packed answer in place.

    ``packed_item_dropped`` removes one element; ``packed_item_malformed``
    removes the last key of one element (every key is required by the
    pipelines' output schemas). Other kinds change nothing.
    """
    elements: list[dict[str, Any]] = answer["items"]
    if not elements:
        return
    index = rng.randrange(len(elements))
    if fault is FaultKind.PACKED_ITEM_DROPPED:
        del elements[index]
    elif fault is FaultKind.PACKED_ITEM_MALFORMED:
        keys = [key for key in elements[index] if key != "id"]
        if keys:
            del elements[index][keys[-1]]


def answer_request(
    system_text: str,
    user_text: str,
    fault: FaultKind | None,
    rng: random.Random,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The answer object for a request, packed or single, under an item fault."""
    items = parse_packed_items(user_text)
    if items is None:
        return build_answer(system_text, user_text, today)
    answer = build_packed_answer(system_text, items, today)
    if fault in ITEM_FAULTS:
        damage_one_item(answer, fault, rng)
    return answer
