"""Cache-friendly prompts: everything before the event text is the same bytes.

The provider caches prompt prefixes in blocks of 64 tokens, so the text in
front of the event must not vary: no event id, time, key or other per-event
value. These tests build the messages of every sample event of every
pipeline and compare the bytes up to the event's own text.
"""

from __future__ import annotations

import pytest

from streams.data.sample import load_pipeline_events
from streams.pipeline.config import Pipeline
from streams.pipeline.decode import Event, decode_event
from streams.pipeline.prompt import build_messages, render_fields
from streams.simulator.prompt_cache import PromptCache, render_prompt

PIPELINES = ("tickets", "emails", "crm")


def sample_events(pipeline: Pipeline) -> list[Event]:
    sources = load_pipeline_events(pipelines=[pipeline.name])[pipeline.name]
    return [decode_event(source.value, pipeline) for source in sources]


def prefix_before_event_text(pipeline: Pipeline, event: Event) -> bytes:
    """The prompt as the provider sees it, up to the first field's value."""
    system, user = build_messages(pipeline, event)
    label, _value = render_fields(pipeline, event)[0]
    assert user["content"].startswith(f"{label}: ")
    prompt = render_prompt([(system["role"], system["content"]), ("user", "")])
    return prompt.removesuffix("\n").encode() + f"{label}: ".encode()


@pytest.mark.parametrize("name", PIPELINES)
def test_the_prefix_is_byte_identical_across_events(
    pipelines: dict[str, Pipeline], name: str
) -> None:
    pipeline = pipelines[name]
    events = sample_events(pipeline)
    assert len(events) >= 40
    prefixes = {prefix_before_event_text(pipeline, event) for event in events}
    assert len(prefixes) == 1


@pytest.mark.parametrize("name", PIPELINES)
def test_no_per_event_value_reaches_the_prompt(
    pipelines: dict[str, Pipeline], name: str
) -> None:
    """Ids, times and sources stay out of the prompt altogether."""
    pipeline = pipelines[name]
    for event in sample_events(pipeline):
        text = "".join(m["content"] for m in build_messages(pipeline, event))
        for value in (event.event_id, event.body["time"], event.body["source"]):
            assert value not in text


@pytest.mark.parametrize(
    ("name", "least_share"),
    [("tickets", 0.9), ("emails", 0.8), ("crm", 0.75)],
)
def test_most_prompt_tokens_are_cache_hits(
    pipelines: dict[str, Pipeline], name: str, least_share: float
) -> None:
    """The simulator's 64-token block cache, fed every distinct sample prompt.

    Measured shares: tickets 0.95, emails 0.82, crm 0.77 (contacts are long
    JSON records, so their own text weighs more).
    """
    pipeline = pipelines[name]
    cache = PromptCache()
    hit = miss = 0
    seen: set[str] = set()
    for event in sample_events(pipeline):
        messages = build_messages(pipeline, event)
        if messages[1]["content"] in seen:
            continue  # the worker's result cache answers repeated content
        seen.add(messages[1]["content"])
        usage = cache.account(
            render_prompt([(m["role"], m["content"]) for m in messages])
        )
        hit += usage.hit_tokens
        miss += usage.miss_tokens
    assert hit / (hit + miss) >= least_share
