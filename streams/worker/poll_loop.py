"""The poll loop: consume without ever stalling, commit only what is finished.

One asyncio event loop runs everything. The loop asks librdkafka for records
without blocking (``consume(timeout=0)``), so polling continues however long
the LLM calls take and the member is never evicted for exceeding
``max.poll.interval.ms``. Each record becomes a task; records of one partition
run concurrently (or, with ``ordering: key``, in offset order per key).

Back-pressure: when ``max_buffered`` records are received and not yet
committed (unfinished, or finished above the committed offset), every
assigned partition is paused while polling continues; below ``resume_ratio``
of the bound, exactly the partitions paused are resumed. Bounding the
uncommitted window, not only the unfinished records, bounds what a crash can
make the next owner redo. Commits run every ``commit_interval_s``, and
sooner while the window is more than half full.

Closed pipelines: when a :class:`~streams.pipeline.gate.PipelineGate` closes a
pipeline (spend budget reached, or peak hours for a deferrable one), its
partitions are paused while polling continues, and resumed when it opens. That
paused set is kept apart from the back-pressure one: neither resumes a
partition the other holds. Records already received wait in the enricher,
uncommitted; they do not count against ``max_buffered`` (see
:attr:`Worker.intake_buffered`), so a closed pipeline cannot stall the others.

Offsets: see :mod:`streams.kafka.offset_tracker`. Commits carry explicit
offsets. Periodic commits are asynchronous and one at a time, so a slow broker
never blocks the loop; revocation and shutdown commit synchronously.

Revocation: the producer is flushed for up to ``revoke_grace_s`` so records
already produced are acknowledged, the finished prefix is committed, and the
revoked partitions' remaining tasks are cancelled: their results would be
late, and the new owner redoes them (at most ``max_buffered`` duplicates).

Retry tiers: the tier topics are consumed too; a tier record that is not due
yet holds its partition (paused and seeked back) in a set apart from the
back-pressure pauses. See :mod:`streams.worker.retry_tiers`.

Shutdown (SIGTERM, SIGINT, or the stop event): intake stops, in-flight work
gets ``shutdown_grace_s`` to finish while polling continues, the rest is
cancelled, and exactly the finished prefix is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streams.errors import FatalError
from streams.kafka.dead_letter import SourceRecord
from streams.kafka.offset_tracker import PartitionOffsets
from streams.kafka.producer import RecordProducer
from streams.kafka.retry_topics import retry_tiers
from streams.observability.metrics import Metrics
from streams.pipeline.config import Pipeline
from streams.pipeline.deduplication import Deduplicator
from streams.pipeline.enricher import Enrichment, EventEnricher
from streams.pipeline.gate import PipelineGate
from streams.settings import Settings
from streams.worker.record_processor import RecordProcessor, source_of
from streams.worker.retry_tiers import RetryTierIntake
from streams.worker.stats import WorkerStats

logger = logging.getLogger(__name__)

CONSUME_BATCH = 500
IDLE_WAIT_S = 0.01
COMMIT_MIN_GAP_S = 0.05
COMMIT_STUCK_S = 30.0
PartitionKey = tuple[str, int]


class Worker:
    """Consumes the pipelines' topics and enriches every record.

    Args:
        settings: The service settings.
        pipelines: Pipelines keyed by input topic.
        enricher: Calls the model (an Enricher, or a PackingRouter).
        metrics: Where to count; a fresh registry when None.
        consumer_factory: Builds the consumer (tests inject a wrapped one).
        gate: Closes pipelines (budgets, peak hours); their partitions pause.
        on_stopped: Awaited last in the shutdown, e.g. to close the LLM client.
    """

    def __init__(
        self,
        settings: Settings,
        pipelines: dict[str, Pipeline],
        enricher: EventEnricher,
        *,
        metrics: Metrics | None = None,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
        gate: PipelineGate | None = None,
        on_stopped: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._pipelines = pipelines
        self._enricher = enricher
        self.metrics = metrics or Metrics()
        self.stats = WorkerStats()
        consumer_config = settings.kafka.consumer_config()
        consumer_config["on_commit"] = self._on_commit
        self._consumer = consumer_factory(consumer_config)
        self._producer = RecordProducer(
            settings.kafka.producer_config(),
            on_backpressure=self.metrics.produce_backpressure.inc,
        )
        self._processor = RecordProcessor(
            settings,
            enricher=enricher,
            deduplicator=Deduplicator[Enrichment](settings.worker.result_cache_size),
            producer=self._producer,
            metrics=self.metrics,
            stats=self.stats,
        )
        self._retry = RetryTierIntake(
            retry_tiers(settings.retry),
            pipelines,
            self._consumer,
            self._processor,
            self.metrics,
        )
        self._offsets: dict[PartitionKey, PartitionOffsets] = {}
        self._tasks: dict[PartitionKey, set[asyncio.Task[None]]] = {}
        self._key_tails: dict[tuple[str, int, bytes | None], asyncio.Future[None]] = {}
        self._paused: set[PartitionKey] = set()
        self._gate = gate
        self._on_stopped = on_stopped
        self._gate_paused: set[PartitionKey] = set()
        self._intake_stopped = False
        self._fatal: BaseException | None = None
        self._last_commit = 0.0
        self._commit_sent_at = 0.0
        self.last_poll = time.monotonic()
        """When the poll loop last ran; the liveness probe reads it."""

    # -- rebalance callbacks (run inside consume(), on the loop thread) --------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._offsets[(tp.topic, tp.partition)] = PartitionOffsets()
            self._tasks.setdefault((tp.topic, tp.partition), set())
        self.metrics.rebalances.labels("assign").inc()
        logger.info(
            "partitions.assigned count=%d partitions=%s",
            len(partitions),
            ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions),
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        undelivered = self._producer.flush(self._settings.worker.revoke_grace_s)
        self._commit(
            [key for key in keys if key in self._offsets],
            asynchronous=False,
            consumer=consumer,
        )
        self._drop(keys)
        self.metrics.rebalances.labels("revoke").inc()
        logger.info(
            "partitions.revoked count=%d undelivered_outputs=%d", len(keys), undelivered
        )

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._drop(keys)
        self.metrics.rebalances.labels("lost").inc()
        logger.warning(
            "partitions.lost count=%d consequence=uncommitted_work_redone_by_new_owner",
            len(keys),
        )

    def _forget_lag(self, key: PartitionKey) -> None:
        # No lag may have been reported for it yet.
        with contextlib.suppress(KeyError):
            self.metrics.consumer_lag.remove(key[0], str(key[1]))

    def _drop(self, keys: list[PartitionKey]) -> None:
        """Forgets partitions: late results are dropped, their tasks cancelled.

        Paused ones are resumed on the way out: librdkafka keeps a partition's
        pause across a revocation or a loss (a broker restart), so a partition
        this worker got back would otherwise stay paused with nothing left to
        resume it.
        """
        held = [key for key in keys if key in self._paused or key in self._gate_paused]
        if held and not self._intake_stopped:  # when closing, none come back
            # A partition already gone cannot be resumed, and needs not be.
            with contextlib.suppress(KafkaException):
                self._consumer.resume([TopicPartition(t, p) for t, p in held])
        for key in keys:
            self._forget_lag(key)
            offsets = self._offsets.pop(key, None)
            if offsets is not None:
                offsets.revoked = True
            for task in self._tasks.pop(key, set()):
                task.cancel()
            self._paused.discard(key)
            self._gate_paused.discard(key)
        self._retry.forget(keys)

    # -- intake -----------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Records received and not yet committed, over all assigned partitions.

        Finished but uncommitted records count too: a crash would make the next
        owner redo them, so bounding this bounds the duplicates after a crash.
        """
        return sum(offsets.uncommitted for offsets in self._offsets.values())

    @property
    def intake_buffered(self) -> int:
        """Buffered records that count against ``max_buffered``.

        Records of partitions paused for a closed pipeline are left out: those
        partitions take nothing more until it opens, and counting their records
        would let one closed pipeline stall the open ones. So each closed
        pipeline can hold up to ``max_buffered`` uncommitted records on top of
        the bound.
        """
        return sum(
            offsets.uncommitted
            for key, offsets in self._offsets.items()
            if key not in self._gate_paused
        )

    @property
    def in_flight(self) -> int:
        """Records received and not finished."""
        return sum(offsets.pending for offsets in self._offsets.values())

    def _accept(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise FatalError(f"consumer error: {error.str()}", reason="kafka_fatal")
            logger.warning("consumer.error code=%s error=%s", error.name(), error.str())
            return
        source = source_of(message)
        key = (source.topic, source.partition)
        offsets = self._offsets.get(key)
        if offsets is None or self._intake_stopped or self._retry.holds(key):
            return  # not tracked, so never committed: it will be delivered again
        pipeline = self._pipelines.get(source.topic)
        process: Callable[[Callable[[], None]], Awaitable[None]]
        if pipeline is not None:
            name = pipeline.name
            process = functools.partial(self._processor.process, source, pipeline)
        elif self._retry.is_tier(source.topic):
            admitted = self._retry.admit(source)
            if admitted is None:
                return  # not due: its partition now waits, seeked back to it
            name, process = admitted
        else:
            return
        offsets.received(source.offset)
        self.stats.consumed += 1
        self.metrics.records_consumed.labels(name, source.topic).inc()
        task = asyncio.create_task(self._run_record(source, offsets, process))
        tasks = self._tasks[key]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_record(
        self,
        source: SourceRecord,
        offsets: PartitionOffsets,
        process: Callable[[Callable[[], None]], Awaitable[None]],
    ) -> None:
        def finish() -> None:
            if not offsets.revoked:
                offsets.finish(source.offset)

        tail_key = (source.topic, source.partition, source.key)
        previous: asyncio.Future[None] | None = None
        done: asyncio.Future[None] | None = None
        if self._settings.worker.ordering == "key":
            previous = self._key_tails.get(tail_key)
            done = asyncio.get_running_loop().create_future()
            self._key_tails[tail_key] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await process(finish)
        except asyncio.CancelledError:
            raise
        except FatalError as exc:
            self._fatal = exc
        except Exception as exc:  # a bug must stop the worker, not vanish
            logger.exception("record.unexpected_error offset=%d", source.offset)
            self._fatal = exc
        finally:
            if done is not None:
                done.set_result(None)
                if self._key_tails.get(tail_key) is done:
                    del self._key_tails[tail_key]

    def _apply_backpressure(self) -> None:
        assigned = set(self._offsets)
        buffered = self.intake_buffered
        bound = self._settings.worker.max_buffered
        if self._intake_stopped or buffered >= bound:
            to_pause = assigned - self._paused
            if to_pause:
                self._consumer.pause([TopicPartition(t, p) for t, p in to_pause])
                self._paused |= to_pause
                logger.debug(
                    "intake.paused partitions=%d buffered=%d", len(to_pause), buffered
                )
        elif self._paused and buffered <= bound * self._settings.worker.resume_ratio:
            # Partitions of a closed pipeline stay paused until it opens, and
            # retry partitions until their head record is due.
            to_resume = (
                (self._paused & assigned) - self._gate_paused - self._retry.waiting
            )
            if to_resume:
                self._consumer.resume([TopicPartition(t, p) for t, p in to_resume])
            logger.debug(
                "intake.resumed partitions=%d buffered=%d", len(to_resume), buffered
            )
            self._paused.clear()
        self.metrics.records_in_flight.set(self.in_flight)
        self.metrics.records_buffered.set(self.buffered)
        self.metrics.partitions_paused.set(len(self._paused))

    def _apply_gate(self) -> None:
        """Pauses the partitions of closed pipelines; resumes those that opened.

        A partition that back-pressure also paused stays paused when its
        pipeline opens; back-pressure resumes it in its own time.
        """
        if self._gate is None or not self._gate.active:
            return
        closed = {
            pipeline.name
            for pipeline in self._pipelines.values()
            if self._gate.closure(pipeline.name) is not None
        }
        held = {
            key
            for key in self._offsets
            if key[0] in self._pipelines and self._pipelines[key[0]].name in closed
        }
        to_pause = held - self._gate_paused
        to_resume = self._gate_paused - held
        if to_pause:
            self._consumer.pause([TopicPartition(t, p) for t, p in to_pause])
        if to_resume - self._paused:
            self._consumer.resume(
                [TopicPartition(t, p) for t, p in to_resume - self._paused]
            )
        if to_pause or to_resume:
            self._gate_paused = held
            logger.info(
                "intake.gate pipelines_closed=%s partitions_paused=%d "
                "partitions_resumed=%d",
                ",".join(sorted(closed)) or "-",
                len(to_pause),
                len(to_resume),
            )
        for topic, pipeline in self._pipelines.items():
            self.metrics.pipeline_partitions_paused.labels(pipeline.name).set(
                sum(1 for key in self._gate_paused if key[0] == topic)
            )

    # -- commits ------------------------------------------------------------------

    def _commit(
        self,
        keys: list[PartitionKey],
        *,
        asynchronous: bool,
        consumer: Consumer | None = None,
    ) -> None:
        """Commits the finished prefix of the given partitions.

        Periodic commits are asynchronous, one at a time, so a slow or absent
        broker never blocks the loop; their outcome arrives in
        :meth:`_on_commit`. Revocation and shutdown commit synchronously,
        because the partitions are about to go.
        """
        now = time.monotonic()
        if asynchronous and now - self._commit_sent_at < COMMIT_STUCK_S:
            return
        offsets = []
        for key in keys:
            tracked = self._offsets.get(key)
            if tracked is None:
                continue
            position = tracked.committable()
            if position is not None and position != tracked.committed:
                offsets.append(TopicPartition(key[0], key[1], position))
        if not offsets:
            return
        client = consumer or self._consumer
        try:
            if asynchronous:
                self._commit_sent_at = now
                client.commit(offsets=offsets, asynchronous=True)
                return
            result = client.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._commit_sent_at = 0.0
            self._commit_failed(exc.args[0])
            return
        self._commit_done(result or [], now)

    def _on_commit(
        self, error: KafkaError | None, partitions: list[TopicPartition]
    ) -> None:
        """librdkafka's report of a commit (run inside consume())."""
        sent_at, self._commit_sent_at = self._commit_sent_at, 0.0
        if error is not None:
            self._commit_failed(error)
            return
        self._commit_done(partitions, sent_at)

    def _commit_done(self, partitions: list[TopicPartition], sent_at: float) -> None:
        for tp in partitions:
            tracked = self._offsets.get((tp.topic, tp.partition))
            if tp.error is None and tracked is not None and tp.offset >= 0:
                tracked.mark_committed(tp.offset)
        self.metrics.commits.labels("ok").inc()
        if sent_at:
            self.metrics.commit_latency.observe(time.monotonic() - sent_at)
        logger.debug("offsets.committed partitions=%d", len(partitions))

    def _commit_failed(self, error: KafkaError) -> None:
        self.metrics.commits.labels("failed").inc()
        logger.warning(
            "offsets.commit_failed error=%s consequence=retried_next_interval",
            error.name(),
        )

    def _update_lag(self) -> None:
        """Consumer lag per partition: high watermark minus committed offset.

        The watermark is the one cached from the last fetch, so this never
        waits on the broker.
        """
        for (topic, partition), tracked in self._offsets.items():
            if tracked.committed is None:
                continue
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if high is not None and high >= 0:
                lag = max(0, high - tracked.committed)
                self.metrics.consumer_lag.labels(topic, str(partition)).set(lag)

    @property
    def assigned_partitions(self) -> int:
        """Partitions this worker owns now."""
        return len(self._offsets)

    # -- the loop -------------------------------------------------------------------

    def _poll_once(self) -> int:
        self._producer.poll()
        self._retry.release_due(self._paused)
        # Never take more than the bound allows; one record keeps the call alive.
        room = self._settings.worker.max_buffered - self.intake_buffered
        messages = self._consumer.consume(
            num_messages=max(1, min(CONSUME_BATCH, room)), timeout=0
        )
        for message in messages:
            self._accept(message)
        self._apply_gate()
        self._apply_backpressure()
        now = time.monotonic()
        interval = self._settings.worker.commit_interval_s
        half_full = self.buffered >= self._settings.worker.max_buffered // 2
        if now - self._last_commit >= (COMMIT_MIN_GAP_S if half_full else interval):
            self._commit(list(self._offsets), asynchronous=True)
            self._last_commit = now
            self._update_lag()
        self.last_poll = now
        self.stats.llm_calls = self._enricher.calls
        self.stats.retries = self._enricher.retries
        return len(messages)

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        """Runs until ``stop`` is set or a fatal error, then shuts down.

        Raises:
            FatalError: What stopped the worker, after the shutdown.
        """
        topics = sorted(self._pipelines) + self._retry.topics
        self._consumer.subscribe(
            topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        logger.info(
            "worker.started topics=%s group=%s",
            ",".join(topics),
            self._settings.kafka.group_id,
        )
        self.metrics.worker_up.set(1)
        try:
            while not stop.is_set() and self._fatal is None:
                received = self._poll_once()
                await asyncio.sleep(0 if received else IDLE_WAIT_S)
        finally:
            await self._shutdown()
            self.metrics.worker_up.set(0)
        if self._fatal is not None:
            raise FatalError(f"the worker stopped: {self._fatal}") from self._fatal
        return self.stats

    def _all_tasks(self) -> set[asyncio.Task[None]]:
        return {task for tasks in self._tasks.values() for task in tasks}

    async def _shutdown(self) -> None:
        self._intake_stopped = True
        grace = self._settings.worker.shutdown_grace_s
        logger.info("worker.stopping in_flight=%d grace_s=%.1f", self.in_flight, grace)
        deadline = time.monotonic() + grace
        while self._all_tasks() and time.monotonic() < deadline and self._fatal is None:
            self._poll_once()
            await asyncio.sleep(IDLE_WAIT_S)
        abandoned = self._all_tasks()
        for task in abandoned:
            task.cancel()
        if abandoned:
            await asyncio.gather(*abandoned, return_exceptions=True)
        undelivered = self._producer.flush(5.0)
        self._commit(list(self._offsets), asynchronous=False)
        self._consumer.close()
        self._producer.close()
        if self._on_stopped is not None:
            await self._on_stopped()
        self.stats.llm_calls = self._enricher.calls
        usage = self.stats.usage
        logger.info(
            "worker.stopped abandoned=%d undelivered=%d consumed=%d enriched=%d "
            "dead_lettered=%d llm_calls=%d prompt_cache_hit_tokens=%d "
            "prompt_cache_miss_tokens=%d completion_tokens=%d reasoning_tokens=%d "
            "cost_usd=%.6f",
            len(abandoned),
            undelivered,
            self.stats.consumed,
            self.stats.enriched,
            self.stats.dead_lettered,
            self.stats.llm_calls,
            usage.prompt_cache_hit_tokens,
            usage.prompt_cache_miss_tokens,
            usage.completion_tokens,
            usage.reasoning_tokens,
            self.stats.cost_usd,
        )
