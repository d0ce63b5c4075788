"""The simulator processes of a benchmark run, as one endpoint.

At 512 calls in flight and 500 ms the simulator must answer about 1,000
requests per second, more than one Python process may manage. With
``processes`` above one, that many simulator processes share one loopback
port through ``SO_REUSEPORT`` (the kernel spreads connections over them),
each with a different seed and an admin port of its own where the pool reads
its ``/stats``. Counters (requests, tokens) are added up; a mean is the sum
over the count of answers; CPU time is the sum over processes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import IO, Any

import orjson

from streams.bench import process_probe
from streams.errors import ConfigurationError

START_TIMEOUT_S = 30.0


@dataclass
class _Member:
    process: subprocess.Popen[bytes]
    admin_url: str


def _free_shared_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _json(url: str, post: bool = False) -> dict[str, Any]:
    request = urllib.request.Request(url, method="POST" if post else "GET")
    # The simulator's own loopback URL, not user input.
    with urllib.request.urlopen(request, timeout=10.0) as response:
        data: dict[str, Any] = orjson.loads(response.read())
    return data


class SimulatorPool:
    """One or more simulator processes behind one URL.

    Args:
        processes: How many simulator processes.
        args: Extra ``simulate-llm`` options (latency).
        log: Where their output other than the address lines goes.

    Raises:
        ConfigurationError: A process did not report its addresses in time.
    """

    def __init__(self, processes: int, args: list[str], log: IO[bytes]) -> None:
        self._members: list[_Member] = []
        shared = ["--port", "0"]
        if processes > 1:
            shared = ["--port", str(_free_shared_port()), "--reuse-port"]
        self.url = ""
        try:
            for index in range(processes):
                url, member = self._start(
                    [*shared, "--admin-port", "0", "--seed", str(index), *args], log
                )
                self._members.append(member)
                self.url = url
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _start(options: list[str], log: IO[bytes]) -> tuple[str, _Member]:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "streams", "simulate-llm", "--host", "127.0.0.1"),
                *options,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # Its own session: Ctrl-C reaches the benchmark, which stops it.
            start_new_session=True,
        )
        assert process.stdout is not None  # stdout is a pipe
        deadline = time.monotonic() + START_TIMEOUT_S
        admin_url = url = ""
        while time.monotonic() < deadline and not url:
            line = process.stdout.readline().decode()
            if not line:
                break
            if line.startswith("simulator admin on "):
                admin_url = line.strip().rsplit(" ", 1)[-1]
            elif line.startswith("simulator listening on "):
                url = line.strip().rsplit(" ", 1)[-1]
        if not (url and admin_url):
            process.kill()
            process.wait()
            raise ConfigurationError(
                "the LLM simulator did not start; run it alone to see why"
            )
        return url, _Member(process, admin_url)

    @property
    def pids(self) -> list[int]:
        """The simulator processes' ids."""
        return [member.process.pid for member in self._members]

    def reset(self) -> None:
        """Zeroes every process's counters."""
        for member in self._members:
            _json(f"{member.admin_url}/stats/reset", post=True)

    def stats(self) -> dict[str, Any]:
        """Counters added up over the processes, with the mean latency."""
        snapshots = [_json(f"{member.admin_url}/stats") for member in self._members]
        latency_sum = sum(float(s["latency_seconds_sum"]) for s in snapshots)
        service_sum = sum(float(s["service_seconds_sum"]) for s in snapshots)
        count = sum(int(s["latency_seconds_count"]) for s in snapshots)
        return {
            "requests_total": sum(int(s["requests_total"]) for s in snapshots),
            "latency_seconds_mean": latency_sum / count if count else 0.0,
            "service_seconds_mean": service_sum / count if count else 0.0,
            "max_in_flight": sum(int(s["max_in_flight"]) for s in snapshots),
            **{
                tokens: sum(int(s[tokens]) for s in snapshots)
                for tokens in (
                    "prompt_cache_hit_tokens",
                    "prompt_cache_miss_tokens",
                    "completion_tokens",
                )
            },
        }

    def cpu_seconds(self) -> float:
        """CPU seconds used by all simulator processes so far."""
        return sum(process_probe.cpu_seconds(pid) for pid in self.pids)

    def stop(self) -> None:
        """Stops every process (SIGTERM, then SIGKILL after 10 s)."""
        for member in self._members:
            if member.process.poll() is None:
                member.process.terminate()
        for member in self._members:
            try:
                member.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait()
            if member.process.stdout is not None:
                member.process.stdout.close()
