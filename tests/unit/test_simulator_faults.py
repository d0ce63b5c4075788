"""Fault choice, latency draws, config parsing and broken completions."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.simulator.completion import shape_completion
from streams.simulator.config import FaultSettings, FaultWindow, SimulatorConfig
from streams.simulator.fault_catalogue import (
    ERROR_FAULTS,
    TRANSIENT_KINDS,
    FaultKind,
)
from streams.simulator.faults import FaultSchedule, choose_fault, fault_rates
from streams.simulator.latency import LatencyModel
from streams.simulator.state import SimulatorState
from streams.simulator.tokens import count_tokens

ANSWER = (
    '{"summary":"The customer wants to cancel an order: cancel order 1234567",'
    '"category":"ORDER","intent":"cancel_order","urgency":"medium",'
    '"sentiment":"neutral","entities":[{"type":"order_id","value":"1234567"}]}'
)


def _draws(count: int) -> list[float]:
    return [(index + 0.5) / count for index in range(count)]


def test_no_faults_configured_means_no_fault() -> None:
    settings = FaultSettings()

    assert all(choose_fault(settings, 0.0, draw) is None for draw in _draws(100))


def test_error_rate_spreads_evenly_over_429_500_and_503() -> None:
    settings = FaultSettings(error_rate=0.3)

    chosen = Counter(choose_fault(settings, 0.0, draw) for draw in _draws(3000))

    assert {kind: chosen[kind] for kind in TRANSIENT_KINDS} == {
        FaultKind.RATE_LIMITED: 300,
        FaultKind.SERVER_ERROR: 300,
        FaultKind.OVERLOADED: 300,
    }
    assert chosen[None] == 2100


@pytest.mark.parametrize("kind", list(FaultKind))
def test_a_rate_of_one_always_injects_that_kind(kind: FaultKind) -> None:
    settings = FaultSettings(rates={kind: 1.0})

    assert {choose_fault(settings, 0.0, draw) for draw in _draws(50)} == {kind}


def test_rates_adding_up_beyond_one_are_scaled_so_every_request_faults() -> None:
    settings = FaultSettings(
        rates={FaultKind.TRUNCATED: 0.9},
        schedule=(FaultWindow(kind=FaultKind.SLOW_DRIP, start_s=0.0, rate=0.9),),
    )

    chosen = Counter(choose_fault(settings, 1.0, draw) for draw in _draws(1000))

    assert chosen == {FaultKind.TRUNCATED: 500, FaultKind.SLOW_DRIP: 500}
    assert choose_fault(settings, 1.0, 0.999_999_999_999) is FaultKind.SLOW_DRIP


def test_schedule_windows_apply_only_inside_their_interval() -> None:
    window = FaultWindow(kind=FaultKind.OVERLOADED, start_s=10.0, end_s=20.0)
    settings = FaultSettings(schedule=(window,))

    assert choose_fault(settings, 9.99, 0.5) is None
    assert choose_fault(settings, 10.0, 0.5) is FaultKind.OVERLOADED
    assert choose_fault(settings, 19.99, 0.5) is FaultKind.OVERLOADED
    assert choose_fault(settings, 20.0, 0.5) is None


def test_mixed_sources_add_up_per_kind() -> None:
    settings = FaultSettings(
        error_rate=0.3,
        rates={FaultKind.RATE_LIMITED: 0.1, FaultKind.BLANK_CONTENT: 0.2},
        schedule=(FaultWindow(kind=FaultKind.RATE_LIMITED, start_s=0, rate=0.1),),
    )

    assert fault_rates(settings, 5.0) == pytest.approx(
        {
            FaultKind.RATE_LIMITED: 0.3,
            FaultKind.SERVER_ERROR: 0.1,
            FaultKind.OVERLOADED: 0.1,
            FaultKind.BLANK_CONTENT: 0.2,
        }
    )


def test_schedule_restarts_when_the_settings_are_replaced() -> None:
    window = FaultWindow(kind=FaultKind.RATE_LIMITED, start_s=0.0, end_s=5.0)
    schedule = FaultSchedule(FaultSettings(schedule=(window,)), now_s=100.0)

    assert schedule.choose(104.0, 0.5) is FaultKind.RATE_LIMITED
    assert schedule.choose(106.0, 0.5) is None

    schedule.replace(FaultSettings(schedule=(window,)), now_s=200.0)

    assert schedule.choose(201.0, 0.5) is FaultKind.RATE_LIMITED


def _fault_sequence(seed: int, count: int) -> list[FaultKind | None]:
    config = SimulatorConfig(seed=seed, faults=FaultSettings(error_rate=0.5))
    state = SimulatorState(config)
    sequence = []
    for _ in range(count):
        ticket = state.accept("id")
        sequence.append(state.schedule.choose(0.0, ticket.rng.random()))
    return sequence


def test_faults_are_reproducible_from_the_seed_and_request_order() -> None:
    first = _fault_sequence(seed=7, count=400)

    assert first == _fault_sequence(seed=7, count=400)
    assert first != _fault_sequence(seed=8, count=400)
    share = sum(kind is not None for kind in first) / len(first)
    assert 0.4 < share < 0.6


def test_each_error_fault_has_its_documented_status() -> None:
    statuses = {kind: spec.status for kind, spec in ERROR_FAULTS.items()}

    assert statuses == {
        FaultKind.RATE_LIMITED: 429,
        FaultKind.SERVER_ERROR: 500,
        FaultKind.OVERLOADED: 503,
        FaultKind.INSUFFICIENT_BALANCE: 402,
        FaultKind.UNAUTHORIZED: 401,
        FaultKind.CONTENT_REFUSAL: 400,
    }
    assert ERROR_FAULTS[FaultKind.CONTENT_REFUSAL].message == "Content Exists Risk"
    body = ERROR_FAULTS[FaultKind.RATE_LIMITED].body()
    assert set(body["error"]) >= {"message", "type", "code"}


def test_latency_draws_have_the_configured_mean_and_stay_clamped() -> None:
    model = LatencyModel(mean_ms=300, sigma=0.5)
    rng = random.Random(0)

    draws = [model.draw_s(rng) for _ in range(40_000)]

    assert sum(draws) / len(draws) == pytest.approx(0.3, rel=0.02)
    assert min(draws) >= 0.0
    assert max(draws) <= 3.0


def test_zero_mean_latency_never_waits_and_zero_sigma_is_constant() -> None:
    rng = random.Random(0)

    assert LatencyModel(mean_ms=0, sigma=0.5).draw_s(rng) == 0.0
    assert LatencyModel(mean_ms=200, sigma=0.0).draw_s(rng) == pytest.approx(0.2)


def test_from_mapping_ignores_none_and_takes_error_rate_as_a_shorthand() -> None:
    config = SimulatorConfig.from_mapping(
        {"latency_mean_ms": None, "seed": 3, "error_rate": 0.2}
    )

    assert config.latency_mean_ms == 300.0
    assert config.seed == 3
    assert config.faults.error_rate == 0.2


def test_from_mapping_reads_the_fault_section_as_json_data() -> None:
    config = SimulatorConfig.from_mapping(
        {
            "error_rate": 0.0,
            "faults": {
                "error_rate": 0.1,
                "rates": {"blank_content": 0.05},
                "schedule": [
                    {"kind": "never_answers", "start_s": 5, "end_s": 10, "rate": 0.5}
                ],
                "keepalive_duration_s": 3,
            },
        }
    )

    assert config.faults.error_rate == 0.1
    assert config.faults.rates == {FaultKind.BLANK_CONTENT: 0.05}
    assert config.faults.schedule[0].kind is FaultKind.NEVER_ANSWERS
    assert config.faults.keepalive_duration_s == 3.0
    assert FaultSettings.model_validate(config.faults.model_dump(mode="json")) == (
        config.faults
    )


@pytest.mark.parametrize(
    "mapping",
    [
        {"error_rate": 0.2, "faults": {"error_rate": 0.1}},
        {"faults": {"rates": {"no_such_fault": 0.1}}},
        {"faults": {"rates": {"truncated": 1.5}}},
        {"faults": {"schedule": [{"kind": "truncated", "start_s": 5, "end_s": 5}]}},
        {"latency_mean_ms": -1},
        {"unknown_option": 1},
        {"error_rate": float("nan")},
        {"latency_mean_ms": float("inf")},
        {"latency_sigma": float("nan")},
        {"faults": {"keepalive_interval_s": 0}},
        {"faults": {"slow_drip_chunk_bytes": 0}},
    ],
)
def test_from_mapping_rejects_invalid_settings(mapping: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig.from_mapping(mapping)


def test_normal_completion_is_the_answer_with_stop() -> None:
    parts = shape_completion(ANSWER, None, 300, random.Random(0))

    assert parts.content == ANSWER
    assert parts.finish_reason == "stop"
    assert parts.completion_tokens == count_tokens(ANSWER)
    assert parts.reasoning_tokens == 0


def test_an_answer_beyond_max_tokens_is_cut_with_length() -> None:
    parts = shape_completion(ANSWER, None, 10, random.Random(0))

    assert parts.finish_reason == "length"
    assert parts.completion_tokens == 10
    assert parts.content is not None and ANSWER.startswith(parts.content)
    assert count_tokens(parts.content) == 10


def test_content_faults_shape_the_completion() -> None:
    rng = random.Random(0)
    blank = shape_completion(ANSWER, FaultKind.BLANK_CONTENT, 300, rng)
    spaces = shape_completion(ANSWER, FaultKind.WHITESPACE_CONTENT, 300, rng)
    half = shape_completion(ANSWER, FaultKind.TRUNCATED, 300, rng)
    reasoning = shape_completion(ANSWER, FaultKind.REASONING_ONLY, 300, rng)

    assert (blank.content, blank.finish_reason) == ("", "stop")
    assert spaces.content and not spaces.content.strip()
    assert spaces.finish_reason == "stop"
    assert half.finish_reason == "length"
    assert half.content is not None and ANSWER.startswith(half.content)
    assert len(half.content) < len(ANSWER)
    assert reasoning.content is None
    assert reasoning.reasoning_content
    assert reasoning.reasoning_tokens == reasoning.completion_tokens == 300
    assert reasoning.finish_reason == "length"


@given(st.text(max_size=200), st.integers(min_value=1, max_value=500))
def test_completion_tokens_never_exceed_the_budget(answer: str, budget: int) -> None:
    for fault in (None, *sorted(FaultKind)):
        parts = shape_completion(answer, fault, budget, random.Random(0))
        assert parts.completion_tokens <= budget


def test_windows_can_start_at_the_first_request_after_a_replacement() -> None:
    window = FaultWindow(kind=FaultKind.OVERLOADED, start_s=0.0, end_s=1.0)
    schedule = FaultSchedule(FaultSettings(), now_s=0.0)
    schedule.replace(FaultSettings(schedule=(window,)), 0.0, from_first_request=True)
    # A client that takes 100 s to start still meets the whole window.
    assert schedule.choose(100.0, 0.5) is FaultKind.OVERLOADED
    assert schedule.choose(100.9, 0.5) is FaultKind.OVERLOADED
    assert schedule.choose(101.1, 0.5) is None
