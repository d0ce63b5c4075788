"""Running one row: fresh topics, the contender, a warm-up, the backlog.

Steps: create the row's own topics and group; start the contender; produce
one warm-up record and wait for its output, so the contender has joined its
group, owns the partitions and has made its first call; then read the
contender's CPU time, reset the simulator's counters and release the
measured backlog (every record produced as fast as the producer goes, each
stamped with its produce time); read the output and dead-letter topics until
every measured record has an outcome; read CPU time and peak memory again;
stop the contender.

Definitions (also in ``docs/benchmark.md``):

* events per second: measured records divided by the time from the release
  of the backlog to the timestamp of the last output record;
* steady events per second: the same between the 10th and the 90th
  percentile of output times, leaving out the start and the drain tail, where
  fewer than C calls can be in flight;
* end-to-end latency of a record: its output record's timestamp (set by the
  contender's producer) minus its input record's timestamp (set when the
  benchmark produced it). The backlog is released at once, so this includes
  the time a record waited in the backlog: the p50 is about half the drain
  time, the p99 close to all of it;
* CPU seconds per 1,000 events: the contender's user plus system CPU time
  from the release to the last output, per 1,000 measured records;
* peak RSS: the contender's ``VmHWM`` at the end of the row;
* LLM calls and cost per 1,000 events (our worker's rows): the simulator's
  requests and token usage from the release to the end of the row, priced
  with the default price list off-peak (``PriceList``, the tickets
  pipeline's ``deepseek-flash``), per 1,000 measured records.
"""

from __future__ import annotations

import logging
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from confluent_kafka import Consumer, Producer, TopicPartition

from streams.bench import process_probe
from streams.bench.contenders import Launch, Topics, launch, write_pipeline_file
from streams.bench.corpus import BenchRecord
from streams.bench.names import OURS, OURS_PACKED
from streams.bench.simulators import SimulatorPool
from streams.kafka.topics import ensure_topics
from streams.llm.pricing import PriceList
from streams.llm.usage import Usage
from streams.settings import PricingSettings

logger = logging.getLogger(__name__)

API_KEY = "bench-local-key"
WARMUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
ROW_TIMEOUT_BASE_S = 120.0
ROW_TIMEOUT_FACTOR = 20.0
"""A row ends after ``base + factor x`` its duration at the ceiling."""
PRICED_MODEL = "deepseek-flash"
"""The tickets pipeline's model, whose default prices the cost column uses."""
PRICED_ROWS = (OURS, OURS_PACKED)
"""Rows whose calls and cost are reported: the simulator's counters are
reset before the backlog, so they hold the row's calls only."""


@dataclass(frozen=True)
class RowSpec:
    """What one row runs.

    Attributes:
        name: Row name (see ``contenders.ROW_NAMES``).
        concurrency: Calls in flight for the contender.
        records: Builds the measured records (called once).
        warmup: The warm-up record.
        count: How many records ``records`` yields.
        expected_s: Rough duration at the ceiling; sets the row's timeout.
        backlog_first: Produce the backlog before starting the contender and
            measure for ``duration_s`` instead of until the end (memory row).
        duration_s: How long a ``backlog_first`` row runs.
        packing: The ``packing`` section of the row's pipeline copy; None
            for none.
    """

    name: str
    concurrency: int
    records: Any
    warmup: BenchRecord
    count: int
    expected_s: float
    backlog_first: bool = False
    duration_s: float = 0.0
    packing: dict[str, float] | None = None


@dataclass
class RowResult:
    """One row of the report."""

    name: str
    concurrency: int
    events: int
    completed: int = 0
    dead_lettered: int = 0
    events_per_s: float | None = None
    steady_events_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_s_per_1k: float | None = None
    peak_rss_mb: float | None = None
    elapsed_s: float | None = None
    simulator_latency_mean_ms: float | None = None
    simulator_service_mean_ms: float | None = None
    simulator_requests: int | None = None
    simulator_max_in_flight: int | None = None
    simulator_cpu_share: float | None = None
    llm_calls: int | None = None
    cost_per_1k_usd: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded."""
        data: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            digits = 6 if key == "cost_per_1k_usd" else 3
            data[key] = round(value, digits) if isinstance(value, float) else value
        return data


@dataclass(frozen=True)
class BenchEnvironment:
    """What every row shares."""

    bootstrap: str
    simulator: SimulatorPool
    work_dir: Path
    partitions: int
    worker_settings: dict[str, str] = field(default_factory=dict)


def _row_topics(name: str) -> Topics:
    suffix = uuid.uuid4().hex[:8]
    base = f"bench.{name}.{suffix}"
    return Topics(
        input=f"{base}.in",
        output=f"{base}.out",
        dead_letter=f"{base}.dlq",
        group=f"bench-{name}-{suffix}",
    )


class OutcomeReader:
    """Reads the row's output and dead-letter topics from the start."""

    def __init__(self, bootstrap: str, topics: Topics, partitions: int) -> None:
        self._dead_letter = topics.dead_letter
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topics.group}-reader",
                "enable.auto.commit": False,
            }
        )
        self._consumer.assign(
            [
                TopicPartition(topic, partition, 0)
                for topic in (topics.output, topics.dead_letter)
                for partition in range(partitions)
            ]
        )

    def read(self, timeout_s: float) -> Iterator[tuple[bytes, int, bool]]:
        """Yields (key, timestamp in ms, dead-lettered) of what is available."""
        for message in self._consumer.consume(num_messages=10_000, timeout=timeout_s):
            if message.error() is not None:
                continue
            _kind, timestamp = message.timestamp()
            key = message.key()
            if isinstance(key, str):
                key = key.encode()
            yield key or b"", timestamp, message.topic() == self._dead_letter

    def close(self) -> None:
        """Closes the reader; it never commits."""
        self._consumer.close()


