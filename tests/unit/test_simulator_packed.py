"""The simulator's packed answers: one element per item, as a single event gets."""

from __future__ import annotations

import datetime as dt
import random

import orjson
import pytest

from streams.llm.client import ChatResponse
from streams.llm.usage import Usage
from streams.pipeline.config import Pipeline
from streams.pipeline.decode import decode_event
from streams.pipeline.packed_request import build_packed_messages, read_packed_answer
from streams.pipeline.prompt import render_event_text
from streams.simulator.answers import build_answer
from streams.simulator.fault_catalogue import FaultKind
from streams.simulator.packed import (
    answer_request,
    damage_one_item,
    parse_packed_items,
)
from tests.unit.conftest import ticket_bytes

TODAY = dt.date(2026, 12, 1)
TEXTS = [
    "I want to cancel order 1234567",
    "Where is my refund?\nIt has been two weeks and I am furious",
    'my invoice says <b>42 EUR</b>, "why"?',
]


def packed(pipeline: Pipeline, texts: list[str]) -> tuple[str, str, list[str]]:
    events = [decode_event(ticket_bytes(text), pipeline) for text in texts]
    rendered = [render_event_text(pipeline, event) for event in events]
    system, user = build_packed_messages(pipeline, rendered)
    return system["content"], user["content"], rendered


def test_the_items_of_a_packed_message_come_back_exactly(
    pipelines: dict[str, Pipeline],
) -> None:
    _, user, rendered = packed(pipelines["tickets"], TEXTS)

    assert parse_packed_items(user) == [
        (str(index), text) for index, text in enumerate(rendered, 1)
    ]


def test_a_single_event_message_is_not_packed() -> None:
    assert parse_packed_items("text: I want to cancel order 1234567") is None
    assert parse_packed_items('<item id="1">\ntext: hi\n</item>') is None  # no "items"


def test_each_item_gets_the_answer_of_a_single_event_and_validates(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = pipelines["tickets"]
    system, user, rendered = packed(pipeline, TEXTS)

    answer = answer_request(system, user, None, random.Random(0), TODAY)

    assert [element["id"] for element in answer["items"]] == ["1", "2", "3"]
    for element, text in zip(answer["items"], rendered, strict=True):
        values = {key: value for key, value in element.items() if key != "id"}
        assert values == build_answer(system, text, TODAY)
        pipeline.validate_output(values)
    response = ChatResponse(
        orjson.dumps(answer).decode(), "stop", False, Usage(), "m", "r", 0.0
    )
    verdict, outcome = read_packed_answer(pipeline, response, ["1", "2", "3"])
    assert outcome == "ok" and not verdict.problems and len(verdict.values) == 3


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (FaultKind.PACKED_ITEM_DROPPED, "missing_item"),
        (FaultKind.PACKED_ITEM_MALFORMED, "output_schema_violation"),
    ],
)
def test_an_item_fault_spoils_exactly_one_item(
    pipelines: dict[str, Pipeline], fault: FaultKind, problem: str
) -> None:
    pipeline = pipelines["tickets"]
    system, user, _ = packed(pipeline, TEXTS)

    answer = answer_request(system, user, fault, random.Random(3), TODAY)

    response = ChatResponse(
        orjson.dumps(answer).decode(), "stop", False, Usage(), "m", "r", 0.0
    )
    verdict, _ = read_packed_answer(pipeline, response, ["1", "2", "3"])
    assert list(verdict.problems.values()) == [problem]
    assert len(verdict.values) == 2


def test_item_faults_leave_single_answers_alone(
    pipelines: dict[str, Pipeline],
) -> None:
    system = pipelines["tickets"].config.instructions
    user = "text: I want to cancel order 1234567"

    for fault in (FaultKind.PACKED_ITEM_DROPPED, FaultKind.PACKED_ITEM_MALFORMED):
        answer = answer_request(system, user, fault, random.Random(1), TODAY)
        assert answer == build_answer(system, user, TODAY)


def test_damage_to_an_empty_answer_changes_nothing() -> None:
    answer: dict[str, list[dict[str, str]]] = {"items": []}
    damage_one_item(answer, FaultKind.PACKED_ITEM_DROPPED, random.Random(0))
    assert answer == {"items": []}
