"""Starting, probing and stopping the local single-node KRaft broker.

The broker is two JVM runs: ``StorageTool format`` once per fresh data folder,
then ``kafka.Kafka`` in the background. Both call ``System.exit``, so each is
its own process. The state folder keeps the generated properties, the data,
the log and a pid file. ``start`` formats a fresh data folder, so a start is a
clean cluster, unless it is asked to keep the data: then an already formatted
folder is started as it is, and topics, records and committed offsets survive
(:func:`restart_broker`).
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from streams.broker.jars import ensure_jars
from streams.errors import ConfigurationError
from streams.settings import BrokerSettings

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BrokerStatus:
    """What ``status`` found."""

    running: bool
    pid: int | None
    bootstrap: str
    log_file: Path


def _bootstrap(settings: BrokerSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _pid_file(settings: BrokerSettings) -> Path:
    return settings.state_dir / "broker.pid"


def _read_pid(settings: BrokerSettings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _has_exited(pid: int) -> bool:
    """Whether ``pid`` is gone, reaping it first when it is our own child."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaped = 0
    if reaped == pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _server_properties(settings: BrokerSettings, data_dir: Path) -> str:
    host = settings.host
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{settings.controller_port}",
        "listeners": f"PLAINTEXT://{host}:{settings.port},"
        f"CONTROLLER://{host}:{settings.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{settings.port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "24",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, 22 characters.

    An id starting with ``-`` would be read as an option by the storage tool,
    so such draws are repeated (Kafka's own generator does the same).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _java(settings: BrokerSettings, libs_dir: Path, *args: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise ConfigurationError("Java 17+ (java) is not on PATH; the broker needs it.")
    log_config = settings.state_dir / "log4j2.properties"
    return [
        java,
        f"-Xmx{settings.heap}",
        f"-Xms{settings.heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        f"{libs_dir}/*",
        *args,
    ]


def is_reachable(cluster: str | Mapping[str, Any], timeout_s: float = 3.0) -> bool:
    """Whether an Admin client can describe the cluster.

    Args:
        cluster: A bootstrap address, or full client properties (security
            settings included) for a cluster that needs them.
        timeout_s: How long to wait for an answer.
    """
    config = (
        {"bootstrap.servers": cluster} if isinstance(cluster, str) else dict(cluster)
    )
    # A probe that fails is expected; librdkafka need not print why.
    admin = AdminClient({**config, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception:  # any failure means "not reachable yet"
        return False
    return True


def start_broker(settings: BrokerSettings, *, keep_data: bool = False) -> BrokerStatus:
    """Starts a fresh broker, or returns the one already running.

    Args:
        settings: Where the jars, state and ports are.
        keep_data: Start on the data folder of the previous run when it was
            formatted (its ``meta.properties`` exists), instead of a fresh
            one. Without such a folder the start is fresh all the same.

    Returns:
        The running broker's status.

    Raises:
        ConfigurationError: Java or Maven is missing, the port is taken by
            something else, or the broker did not come up in time.
    """
    bootstrap = _bootstrap(settings)
    log_file = settings.state_dir / "broker.log"
    pid = _read_pid(settings)
    if pid is not None and is_reachable(bootstrap):
        logger.info("broker.already_running pid=%d bootstrap=%s", pid, bootstrap)
        return BrokerStatus(True, pid, bootstrap, log_file)
    for port in (settings.port, settings.controller_port):
        if _port_in_use(settings.host, port):
            raise ConfigurationError(
                f"port {settings.host}:{port} is already in use by another process; "
                "stop it or set STREAMS_BROKER__PORT / STREAMS_BROKER__CONTROLLER_PORT"
            )

    libs_dir = ensure_jars(settings.cache_dir, settings.kafka_version)
    data_dir = settings.state_dir / "data"
    reuse = keep_data and (data_dir / "meta.properties").is_file()
    if not reuse:
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True)
    properties = settings.state_dir / "server.properties"
    properties.write_text(_server_properties(settings, data_dir))
    log_config = resources.files("streams.broker").joinpath("log4j2.properties")
    (settings.state_dir / "log4j2.properties").write_text(log_config.read_text())
    if not reuse:
        _format_storage(settings, libs_dir, properties)

    # Appending keeps the log of the run before a restart.
    with log_file.open("ab" if reuse else "wb") as log:
        process = subprocess.Popen(
            _java(settings, libs_dir, "kafka.Kafka", str(properties)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file(settings).write_text(str(process.pid))
    logger.info(
        "broker.starting pid=%d bootstrap=%s kept_data=%s",
        process.pid,
        bootstrap,
        reuse,
    )

    try:
        _wait_until_ready(process, bootstrap, log_file, settings.start_timeout_s)
    except BaseException:
        # Failed, or interrupted (Ctrl-C) while waiting: leave no broker behind.
        stop_broker(settings)
        raise
    logger.info("broker.started pid=%d bootstrap=%s", process.pid, bootstrap)
    return BrokerStatus(True, process.pid, bootstrap, log_file)


def restart_broker(settings: BrokerSettings) -> BrokerStatus:
    """Stops the local broker and starts it again on the same data.

    Topics, their records and the consumer groups' committed offsets survive;
    clients see the broker go away and come back at the same address.

    Raises:
        ConfigurationError: No broker started from these settings is running,
            or it did not come back in time.
    """
    if _read_pid(settings) is None:
        raise ConfigurationError(
            f"no local broker with state in {settings.state_dir} is running, "
            "so there is none to restart"
        )
    stop_broker(settings)
    return start_broker(settings, keep_data=True)


def _format_storage(settings: BrokerSettings, libs_dir: Path, properties: Path) -> None:
    """Formats a fresh data folder under a new cluster id."""
    cluster_id = new_cluster_id()
    formatted = subprocess.run(
        _java(
            settings,
            libs_dir,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            cluster_id,
            "-c",
            str(properties),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if formatted.returncode != 0:
        raise ConfigurationError(
            f"formatting the broker's storage failed:\n{formatted.stderr[-2000:]}"
        )


def _wait_until_ready(
    process: subprocess.Popen[bytes], bootstrap: str, log_file: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-3000:]
            raise ConfigurationError(
                f"the broker exited with code {process.returncode}:\n{tail}"
            )
        if is_reachable(bootstrap, timeout_s=2.0):
            return
        time.sleep(0.5)
    raise ConfigurationError(
        f"the broker did not answer within {timeout_s:.0f} s; see {log_file}"
    )


def stop_broker(settings: BrokerSettings) -> bool:
    """Stops the broker started by :func:`start_broker`.

    Sends SIGTERM for a controlled shutdown, then SIGKILL after
    ``STOP_TIMEOUT_S``.

    Returns:
        Whether a running broker was found.
    """
    pid = _read_pid(settings)
    if pid is None:
        _pid_file(settings).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if _has_exited(pid):
            break
        time.sleep(0.2)
    else:
        logger.warning("broker.kill pid=%d reason=no_exit_after_sigterm", pid)
        os.kill(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    logger.info("broker.stopped pid=%d", pid)
    return True


def broker_status(settings: BrokerSettings) -> BrokerStatus:
    """Reports whether the local broker runs and answers."""
    bootstrap = _bootstrap(settings)
    pid = _read_pid(settings)
    running = pid is not None and is_reachable(bootstrap)
    return BrokerStatus(running, pid, bootstrap, settings.state_dir / "broker.log")
