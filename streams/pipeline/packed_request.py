"""One LLM request for several events: its prompt, its answer, its bill.

Layout, fixed for the provider's prefix cache: the system message is the
pipeline's instructions, byte-identical to a single-event request; the user
message starts with the fixed :data:`PACKING_INSTRUCTION`, then holds each
event's text between ``<item id="N">`` and ``</item>`` lines. Item ids are
positions ("1", "2", ...), never event ids, so nothing about an event leaks
into the ids, and the same events always give the same bytes.

The answer must be one JSON object (JSON mode only allows an object):
``{"items": [{"id": "1", ...the pipeline's keys}, ...]}``. Each element is
checked on its own against the pipeline's output schema; an item that is
missing, repeated or invalid is reported, and the packer sends that event
alone. An answer that is cut off, blank, not JSON, or has no ``items`` list
fails the request as a whole.

Accounting rule (:func:`split_usage`): a packed call's prompt tokens (cache
hits and misses separately) are split evenly over its items, and its
completion and reasoning tokens in proportion to the bytes of each item's
element in the answer (evenly when no element came back). Shares are whole
tokens by the largest-remainder method, so they add up exactly to the call's
usage, and each item's cost is the price of its share, so per-event costs
add up to the call's cost.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema

from streams import json_codec
from streams.llm.client import ChatResponse
from streams.llm.usage import Usage
from streams.pipeline.config import Pipeline
from streams.simulator.tokens import count_tokens

PACKING_INSTRUCTION = (
    'This message holds several items, each between a line <item id="..."> and '
    "a line </item>. Handle every item on its own, exactly as the instructions "
    "above describe, and reply with one json object of the form "
    '{"items": [{"id": "<the item id>", ...the keys asked for}, ...]}: one '
    "element per item, in the order given, each with the item's id and the keys "
    "the instructions ask for."
)
"""Fixed text that opens the user message of every packed request."""

ITEM_MARKER = re.compile(r"</?item\b", re.IGNORECASE)
"""Text that would confuse item boundaries; an event containing it goes alone."""

ITEM_OVERHEAD_TOKENS = 12
"""Estimated tokens of one item's opening and closing lines."""


def estimate_tokens(text: str) -> int:
    """Approximate prompt tokens of ``text``.

    This is the simulator's regular-expression approximation of DeepSeek's
    vocabulary (within about 20 percent on the sample data); packing needs
    only an estimate, and a shared token counter can replace it here.
    """
    return count_tokens(text)


def item_block(item_id: str, text: str) -> str:
    """One item of the user message: its text between the marker lines."""
    return f'<item id="{item_id}">\n{text}\n</item>'


def build_packed_messages(pipeline: Pipeline, texts: list[str]) -> list[dict[str, str]]:
    """The chat messages for several event texts, ids "1", "2", ... in order."""
    blocks = [item_block(str(index), text) for index, text in enumerate(texts, 1)]
    return [
        {"role": "system", "content": pipeline.config.instructions},
        {"role": "user", "content": "\n".join([PACKING_INSTRUCTION, "", *blocks])},
    ]


@dataclass(frozen=True)
class PackedAnswer:
    """What a packed answer holds, item by item.

    Attributes:
        failure: Reason the answer is unusable as a whole, or None.
        values: Validated values by item id.
        problems: Reason by item id for the items without valid values.
        answer_bytes: Bytes of each item's element in the answer (0 if none).
    """

    failure: str | None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    answer_bytes: dict[str, int] = field(default_factory=dict)


def read_packed_answer(
    pipeline: Pipeline, response: ChatResponse, ids: list[str]
) -> tuple[PackedAnswer, str]:
    """Judges a packed answer; returns it and the outcome to report.

    Outcomes: ``ok`` (even when single items failed), ``truncated``,
    ``reasoning_only``, ``blank_content`` or ``invalid_json``.
    """
    if response.finish_reason == "length" or (
        response.content is None and response.reasoning_present
    ):
        reason = "truncated" if response.content else "reasoning_only"
        return PackedAnswer(failure=reason), reason
    content = response.content or ""
    if not content.strip():
        return PackedAnswer(failure="blank_content"), "blank_content"
    try:
        answer = json_codec.loads(content.encode())
    except json_codec.JSONError:
        return PackedAnswer(failure="invalid_json"), "invalid_json"
    elements = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(elements, list):
        return PackedAnswer(failure="invalid_json"), "invalid_json"

    wanted = set(ids)
    by_id: dict[str, dict[str, Any]] = {}
    answer_bytes = dict.fromkeys(ids, 0)
    seen: Counter[str] = Counter()
    for element in elements:
        item_id = _element_id(element)
        if item_id is None or item_id not in wanted:
            continue
        seen[item_id] += 1
        by_id[item_id] = element
        answer_bytes[item_id] += len(json_codec.dumps(element))

    values: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for item_id in ids:
        if seen[item_id] == 0:
            problems[item_id] = "missing_item"
            continue
        if seen[item_id] > 1:
            problems[item_id] = "repeated_item"
            continue
        candidate = {k: v for k, v in by_id[item_id].items() if k != "id"}
        try:
            pipeline.validate_output(candidate)
        except fastjsonschema.JsonSchemaValueException:
            problems[item_id] = "output_schema_violation"
            continue
        values[item_id] = candidate
    return PackedAnswer(None, values, problems, answer_bytes), "ok"


def _element_id(element: Any) -> str | None:
    if not isinstance(element, dict):
        return None
    item_id = element.get("id")
    if isinstance(item_id, bool):
        return None
    if isinstance(item_id, int):
        # Models sometimes drop the quotes; the position is still unambiguous.
        return str(item_id)
    return item_id if isinstance(item_id, str) else None


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` whole shares that differ by at most one."""
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def split_by_weight(total: int, weights: list[int]) -> list[int]:
    """``total`` in whole shares proportional to ``weights`` (largest remainder).

    All weights zero means an even split. The shares always add up to
    ``total``.
    """
    weight_sum = sum(weights)
    if weight_sum <= 0:
        return split_evenly(total, len(weights))
    exact = [total * weight / weight_sum for weight in weights]
    shares = [int(value) for value in exact]
    leftover = total - sum(shares)
    remainders = [value - share for value, share in zip(exact, shares, strict=True)]
    largest_first = sorted(range(len(weights)), key=lambda i: -remainders[i])
    for index in largest_first[:leftover]:
        shares[index] += 1
    return shares


def split_usage(usage: Usage, answer_bytes: list[int]) -> list[Usage]:
    """One packed call's usage, split over its items (see the module's rule)."""
    parts = len(answer_bytes)
    hits = split_evenly(usage.prompt_cache_hit_tokens, parts)
    misses = split_evenly(usage.prompt_cache_miss_tokens, parts)
    completions = split_by_weight(usage.completion_tokens, answer_bytes)
    reasoning = split_by_weight(usage.reasoning_tokens, answer_bytes)
    return [
        Usage(hits[index], misses[index], completions[index], reasoning[index])
        for index in range(parts)
    ]
