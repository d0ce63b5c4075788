"""Producing records and awaiting the broker's acknowledgement, without blocking.

Delivery reports arrive through :meth:`RecordProducer.poll`, which the poll
loop calls on the event-loop thread, so callbacks and coroutines share one
thread. A full local queue (``BufferError``) is back-pressure, not an error:
the producer polls and the caller waits a moment, then tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

logger = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes | None]]
BACKPRESSURE_WAIT_S = 0.005


class DeliveryError(Exception):
    """The broker did not take the record.

    Args:
        error: librdkafka's error.
    """

    def __init__(self, error: KafkaError) -> None:
        super().__init__(f"delivery failed: {error.name()}: {error.str()}")
        self.error = error

    @property
    def retriable(self) -> bool:
        """Whether producing the same record again may succeed."""
        return bool(self.error.retriable()) or self.error.code() in (
            KafkaError._MSG_TIMED_OUT,  # librdkafka's public code name
            KafkaError._TRANSPORT,
            KafkaError._ALL_BROKERS_DOWN,
        )

    @property
    def too_large(self) -> bool:
        """Whether the record is larger than the broker or topic accepts."""
        code = self.error.code()
        return bool(code in _SIZE_CODES)


_SIZE_CODES = frozenset(
    code
    for code in (
        KafkaError.MSG_SIZE_TOO_LARGE,
        getattr(KafkaError, "_MSG_SIZE_TOO_LARGE", None),  # librdkafka's local check
    )
    if code is not None
)


class RecordProducer:
    """An idempotent producer whose sends can be awaited.

    Args:
        config: librdkafka producer properties.
        on_backpressure: Called each time the local queue is full and a send
            waits, for metrics.
    """

    def __init__(
        self,
        config: dict[str, Any],
        on_backpressure: Callable[[], None] | None = None,
    ) -> None:
        self._producer = Producer(config)
        self._on_backpressure = on_backpressure

    def poll(self) -> int:
        """Serves delivery reports; never blocks."""
        return int(self._producer.poll(0))

    def __len__(self) -> int:
        return len(self._producer)

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        on_acknowledged: Callable[[], None] | None = None,
    ) -> None:
        """Produces one record and waits for the broker's acknowledgement.

        Args:
            topic: Destination topic.
            key: Record key, bytes as they are.
            value: Record value.
            headers: Record headers.
            on_acknowledged: Called inside the delivery report on success, so
                a flush during a revocation already sees its effect.

        Raises:
            DeliveryError: The broker refused the record or delivery timed out.
        """
        future: asyncio.Future[KafkaError | None] = (
            asyncio.get_running_loop().create_future()
        )

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is None and on_acknowledged is not None:
                on_acknowledged()
            if not future.done():
                future.set_result(error)

        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=list(headers),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                if self._on_backpressure is not None:
                    self._on_backpressure()
                self._producer.poll(0)
                await asyncio.sleep(BACKPRESSURE_WAIT_S)
            except KafkaException as exc:
                raise DeliveryError(exc.args[0]) from exc
        error = await future
        if error is not None:
            raise DeliveryError(error)

    def close(self, timeout_s: float = 5.0) -> None:
        """Flushes for up to ``timeout_s`` and releases the client."""
        self._producer.flush(timeout_s)
        self._producer.close()

    def flush(self, timeout_s: float) -> int:
        """Waits up to ``timeout_s`` for outstanding deliveries (blocking).

        Returns:
            Records still not delivered.
        """
        return int(self._producer.flush(timeout_s))