def _produce(
    bootstrap: str,
    topic: str,
    records: Iterable[BenchRecord],
    stamps: dict[bytes, int] | None,
) -> int:
    """Produces records as fast as possible; returns how many."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "acks": "all",
            "compression.type": "lz4",
            "queue.buffering.max.messages": 200_000,
        }
    )
    count = 0
    for record in records:
        now_ms = int(time.time() * 1000)
        while True:
            try:
                producer.produce(topic, record.value, record.key, timestamp=now_ms)
                break
            except BufferError:
                producer.poll(0.05)
        if stamps is not None:
            stamps[record.key] = now_ms
        count += 1
        producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} benchmark records were not acknowledged")
    return count


def _error_from_log(log_path: Path) -> str:
    """The last error lines of a contender's log, for the report."""
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    telling = [
        line
        for line in lines
        if any(word in line for word in ("Error", "error", "Exception", "Traceback"))
    ]
    if not telling:
        return lines[-1][:400] if lines else "no error in its log"
    return " | ".join(line[:400] for line in telling[-3:])


class Contender:
    """A started contender process; stop it with ``stop``."""

    def __init__(self, how: Launch, log: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            how.argv,
            env=how.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C at the terminal reaches the benchmark,
            # which then stops the contender itself.
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = max(0, min(len(sorted_values) - 1, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def _off_peak_cost_usd(stats: dict[str, Any]) -> float:
    """The simulator's token usage at the default off-peak prices."""
    usage = Usage(
        prompt_cache_hit_tokens=int(stats["prompt_cache_hit_tokens"]),
        prompt_cache_miss_tokens=int(stats["prompt_cache_miss_tokens"]),
        completion_tokens=int(stats["completion_tokens"]),
    )
    return PriceList(PricingSettings.model_validate({})).base_cost_usd(
        PRICED_MODEL, usage
    )


def _steady_rate(output_times: list[int]) -> float | None:
    """Outputs per second between the 10th and 90th percentile output time."""
    if len(output_times) < 10:
        return None
    ordered = sorted(output_times)
    first, last = len(ordered) // 10, (len(ordered) * 9) // 10
    span_s = (ordered[last] - ordered[first]) / 1000
    return (last - first) / span_s if span_s > 0 else None


def run_row(env: BenchEnvironment, spec: RowSpec) -> RowResult:
    """Runs one row; failures of the contender end up in ``error``."""
    result = RowResult(spec.name, spec.concurrency, spec.count)
    topics = _row_topics(spec.name)
    row_dir = env.work_dir / topics.group
    ensure_topics(
        {"bootstrap.servers": env.bootstrap},
        [topics.input, topics.output, topics.dead_letter],
        partitions=env.partitions,
    )
    pipeline_file = write_pipeline_file(
        row_dir / "pipelines", topics.input, spec.concurrency, spec.packing
    )
    how = launch(
        spec.name,
        concurrency=spec.concurrency,
        bootstrap=env.bootstrap,
        topics=topics,
        pipeline_file=pipeline_file,
        llm_url=env.simulator.url,
        api_key=API_KEY,
        worker_settings=env.worker_settings,
    )
    stamps: dict[bytes, int] | None = None if spec.backlog_first else {}
    if spec.backlog_first:
        _produce(env.bootstrap, topics.input, spec.records(), None)
    reader = OutcomeReader(env.bootstrap, topics, env.partitions)
    log_path = row_dir / "contender.log"
    with log_path.open("wb") as log:
        contender = Contender(how, log)
        try:
            _measure(env, spec, result, contender, reader, topics, stamps, log_path)
        finally:
            contender.stop()
            reader.close()
    return result


def _wait_for_warmup(
    spec: RowSpec, contender: Contender, reader: OutcomeReader, log_path: Path
) -> str | None:
    """Waits for the warm-up's outcome; returns an error text when it never came."""
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(key == spec.warmup.key for key, _ts, _dl in reader.read(0.5)):
            return None
        if not contender.alive():
            return (
                f"exited with code {contender.process.returncode}: "
                + _error_from_log(log_path)
            )
    return f"no output within {WARMUP_TIMEOUT_S:.0f} s: " + _error_from_log(log_path)


def _wait_for_first_outcome(
    contender: Contender, reader: OutcomeReader, log_path: Path
) -> str | None:
    """Waits until any outcome appears; returns an error text when none came."""
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(True for _ in reader.read(0.5)):
            return None
        if not contender.alive():
            code = contender.process.returncode
            return f"exited with code {code}: " + _error_from_log(log_path)
    return f"no output within {WARMUP_TIMEOUT_S:.0f} s: " + _error_from_log(log_path)


def _measure(
    env: BenchEnvironment,
    spec: RowSpec,
    result: RowResult,
    contender: Contender,
    reader: OutcomeReader,
    topics: Topics,
    stamps: dict[bytes, int] | None,
    log_path: Path,
) -> None:
    if spec.backlog_first:
        # The window starts with the first outcome: the worker has started,
        # joined its group and filled its slots; start-up is not measured.
        error = _wait_for_first_outcome(contender, reader, log_path)
    else:
        _produce(env.bootstrap, topics.input, [spec.warmup], None)
        error = _wait_for_warmup(spec, contender, reader, log_path)
    if error is not None:
        result.error = error
        return
    env.simulator.reset()
    simulator_cpu = env.simulator.cpu_seconds()
    cpu_start = process_probe.cpu_seconds(contender.pid)
    released = time.time()
    if stamps is not None:
        _produce(env.bootstrap, topics.input, spec.records(), stamps)
    latencies: list[float] = []
    output_times: list[int] = []
    last_output_ms = 0
    seen: set[bytes] = set()
    deadline = time.monotonic() + (
        spec.duration_s
        if spec.backlog_first
        else ROW_TIMEOUT_BASE_S + ROW_TIMEOUT_FACTOR * spec.expected_s
    )
    cpu_end = cpu_start
    while len(seen) < spec.count and time.monotonic() < deadline:
        for key, timestamp, dead_lettered in reader.read(0.2):
            if key == spec.warmup.key or key in seen:
                continue
            seen.add(key)
            result.dead_lettered += dead_lettered
            last_output_ms = max(last_output_ms, timestamp)
            output_times.append(timestamp)
            if stamps is not None and key in stamps:
                latencies.append(float(timestamp - stamps[key]))
        if not contender.alive():
            result.error = (
                f"exited with code {contender.process.returncode}: "
                + _error_from_log(log_path)
            )
            break
        cpu_end = process_probe.cpu_seconds(contender.pid)
    wall = time.time() - released
    result.completed = len(seen)
    if contender.alive():
        result.peak_rss_mb = process_probe.peak_rss_mb(contender.pid)
    simulator_cpu = env.simulator.cpu_seconds() - simulator_cpu
    stats = env.simulator.stats()
    result.simulator_latency_mean_ms = float(stats["latency_seconds_mean"]) * 1000
    result.simulator_service_mean_ms = float(stats["service_seconds_mean"]) * 1000
    result.simulator_requests = int(stats["requests_total"])
    result.simulator_max_in_flight = int(stats["max_in_flight"])
    if spec.name in PRICED_ROWS and result.completed:
        result.llm_calls = result.simulator_requests
        result.cost_per_1k_usd = _off_peak_cost_usd(stats) / result.completed * 1000
    if spec.backlog_first:
        elapsed = wall
    else:
        elapsed = max(1e-3, last_output_ms / 1000 - released) if seen else wall
    result.elapsed_s = elapsed
    result.simulator_cpu_share = simulator_cpu / max(wall, 1e-3)
    if result.completed:
        result.events_per_s = result.completed / elapsed
        result.cpu_s_per_1k = (cpu_end - cpu_start) / result.completed * 1000
    result.steady_events_per_s = _steady_rate(output_times)
    if latencies:
        latencies.sort()
        result.p50_ms = _percentile(latencies, 0.50)
        result.p99_ms = _percentile(latencies, 0.99)
    if (
        result.error is None
        and result.completed < spec.count
        and not spec.backlog_first
    ):
        result.error = (
            f"timed out: {result.completed} of {spec.count} records had an "
            "outcome; " + _error_from_log(log_path)
        )
