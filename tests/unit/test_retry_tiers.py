"""Tier records run when due; until then their partition waits, apart from others."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from unittest.mock import create_autospec

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.errors import FatalError
from streams.kafka.dead_letter import SourceRecord
from streams.kafka.retry_topics import RetryTier, retry_headers
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.worker.record_processor import RecordProcessor
from streams.worker.retry_tiers import RetryTierIntake

TIER = RetryTier(30.0, "events.retry.30s")
FAILED_AT = datetime(2026, 12, 4, 18, 0, 0, tzinfo=UTC)
DUE_S = FAILED_AT.timestamp() + 30


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def tier_record(
    offset: int = 7, input_topic: str = "events.tickets", partition: int = 0
) -> SourceRecord:
    first = SourceRecord(input_topic, 2, 41, 1_700_000_000_000, b"k", b"v", [])
    headers = retry_headers(first, TIER, "timeout", FAILED_AT)
    return SourceRecord(TIER.topic, partition, offset, 1, b"k", b"v", headers)


def make_intake(
    pipelines: dict[str, Pipeline], now_s: float
) -> tuple[RetryTierIntake, Consumer, RecordProcessor, Metrics, Clock]:
    consumer = create_autospec(Consumer, instance=True)
    processor = create_autospec(RecordProcessor, instance=True)
    metrics = Metrics()
    clock = Clock(now_s)
    by_topic = {"events.tickets": pipelines["tickets"]}
    intake = RetryTierIntake((TIER,), by_topic, consumer, processor, metrics, clock)
    return intake, consumer, processor, metrics, clock


def waiting(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("streams_retry_partitions_waiting")


def test_a_due_record_runs_with_its_input_topics_pipeline_and_coordinates(
    pipelines: dict[str, Pipeline],
) -> None:
    intake, consumer, processor, _, _ = make_intake(pipelines, DUE_S)
    admitted = intake.admit(tier_record())
    assert admitted is not None
    assert admitted.pipeline_name == "tickets"
    assert isinstance(admitted.process, functools.partial)
    assert admitted.process.func == processor.process
    record, pipeline = admitted.process.args
    assert (record.topic, record.partition, record.offset) == ("events.tickets", 2, 41)
    assert pipeline is pipelines["tickets"]
    consumer.pause.assert_not_called()
    assert intake.is_tier(TIER.topic) and not intake.is_tier("events.tickets")


def test_an_early_record_pauses_and_seeks_its_partition_until_due(
    pipelines: dict[str, Pipeline],
) -> None:
    intake, consumer, _, metrics, clock = make_intake(pipelines, DUE_S - 0.001)
    assert intake.admit(tier_record(offset=7)) is None
    consumer.pause.assert_called_once_with([TopicPartition(TIER.topic, 0)])
    consumer.seek.assert_called_once_with(TopicPartition(TIER.topic, 0, 7))
    assert intake.holds((TIER.topic, 0))
    assert not intake.holds((TIER.topic, 1))
    assert waiting(metrics) == 1

    intake.release_due(paused_elsewhere=set())
    consumer.resume.assert_not_called()

    clock.now_s = DUE_S
    intake.release_due(paused_elsewhere=set())
    consumer.resume.assert_called_once_with([TopicPartition(TIER.topic, 0)])
    assert not intake.holds((TIER.topic, 0))
    assert waiting(metrics) == 0


def test_a_partition_paused_for_back_pressure_stays_paused_when_due(
    pipelines: dict[str, Pipeline],
) -> None:
    intake, consumer, _, _, clock = make_intake(pipelines, DUE_S - 5)
    assert intake.admit(tier_record()) is None
    clock.now_s = DUE_S + 1
    intake.release_due(paused_elsewhere={(TIER.topic, 0)})
    consumer.resume.assert_not_called()
    assert intake.waiting == set()


def test_revoked_partitions_are_forgotten(pipelines: dict[str, Pipeline]) -> None:
    intake, consumer, _, metrics, clock = make_intake(pipelines, DUE_S - 5)
    assert intake.admit(tier_record(partition=0)) is None
    assert intake.admit(tier_record(partition=1)) is None
    assert waiting(metrics) == 2
    intake.forget([(TIER.topic, 0), ("events.tickets", 0)])
    # Resumed on the way out: a pause would outlive the revocation.
    consumer.resume.assert_called_once_with([TopicPartition(TIER.topic, 0)])
    assert intake.waiting == {(TIER.topic, 1)}
    assert waiting(metrics) == 1
    clock.now_s = DUE_S
    intake.release_due(paused_elsewhere=set())
    consumer.resume.assert_called_with([TopicPartition(TIER.topic, 1)])


def test_garbled_headers_are_dead_lettered_under_the_tier_coordinates(
    pipelines: dict[str, Pipeline],
) -> None:
    intake, consumer, processor, _, _ = make_intake(pipelines, DUE_S)
    garbled = SourceRecord(TIER.topic, 0, 3, 1, b"k", b"v", [("retry.count", b"x")])
    admitted = intake.admit(garbled)
    assert admitted is not None and admitted.pipeline_name == "unknown"
    assert isinstance(admitted.process, functools.partial)
    assert admitted.process.func == processor.reject
    record, error = admitted.process.args
    assert record is garbled
    assert error.reason == "invalid_retry_headers"
    consumer.pause.assert_not_called()


def test_an_input_topic_without_a_pipeline_here_is_dead_lettered(
    pipelines: dict[str, Pipeline],
) -> None:
    intake, _, processor, _, _ = make_intake(pipelines, DUE_S)
    admitted = intake.admit(tier_record(input_topic="events.elsewhere"))
    assert admitted is not None and admitted.pipeline_name == "unknown"
    assert isinstance(admitted.process, functools.partial)
    assert admitted.process.func == processor.reject
    record, error = admitted.process.args
    assert record.topic == "events.elsewhere" and record.offset == 41
    assert error.reason == "unknown_pipeline"


def test_a_failed_seek_stops_the_worker_instead_of_skipping_the_record(
    pipelines: dict[str, Pipeline],
) -> None:
    intake, consumer, _, _, _ = make_intake(pipelines, DUE_S - 5)
    consumer.seek.side_effect = KafkaException(KafkaError(KafkaError._STATE))
    with pytest.raises(FatalError, match="cannot seek"):
        intake.admit(tier_record())
