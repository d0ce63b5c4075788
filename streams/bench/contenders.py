"""How each contender is started: its command line and environment.

Every contender is its own process, started directly (no shell, no wrapper),
so the pid the benchmark watches is the process doing the work.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml

from streams import paths
from streams.bench.corpus import PIPELINE
from streams.bench.names import FAUST, NAIVE, PASSTHROUGH


@dataclass(frozen=True)
class Topics:
    """One row's own topics and group."""

    input: str
    output: str
    dead_letter: str
    group: str


@dataclass(frozen=True)
class Launch:
    """A contender's command line and environment."""

    argv: list[str]
    env: dict[str, str]


def write_pipeline_file(
    folder: Path,
    input_topic: str,
    concurrency: int,
    packing: Mapping[str, float] | None = None,
) -> Path:
    """The tickets pipeline with the row's topic, ``max_concurrency`` and packing.

    Args:
        folder: Where the copy goes.
        input_topic: The row's input topic.
        concurrency: The pipeline's ``max_concurrency``.
        packing: A ``packing`` section for the copy; None leaves it out.
    """
    config = yaml.safe_load((paths.PIPELINES_DIR / f"{PIPELINE}.yaml").read_text())
    config["input_topic"] = input_topic
    config["max_concurrency"] = concurrency
    if packing is not None:
        config["packing"] = dict(packing)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PIPELINE}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _base_env() -> dict[str, str]:
    # The contender must talk to the local simulator only: drop the variables
    # that could point it at a real provider.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STREAMS_", "DEEPSEEK_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch(
    name: str,
    *,
    concurrency: int,
    bootstrap: str,
    topics: Topics,
    pipeline_file: Path,
    llm_url: str,
    api_key: str,
    worker_settings: dict[str, str] | None = None,
) -> Launch:
    """The command line of one contender.

    Args:
        name: One of the row names (``ours-cache-hit``, ``ours-memory`` and
            ``ours-packed`` start our worker too).
        concurrency: Calls in flight (ignored by naive and pass-through).
        bootstrap: The broker.
        topics: The row's topics and group.
        pipeline_file: The row's copy of the tickets pipeline.
        llm_url: The simulator.
        api_key: Any key; the simulator wants one.
        worker_settings: ``STREAMS_*`` variables laid over ours' settings
            (to try a tuning); the benchmark's own topics, group, simulator
            and concurrency win over them.
    """
    env = _base_env()
    common = [
        "--bootstrap",
        bootstrap,
        "--input-topic",
        topics.input,
        "--output-topic",
        topics.output,
        "--group",
        topics.group,
    ]
    llm = [
        "--pipeline-file",
        str(pipeline_file),
        "--base-url",
        llm_url,
        "--api-key",
        api_key,
    ]
    if name == NAIVE:
        return Launch([sys.executable, "-m", "streams.bench.naive", *common, *llm], env)
    if name == PASSTHROUGH:
        return Launch([sys.executable, "-m", "streams.bench.passthrough", *common], env)
    if name == FAUST:
        argv = [sys.executable, "-m", "streams.bench.faust_agent", *common, *llm]
        return Launch([*argv, "--concurrency", str(concurrency)], env)
    env.update(worker_settings or {})
    env.update(
        {
            "STREAMS_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "STREAMS_KAFKA__GROUP_ID": topics.group,
            "STREAMS_KAFKA__OUTPUT_TOPIC": topics.output,
            "STREAMS_KAFKA__DEAD_LETTER_TOPIC": topics.dead_letter,
            "STREAMS_PIPELINES_DIR": str(pipeline_file.parent),
            "STREAMS_PIPELINES": orjson.dumps([PIPELINE]).decode(),
            "STREAMS_LLM__BASE_URL": llm_url,
            "STREAMS_LLM__API_KEY": api_key,
            "STREAMS_LLM__MAX_IN_FLIGHT": str(concurrency),
            "STREAMS_RETRY__TOPIC_PREFIX": f"{topics.group}.retry",
            "STREAMS_OBSERVABILITY__LOG_FORMAT": "json",
        }
    )
    # The row's own retry tier topics are created at start.
    return Launch([sys.executable, "-m", "streams", "run", "--create-topics"], env)
