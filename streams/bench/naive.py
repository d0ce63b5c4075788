"""The naive baseline: one LLM call at a time, commit after every record.

This is the consumer many teams write first: poll one record, call the
model, produce the result, wait for the broker's acknowledgement, commit the
record's offset synchronously, and only then poll the next one. Its
throughput is bounded by one call per latency, whatever the partitions.

Run as ``python -m streams.bench.naive`` (the benchmark starts it); it stops
on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import openai
from confluent_kafka import Consumer, Producer

from streams.bench.job import (
    baseline_parser,
    enriched_value,
    load_bench_pipeline,
    request_arguments,
    running_until_signal,
)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = baseline_parser("python -m streams.bench.naive", llm=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Consumes until SIGTERM or SIGINT."""
    args = _arguments(argv)
    running = running_until_signal()
    pipeline = load_bench_pipeline(args.pipeline_file)
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all"})
    consumer.subscribe([args.input_topic])
    try:
        while running[0]:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            completion = client.chat.completions.create(
                **request_arguments(pipeline, message.value())
            )
            content = completion.choices[0].message.content
            producer.produce(
                args.output_topic,
                enriched_value(message.value(), content),
                message.key(),
            )
            producer.flush(30)
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
        producer.flush(5)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
