"""The benchmark's input records, built from the shipped ticket sample.

The sample holds 600 support tickets. A run that needs more events than that
repeats the sample, and every repeat is made distinct so that our worker's
result cache never serves it: repeat ``r`` (counting from 1) of a ticket gets
the event id ``<id>.r<r>`` and the text `` (follow-up <r>)`` appended to
``data.text``, which is a content field, so its content hash differs. The
first pass uses the sample unchanged. Every record's key is its event id, so
each output can be matched to its input by key alone.

For the cache-hit row every event carries the text of the first ticket: the
event ids (and keys) differ, the content is the same, so after the first call
every event is a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from streams.data.sample import load_pipeline_events

PIPELINE = "tickets"
"""The pipeline every contender runs: its sample is the largest."""


@dataclass(frozen=True, slots=True)
class BenchRecord:
    """One input record: key (the event id) and the CloudEvents value."""

    key: bytes
    value: bytes


def _sample(data_dir: Path | None) -> list[dict[str, object]]:
    events = load_pipeline_events(data_dir, pipelines=[PIPELINE])[PIPELINE]
    return [orjson.loads(event.value) for event in events]


def _record(envelope: dict[str, object]) -> BenchRecord:
    return BenchRecord(key=str(envelope["id"]).encode(), value=orjson.dumps(envelope))


def _with(
    envelope: dict[str, object], event_id: str, text: str | None
) -> dict[str, object]:
    data = dict(envelope["data"])  # type: ignore[call-overload]  # a JSON object
    if text is not None:
        data["text"] = text
    return {**envelope, "id": event_id, "data": data}


def distinct_records(count: int, data_dir: Path | None = None) -> Iterator[BenchRecord]:
    """``count`` events with pairwise different content (see module docstring).

    Args:
        count: How many records to yield.
        data_dir: Where the sample lives; the shipped one when None.
    """
    sample = _sample(data_dir)
    for index in range(count):
        repeat, position = divmod(index, len(sample))
        envelope = sample[position]
        if repeat == 0:
            yield _record(envelope)
            continue
        text = f"{envelope['data']['text']} (follow-up {repeat})"  # type: ignore[index]  # a JSON object
        yield _record(_with(envelope, f"{envelope['id']}.r{repeat}", text))


def identical_records(
    count: int, data_dir: Path | None = None, *, prefix: str = "dup"
) -> Iterator[BenchRecord]:
    """``count`` events with the first ticket's content and distinct ids."""
    first = _sample(data_dir)[0]
    for index in range(count):
        yield _record(_with(first, f"{prefix}-{index:07d}", None))


def warmup_record(
    data_dir: Path | None = None, *, same_as_duplicates: bool
) -> BenchRecord:
    """The record sent before the measured backlog, to know a contender is ready.

    Args:
        data_dir: Where the sample lives.
        same_as_duplicates: Give it the duplicates' content, so that after it
            every measured event is a cache hit; otherwise a content no
            measured event has.
    """
    first = _sample(data_dir)[0]
    if same_as_duplicates:
        return _record(_with(first, "bench-warmup", None))
    text = f"{first['data']['text']} (warm-up)"  # type: ignore[index]  # a JSON object
    return _record(_with(first, "bench-warmup", text))
