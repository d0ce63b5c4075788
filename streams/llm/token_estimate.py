"""How many tokens a request will cost, estimated before it is sent.

estimate = prompt tokens of every message's text + ``max_tokens``

The completion can use up to ``max_tokens`` (reasoning included), so the
estimate is an upper bound on the completion and an approximation of the
prompt. The prompt is counted with the simulator's regular-expression
approximation of the DeepSeek V4 vocabulary (within about 20 percent per data
set, see :mod:`streams.simulator.tokens`); :func:`count_prompt_tokens` is the
one place to swap in an exact tokenizer. The rate limiter corrects the
estimate with the provider's reported usage after each call.
"""

from __future__ import annotations

from streams.llm.client import ChatRequest
from streams.simulator.tokens import count_tokens


def count_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """Approximate prompt tokens of chat messages (their text only)."""
    return sum(count_tokens(message.get("content") or "") for message in messages)


def estimate_request_tokens(request: ChatRequest) -> int:
    """Tokens the request may cost at most: its prompt plus ``max_tokens``."""
    return count_prompt_tokens(request.messages) + request.max_tokens
