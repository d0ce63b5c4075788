"""Starting what a run needs locally: the broker and the LLM simulator.

Each helper starts a service only when the settings do not already point
elsewhere (an external cluster, a real API key), and says whether it did, so
the caller stops exactly what it started.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import IO

import orjson

from streams.broker.runtime import is_reachable, start_broker, stop_broker
from streams.errors import ConfigurationError
from streams.settings import LOCAL_BOOTSTRAP, Settings

logger = logging.getLogger(__name__)

SIMULATOR_START_TIMEOUT_S = 30.0


@dataclass
class SimulatorProcess:
    """A simulator running as a child process."""

    process: subprocess.Popen[bytes]
    url: str
    args: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stops it (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stats(self) -> dict[str, object]:
        """The simulator's counters."""
        # The simulator's own loopback URL, not user input.
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5.0) as response:
            data: dict[str, object] = orjson.loads(response.read())
        return data


def start_simulator(
    args: list[str] | None = None, log: IO[bytes] | None = None
) -> SimulatorProcess:
    """Starts ``streams simulate-llm`` on a free loopback port and waits for it.

    Args:
        args: Extra command-line options (latency, faults).
        log: Where its stderr goes; discarded when None.

    Raises:
        ConfigurationError: It did not report its address in time.
    """
    extra = list(args or [])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "simulate-llm",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=log if log is not None else subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        # Its own session: a Ctrl-C at the terminal reaches the demo, which
        # then stops the simulator after the worker, not before.
        start_new_session=True,
    )
    assert process.stdout is not None  # stdout is a pipe
    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT_S
    line = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if b"listening on " in line or not line:
            break
    if b"listening on " not in line:
        process.kill()
        raise ConfigurationError(
            "the LLM simulator did not start; run it alone to see why"
        )
    url = line.decode().strip().rsplit(" ", 1)[-1]
    logger.info("simulator.started url=%s pid=%d", url, process.pid)
    return SimulatorProcess(process=process, url=url, args=extra)


def with_local_broker(settings: Settings) -> Settings:
    """Points the default bootstrap at the local broker's configured port.

    ``STREAMS_BROKER__PORT`` moves the local broker; a run that names no
    cluster of its own then talks to it there.
    """
    local = f"{settings.broker.host}:{settings.broker.port}"
    if settings.kafka.bootstrap_servers != LOCAL_BOOTSTRAP or local == LOCAL_BOOTSTRAP:
        return settings
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": local})
    return settings.model_copy(update={"kafka": kafka})


def ensure_broker(settings: Settings) -> bool:
    """Starts the local broker unless a cluster answers at the bootstrap address.

    Call it with :func:`with_local_broker`'s settings.

    Returns:
        Whether a broker was started here (and should be stopped after).

    Raises:
        ConfigurationError: An external cluster is configured and does not answer.
    """
    bootstrap = settings.kafka.bootstrap_servers
    local = f"{settings.broker.host}:{settings.broker.port}"
    if bootstrap != local:
        if not is_reachable(settings.kafka.common_config(), timeout_s=10):
            raise ConfigurationError(
                f"the Kafka cluster at {bootstrap} does not answer; check "
                "STREAMS_KAFKA__BOOTSTRAP_SERVERS, or unset it to use a local broker"
            )
        return False
    if is_reachable(bootstrap, timeout_s=1):
        logger.warning(
            "broker.reused bootstrap=%s consequence=earlier_topic_data_is_kept",
            bootstrap,
        )
        return False
    start_broker(settings.broker)
    return True


def release_broker(settings: Settings, started: bool) -> None:
    """Stops the local broker if this run started it."""
    if started:
        stop_broker(settings.broker)
