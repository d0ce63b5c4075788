"""Selecting dead letters by reason, pipeline, event id and time."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.dead_letters.selection import (
    Selection,
    duration_argument,
    format_time,
    parse_duration,
    parse_time,
    time_argument,
)
from tests.unit.test_dlq_record import DEAD_LETTERED_MS, make_dead_letter

AT = datetime.fromtimestamp(DEAD_LETTERED_MS / 1000, UTC)


def test_an_empty_selection_keeps_everything() -> None:
    assert Selection().matches(make_dead_letter())
    assert Selection.of(reasons=None, pipelines=[], event_ids=()).matches(
        make_dead_letter(event_id=None)
    )


def test_values_of_one_filter_combine_with_or_and_filters_with_and() -> None:
    selection = Selection.of(
        reasons=["timeout", "schema_violation"], pipelines=["tickets"]
    )

    assert selection.matches(make_dead_letter(reason="timeout"))
    assert selection.matches(make_dead_letter(reason="schema_violation"))
    assert not selection.matches(make_dead_letter(reason="invalid_json"))
    assert not selection.matches(make_dead_letter(reason="timeout", pipeline="crm"))


def test_a_record_without_the_filtered_header_does_not_match() -> None:
    selection = Selection.of(event_ids=["tkt-1"])

    assert selection.matches(make_dead_letter(event_id="tkt-1"))
    assert not selection.matches(make_dead_letter(event_id=None))
    assert not selection.matches(make_dead_letter(event_id="tkt-2"))


@pytest.mark.parametrize(
    ("since", "until", "kept"),
    [
        (AT, None, True),  # since is inclusive
        (AT + timedelta(milliseconds=1), None, False),
        (None, AT, False),  # until is exclusive
        (None, AT + timedelta(milliseconds=1), True),
        (AT - timedelta(hours=1), AT + timedelta(hours=1), True),
    ],
)
def test_times_are_the_dead_letter_records_own_timestamp(
    since: datetime | None, until: datetime | None, kept: bool
) -> None:
    selection = Selection.of(since=since, until=until)

    assert selection.matches(make_dead_letter()) is kept


def test_describe_names_only_the_filters_that_are_set() -> None:
    selection = Selection.of(reasons=["b", "a"], since=AT)

    assert selection.describe() == {
        "reasons": ["a", "b"],
        "since": "2026-11-02T08:00:00Z",
    }
    assert Selection().describe() == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-02T08:00:00Z", datetime(2026, 11, 2, 8, tzinfo=UTC)),
        ("2026-11-02T08:00", datetime(2026, 11, 2, 8, tzinfo=UTC)),
        ("2026-11-02", datetime(2026, 11, 2, tzinfo=UTC)),
        (
            " 2026-11-02T10:00:00+02:00 ",
            datetime(2026, 11, 2, 10, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_parse_time_reads_iso_8601_and_takes_naive_times_as_utc(
    text: str, expected: datetime
) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "08:00"])
def test_parse_time_refuses_what_is_not_a_date(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("45m", 2_700),
        ("2h", 7_200),
        ("1d", 86_400),
        ("1w", 604_800),
        ("1h30m", 5_400),
        ("1.5h", 5_400),
        ("2H", 7_200),
    ],
)
def test_parse_duration_reads_number_unit_pairs(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "2h 30m", "-2h", "2h-", "0h"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_argument_types_turn_errors_into_argparse_messages() -> None:
    assert time_argument("2026-11-02") == datetime(2026, 11, 2, tzinfo=UTC)
    assert duration_argument("2h") == timedelta(hours=2)
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        duration_argument("soon")
    with pytest.raises(argparse.ArgumentTypeError, match="ISO 8601"):
        time_argument("soon")


def test_format_time_is_utc_with_a_z() -> None:
    moment = datetime(
        2026, 11, 2, 10, 0, 0, 999_000, tzinfo=timezone(timedelta(hours=2))
    )

    assert format_time(moment) == "2026-11-02T08:00:00Z"
