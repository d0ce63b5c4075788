"""The faust-streaming baseline: one agent with ``concurrency`` actors.

The agent does the same job as the naive baseline (see
:mod:`streams.bench.job`) with the asynchronous openai client, and faust runs
``concurrency`` copies of it over one stream, so up to that many calls are in
flight. Offsets are committed by faust (every ``broker_commit_every``
messages or ``broker_commit_interval`` seconds). With concurrency above one,
faust can commit an offset past a message that an actor is still working on;
the benchmark reports throughput only and does not rely on its commits.

Run as ``python -m streams.bench.faust_agent``; it stops on SIGTERM or
SIGINT. It needs the ``bench`` extra (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
import openai

from streams.bench.job import (
    baseline_parser,
    enriched_value,
    load_bench_pipeline,
    request_arguments,
)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = baseline_parser("python -m streams.bench.faust_agent", llm=True)
    parser.add_argument("--concurrency", type=int, required=True)
    return parser.parse_args(argv)


def build_app(args: argparse.Namespace) -> Any:
    """The faust application with its one agent."""
    pipeline = load_bench_pipeline(args.pipeline_file)
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(
        args.input_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    sink = app.topic(
        args.output_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    client = openai.AsyncOpenAI(
        base_url=args.base_url, api_key=args.api_key, max_retries=0
    )

    async def enrich(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            completion = await client.chat.completions.create(
                **request_arguments(pipeline, event.value)
            )
            content = completion.choices[0].message.content
            await sink.send(key=event.key, value=enriched_value(event.value, content))
            yield None

    app.agent(source, name="enrich", concurrency=args.concurrency)(enrich)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the faust worker until SIGTERM or SIGINT."""
    app = build_app(_arguments(argv))
    worker = faust.Worker(app, loglevel="WARNING")
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
