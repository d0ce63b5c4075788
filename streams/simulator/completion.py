"""Shaping the ``chat.completion`` object, including its broken variants.

A normal completion carries the JSON answer with ``finish_reason`` "stop".
When the answer needs more tokens than ``max_tokens`` allows it is cut to
the budget and finishes with "length", as a real model would. The content
faults replace the content: empty, only whitespace, the first half of the
answer ("length"), or no content at all with the whole budget spent on
reasoning ("length"). For blank and whitespace content the answer's tokens
are still reported, because the real API bills output it then discards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from streams.simulator.fault_catalogue import FaultKind
from streams.simulator.prompt_cache import CacheUsage
from streams.simulator.tokens import count_tokens, split_tokens

MAX_REASONING_TEXT_TOKENS = 2048
"""Longest reasoning text sent; the reported reasoning tokens may be larger."""

_REASONING_SENTENCES = (
    "Let me read the customer's message carefully.",
    "The instructions ask for a JSON object with a fixed set of keys.",
    "I should decide the category before writing the summary.",
    "Wait, let me check the wording again to be sure about the intent.",
    "The urgency depends on whether the customer mentions a deadline.",
    "I need to make sure every value fits the expected format.",
)


@dataclass(frozen=True)
class CompletionParts:
    """The variable part of one completion.

    Attributes:
        content: Message content; ``None`` when the model produced none.
        reasoning_content: Reasoning text, or ``None``.
        finish_reason: ``stop`` or ``length``.
        completion_tokens: Output tokens billed, reasoning included.
        reasoning_tokens: Output tokens spent on reasoning.
    """

    content: str | None
    reasoning_content: str | None
    finish_reason: str
    completion_tokens: int
    reasoning_tokens: int


def shape_completion(
    answer: str, fault: FaultKind | None, max_tokens: int, rng: random.Random
) -> CompletionParts:
    """Return the completion for ``answer`` under an optional content fault.

    Args:
        answer: The full JSON answer text.
        fault: A content fault, or ``None`` (other kinds are ignored here).
        max_tokens: The request's completion budget.
        rng: The request's random generator, for whitespace lengths.

    Returns:
        The content, finish reason and token counts to report.
    """
    tokens = split_tokens(answer)
    if fault is FaultKind.BLANK_CONTENT:
        return CompletionParts("", None, "stop", min(len(tokens), max_tokens), 0)
    if fault is FaultKind.WHITESPACE_CONTENT:
        blank = " " * rng.randint(1, 40) + "\n" * rng.randint(0, 4)
        return CompletionParts(blank, None, "stop", min(len(tokens), max_tokens), 0)
    if fault is FaultKind.TRUNCATED:
        half = tokens[: max(1, min(len(tokens) // 2, max_tokens))]
        return CompletionParts("".join(half), None, "length", len(half), 0)
    if fault is FaultKind.REASONING_ONLY:
        return CompletionParts(
            None, reasoning_text(max_tokens), "length", max_tokens, max_tokens
        )

    if len(tokens) > max_tokens:
        return CompletionParts(
            "".join(tokens[:max_tokens]), None, "length", max_tokens, 0
        )
    return CompletionParts(answer, None, "stop", len(tokens), 0)


def reasoning_text(budget_tokens: int) -> str:
    """Return deterministic reasoning prose of about ``budget_tokens`` tokens."""
    target = min(budget_tokens, MAX_REASONING_TEXT_TOKENS)
    sentences: list[str] = []
    used = 0
    index = 0
    while used < target:
        sentence = _REASONING_SENTENCES[index % len(_REASONING_SENTENCES)]
        sentences.append(sentence)
        used += count_tokens(sentence) + 1
        index += 1
    return " ".join(sentences)


def completion_body(
    *,
    completion_id: str,
    model: str,
    created: int,
    parts: CompletionParts,
    cache: CacheUsage,
) -> dict[str, Any]:
    """Return the ``chat.completion`` object DeepSeek would send.

    Args:
        completion_id: The completion's ``id``.
        model: The requested model name, echoed.
        created: Unix time of creation.
        parts: Content, finish reason and output token counts.
        cache: Prompt token split between cache hits and misses.
    """
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": parts.content,
                    "reasoning_content": parts.reasoning_content,
                },
                "logprobs": None,
                "finish_reason": parts.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": cache.prompt_tokens,
            "completion_tokens": parts.completion_tokens,
            "total_tokens": cache.prompt_tokens + parts.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cache.hit_tokens},
            "prompt_cache_hit_tokens": cache.hit_tokens,
            "prompt_cache_miss_tokens": cache.miss_tokens,
            "completion_tokens_details": {"reasoning_tokens": parts.reasoning_tokens},
        },
        "system_fingerprint": "simulator",
    }
