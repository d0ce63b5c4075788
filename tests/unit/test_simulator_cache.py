"""Token counting and the 64-token-block prompt cache of the simulator."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.simulator.prompt_cache import (
    BLOCK_TOKENS,
    PromptCache,
    render_prompt,
)
from streams.simulator.tokens import count_tokens, split_tokens

SYSTEM = (
    "You enrich customer-support tickets for a help desk. Read the ticket that "
    "follows and reply with a json object with exactly these keys: summary, "
    "category, intent, urgency, sentiment, entities. " * 4
)


def _prompt(user: str, system: str = SYSTEM) -> str:
    return render_prompt([("system", system), ("user", user)])


@settings(max_examples=300)
@given(st.text())
def test_tokens_cover_the_text_exactly(text: str) -> None:
    tokens = split_tokens(text)

    assert "".join(tokens) == text
    assert all(tokens)
    assert count_tokens(text) == len(tokens)


def test_english_text_counts_about_a_quarter_to_a_third_token_per_character() -> None:
    text = (
        "I ordered a blue jacket two weeks ago and it still has not arrived. "
        "Could you please tell me where my package is and when I can expect it?"
    )
    ratio = count_tokens(text) / len(text)

    assert 0.2 <= ratio <= 0.35


def test_first_request_misses_then_identical_request_hits_whole_blocks() -> None:
    cache = PromptCache()
    prompt = _prompt("text: where is my order 12345678?")
    total = count_tokens(prompt)
    assert total > 2 * BLOCK_TOKENS

    first = cache.account(prompt)
    second = cache.account(prompt)

    assert (first.hit_tokens, first.miss_tokens) == (0, total)
    assert second.hit_tokens == (total // BLOCK_TOKENS) * BLOCK_TOKENS
    assert second.miss_tokens == total % BLOCK_TOKENS
    assert second.prompt_tokens == total


def test_a_different_tail_misses_only_from_the_block_where_it_differs() -> None:
    cache = PromptCache()
    shared = count_tokens(_prompt(""))
    cache.account(_prompt("text: where is my order 12345678?"))

    usage = cache.account(_prompt("text: I want a refund for my broken chair"))

    # The shared prefix is the system message plus the user role marker; only
    # the whole blocks inside it can hit.
    assert usage.hit_tokens == (shared // BLOCK_TOKENS) * BLOCK_TOKENS
    assert usage.hit_tokens > 0
    assert usage.prompt_tokens == count_tokens(
        _prompt("text: I want a refund for my broken chair")
    )


def test_a_change_in_the_first_block_misses_everything() -> None:
    cache = PromptCache()
    cache.account(_prompt("text: hello"))

    usage = cache.account(_prompt("text: hello", system="Different. " + SYSTEM))

    assert usage.hit_tokens == 0


def test_the_same_text_under_another_role_is_another_prefix() -> None:
    cache = PromptCache()
    cache.account(render_prompt([("system", SYSTEM)]))

    usage = cache.account(render_prompt([("user", SYSTEM)]))

    assert usage.hit_tokens == 0


def test_a_prompt_shorter_than_one_block_never_hits() -> None:
    cache = PromptCache()
    prompt = _prompt("short", system="short")
    cache.account(prompt)

    usage = cache.account(prompt)

    assert usage.hit_tokens == 0
    assert usage.miss_tokens == count_tokens(prompt)


def test_a_longer_prompt_hits_the_blocks_of_a_shorter_one_it_extends() -> None:
    cache = PromptCache()
    base = "word " * 200
    cache.account(base)

    usage = cache.account(base + "and more words after it " * 20)

    assert usage.hit_tokens == (count_tokens(base) // BLOCK_TOKENS) * BLOCK_TOKENS


def test_least_recently_used_prefixes_are_forgotten_beyond_the_bound() -> None:
    cache = PromptCache(max_entries=3)
    first = "alpha " * BLOCK_TOKENS
    second = "bravo " * (3 * BLOCK_TOKENS)
    cache.account(first)
    cache.account(second)

    assert len(cache) == 3
    assert cache.account(first).hit_tokens == 0
    assert cache.account(first).hit_tokens == BLOCK_TOKENS


def test_clear_forgets_everything() -> None:
    cache = PromptCache()
    prompt = _prompt("text: hello")
    cache.account(prompt)
    cache.clear()

    assert len(cache) == 0
    assert cache.account(prompt).hit_tokens == 0


def test_accounting_is_linear_in_prompt_length() -> None:
    cache = PromptCache()
    prompt = _prompt("text: " + "The parcel arrived damaged and late. " * 6000)

    started = time.perf_counter()
    cache.account(prompt)
    usage = cache.account(prompt)
    elapsed = time.perf_counter() - started

    assert usage.hit_tokens > 50_000
    assert elapsed < 2.0


@settings(max_examples=100)
@given(st.text(max_size=300), st.text(max_size=300))
def test_hits_are_whole_blocks_and_counts_add_up(first: str, second: str) -> None:
    cache = PromptCache()
    cache.account(_prompt(first))

    usage = cache.account(_prompt(second))

    assert usage.hit_tokens % BLOCK_TOKENS == 0
    assert usage.hit_tokens + usage.miss_tokens == count_tokens(_prompt(second))
    if first == second:
        assert usage.hit_tokens == (usage.prompt_tokens // BLOCK_TOKENS) * BLOCK_TOKENS


@settings(max_examples=200)
@given(st.text(), st.text(), st.text())
def test_accounting_message_by_message_matches_the_whole_prompt(
    system: str, first: str, second: str
) -> None:
    whole, by_message = PromptCache(), PromptCache()
    for user in (first, second, first):
        messages = [("system", SYSTEM + system), ("user", user)]
        assert by_message.account_messages(messages) == whole.account(
            render_prompt(messages)
        )
