"""The committed offset never passes an unfinished record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.offset_tracker import PartitionOffsets


def test_nothing_received_commits_nothing() -> None:
    assert PartitionOffsets().committable() is None


def test_one_record_in_flight_holds_the_commit() -> None:
    offsets = PartitionOffsets()
    for offset in range(100):
        offsets.received(offset)
    for offset in range(100):
        if offset != 3:
            offsets.finish(offset)
    assert offsets.committable() == 3
    offsets.finish(3)
    assert offsets.committable() == 100


def test_offsets_must_rise() -> None:
    offsets = PartitionOffsets()
    offsets.received(5)
    with pytest.raises(ValueError, match="must rise"):
        offsets.received(5)


def test_gaps_in_offsets_are_harmless() -> None:
    offsets = PartitionOffsets()
    for offset in (10, 12, 17):
        offsets.received(offset)
    offsets.finish(12)
    assert offsets.committable() == 10
    offsets.finish(10)
    assert offsets.committable() == 17
    offsets.finish(17)
    assert offsets.committable() == 18


@given(
    count=st.integers(min_value=1, max_value=200),
    data=st.data(),
)
def test_commit_never_passes_an_unfinished_record(
    count: int, data: st.DataObject
) -> None:
    """Completions arrive in a random order and one record may never finish."""
    start = data.draw(st.integers(min_value=0, max_value=10**12))
    offsets = PartitionOffsets()
    received = [start + i for i in range(count)]
    for offset in received:
        offsets.received(offset)
    order = data.draw(st.permutations(received))
    stuck = data.draw(st.one_of(st.none(), st.sampled_from(received)))

    finished: set[int] = set()
    for offset in order:
        if offset == stuck:
            continue
        offsets.finish(offset)
        finished.add(offset)
        position = offsets.committable()
        assert position is not None
        # Everything below the committable position is finished ...
        assert all(o in finished for o in received if o < position)
        # ... and the position is the first unfinished record, or the end.
        unfinished = [o for o in received if o not in finished]
        assert position == (min(unfinished) if unfinished else received[-1] + 1)
    if stuck is not None:
        assert offsets.committable() == stuck
        assert offsets.pending == 1
    else:
        assert offsets.committable() == received[-1] + 1
        assert offsets.pending == 0
