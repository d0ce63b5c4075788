"""The replay plan, the ledger entries and producing with every report awaited."""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException
from rich.console import Console

from streams.dead_letters.ledger import (
    LEDGER_TOPIC_CONFIG,
    Delivery,
    ledger_entry,
    ledger_topic,
)
from streams.dead_letters.record import REPLAYED_FROM_HEADER, DeadLetterRecord
from streams.dead_letters.replay import (
    ReplayFailedError,
    execute_replay,
    replay_headers,
)
from streams.dead_letters.replay_plan import ReplayPlan, plan_replay
from streams.dead_letters.selection import Selection
from streams.dead_letters.view import render_plan, render_result
from tests.unit.test_dlq_record import (
    DEAD_LETTER_TOPIC,
    INPUT_HEADERS,
    make_dead_letter,
)

LEDGER = ledger_topic(DEAD_LETTER_TOPIC)
PARTITIONS = {"events.tickets": 3, "events.emails": 3, DEAD_LETTER_TOPIC: 3}
ALREADY_REPLAYED = frozenset({"events.dead-letter:0:2"})


def records() -> list[DeadLetterRecord]:
    return [
        make_dead_letter(dlq_offset=0, reason="schema_violation"),
        make_dead_letter(dlq_offset=1, reason="invalid_json", topic="events.emails"),
        make_dead_letter(dlq_offset=2, reason="schema_violation", offset=7),
        make_dead_letter(dlq_offset=3, value=b"x" * 5_000, max_bytes=2_000),
        make_dead_letter(dlq_offset=4, topic="events.deleted"),
        make_dead_letter(dlq_offset=5, reason="timeout"),
    ]


def plan(
    selection: Selection | None = None, replayed: frozenset[str] = ALREADY_REPLAYED
) -> ReplayPlan:
    return plan_replay(
        records(),
        dead_letter_topic=DEAD_LETTER_TOPIC,
        selection=selection
        or Selection.of(reasons=["schema_violation", "invalid_json"]),
        replayed=set(replayed),
        partitions=PARTITIONS,
    )


def test_every_selected_record_is_replayed_already_replayed_or_skipped() -> None:
    result = plan()

    assert result.read == 6
    assert [r.source.offset for r in result.to_replay] == [0, 1]
    assert [r.source.offset for r in result.already_replayed] == [2]
    assert [s.record.source.offset for s in result.skipped] == [3, 4]
    assert result.selected == 5  # the timeout record is not selected
    assert "payload omitted" in result.skipped[0].reason
    assert "events.tickets:1:41" in result.skipped[0].reason
    assert "events.deleted does not exist" in result.skipped[1].reason


def test_records_that_name_no_usable_original_topic_are_skipped_with_reason() -> None:
    nameless = make_dead_letter(dlq_offset=9)
    nameless = DeadLetterRecord(source=nameless.source, reason="schema_violation")
    loop = make_dead_letter(dlq_offset=10, topic=DEAD_LETTER_TOPIC)

    result = plan_replay(
        [nameless, loop],
        dead_letter_topic=DEAD_LETTER_TOPIC,
        selection=Selection(),
        replayed=set(),
        partitions=PARTITIONS,
    )

    assert [s.reason.split(":")[0] for s in result.skipped] == [
        "no dlq.original.topic header",
        "the original topic is the dead-letter topic itself",
    ]
    assert result.to_replay == []


def test_counts_by_topic_and_reason_and_destination_partitions() -> None:
    result = plan()
    gone = make_dead_letter(partition=7)

    assert result.by_topic_and_reason() == [
        ("events.emails", "invalid_json", 1),
        ("events.tickets", "schema_violation", 1),
    ]
    assert result.destination_partition(result.to_replay[0]) == 1
    assert result.destination_partition(gone) is None


def test_replay_headers_are_the_inputs_own_then_the_dead_letter_coordinates() -> None:
    record = make_dead_letter(
        dlq_partition=2,
        dlq_offset=9,
        headers=[*INPUT_HEADERS, (REPLAYED_FROM_HEADER, b"events.dead-letter:0:1")],
    )

    headers = replay_headers(record)

    assert headers == [
        *INPUT_HEADERS,
        (REPLAYED_FROM_HEADER, b"events.dead-letter:0:1"),
        (REPLAYED_FROM_HEADER, b"events.dead-letter:2:9"),
    ]


def test_a_ledger_entry_names_where_the_record_landed() -> None:
    record = make_dead_letter(dlq_offset=4)
    delivery = Delivery(record, "events.tickets", 1, 99)

    entry = orjson.loads(ledger_entry(delivery, datetime(2026, 11, 2, tzinfo=UTC)))

    assert entry == {
        "dead_letter": "events.dead-letter:0:4",
        "event_id": "tkt-1",
        "reason": "schema_violation",
        "replayed_to": {"topic": "events.tickets", "partition": 1, "offset": 99},
        "replayed_at": "2026-11-02T00:00:00Z",
    }
    assert LEDGER_TOPIC_CONFIG == {"cleanup.policy": "compact"}
    assert LEDGER == "events.dead-letter.replayed"


@dataclass(frozen=True)
class FakeMessage:
    topic_name: str
    partition_number: int
    offset_number: int

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_number

    def offset(self) -> int:
        return self.offset_number


