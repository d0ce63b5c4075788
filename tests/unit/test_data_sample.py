"""The shipped sample: its sizes, its licences, and the rule that cut it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.data.sample import (
    CONTACTS_FILE,
    EMAILS_FILE,
    LICENSE_FILES,
    TICKETS_FILE,
    default_data_dir,
)
from streams.data.subset import (
    allocate_quotas,
    select_ticket_rows,
    spread_positions,
    write_sample,
)

SAMPLE = default_data_dir()
SHARED_DATA = Path("/work/shared/data")


def test_default_data_dir_is_the_shipped_sample() -> None:
    repository = Path(__file__).resolve().parents[2]
    assert repository / "data" / "sample" == SAMPLE
    assert SAMPLE.is_dir()


def test_sample_sizes_and_coverage() -> None:
    with (SAMPLE / TICKETS_FILE).open(encoding="utf-8", newline="") as handle:
        tickets = list(csv.DictReader(handle))
    emails = json.loads((SAMPLE / EMAILS_FILE).read_text(encoding="utf-8"))
    contacts = json.loads((SAMPLE / CONTACTS_FILE).read_text(encoding="utf-8"))

    assert len(tickets) == 600
    assert len({row["category"] for row in tickets}) == 11
    assert len({row["intent"] for row in tickets}) == 27
    assert len(emails) == 41
    assert list(contacts) == ["records"]
    assert len(contacts["records"]) == 240


def test_licences_and_attribution_ship_with_the_sample() -> None:
    for name in LICENSE_FILES:
        assert (SAMPLE / name).is_file(), name
    attribution = (SAMPLE / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in ("CDLA-Sharing-1.0", "Apache-2.0", "CC0-1.0", *LICENSE_FILES):
        assert needle in attribution


@pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="the full public data set is not on this machine"
)
def test_the_sample_is_reproduced_byte_for_byte_from_the_full_data(
    tmp_path: Path,
) -> None:
    write_sample(SHARED_DATA, tmp_path)

    for name in (TICKETS_FILE, EMAILS_FILE, CONTACTS_FILE, *LICENSE_FILES):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_ticket_selection_is_proportional_and_spread(tmp_path: Path) -> None:
    categories = ["A"] * 60 + ["B"] * 30 + ["C"] * 10

    kept = select_ticket_rows(categories, 10)

    assert kept == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert select_ticket_rows(categories, 1000) == list(range(100))


@given(st.integers(min_value=0, max_value=500), st.integers(min_value=0, max_value=600))
def test_spread_positions_are_distinct_and_in_range(total: int, count: int) -> None:
    positions = spread_positions(total, count)

    assert len(positions) == min(total, count)
    assert positions == sorted(set(positions))
    assert all(0 <= p < total for p in positions)


@given(
    st.dictionaries(st.text(min_size=1, max_size=3), st.integers(0, 400), max_size=12),
    st.integers(min_value=0, max_value=2000),
)
def test_quotas_add_up_and_never_exceed_a_group(
    sizes: dict[str, int], total: int
) -> None:
    quotas = allocate_quotas(sizes, total)

    assert set(quotas) == set(sizes)
    assert sum(quotas.values()) == min(total, sum(sizes.values()))
    assert all(0 <= quotas[name] <= sizes[name] for name in sizes)
