"""The adaptive in-flight limit: AIMD between floor and ceiling, with a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from streams.llm.concurrency import AdaptiveLimit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_limit(
    clock: FakeClock, *, floor: int = 2, ceiling: int = 10, **options: float
) -> tuple[AdaptiveLimit, list[tuple[int, str]]]:
    changes: list[tuple[int, str]] = []
    limit = AdaptiveLimit(
        floor=floor,
        ceiling=ceiling,
        decrease_factor=0.5,
        cooldown_s=5.0,
        clock=clock,
        on_change=lambda value, cause: changes.append((value, cause)),
        **options,  # type: ignore[arg-type]
    )
    return limit, changes


def test_it_starts_at_the_ceiling() -> None:
    limit, _ = make_limit(FakeClock())
    assert limit.limit == 10


@pytest.mark.parametrize("reason", ["rate_limited", "overloaded"])
def test_a_429_or_503_multiplies_the_limit_down(reason: str) -> None:
    limit, changes = make_limit(FakeClock())
    limit.record_failure(reason)
    assert limit.limit == 5
    assert changes == [(5, reason)]


@pytest.mark.parametrize(
    "reason", ["server_error", "timeout", "connection_error", "blank_content"]
)
def test_other_failures_leave_the_limit(reason: str) -> None:
    limit, changes = make_limit(FakeClock())
    limit.record_failure(reason)
    assert limit.limit == 10
    assert not changes


def test_a_burst_of_429s_within_the_cooldown_is_one_decrease() -> None:
    clock = FakeClock()
    limit, _ = make_limit(clock)
    for _ in range(20):
        limit.record_failure("rate_limited")
    assert limit.limit == 5
    clock.now += 4.9
    limit.record_failure("rate_limited")
    assert limit.limit == 5
    clock.now += 0.1
    limit.record_failure("rate_limited")
    assert limit.limit == 2  # floor(5 x 0.5) = 2


def test_decreases_stop_at_the_floor() -> None:
    clock = FakeClock()
    limit, changes = make_limit(clock, floor=3)
    for _ in range(10):
        limit.record_failure("overloaded")
        clock.now += 5.0
    assert limit.limit == 3
    assert [value for value, _ in changes] == [5, 3]


def test_a_window_of_successes_adds_one_up_to_the_ceiling() -> None:
    clock = FakeClock()
    limit, changes = make_limit(clock)
    limit.record_failure("rate_limited")
    assert limit.limit == 5
    for _ in range(4):
        limit.record_answer(0.1)
    assert limit.limit == 5  # a window is as many answers as the limit
    limit.record_answer(0.1)
    assert limit.limit == 6
    for _ in range(6 + 7 + 8 + 9 + 100):
        limit.record_answer(0.1)
    assert limit.limit == 10
    assert changes[-1] == (10, "increase")


def test_a_decrease_restarts_the_window_of_successes() -> None:
    clock = FakeClock()
    limit, _ = make_limit(clock)
    limit.record_failure("rate_limited")
    for _ in range(4):
        limit.record_answer(0.1)
    clock.now += 5.0
    limit.record_failure("rate_limited")
    assert limit.limit == 2
    limit.record_answer(0.1)
    assert limit.limit == 2
    limit.record_answer(0.1)
    assert limit.limit == 3


def test_smoothed_latency_above_the_target_decreases_the_limit() -> None:
    clock = FakeClock()
    limit, changes = make_limit(clock, latency_target_s=1.0)
    for _ in range(30):
        limit.record_answer(0.5)
    assert limit.limit == 10
    limit.record_answer(2.0)  # smoothed 0.2 x 2.0 + 0.8 x 0.5 = 0.8
    assert limit.limit == 10
    limit.record_answer(2.0)  # 0.2 x 2.0 + 0.8 x 0.8 = 1.04
    assert limit.limit == 5
    assert changes == [(5, "latency")]
    limit.record_answer(2.0)  # still above, but within the cooldown
    assert limit.limit == 5
    assert limit.smoothed_latency_s == pytest.approx(1.232)


def test_latency_is_ignored_without_a_target() -> None:
    limit, _ = make_limit(FakeClock())
    for _ in range(10):
        limit.record_answer(600.0)
    assert limit.limit == 10


def test_a_floor_equal_to_the_ceiling_fixes_the_limit() -> None:
    limit, changes = make_limit(FakeClock(), floor=10, latency_target_s=0.1)
    limit.record_failure("rate_limited")
    limit.record_answer(5.0)
    assert limit.limit == 10
    assert not limit.adaptive
    assert not changes


def test_a_floor_above_the_ceiling_is_clamped() -> None:
    limit, _ = make_limit(FakeClock(), floor=50, ceiling=4)
    assert (limit.floor, limit.limit) == (4, 4)


def test_calls_beyond_the_limit_wait_and_a_decrease_holds_new_ones_back() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limit, _ = make_limit(clock, floor=1, ceiling=4)
        release = asyncio.Event()
        peak = 0

        async def call() -> None:
            nonlocal peak
            async with limit.slot():
                peak = max(peak, limit.in_flight)
                await release.wait()

        first = [asyncio.create_task(call()) for _ in range(6)]
        await asyncio.sleep(0)
        assert limit.in_flight == 4
        limit.record_failure("rate_limited")  # 4 -> 2; the 4 out keep going
        assert limit.limit == 2
        release.set()
        await asyncio.gather(*first)
        assert peak == 4
        assert limit.in_flight == 0

        release.clear()
        second = [asyncio.create_task(call()) for _ in range(5)]
        await asyncio.sleep(0)
        assert limit.in_flight == 2
        release.set()
        await asyncio.gather(*second)

    asyncio.run(scenario())


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def scenario() -> None:
        limit, _ = make_limit(FakeClock(), floor=1, ceiling=1)
        holder_release = asyncio.Event()

        async def hold() -> None:
            async with limit.slot():
                await holder_release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter.cancel()
        holder_release.set()
        await asyncio.gather(holder, waiter, return_exceptions=True)
        assert limit.in_flight == 0
        async with limit.slot():
            assert limit.in_flight == 1

    asyncio.run(scenario())
