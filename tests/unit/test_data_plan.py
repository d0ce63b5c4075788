"""The planned run: originals, byte-identical replays, then malformed records."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.data.events import PIPELINE_TOPICS, SourceEvent
from streams.data.malformed import MALFORMED_KINDS
from streams.data.plan import plan_records, replay_count, select_replays
from streams.data.sample import default_data_dir, load_pipeline_events


def make_events(count: int, pipeline: str = "tickets") -> list[SourceEvent]:
    return [
        SourceEvent(
            topic=PIPELINE_TOPICS[pipeline],
            key=f"K-{i}".encode(),
            value=f'{{"id":"e-{i}"}}'.encode(),
            event_id=f"{pipeline}-{i}",
            pipeline=pipeline,
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def sample_events() -> dict[str, list[SourceEvent]]:
    return load_pipeline_events(default_data_dir())


def test_default_plan_of_the_sample(
    sample_events: dict[str, list[SourceEvent]],
) -> None:
    planned = plan_records(sample_events)
    counts = Counter((r.topic, r.kind.split(":")[0]) for r in planned)

    assert counts == {
        ("events.tickets", "event"): 600,
        ("events.tickets", "duplicate"): 60,
        ("events.tickets", "malformed"): len(MALFORMED_KINDS),
        ("events.emails", "event"): 41,
        ("events.emails", "duplicate"): 4,
        ("events.emails", "malformed"): len(MALFORMED_KINDS),
        ("events.crm", "event"): 360,
        ("events.crm", "duplicate"): 36,
        ("events.crm", "malformed"): len(MALFORMED_KINDS),
    }
    kinds = [r.kind.split(":")[0] for r in planned]
    assert kinds == sorted(kinds, key=["event", "duplicate", "malformed"].index)


def test_replays_are_byte_identical_to_their_originals(
    sample_events: dict[str, list[SourceEvent]],
) -> None:
    planned = plan_records(sample_events)
    originals = {r.event_id: r for r in planned if r.kind == "event"}

    replays = [r for r in planned if r.kind == "duplicate"]
    assert replays
    for replay in replays:
        original = originals[replay.event_id]
        assert (replay.topic, replay.key, replay.value, replay.headers) == (
            original.topic,
            original.key,
            original.value,
            original.headers,
        )
        assert replay.expected_outcome == "enriched"
        assert replay.expected_reason is None


def test_plan_is_reproducible_and_seed_dependent(
    sample_events: dict[str, list[SourceEvent]],
) -> None:
    first = plan_records(sample_events, seed=7)

    assert plan_records(sample_events, seed=7) == first
    assert plan_records(sample_events, seed=8) != first


def test_malformed_records_can_be_left_out(
    sample_events: dict[str, list[SourceEvent]],
) -> None:
    planned = plan_records(sample_events, duplicate_ratio=0.0, malformed=False)

    assert [r.kind for r in planned] == ["event"] * (600 + 41 + 360)


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(0.0, 0), (-0.0, 0), (0.1, 10), (0.005, 1), (0.0049, 0), (0.5, 50), (1.0, 100)],
)
def test_replay_count_rounds_half_up(ratio: float, expected: int) -> None:
    assert replay_count(100, ratio) == expected


@pytest.mark.parametrize("ratio", [-0.01, 1.01, math.nan, math.inf, -math.inf])
def test_replay_count_refuses_ratios_outside_the_unit_interval(ratio: float) -> None:
    with pytest.raises(ValueError, match="duplicate ratio"):
        replay_count(100, ratio)


@given(
    st.integers(min_value=0, max_value=300),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(),
)
def test_replay_choice_is_an_ordered_subset_that_grows_with_the_ratio(
    count: int, low: float, high: float, seed: int
) -> None:
    low, high = sorted((low, high))
    events = make_events(count)

    fewer = select_replays(events, low, seed=seed)
    more = select_replays(events, high, seed=seed)

    assert len(more) == replay_count(count, high)
    assert abs(len(more) - count * high) <= 0.5
    assert set(fewer) <= set(more)
    positions = [events.index(e) for e in more]
    assert positions == sorted(set(positions))
    assert select_replays(events, high, seed=seed) == more
