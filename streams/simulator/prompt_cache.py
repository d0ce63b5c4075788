"""Prompt cache accounting in the manner of DeepSeek's disk cache.

DeepSeek bills a prompt's leading tokens at the cache-hit price when an
earlier request began with the same bytes. The cache works in blocks of 64
tokens: a request's hit tokens are the longest run of whole leading blocks
whose prefix was seen before, and everything after it is a miss. After the
request, every whole-block prefix of it is remembered.

A prefix is identified by a chained hash, ``h[i] = blake2b(h[i-1] + block
i)``, so accounting is linear in the prompt length. The remembered hashes
live in a bounded least-recently-used table.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from streams.simulator.tokens import split_tokens

BLOCK_TOKENS = 64
"""Tokens per cache block."""


@dataclass(frozen=True)
class CacheUsage:
    """How a prompt's tokens split between cache hits and misses.

    Attributes:
        hit_tokens: Tokens served from the cache, a multiple of 64.
        miss_tokens: The remaining prompt tokens.
    """

    hit_tokens: int
    miss_tokens: int

    @property
    def prompt_tokens(self) -> int:
        """All prompt tokens, hits plus misses."""
        return self.hit_tokens + self.miss_tokens


def render_prompt(messages: Iterable[tuple[str, str]]) -> str:
    """Concatenate ``(role, content)`` pairs into the text the cache sees.

    Each message is preceded by a role marker so that the same text under a
    different role is a different prefix.
    """
    return "".join(f"<|{role}|>{content}\n" for role, content in messages)


class PromptCache:
    """Remembers whole-block prompt prefixes and reports hits and misses.

    Args:
        max_entries: Prefix hashes kept; the least recently used go first.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max_entries = max_entries
        self._prefixes: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._prefixes)

    def clear(self) -> None:
        """Forget every remembered prefix."""
        self._prefixes.clear()

    def account(self, prompt: str) -> CacheUsage:
        """Report the cache usage of ``prompt`` and remember its prefixes.

        Args:
            prompt: The rendered prompt (see ``render_prompt``).

        Returns:
            Hit and miss token counts; a prompt shorter than one block is
            all misses.
        """
        return self._account_tokens(split_tokens(prompt))

    def account_messages(self, messages: Iterable[tuple[str, str]]) -> CacheUsage:
        """:meth:`account` of ``render_prompt(messages)``, with less work.

        Each rendered message ends in a newline and the next begins with
        ``<``, so no token crosses from one message to the next and the
        messages can be split one by one; the split of a repeated message
        (the fixed instructions) is remembered.
        """
        tokens: list[str] = []
        for role, content in messages:
            tokens.extend(_message_tokens(f"<|{role}|>{content}\n"))
        return self._account_tokens(tokens)

    def _account_tokens(self, tokens: list[str]) -> CacheUsage:
        prefix_hashes = list(_block_prefix_hashes(tokens))

        hit_blocks = 0
        for prefix_hash in prefix_hashes:
            if prefix_hash not in self._prefixes:
                break
            hit_blocks += 1

        for prefix_hash in prefix_hashes:
            self._remember(prefix_hash)

        hit_tokens = hit_blocks * BLOCK_TOKENS
        return CacheUsage(hit_tokens=hit_tokens, miss_tokens=len(tokens) - hit_tokens)

    def _remember(self, prefix_hash: bytes) -> None:
        if prefix_hash in self._prefixes:
            self._prefixes.move_to_end(prefix_hash)
            return
        self._prefixes[prefix_hash] = None
        if len(self._prefixes) > self._max_entries:
            self._prefixes.popitem(last=False)


@functools.lru_cache(maxsize=256)
def _message_tokens(rendered: str) -> tuple[str, ...]:
    return tuple(split_tokens(rendered))


def _block_prefix_hashes(tokens: list[str]) -> Iterable[bytes]:
    """Yield the chained hash of every whole-block prefix of ``tokens``."""
    previous = b""
    for start in range(0, len(tokens) - BLOCK_TOKENS + 1, BLOCK_TOKENS):
        block = "".join(tokens[start : start + BLOCK_TOKENS]).encode()
        previous = hashlib.blake2b(previous + block, digest_size=16).digest()
        yield previous