class FakeProducer:
    """Acknowledges on poll, like librdkafka; can refuse topics or fill up."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        failing_topics: frozenset[str] = frozenset(),
        full_times: int = 0,
    ) -> None:
        self.config = config
        self.failing_topics = failing_topics
        self.full_times = full_times
        self.events: list[tuple[str, str, bytes | None]] = []
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self._pending: deque[tuple[Callable[..., None], dict[str, Any]]] = deque()
        self._offsets: dict[tuple[str, int], int] = {}

    def produce(
        self, topic: str, *, on_delivery: Callable[..., None], **options: Any
    ) -> None:
        if self.full_times:
            self.full_times -= 1
            raise BufferError("queue full")
        if topic == "refused-at-once":
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))
        record = {"topic": topic, **options}
        self.sent.append(record)
        self.events.append(("produce", topic, options.get("key")))
        self._pending.append((on_delivery, record))

    def poll(self, _timeout: float = 0) -> int:
        served = 0
        while self._pending:
            on_delivery, record = self._pending.popleft()
            topic = record["topic"]
            self.events.append(("report", topic, record.get("key")))
            if topic in self.failing_topics:
                on_delivery(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), None)
            else:
                partition = record.get("partition", 0)
                offset = self._offsets.get((topic, partition), 100)
                self._offsets[(topic, partition)] = offset + 1
                on_delivery(None, FakeMessage(topic, partition, offset))
            served += 1
        return served

    def close(self) -> None:
        self.closed = True


def run(replay_plan: ReplayPlan, **fake_options: Any) -> tuple[FakeProducer, Any]:
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(config, **fake_options))
        return made[0]

    try:
        result: Any = execute_replay(
            replay_plan,
            {"bootstrap.servers": "unused", "enable.idempotence": False},
            ledger_topic=LEDGER,
            producer_factory=factory,
        )
    except ReplayFailedError as exc:
        result = exc
    return made[0], result


def test_records_go_back_byte_for_byte_and_each_is_marked_after_its_report() -> None:
    replay_plan = plan()

    producer, result = run(replay_plan, full_times=2)

    assert producer.config["enable.idempotence"] is True
    assert producer.config["acks"] == "all"
    assert producer.closed
    replays = [sent for sent in producer.sent if sent["topic"] != LEDGER]
    assert [(s["topic"], s.get("partition")) for s in replays] == [
        ("events.tickets", 1),
        ("events.emails", 1),
    ]
    for sent, record in zip(replays, replay_plan.to_replay, strict=True):
        assert sent["key"] == record.source.key
        assert sent["value"] == record.source.value
        assert sent["headers"] == replay_headers(record)
    marks = [sent for sent in producer.sent if sent["topic"] == LEDGER]
    assert [m["key"] for m in marks] == [
        b"events.dead-letter:0:0",
        b"events.dead-letter:0:1",
    ]
    for mark in marks:
        original = next(
            r for r in replay_plan.to_replay if r.key.encode() == mark["key"]
        )
        reported = producer.events.index(
            ("report", original.original_topic, original.source.key)
        )
        assert reported < producer.events.index(("produce", LEDGER, mark["key"]))
    assert [(d.topic, d.offset) for d in result.replayed] == [
        ("events.tickets", 100),
        ("events.emails", 100),
    ]
    assert result.complete


def test_a_failed_delivery_is_reported_loudly_and_left_unmarked() -> None:
    producer, error = run(plan(), failing_topics=frozenset({"events.emails"}))

    assert isinstance(error, ReplayFailedError)
    assert "1 records were not replayed" in str(error)
    result = error.result
    assert [f.record.original_topic for f in result.failed] == ["events.emails"]
    assert "authorization" in result.failed[0].error.lower()
    assert [d.topic for d in result.replayed] == ["events.tickets"]
    marked = [s["key"] for s in producer.sent if s["topic"] == LEDGER]
    assert marked == [b"events.dead-letter:0:0"]


def test_a_failed_ledger_entry_is_reported_as_replayed_but_unmarked() -> None:
    _producer, error = run(plan(), failing_topics=frozenset({LEDGER}))

    assert isinstance(error, ReplayFailedError)
    assert "2 were replayed but not marked" in str(error)
    assert len(error.result.unmarked) == 2 and error.result.replayed == []


def test_a_send_refused_at_once_counts_as_failed() -> None:
    record = make_dead_letter(topic="refused-at-once")
    replay_plan = plan_replay(
        [record],
        dead_letter_topic=DEAD_LETTER_TOPIC,
        selection=Selection(),
        replayed=set(),
        partitions={"refused-at-once": 1},
    )

    _producer, error = run(replay_plan)

    assert isinstance(error, ReplayFailedError)
    assert [f.record for f in error.result.failed] == [record]


@pytest.mark.parametrize("full_times", [0, 3])
def test_an_empty_plan_sends_nothing(full_times: int) -> None:
    producer, result = run(
        plan(selection=Selection.of(reasons=["none"])), full_times=full_times
    )

    assert producer.sent == [] and result.replayed == [] and result.complete


def shown(draw: Callable[[Console], None]) -> str:
    output = io.StringIO()
    draw(Console(file=output, width=200, color_system=None))
    return output.getvalue()


def test_the_dry_run_view_counts_all_three_outcomes_and_lists_each_skip() -> None:
    replay_plan = plan()

    text = shown(lambda console: render_plan(replay_plan, console, execute=False))

    assert text.startswith("dry run: nothing is produced")
    assert "6 read, 5 selected: 2 to replay, 1 already replayed, 2 skipped" in text
    assert "events.emails    invalid_json" in text
    assert "0:3" in text and "payload omitted" in text
    assert "0:4" in text and "events.deleted does not exist" in text


def test_the_result_view_names_every_failure() -> None:
    _producer, error = run(plan(), failing_topics=frozenset({"events.emails"}))

    text = shown(lambda console: render_result(error.result, console))

    assert "replayed 1, already replayed 1, skipped 2, failed 1" in text
    assert "events.emails:1:41" in text and "not replayed" in text
    assert "Topic authorization failed" in text
