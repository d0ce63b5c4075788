"""Token usage of one or more calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the provider reports them.

    ``completion_tokens`` includes ``reasoning_tokens``: reasoning is billed as
    output. Providers that report no cache split count every prompt token as a
    miss.
    """

    prompt_cache_hit_tokens: int = 0
    prompt_cache_miss_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Hit plus miss."""
        return self.prompt_cache_hit_tokens + self.prompt_cache_miss_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_cache_hit_tokens + other.prompt_cache_hit_tokens,
            self.prompt_cache_miss_tokens + other.prompt_cache_miss_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        """The fields as written into enriched records."""
        return {
            "prompt_cache_hit_tokens": self.prompt_cache_hit_tokens,
            "prompt_cache_miss_tokens": self.prompt_cache_miss_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    @classmethod
    def from_response(cls, usage: Any) -> Usage:
        """Reads an OpenAI-style ``usage`` object or mapping, tolerating gaps."""
        if usage is None:
            return cls()
        data = usage if isinstance(usage, dict) else usage.model_dump()
        prompt = int(data.get("prompt_tokens") or 0)
        hit = int(data.get("prompt_cache_hit_tokens") or 0)
        miss = data.get("prompt_cache_miss_tokens")
        details = data.get("completion_tokens_details") or {}
        return cls(
            prompt_cache_hit_tokens=hit,
            prompt_cache_miss_tokens=int(miss) if miss is not None else prompt - hit,
            completion_tokens=int(data.get("completion_tokens") or 0),
            reasoning_tokens=int(details.get("reasoning_tokens") or 0),
        )
