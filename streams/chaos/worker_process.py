"""One ``streams run`` worker as a real child process, watched through /metrics.

Each worker serves its metrics on a port of its own on 127.0.0.1: it is
started with port 0 and the runner reads the port it bound from its JSON log
(``health_server.started``). The last successful scrape is kept, so what a
worker did is known even after it was killed with SIGKILL: the runner scrapes
once more right before it sends a signal.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from streams.errors import FatalError

logger = logging.getLogger(__name__)

METRICS_PORT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 45.0
_STARTED_EVENT = b"health_server.started"


class WorkerStartError(FatalError):
    """A worker process exited or served no metrics after it was started."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="worker_start_failed")


@dataclass
class MetricsReading:
    """The counters of one scrape that the chaos summary uses."""

    llm_requests: float = 0.0
    retries: float = 0.0
    retried: float = 0.0
    rebalances: dict[str, float] = field(default_factory=dict)
    circuit_state: float = 0.0

    @classmethod
    def parse(cls, text: str) -> MetricsReading:
        """Reads the Prometheus text format of one worker."""
        reading = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "streams_llm_requests_total":
                    reading.llm_requests += sample.value
                elif sample.name == "streams_llm_retries_total":
                    reading.retries += sample.value
                elif sample.name == "streams_records_retried_total":
                    reading.retried += sample.value
                elif sample.name == "streams_rebalances_total":
                    kind = sample.labels["kind"]
                    reading.rebalances[kind] = (
                        reading.rebalances.get(kind, 0.0) + sample.value
                    )
                elif sample.name == "streams_circuit_state":
                    reading.circuit_state = max(reading.circuit_state, sample.value)
        return reading


class WorkerProcess:
    """A ``streams run`` child process with its own log and metrics port.

    Args:
        name: Label in logs and the summary (``worker-1``, ...).
        env: ``STREAMS_*`` variables laid over this process's environment.
        log_path: Where its stderr (JSON log lines) goes.
    """

    def __init__(self, name: str, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.stdout_path = log_path.with_suffix(".stdout")
        self.metrics_url: str | None = None
        self.last_reading: MetricsReading | None = None
        self.circuit_seen_open = False
        self.signal_sent: str | None = None
        with log_path.open("ab") as log, self.stdout_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams", "run"],
                env={**os.environ, **env},
                stdout=out,
                stderr=log,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal reaches the runner,
                # which then stops its workers in order.
                start_new_session=True,
            )
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        logger.info("chaos.worker_started name=%s pid=%d", name, self.process.pid)

    @property
    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.process.poll() is None

    def find_metrics_port(self) -> bool:
        """Looks for the bound metrics port in the new part of its log."""
        if self.metrics_url is not None:
            return True
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            for line in log:
                if _STARTED_EVENT not in line:
                    continue
                try:
                    message = orjson.loads(line)["msg"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                port = message.rsplit("port=", 1)[-1].split()[0]
                self.metrics_url = f"http://127.0.0.1:{int(port)}/metrics"
                return True
        return False

    def scrape(self) -> MetricsReading | None:
        """Reads its metrics now; keeps and returns them, or None if it fails."""
        if not self.running or not self.find_metrics_port():
            return None
        assert self.metrics_url is not None  # found just above
        try:
            # The worker's own loopback endpoint, not user input.
            with urllib.request.urlopen(self.metrics_url, timeout=2.0) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        reading = MetricsReading.parse(text)
        self.last_reading = reading
        self.circuit_seen_open |= reading.circuit_state >= 2
        return reading

    def kill(self) -> None:
        """SIGKILL, after a last scrape; no shutdown code runs in the worker."""
        self.scrape()
        self.signal_sent = "SIGKILL"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        logger.info("chaos.worker_killed name=%s pid=%d", self.name, self.process.pid)

    def stop(self) -> int | None:
        """SIGTERM, after a last scrape; SIGKILL if it has not left in time.

        Returns:
            Its exit code.
        """
        if self.running:
            self.scrape()
            self.signal_sent = self.signal_sent or "SIGTERM"
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "chaos.worker_kill name=%s reason=no_exit_after_sigterm", self.name
                )
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def final_stats(self) -> dict[str, object] | None:
        """The stats line ``streams run`` prints when it shuts down cleanly."""
        try:
            lines = self.stdout_path.read_bytes().splitlines()
        except FileNotFoundError:
            return None
        for line in reversed(lines):
            try:
                stats = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(stats, dict):
                return stats
        return None

    def log_tail(self, characters: int = 2_000) -> str:
        """The end of its log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except FileNotFoundError:
            return ""


def wait_for_metrics(worker: WorkerProcess, timeout_s: float) -> None:
    """Waits until the worker's metrics endpoint answers.

    Raises:
        WorkerStartError: The worker exited or did not serve metrics in time.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.running:
            raise WorkerStartError(
                f"{worker.name} exited with code {worker.process.returncode}; "
                f"log tail:\n{worker.log_tail()}"
            )
        if worker.scrape() is not None:
            return
        time.sleep(0.2)
    raise WorkerStartError(
        f"{worker.name} served no metrics within {timeout_s:.0f} s; "
        f"see {worker.log_path}"
    )
