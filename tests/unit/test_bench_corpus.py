"""The benchmark's events: repeats differ in content, duplicates do not."""

from __future__ import annotations

from itertools import islice

import orjson

from streams.bench.corpus import distinct_records, identical_records, warmup_record


def _texts(records: list[bytes]) -> list[str]:
    return [orjson.loads(value)["data"]["text"] for value in records]


def test_repeats_beyond_the_sample_have_new_ids_and_new_text() -> None:
    records = list(distinct_records(1_250))

    keys = [record.key for record in records]
    texts = _texts([record.value for record in records])
    assert len(set(keys)) == len(keys)
    assert len(set(texts)) == len(texts)
    assert records[0].key == b"tkt-00001"
    assert records[600].key == b"tkt-00001.r1"
    assert texts[600] == f"{texts[0]} (follow-up 1)"
    assert all(
        record.key == orjson.loads(record.value)["id"].encode() for record in records
    )


def test_duplicates_share_content_and_the_cache_hit_warm_up() -> None:
    records = list(islice(identical_records(50), 50))
    warmup = warmup_record(same_as_duplicates=True)

    assert len({record.key for record in records}) == 50
    assert set(_texts([record.value for record in records])) == set(
        _texts([warmup.value])
    )
    fresh = warmup_record(same_as_duplicates=False)
    assert _texts([fresh.value]) != _texts([warmup.value])
