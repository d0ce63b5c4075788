"""A test double of the DeepSeek chat-completions API.

The real API is unreachable from tests, demos and benchmarks, so this
package stands in for it: an ``aiohttp`` server that speaks the OpenAI
chat-completions format as DeepSeek does, answers the pipeline's prompts
with deterministic, schema-valid JSON derived from the event text, reports
token usage with DeepSeek's 64-token prefix cache accounting, waits a
seeded lognormal latency, and injects the faults real clients meet (HTTP
errors, blank or truncated content, keep-alive blank lines, silence, slow
bodies) by rate or by schedule. It is not a language model and must never be
mistaken for one: answers come from keyword rules.

Typical use in a test::

    async with await serve(SimulatorConfig(latency_mean_ms=0)) as simulator:
        client = openai.AsyncOpenAI(base_url=simulator.url, api_key="test")
        ...
"""

from streams.simulator.answers import build_answer, render_answer
from streams.simulator.config import FaultSettings, FaultWindow, SimulatorConfig
from streams.simulator.fault_catalogue import FaultKind
from streams.simulator.prompt_cache import BLOCK_TOKENS, CacheUsage, PromptCache
from streams.simulator.server import SimulatorHandle, create_app, run, serve
from streams.simulator.tokens import count_tokens

__all__ = [
    "BLOCK_TOKENS",
    "CacheUsage",
    "FaultKind",
    "FaultSettings",
    "FaultWindow",
    "PromptCache",
    "SimulatorConfig",
    "SimulatorHandle",
    "build_answer",
    "count_tokens",
    "create_app",
    "render_answer",
    "run",
    "serve",
]
