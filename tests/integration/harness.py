"""Isolated runs against the real broker: own topics, own group, own pipelines dir."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from streams import json_codec, paths
from streams.demo.ledger import Coordinates, OutputLedger
from streams.demo.local_services import SimulatorProcess, start_simulator
from streams.kafka.retry_topics import retry_tiers
from streams.kafka.topics import ensure_topics
from streams.settings import (
    KafkaSettings,
    LLMSettings,
    RetrySettings,
    Settings,
    WorkerSettings,
)


@dataclass
class Isolated:
    """Settings whose topics and group belong to one test."""

    settings: Settings
    topics: dict[str, str]
    """Input topic per pipeline name."""
    suffix: str

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for a worker process."""
        kafka, llm, worker, retry = (
            self.settings.kafka,
            self.settings.llm,
            self.settings.worker,
            self.settings.retry,
        )
        assert llm.api_key is not None
        return {
            "STREAMS_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "STREAMS_KAFKA__GROUP_ID": kafka.group_id,
            "STREAMS_KAFKA__SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
            "STREAMS_KAFKA__OUTPUT_TOPIC": kafka.output_topic,
            "STREAMS_KAFKA__DEAD_LETTER_TOPIC": kafka.dead_letter_topic,
            "STREAMS_PIPELINES_DIR": str(self.settings.pipelines_dir),
            "STREAMS_WORKER__MAX_BUFFERED": str(worker.max_buffered),
            "STREAMS_WORKER__COMMIT_INTERVAL_S": str(worker.commit_interval_s),
            "STREAMS_LLM__BASE_URL": llm.base_url,
            "STREAMS_LLM__API_KEY": llm.api_key.get_secret_value(),
            "STREAMS_OBSERVABILITY__LOG_FORMAT": "json",
            "STREAMS_RETRY__TIERS_S": json_codec.dumps(retry.tiers_s).decode(),
            "STREAMS_RETRY__TOPIC_PREFIX": retry.topic_prefix,
        }

    def ledger(self) -> OutputLedger:
        return OutputLedger(
            self.settings.kafka.common_config(),
            self.settings.kafka.output_topic,
            self.settings.kafka.dead_letter_topic,
            from_beginning=True,
        )


@contextlib.contextmanager
def own_simulator(log_dir: Path, *args: str) -> Iterator[SimulatorProcess]:
    """A simulator process of this test's own, with the given options."""
    with (log_dir / "simulator.log").open("wb") as log:
        process = start_simulator(list(args), log=log)
        try:
            yield process
        finally:
            process.stop()


def isolate(
    tmp_path: Path,
    bootstrap: str,
    llm_url: str,
    *,
    worker: dict[str, Any] | None = None,
    llm: dict[str, Any] | None = None,
    kafka: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
    partitions: int = 3,
    pipeline_fields: dict[str, dict[str, Any]] | None = None,
) -> Isolated:
    """Copies the pipelines with topic names unique to this test and creates them.

    ``pipeline_fields`` adds or replaces fields of named pipelines' files, for
    example ``{"tickets": {"budget_usd_per_hour": 0.01}}``.
    Retry tiers are off unless ``retry`` names some, so a failure ends in the
    dead-letter topic at once; tier topics are this test's own.
    """
    suffix = uuid.uuid4().hex[:8]
    pipelines_dir = tmp_path / "pipelines"
    pipelines_dir.mkdir()
    topics = {}
    for source in sorted(paths.PIPELINES_DIR.glob("*.yaml")):
        config = yaml.safe_load(source.read_text())
        config["input_topic"] = f"{config['input_topic']}.{suffix}"
        config.update((pipeline_fields or {}).get(config["name"], {}))
        topics[config["name"]] = config["input_topic"]
        (pipelines_dir / source.name).write_text(
            yaml.safe_dump(config, sort_keys=False)
        )
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap_servers=bootstrap,
            group_id=f"streams-test-{suffix}",
            output_topic=f"events.enriched.{suffix}",
            dead_letter_topic=f"events.dead-letter.{suffix}",
            **(kafka or {}),
        ),
        llm=LLMSettings(
            base_url=llm_url,
            api_key=SecretStr("test-key"),
            backoff_base_s=0.05,
            **(llm or {}),
        ),
        worker=WorkerSettings(**({"commit_interval_s": 0.2} | (worker or {}))),
        retry=RetrySettings(
            **(
                {"tiers_s": [], "topic_prefix": f"events.retry.{suffix}"}
                | (retry or {})
            )
        ),
        pipelines_dir=pipelines_dir,
    )
    ensure_topics(
        settings.kafka.common_config(),
        [
            *topics.values(),
            settings.kafka.output_topic,
            settings.kafka.dead_letter_topic,
            *(tier.topic for tier in retry_tiers(settings.retry)),
        ],
        partitions=partitions,
    )
    return Isolated(settings=settings, topics=topics, suffix=suffix)


def wait_for_outcomes(
    ledger: OutputLedger, expected: set[Coordinates], timeout_s: float
) -> set[Coordinates]:
    """Reads outcomes until every expected input has one; returns the missing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ledger.poll(0.3)
        if not ledger.missing(expected):
            break
    return ledger.missing(expected)


async def run_worker_until(
    worker_run: Any, ledger: OutputLedger, expected: set[Coordinates], timeout_s: float
) -> set[Coordinates]:
    """Runs a worker coroutine factory until the ledger has every outcome."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker_run(stop))
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not task.done():
            await asyncio.to_thread(ledger.poll, 0.3)
            if not ledger.missing(expected):
                break
    finally:
        stop.set()
        await task
    ledger.poll(0.5)
    return ledger.missing(expected)
