"""The circuit breaker's states: what opens it, and what alone closes it."""

from __future__ import annotations

import asyncio

from streams.llm.circuit_breaker import CircuitBreaker, CircuitState


def test_a_streak_of_failures_opens_it_and_a_success_in_between_resets_it() -> None:
    breaker = CircuitBreaker("test", failure_threshold=3)
    breaker.record_failure(account_level=False)
    breaker.record_failure(account_level=False)
    breaker.record_success()
    breaker.record_failure(account_level=False)
    breaker.record_failure(account_level=False)
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure(account_level=False)
    assert breaker.state is CircuitState.OPEN


def test_an_account_failure_opens_it_at_once() -> None:
    breaker = CircuitBreaker("test")
    breaker.record_failure(account_level=True)
    assert breaker.state is CircuitState.OPEN
    assert breaker.open_count == 1


def test_only_the_probe_closes_it_a_stray_answer_in_an_outage_does_not() -> None:
    async def scenario() -> list[CircuitState]:
        breaker = CircuitBreaker("test", failure_threshold=2, cooldown_s=0.01)
        breaker.record_failure(account_level=False)
        breaker.record_failure(account_level=False)
        seen = [breaker.state]
        # A call that was in flight when it opened comes back with an answer.
        breaker.record_success(probe=False)
        seen.append(breaker.state)
        # ... and the failures around it do not reopen it again and again.
        breaker.record_failure(account_level=False)
        seen.append(breaker.state)
        probe = await breaker.admit()
        assert probe
        breaker.record_success(probe=True)
        seen.append(breaker.state)
        assert breaker.open_count == 1
        return seen

    assert asyncio.run(scenario()) == [
        CircuitState.OPEN,
        CircuitState.OPEN,
        CircuitState.OPEN,
        CircuitState.CLOSED,
    ]


def test_a_failed_probe_opens_it_again_with_a_longer_cooldown() -> None:
    async def scenario() -> tuple[CircuitState, int]:
        breaker = CircuitBreaker("test", cooldown_s=0.01, max_cooldown_s=0.04)
        breaker.record_failure(account_level=True)
        probe = await breaker.admit()
        breaker.record_failure(account_level=False, probe=probe)
        return breaker.state, breaker.open_count

    assert asyncio.run(scenario()) == (CircuitState.OPEN, 2)
