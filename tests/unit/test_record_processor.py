"""What one record becomes, with the model and the producer replaced by fakes.

The producer is an autospec of :class:`RecordProducer` that acknowledges every
send at once; the model is scripted and records every request, so a test can
tell whether money was spent before a record was refused.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import create_autospec

import orjson
import pytest

from streams import json_codec
from streams.kafka.dead_letter import SourceRecord
from streams.kafka.producer import RecordProducer
from streams.llm.circuit_breaker import CircuitBreaker
from streams.llm.client import ChatRequest, ChatResponse
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.pipeline.deduplication import Deduplicator
from streams.pipeline.enricher import Enricher, Enrichment
from streams.settings import PricingSettings, RetrySettings, Settings, WorkerSettings
from streams.worker.record_processor import RecordProcessor
from streams.worker.stats import WorkerStats
from tests.unit.conftest import ticket_bytes

BIG = b"123456789012345678901234567890"
ANSWER = orjson.dumps(
    {
        "summary": "Customer wants to cancel an order.",
        "category": "ORDER",
        "intent": "cancel_order",
        "urgency": "medium",
        "sentiment": "neutral",
        "entities": [{"type": "order_id", "value": "1234567"}],
    }
).decode()


class CountingModel:
    """Answers every call with the same content and counts the calls."""

    def __init__(self, content: str = ANSWER) -> None:
        self.content = content
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        usage = Usage(prompt_cache_miss_tokens=100, completion_tokens=40)
        return ChatResponse(
            self.content, "stop", False, usage, "deepseek-flash", "r", 0.0
        )


def producer_fake() -> Any:
    """A RecordProducer whose sends are acknowledged at once."""
    producer = create_autospec(RecordProducer, instance=True)

    async def send(
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any,
        on_acknowledged: Any = None,
    ) -> None:
        if on_acknowledged is not None:
            on_acknowledged()

    producer.send.side_effect = send
    return producer


def make_processor(
    model: CountingModel, max_attempts: int = 1, settings: Settings | None = None
) -> tuple[RecordProcessor, Any]:
    """A processor with the scripted model and a producer that acknowledges."""
    producer = producer_fake()
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=max_attempts, wait=False),
        breaker=CircuitBreaker("test"),
        prices=PriceList(PricingSettings()),
        max_in_flight=4,
    )
    processor = RecordProcessor(
        settings or Settings(),
        enricher=enricher,
        deduplicator=Deduplicator[Enrichment](10),
        producer=producer,
        metrics=Metrics(),
        stats=WorkerStats(),
    )
    return processor, producer


def process_one(
    processor: RecordProcessor, pipeline: Pipeline, value: bytes | None
) -> list[bool]:
    """Processes one record; returns the calls of its finish callback."""
    source = SourceRecord("events.tickets", 0, 7, 0, b"T-1", value, [("h", b"\xff")])
    finished: list[bool] = []
    asyncio.run(processor.process(source, pipeline, lambda: finished.append(True)))
    return finished


def process(
    pipeline: Pipeline, value: bytes | None
) -> tuple[CountingModel, Any, list[bool]]:
    """Processes one record; returns the model, the producer and finish calls."""
    model = CountingModel()
    processor, producer = make_processor(model)
    return model, producer, process_one(processor, pipeline, value)


def sent(producer: Any) -> tuple[str, bytes | None, bytes | None, dict[str, Any]]:
    """The one record the producer was given."""
    assert producer.send.call_count == 1
    topic, key, value, headers = producer.send.call_args.args[:4]
    return topic, key, value, dict(headers)


SURROGATES = {
    "lone-high": b"broken \\ud800 text",
    "lone-low": b"broken \\udc00 text",
    "high-then-letter": b"broken \\ud800\\u0041 text",
    "reversed-pair": b"broken \\ude00\\ud83d text",
}


@pytest.mark.parametrize("with_big_integer", [False, True], ids=["plain", "big-int"])
@pytest.mark.parametrize("escape", list(SURROGATES.values()), ids=list(SURROGATES))
def test_an_unpaired_surrogate_is_dead_lettered_at_decode_before_any_call(
    pipelines: dict[str, Pipeline], escape: bytes, with_big_integer: bool
) -> None:
    raw = ticket_bytes("PLACEHOLDER").replace(b"PLACEHOLDER", escape)
    if with_big_integer:
        # Long integers send the value through the standard parser, which
        # accepts unpaired surrogates; they must still be refused.
        raw = raw.replace(b'"channel"', b'"legacy_id":' + BIG + b',"channel"')

    model, producer, finished = process(pipelines["tickets"], raw)

    assert model.requests == []
    topic, _key, value, headers = sent(producer)
    assert topic == Settings().kafka.dead_letter_topic
    assert value == raw  # the original bytes, untouched
    assert headers["dlq.failure.stage"] == b"decode"
    assert headers["dlq.error.reason"] == b"invalid_json"
    assert finished == [True]


def test_a_paired_surrogate_escape_is_an_ordinary_character(
    pipelines: dict[str, Pipeline],
) -> None:
    raw = ticket_bytes("PLACEHOLDER").replace(b"PLACEHOLDER", b"thanks \\ud83d\\ude00")
    model, producer, _ = process(pipelines["tickets"], raw)
    assert len(model.requests) == 1
    topic, _key, value, _headers = sent(producer)
    assert topic == Settings().kafka.output_topic
    assert value is not None and "thanks \U0001f600".encode() in value


def test_an_integer_beyond_64_bits_comes_out_with_every_digit(
    pipelines: dict[str, Pipeline],
) -> None:
    raw = ticket_bytes().replace(b'"channel"', b'"legacy_id":' + BIG + b',"channel"')
    model, producer, finished = process(pipelines["tickets"], raw)
    assert len(model.requests) == 1
    topic, _key, value, _headers = sent(producer)
    assert topic == Settings().kafka.output_topic
    assert value is not None
    assert b'"legacy_id":' + BIG + b"," in value
    assert json_codec.loads(value)["data"]["legacy_id"] == int(BIG)
    assert finished == [True]


@pytest.mark.parametrize(
    ("value", "reason"), [(None, "tombstone"), (b"", "empty_value")]
)
def test_tombstones_and_empty_values_are_dead_lettered_without_a_call(
    pipelines: dict[str, Pipeline], value: bytes | None, reason: str
) -> None:
    model, producer, finished = process(pipelines["tickets"], value)
    assert model.requests == []
    topic, key, dead_value, headers = sent(producer)
    assert topic == Settings().kafka.dead_letter_topic
    assert key == b"T-1"
    assert dead_value == value
    assert headers["dlq.error.reason"] == reason.encode()
    assert headers["h"] == b"\xff"  # an undecodable header is carried as bytes
    assert finished == [True]


@pytest.mark.parametrize("content", ["", "   \n\t "], ids=["empty", "spaces"])
def test_blank_content_is_retried_with_a_cap_and_never_marks_the_hash_done(
    pipelines: dict[str, Pipeline], content: str
) -> None:
    model = CountingModel(content)
    # Without retry tiers, exhausted attempts end in the dead-letter topic.
    no_tiers = Settings(retry=RetrySettings(tiers_s=[]))
    processor, producer = make_processor(model, max_attempts=3, settings=no_tiers)
    for _ in range(2):  # the same content twice: the second must call again
        assert process_one(processor, pipelines["tickets"], ticket_bytes()) == [True]
    assert len(model.requests) == 6
    assert producer.send.call_count == 2
    for call in producer.send.call_args_list:
        topic, _key, _value, headers = call.args[:4]
        assert topic == Settings().kafka.dead_letter_topic
        assert dict(headers)["dlq.error.reason"] == b"blank_content"
        assert dict(headers)["dlq.attempts"] == b"3"


def test_tombstones_can_be_skipped_by_configuration_but_empty_values_cannot(
    pipelines: dict[str, Pipeline],
) -> None:
    skipping = Settings(worker=WorkerSettings(tombstones="skip"))
    model = CountingModel()
    processor, producer = make_processor(model, settings=skipping)
    assert process_one(processor, pipelines["tickets"], None) == [True]
    assert producer.send.call_count == 0  # finished with no output at all
    assert process_one(processor, pipelines["tickets"], b"") == [True]
    _topic, _key, _value, headers = sent(producer)
    assert headers["dlq.error.reason"] == b"empty_value"
    assert model.requests == []
