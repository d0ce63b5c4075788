"""The pass-through baseline: consume and produce, no LLM call, no parsing.

It measures what moving a record through Kafka costs in Python with
confluent-kafka: records are consumed in batches, each is produced unchanged
to the output topic under its key, and offsets are committed asynchronously
after each batch's outputs are handed to the producer (auto-commit off). It
is the ceiling for our worker's cache-hit path, which also decodes, hashes,
builds an enriched record and tracks offsets per record.

Run as ``python -m streams.bench.passthrough``; it stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from confluent_kafka import Consumer, Producer

from streams.bench.job import baseline_parser, running_until_signal

BATCH = 500


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = baseline_parser("python -m streams.bench.passthrough", llm=False)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Copies records until SIGTERM or SIGINT."""
    args = _arguments(argv)
    running = running_until_signal()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 5}
    )
    consumer.subscribe([args.input_topic])
    try:
        while running[0]:
            messages = consumer.consume(num_messages=BATCH, timeout=0.2)
            produced = False
            for message in messages:
                if message.error() is not None:
                    continue
                while True:
                    try:
                        producer.produce(
                            args.output_topic, message.value(), message.key()
                        )
                        break
                    except BufferError:
                        producer.poll(0.05)
                produced = True
            producer.poll(0)
            if produced:
                consumer.commit(asynchronous=True)
    finally:
        producer.flush(10)
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
