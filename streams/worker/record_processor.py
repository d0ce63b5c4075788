"""Processing one record: decode, hash, deduplicate, enrich, produce.

Every record ends in exactly one of three ways: an enriched record
acknowledged by the broker, a dead-letter record acknowledged by the broker,
or, if the work is cancelled (shutdown, revocation, crash), nothing: its
offset is then never marked finished, so it is never committed and Kafka
delivers it again. Marking finished happens inside the delivery report.

Failures of the output path: a record larger than ``max_message_bytes`` is
dead-lettered before any LLM call when the input alone leaves no room for the
enrichment, and otherwise before producing; a delivery that fails for a
transient reason (broker down, timeout) is produced again with a growing
wait, for as long as it takes; any other refusal stops the worker.

Retry tiers: when the in-process attempts run out on a transient failure, the
record goes to the next retry tier's topic instead (see
:mod:`streams.kafka.retry_topics`); that record's acknowledgement finishes the
offset like an output does. After the last tier it is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import Message

from streams.errors import DecodeError, FatalError, PermanentError, RetryableError
from streams.kafka.dead_letter import (
    DeadLetter,
    SourceRecord,
    dead_letter_record,
    header_list,
    record_size,
)
from streams.kafka.producer import DeliveryError, Headers, RecordProducer
from streams.kafka.retry_topics import next_tier, retry_headers, retry_tiers
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.pipeline.content_hash import content_hash
from streams.pipeline.decode import Event, decode_event
from streams.pipeline.deduplication import Deduplicator
from streams.pipeline.enricher import Enrichment, EnrichmentFailed, EventEnricher
from streams.pipeline.output import DedupKind, build_enriched_record
from streams.settings import Settings
from streams.worker.stats import WorkerStats

logger = logging.getLogger(__name__)

REDELIVERY_WAIT_CAP_S = 30.0
ENRICHMENT_BYTES_PER_TOKEN = 8
METADATA_BYTES = 4_096


def source_of(message: Message) -> SourceRecord:
    """The coordinates and bytes of a consumed record."""
    _kind, timestamp = message.timestamp()
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    # A consumed record without an error always has all three.
    assert topic is not None and partition is not None and offset is not None
    key, value = message.key(), message.value()
    return SourceRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp,
        key=key.encode() if isinstance(key, str) else key,
        value=value.encode() if isinstance(value, str) else value,
        headers=header_list(message.headers()),
    )


class RecordTooLargeError(Exception):
    """The broker refused a record for its size."""


class RecordProcessor:
    """Turns one consumed record into one acknowledged output record.

    Args:
        settings: Topics, group and size limits.
        enricher: Calls the model (an Enricher, or a PackingRouter).
        deduplicator: Result cache and calls in flight.
        producer: Sends output and dead letters.
        metrics: Where to count.
        stats: The run's summary counters.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        enricher: EventEnricher,
        deduplicator: Deduplicator[Enrichment],
        producer: RecordProducer,
        metrics: Metrics,
        stats: WorkerStats,
    ) -> None:
        self._kafka = settings.kafka
        self._tiers = retry_tiers(settings.retry)
        self._skip_tombstones = settings.worker.tombstones == "skip"
        self._enricher = enricher
        self._dedup = deduplicator
        self._producer = producer
        self._metrics = metrics
        self._stats = stats

    async def process(
        self, source: SourceRecord, pipeline: Pipeline, finish: Callable[[], None]
    ) -> None:
        """Processes one record; ``finish`` runs when its output is acknowledged."""
        try:
            event = decode_event(source.value, pipeline)
        except DecodeError as exc:
            if exc.reason == "tombstone" and self._skip_tombstones:
                logger.debug("record.tombstone_skipped offset=%d", source.offset)
                finish()
                return
            await self._dead_letter(
                source,
                DeadLetter(
                    "decode",
                    type(exc).__name__,
                    exc.reason,
                    str(exc),
                    pipeline.name,
                    exc.event_id,
                ),
                finish,
            )
            return

        model = self._enricher.model_for(pipeline)
        event_hash = content_hash(pipeline, event, model)
        room = self._kafka.max_message_bytes - METADATA_BYTES
        input_size = record_size(source.key, source.value, source.headers)
        if input_size + pipeline.config.max_tokens * ENRICHMENT_BYTES_PER_TOKEN > room:
            await self._dead_letter(
                source,
                DeadLetter(
                    "enrich",
                    "PermanentError",
                    "output_too_large",
                    "the input leaves no room for its enrichment within "
                    f"{self._kafka.max_message_bytes} bytes; not sent to the LLM",
                    pipeline.name,
                    event.event_id,
                    content_hash=event_hash,
                ),
                finish,
            )
            return

        try:
            lookup = await self._dedup.acquire(event_hash)
        except PermanentError as exc:
            # A call for the same content failed for a reason about the content.
            await self._dead_letter(
                source,
                DeadLetter(
                    "enrich",
                    type(exc).__name__,
                    exc.reason,
                    str(exc),
                    pipeline.name,
                    event.event_id,
                    model=model,
                    content_hash=event_hash,
                ),
                finish,
            )
            return
        if lookup.result is not None and lookup.kind != "lead":
            self._stats.deduplicated += 1
            self._metrics.records_deduplicated.labels(pipeline.name, lookup.kind).inc()
            await self._emit(
                source, pipeline, event, lookup.result, lookup.kind, event_hash, finish
            )
            return

        await self._lead(source, pipeline, event, event_hash, lookup.lease, finish)

    async def reject(
        self, source: SourceRecord, error: DecodeError, finish: Callable[[], None]
    ) -> None:
        """Dead-letters a record read from a retry tier that cannot be retried.

        Its ``retry.*`` headers are unreadable, or they name an input topic
        that no pipeline of this worker reads; either way there is no pipeline
        to run, so the dead letter's pipeline is ``unknown``.
        """
        await self._dead_letter(
            source,
            DeadLetter(
                "decode", type(error).__name__, error.reason, str(error), "unknown"
            ),
            finish,
        )

    async def _lead(
        self,
        source: SourceRecord,
        pipeline: Pipeline,
        event: Event,
        event_hash: str,
        lease: object,
        finish: Callable[[], None],
    ) -> None:
        """Makes the call for this content; reports to the deduplicator once."""
        try:
            enrichment = await self._enricher.enrich(pipeline, event)
        except EnrichmentFailed as exc:
            self._dedup.fail(event_hash, lease, exc)
            self._stats.usage = self._stats.usage + exc.usage
            self._count_spend(pipeline, exc.cost_usd)
            if isinstance(exc.cause, RetryableError) and await self._send_to_tier(
                source, pipeline, event, exc.reason, finish
            ):
                return
            await self._dead_letter(
                source,
                DeadLetter(
                    "enrich",
                    type(exc.cause).__name__,
                    exc.reason,
                    str(exc),
                    pipeline.name,
                    event.event_id,
                    attempts=exc.attempts,
                    model=exc.model,
                    http_status=exc.status,
                    request_id=exc.request_id,
                    tokens=exc.usage.prompt_tokens + exc.usage.completion_tokens,
                    cost_usd=exc.cost_usd,
                    content_hash=event_hash,
                ),
                finish,
            )
            return
        except BaseException:
            self._dedup.fail(event_hash, lease)
            raise

        self._stats.usage = self._stats.usage + enrichment.usage
        self._count_spend(pipeline, enrichment.cost_usd)
        delivered = False
        try:
            delivered = await self._emit(
                source, pipeline, event, enrichment, "miss", event_hash, finish
            )
        finally:
            if delivered:
                self._dedup.complete(event_hash, enrichment, lease)
            else:
                self._dedup.fail(event_hash, lease)

    def _count_spend(self, pipeline: Pipeline, cost_usd: float) -> None:
        self._stats.cost_usd += cost_usd
        self._metrics.llm_cost.labels(pipeline.name).inc(cost_usd)

    async def _emit(
        self,
        source: SourceRecord,
        pipeline: Pipeline,
        event: Event,
        enrichment: Enrichment,
        dedup: DedupKind,
        event_hash: str,
        finish: Callable[[], None],
    ) -> bool:
        """Produces the enriched record; returns whether it was delivered."""
        value = build_enriched_record(
            pipeline,
            event,
            enrichment,
            dedup=dedup,
            content_hash=event_hash,
            source={
                "topic": source.topic,
                "partition": source.partition,
                "offset": source.offset,
                "timestamp": source.timestamp_ms,
            },
        )
        size = record_size(source.key, value, source.headers)
        refused = size > self._kafka.max_message_bytes
        if not refused:
            try:
                await self._deliver(
                    self._kafka.output_topic, source.key, value, source.headers, finish
                )
            except RecordTooLargeError:
                refused = True
        if refused:
            await self._dead_letter(
                source,
                DeadLetter(
                    "produce",
                    "PermanentError",
                    "output_too_large",
                    f"the enriched record has about {size} bytes; the limit is "
                    f"{self._kafka.max_message_bytes}",
                    pipeline.name,
                    event.event_id,
                    model=enrichment.model,
                    content_hash=event_hash,
                ),
                finish,
            )
            return False
        self._stats.enriched += 1
        self._metrics.records_enriched.labels(pipeline.name, dedup).inc()
        if not logger.isEnabledFor(logging.DEBUG):
            return True
        own_call = dedup == "miss"
        logger.debug(
            "record.enriched pipeline=%s topic=%s partition=%d offset=%d "
            "event_id=%s hash=%s dedup=%s attempts=%d duration_s=%.3f tokens=%d "
            "cost_usd=%.8f",
            pipeline.name,
            source.topic,
            source.partition,
            source.offset,
            event.event_id,
            event_hash[:12],
            dedup,
            enrichment.attempts if own_call else 0,
            enrichment.latency_s if own_call else 0.0,
            enrichment.usage.prompt_tokens + enrichment.usage.completion_tokens
            if own_call
            else 0,
            enrichment.cost_usd if own_call else 0.0,
        )
        return True

    async def _dead_letter(
        self,
        source: SourceRecord,
        letter: DeadLetter,
        finish: Callable[[], None],
    ) -> None:
        value, headers = dead_letter_record(
            source, letter, self._kafka.group_id, self._kafka.max_message_bytes
        )
        try:
            await self._deliver(
                self._kafka.dead_letter_topic, source.key, value, headers, finish
            )
        except RecordTooLargeError:
            # The broker's limit is below ours: carry only the pointer.
            value, headers = dead_letter_record(source, letter, self._kafka.group_id, 0)
            await self._deliver(
                self._kafka.dead_letter_topic, source.key, value, headers, finish
            )
        self._stats.dead_lettered += 1
        self._stats.dead_letter_reasons[letter.reason] = (
            self._stats.dead_letter_reasons.get(letter.reason, 0) + 1
        )
        self._metrics.records_dead_lettered.labels(
            letter.pipeline, letter.stage, letter.reason
        ).inc()
        logger.warning(
            "record.dead_lettered pipeline=%s topic=%s partition=%d offset=%d "
            "event_id=%s stage=%s reason=%s retry_tiers=%d",
            letter.pipeline,
            source.topic,
            source.partition,
            source.offset,
            letter.event_id,
            letter.stage,
            letter.reason,
            source.retry.count if source.retry else 0,
        )

    async def _send_to_tier(
        self,
        source: SourceRecord,
        pipeline: Pipeline,
        event: Event,
        reason: str,
        finish: Callable[[], None],
    ) -> bool:
        """Produces the record to its next retry tier.

        Returns:
            False when there is no tier left, or the tier record would be too
            large: the caller dead-letters it instead.
        """
        tier = next_tier(self._tiers, source)
        if tier is None:
            return False
        headers = retry_headers(source, tier, reason, datetime.now(UTC))
        try:
            await self._deliver(tier.topic, source.key, source.value, headers, finish)
        except RecordTooLargeError:
            return False
        self._stats.retried += 1
        self._metrics.records_retried.labels(pipeline.name, tier.label).inc()
        logger.warning(
            "record.sent_to_retry_tier pipeline=%s topic=%s partition=%d offset=%d "
            "event_id=%s reason=%s tier_topic=%s retry_count=%d wait_s=%.1f",
            pipeline.name,
            source.topic,
            source.partition,
            source.offset,
            event.event_id,
            reason,
            tier.topic,
            source.retry.count + 1 if source.retry else 1,
            tier.delay_s,
        )
        return True

    async def _deliver(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        finish: Callable[[], None],
    ) -> None:
        """Produces until acknowledged; transient failures are retried."""
        wait_s = 1.0
        while True:
            try:
                await self._producer.send(
                    topic, key, value, headers, on_acknowledged=finish
                )
            except DeliveryError as exc:
                if exc.too_large:
                    raise RecordTooLargeError(str(exc)) from exc
                if not exc.retriable:
                    raise FatalError(
                        f"the broker refused a record for {topic}: {exc}",
                        reason="produce_refused",
                    ) from exc
                logger.warning(
                    "record.delivery_retry topic=%s wait_s=%.1f error=%s",
                    topic,
                    wait_s,
                    exc.error.name(),
                )
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, REDELIVERY_WAIT_CAP_S)
            else:
                return
