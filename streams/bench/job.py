"""The enrichment job the baselines do, written as plainly as a team would.

Both baselines (naive and faust) decode and validate the record with the
pipeline's input schema, build the same chat messages as our worker (so the
simulator does the same work for everyone), ask for a JSON answer with the
same parameters, and write the input with the parsed answer attached, under
the input's key. They do no deduplication, no retry and no dead-lettering:
that is the point of comparison, and the benchmark's events are all valid.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

import orjson

from streams import paths
from streams.pipeline.config import Pipeline, load_pipeline
from streams.pipeline.decode import decode_event
from streams.pipeline.prompt import build_messages

EXTRA_BODY = {"thinking": {"type": "disabled"}}


def load_bench_pipeline(pipeline_file: Path) -> Pipeline:
    """The pipeline a baseline runs (the same file our worker reads)."""
    return load_pipeline(pipeline_file, paths.SCHEMAS_DIR)


def request_arguments(pipeline: Pipeline, value: bytes | None) -> dict[str, Any]:
    """Keyword arguments of ``chat.completions.create`` for one record.

    Raises:
        DecodeError: The record is not a valid event (never in the benchmark).
    """
    event = decode_event(value, pipeline)
    return {
        "model": pipeline.config.model,
        "messages": build_messages(pipeline, event),
        "max_tokens": pipeline.config.max_tokens,
        "response_format": {"type": "json_object"},
        "temperature": 0.0,
        "extra_body": EXTRA_BODY,
    }


def enriched_value(value: bytes | None, content: str | None) -> bytes:
    """The output: the input envelope with the model's parsed answer added."""
    envelope = orjson.loads(value or b"{}")
    envelope["enrichment"] = orjson.loads(content or "{}")
    return orjson.dumps(envelope)


def baseline_parser(prog: str, *, llm: bool) -> argparse.ArgumentParser:
    """The options every baseline takes: Kafka, topics, group and, with
    ``llm``, the pipeline file and the LLM endpoint."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input-topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--group", required=True)
    if llm:
        parser.add_argument("--pipeline-file", type=Path, required=True)
        parser.add_argument("--base-url", required=True)
        parser.add_argument("--api-key", required=True)
    return parser


def running_until_signal() -> list[bool]:
    """A flag, ``[True]`` until SIGTERM or SIGINT sets it to ``[False]``."""
    running = [True]

    def stop(_signum: int, _frame: object) -> None:
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return running
