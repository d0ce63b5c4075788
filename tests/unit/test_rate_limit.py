"""Requests and tokens per minute as token buckets, with a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from streams.llm.client import ChatRequest
from streams.llm.rate_limit import RateLimiter, TokenBucket, estimate_tokens
from streams.llm.usage import Usage


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def request(max_tokens: int = 100) -> ChatRequest:
    return ChatRequest("deepseek-flash", [{"role": "user", "content": "x"}], max_tokens)


def limiter(clock: FakeTime, **limits: float) -> RateLimiter:
    return RateLimiter(
        estimate=lambda r: r.max_tokens, clock=clock, sleep=clock.sleep, **limits
    )


def test_a_full_bucket_serves_a_minute_at_once_then_spaces_calls() -> None:
    clock = FakeTime()
    bucket = TokenBucket(60, clock=clock)
    assert [bucket.reserve(1) for _ in range(60)] == [0.0] * 60
    assert bucket.reserve(1) == pytest.approx(1.0)
    assert bucket.reserve(1) == pytest.approx(2.0)
    clock.now += 2.0
    assert bucket.balance == pytest.approx(0.0)


def test_the_bucket_refills_no_higher_than_its_size() -> None:
    clock = FakeTime()
    bucket = TokenBucket(120, clock=clock)
    bucket.reserve(120)
    clock.now += 30.0
    assert bucket.balance == pytest.approx(60.0)
    clock.now += 3600.0
    assert bucket.balance == pytest.approx(120.0)


def test_a_reservation_larger_than_the_bucket_is_cut_to_its_size() -> None:
    clock = FakeTime()
    bucket = TokenBucket(100, clock=clock)
    assert bucket.reserve(1_000) == 0.0
    assert bucket.balance == pytest.approx(0.0)


def test_requests_per_minute_hold_the_61st_call_for_one_second() -> None:
    async def scenario() -> FakeTime:
        clock = FakeTime()
        rate = limiter(clock, requests_per_minute=60)
        for _ in range(61):
            await rate.acquire(request())
        return clock

    clock = asyncio.run(scenario())
    assert clock.sleeps == [pytest.approx(1.0)]


def test_tokens_per_minute_reserve_the_estimate() -> None:
    async def scenario() -> FakeTime:
        clock = FakeTime()
        rate = limiter(clock, tokens_per_minute=600)
        for _ in range(3):
            await rate.acquire(request(max_tokens=300))
        return clock

    clock = asyncio.run(scenario())
    # 600 tokens at once, then 300 more at 10 per second.
    assert clock.sleeps == [pytest.approx(30.0)]


def test_usage_below_the_estimate_gives_tokens_back() -> None:
    async def scenario() -> RateLimiter:
        rate = limiter(FakeTime(), tokens_per_minute=1_000)
        permit = await rate.acquire(request(max_tokens=400))
        rate.settle(permit, Usage(prompt_cache_miss_tokens=50, completion_tokens=50))
        return rate

    rate = asyncio.run(scenario())
    assert rate.tokens is not None
    assert rate.tokens.balance == pytest.approx(900.0)


def test_usage_above_the_estimate_is_paid_by_later_calls() -> None:
    async def scenario() -> FakeTime:
        clock = FakeTime()
        rate = limiter(clock, tokens_per_minute=600)
        permit = await rate.acquire(request(max_tokens=100))
        rate.settle(permit, Usage(prompt_cache_miss_tokens=600, completion_tokens=100))
        await rate.acquire(request(max_tokens=100))  # balance -100 -> -200
        return clock

    clock = asyncio.run(scenario())
    assert clock.sleeps == [pytest.approx(20.0)]


def test_a_call_without_an_answer_gives_its_whole_estimate_back() -> None:
    async def scenario() -> RateLimiter:
        rate = limiter(FakeTime(), tokens_per_minute=1_000)
        permit = await rate.acquire(request(max_tokens=700))
        rate.settle(permit, Usage())
        return rate

    rate = asyncio.run(scenario())
    assert rate.tokens is not None
    assert rate.tokens.balance == pytest.approx(1_000.0)


def test_the_longer_of_both_waits_applies_and_is_reported() -> None:
    waits: list[tuple[str, float]] = []

    async def scenario() -> FakeTime:
        clock = FakeTime()
        rate = RateLimiter(
            requests_per_minute=1,
            tokens_per_minute=6_000,
            estimate=lambda r: r.max_tokens,
            clock=clock,
            sleep=clock.sleep,
            on_wait=lambda limit, seconds: waits.append((limit, seconds)),
        )
        await rate.acquire(request(max_tokens=6_000))
        await rate.acquire(request(max_tokens=100))
        return clock

    clock = asyncio.run(scenario())
    assert clock.sleeps == [pytest.approx(60.0)]
    assert waits == [("requests_per_minute", pytest.approx(60.0))]


def test_a_cancelled_wait_gives_the_reservation_back() -> None:
    async def scenario() -> RateLimiter:
        clock = FakeTime()

        async def never(_seconds: float) -> None:
            await asyncio.Event().wait()

        rate = RateLimiter(
            requests_per_minute=1,
            tokens_per_minute=1_000,
            estimate=lambda r: r.max_tokens,
            clock=clock,
            sleep=never,
        )
        await rate.acquire(request(max_tokens=100))
        waiting = asyncio.create_task(rate.acquire(request(max_tokens=500)))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return rate

    rate = asyncio.run(scenario())
    assert rate.requests is not None and rate.tokens is not None
    assert rate.requests.balance == pytest.approx(0.0)
    assert rate.tokens.balance == pytest.approx(900.0)


def test_without_limits_nothing_waits() -> None:
    async def scenario() -> FakeTime:
        clock = FakeTime()
        rate = limiter(clock)
        for _ in range(1_000):
            rate.settle(await rate.acquire(request()), Usage(completion_tokens=10))
        return clock

    assert asyncio.run(scenario()).sleeps == []


def test_the_estimate_is_the_prompt_plus_max_tokens() -> None:
    messages = [
        {"role": "system", "content": "Reply with a json object."},
        {"role": "user", "content": "text: where is my parcel?"},
    ]
    estimate = estimate_tokens(ChatRequest("deepseek-flash", messages, 300))
    assert 300 + 8 <= estimate <= 300 + 20
