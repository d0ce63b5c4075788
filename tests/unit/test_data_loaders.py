"""The loaders turn the shipped sample into reproducible, correctly keyed events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.data.crm import CHANGE_CYCLE, load_contacts, update_count
from streams.data.emails import load_emails, normalise_sent_at, sender_address
from streams.data.events import (
    CLOUDEVENTS_CONTENT_TYPE,
    PIPELINES,
    SourceEvent,
    format_rfc3339,
)
from streams.data.sample import (
    CONTACTS_FILE,
    EMAILS_FILE,
    TICKETS_FILE,
    default_data_dir,
    load_pipeline_events,
    locate_data_files,
)
from streams.data.tickets import CHANNELS, load_tickets, ticket_gold_labels

SAMPLE = default_data_dir()


def data_of(event: SourceEvent) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(event.value)["data"]
    return data


@pytest.fixture(scope="module")
def sample_events() -> dict[str, list[SourceEvent]]:
    return load_pipeline_events(SAMPLE)


def test_two_loads_give_byte_identical_events() -> None:
    assert load_pipeline_events(SAMPLE) == load_pipeline_events(SAMPLE)


def test_event_ids_are_unique_across_all_pipelines(
    sample_events: dict[str, list[SourceEvent]],
) -> None:
    ids = [event.event_id for events in sample_events.values() for event in events]

    assert len(ids) == len(set(ids)) == 600 + 41 + 360


def test_every_event_declares_structured_cloudevents(
    sample_events: dict[str, list[SourceEvent]],
) -> None:
    for events in sample_events.values():
        for event in events:
            envelope = json.loads(event.value)
            assert envelope["id"] == event.event_id
            assert envelope["specversion"] == "1.0"
            assert envelope["time"].endswith("Z")
            assert dict(event.headers) == {
                "content-type": CLOUDEVENTS_CONTENT_TYPE.encode()
            }


def test_tickets_are_keyed_by_ticket_id_and_carry_no_gold_labels() -> None:
    events = load_tickets(SAMPLE / TICKETS_FILE)

    assert events[0].event_id == "tkt-00001"
    assert events[41].event_id == "tkt-00042"
    for event in events:
        data = data_of(event)
        assert event.key == str(data["ticket_id"]).encode()
        assert data["channel"] in CHANNELS
        assert set(data) <= {"ticket_id", "channel", "customer_id", "text"}
    assert {data_of(e)["channel"] for e in events} == set(CHANNELS)
    assert any("customer_id" not in data_of(e) for e in events)


def test_gold_labels_cover_every_ticket_by_event_id() -> None:
    path = SAMPLE / TICKETS_FILE
    labels = ticket_gold_labels(path)
    events = load_tickets(path)

    assert list(labels) == [event.event_id for event in events]
    assert len({label["category"] for label in labels.values()}) == 11
    assert len({label["intent"] for label in labels.values()}) == 27
    assert ticket_gold_labels(path, limit=5) == dict(list(labels.items())[:5])


def test_limit_keeps_a_prefix() -> None:
    full = load_tickets(SAMPLE / TICKETS_FILE)

    assert load_tickets(SAMPLE / TICKETS_FILE, limit=10) == full[:10]
    assert load_emails(SAMPLE / EMAILS_FILE, limit=0) == []


def test_emails_are_keyed_by_the_bare_sender_address() -> None:
    events = load_emails(SAMPLE / EMAILS_FILE)

    assert len(events) == 41
    for event in events:
        data = data_of(event)
        assert event.key == sender_address(str(data["from"])).encode()
        assert b"<" not in event.key
    assert events[3].key == b"monsieurdupont@extensiona.com"


def test_email_times_are_normalised_and_attachments_kept() -> None:
    events = load_emails(SAMPLE / EMAILS_FILE)
    source = json.loads((SAMPLE / EMAILS_FILE).read_text(encoding="utf-8"))

    assert data_of(events[0])["sent_at"] == "2011-01-11T11:11:11Z"
    assert data_of(events[1])["sent_at"] == "2022-02-22T22:22:22Z"
    for event, original in zip(events, source, strict=True):
        assert data_of(event)["attachments"] == original["attachments"]
        assert data_of(event)["subject"] == original["header"]
        assert data_of(event)["body"] == original["body"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1645568542000, "2022-02-22T22:22:22Z"),
        (1645568542123, "2022-02-22T22:22:22.123Z"),
        (-1000, "1969-12-31T23:59:59Z"),
        ("1645568542000", "2022-02-22T22:22:22Z"),
        ("2011-01-11 11:11:11", "2011-01-11T11:11:11Z"),
        ("2011-02-30 11:11:11", "2011-02-30 11:11:11"),
        ("2011-01-11T11:11:11Z", "2011-01-11T11:11:11Z"),
        ("yesterday", "yesterday"),
        ("", ""),
        (None, "None"),
        (True, "True"),
        (1.5e12, "1500000000000.0"),
        (10**30, str(10**30)),
    ],
)
def test_sent_at_normalisation_edge_values(raw: object, expected: str) -> None:
    assert normalise_sent_at(raw) == expected


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_sent_at_round_trips_epoch_milliseconds(millis: int) -> None:
    text = normalise_sent_at(millis)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert round(parsed.timestamp() * 1000) == millis


def test_format_rfc3339_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_rfc3339(dt.datetime(2026, 11, 2, 8, 0))


def test_crm_updates_follow_the_documented_share() -> None:
    events = load_contacts(SAMPLE / CONTACTS_FILE)
    created = [e for e in events if e.event_id.endswith("-c")]
    updated = [e for e in events if not e.event_id.endswith("-c")]

    assert len(created) == 240
    assert len(updated) == sum(update_count(i) for i in range(240)) == 80 + 40
    assert events[: len(created)] == created
    times = [json.loads(e.value)["time"] for e in events]
    assert times == sorted(times)


def test_crm_update_records_previous_values_and_the_result() -> None:
    events = load_contacts(SAMPLE / CONTACTS_FILE)
    state = {e.key: data_of(e)["contact"] for e in events if e.event_id.endswith("-c")}

    for event in events:
        data = data_of(event)
        assert event.key == str(data["contact_id"]).encode()
        if data["change"] == "created":
            assert "attributes" not in data["contact"]
            continue
        before, after, previous = state[event.key], data["contact"], data["previous"]
        assert previous == {
            field: before.get(field) for field in data["changed_fields"]
        }
        assert {k: v for k, v in after.items() if k not in previous} == {
            k: v for k, v in before.items() if k not in previous
        }
        assert all(after[field] != before.get(field) for field in previous)
        state[event.key] = after


def test_crm_updates_include_each_data_quality_fault() -> None:
    updates = [
        data_of(e) for e in load_contacts(SAMPLE / CONTACTS_FILE) if "-u" in e.event_id
    ]
    contacts = [u["contact"] for u in updates]

    blank = [c for c in contacts if c["Email"] == ""]
    no_at = [c for c in contacts if c["Email"] and "@" not in c["Email"]]
    lower = [c for c in contacts if c["LastName"] == c["LastName"].lower()]
    # Three of the nine changes in the cycle introduce a fault.
    assert len(blank) + len(no_at) + len(lower) >= len(updates) // len(CHANGE_CYCLE) * 3
    assert blank
    assert no_at
    assert lower


def test_crm_contact_id_falls_back_when_missing_or_taken(tmp_path: Path) -> None:
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "A", "External_Id__c": "42"},
        {"attributes": {"type": "Contact"}, "LastName": "B", "External_Id__c": "42"},
        {"attributes": {"type": "Contact"}, "LastName": "C"},
    ]
    path = tmp_path / "contacts.json"
    path.write_text(json.dumps({"records": records}), encoding="utf-8")

    created = [e for e in load_contacts(path) if e.event_id.endswith("-c")]

    assert [e.key for e in created] == [b"42", b"contact-00002", b"contact-00003"]


def test_loaders_reject_files_of_the_wrong_shape(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"emails": []}', encoding="utf-8")
    (tmp_path / "bad.csv").write_text("text,label\nhello,x\n", encoding="utf-8")

    with pytest.raises(ValueError, match="email objects"):
        load_emails(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="data tree"):
        load_contacts(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="columns"):
        load_tickets(tmp_path / "bad.csv")


def test_pipeline_choice_and_missing_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown pipelines"):
        load_pipeline_events(SAMPLE, pipelines={"tickets", "invoices"})
    with pytest.raises(ValueError, match="negative"):
        load_pipeline_events(SAMPLE, limit_per_source=-1)
    with pytest.raises(FileNotFoundError, match=TICKETS_FILE):
        locate_data_files(tmp_path)

    only_crm = load_pipeline_events(SAMPLE, pipelines=["crm"], limit_per_source=3)
    assert list(only_crm) == ["crm"]
    assert [e.event_id for e in only_crm["crm"]] == [
        "crm-00001-c",
        "crm-00002-c",
        "crm-00003-c",
        "crm-00003-u1",
    ]
    assert list(load_pipeline_events(SAMPLE, limit_per_source=1)) == list(PIPELINES)
