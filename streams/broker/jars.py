"""Fetching the broker's jars from Maven Central, once per Kafka release.

``mvn dependency:copy-dependencies`` resolves ``org.apache.kafka:kafka_2.13``
and a Log4j2 SLF4J binding into ``<cache_dir>/<version>/libs``. A marker file
written after a successful copy makes later calls free; a half-finished copy
(no marker) is redone.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

LOG4J_VERSION = "2.24.3"
MAVEN_TIMEOUT_S = 900
_MARKER = ".complete"


def ensure_jars(cache_dir: Path, kafka_version: str) -> Path:
    """Returns the folder of the broker's jars, downloading them if needed.

    Args:
        cache_dir: Git-ignored folder that keeps one subfolder per release.
        kafka_version: Apache Kafka release, e.g. ``4.1.1``.

    Returns:
        The ``libs`` folder holding every jar the broker needs.

    Raises:
        ConfigurationError: Maven is missing or the download failed.
    """
    release_dir = cache_dir / kafka_version
    libs_dir = release_dir / "libs"
    if (release_dir / _MARKER).exists():
        return libs_dir

    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError(
            "Maven (mvn) is not on PATH; it fetches the Kafka broker's jars. "
            "Install Maven 3.8+ or point STREAMS_KAFKA__BOOTSTRAP_SERVERS at a cluster."
        )

    release_dir.mkdir(parents=True, exist_ok=True)
    if libs_dir.exists():
        shutil.rmtree(libs_dir)
    template = resources.files("streams.broker").joinpath("pom.xml").read_text()
    pom = template.replace("KAFKA_VERSION", kafka_version).replace(
        "LOG4J_VERSION", LOG4J_VERSION
    )
    pom_path = release_dir / "pom.xml"
    pom_path.write_text(pom)

    logger.info(
        "broker.jars.fetching kafka_version=%s into=%s", kafka_version, libs_dir
    )
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom_path),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigurationError(
            f"Maven did not finish fetching Kafka {kafka_version} "
            f"within {MAVEN_TIMEOUT_S} s"
        ) from exc
    if completed.returncode != 0:
        tail = (completed.stdout + completed.stderr)[-2000:]
        raise ConfigurationError(
            f"Maven could not fetch Kafka {kafka_version} (exit "
            f"{completed.returncode}):\n{tail}"
        )

    (release_dir / _MARKER).write_text(kafka_version)
    logger.info("broker.jars.ready jars=%d", len(list(libs_dir.glob("*.jar"))))
    return libs_dir
