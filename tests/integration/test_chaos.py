"""Every chaos scenario, run for real: worker processes, simulator, broker.

The scenarios run in-process (``run_scenario``) against the session's broker,
with small data (40 rows per source) and fault windows of 8 s instead of the
command's 30 s and 20 s, so the file stays near five minutes. ``poison`` runs
through the command line, to pin the exit code and the summary file.

``broker-restart`` stops and starts its broker, so it gets one of its own, on
``STREAMS_TEST_BROKER_PORT + 200`` and the port after it (29292/29293 by
default), with its state in ``.state/test-broker-<port>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams import paths
from streams.chaos.runner import ChaosOptions, run_scenario
from streams.settings import BrokerSettings, KafkaSettings, Settings
from tests.conftest import TEST_BROKER

pytestmark = pytest.mark.broker

LIMIT_PER_SOURCE = 40
FAULT_S = 8.0
TIMEOUT_S = 240.0
SUMMARY_FIELDS = {
    "scenario",
    "inputs",
    "enriched",
    "dead_lettered",
    "lost",
    "duplicates",
    "llm_calls",
    "retries",
    "elapsed_s",
    "expectations",
    "passed",
}

RESTART_PORT = TEST_BROKER.port + 200
RESTART_BROKER = BrokerSettings(
    port=RESTART_PORT,
    controller_port=RESTART_PORT + 1,
    state_dir=paths.STATE_DIR / f"test-broker-{RESTART_PORT}",
)


def _settings(bootstrap: str, broker: BrokerSettings | None = None) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        broker=broker or TEST_BROKER,
    )


def _run(name: str, bootstrap: str, tmp_path: Path, **options: Any) -> dict[str, Any]:
    summary = run_scenario(
        _settings(bootstrap, options.pop("broker", None)),
        name,
        ChaosOptions(
            limit_per_source=LIMIT_PER_SOURCE,
            timeout_s=TIMEOUT_S,
            run_dir=tmp_path,
            **options,
        ),
        summary_json=tmp_path / "summary.json",
    )
    assert set(summary) >= SUMMARY_FIELDS
    assert summary == orjson.loads((tmp_path / "summary.json").read_bytes())
    return summary


def _verdict(summary: dict[str, Any]) -> str:
    lines = [
        f"{e['name']}: {e['passed']} {e['detail']}" for e in summary["expectations"]
    ]
    return "\n".join([f"error: {summary['error']}", *lines])


def test_flaky_provider_loses_and_dead_letters_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    summary = _run("flaky", kafka_bootstrap, tmp_path)

    assert summary["passed"], _verdict(summary)
    assert summary["lost"] == 0
    assert summary["dead_lettered"] == 0
    faults = summary["provider"]["faults_by_kind"]
    assert sum(faults.values()) > 0
    assert summary["retries"] > 0


@pytest.mark.parametrize("name", ["outage", "account"])
def test_unavailable_provider_pauses_without_leaving_the_group(
    name: str, tmp_path: Path, kafka_bootstrap: str
) -> None:
    summary = _run(name, kafka_bootstrap, tmp_path, fault_s=FAULT_S)

    assert summary["passed"], _verdict(summary)
    assert summary["lost"] == 0
    assert summary["dead_lettered"] == 0
    assert summary["rebalances"].get("revoke", 0) == 0
    assert summary["rebalances"].get("lost", 0) == 0
    checked = {e["name"] for e in summary["expectations"]}
    assert {"stayed_in_group", "circuit_opened"} <= checked
    # The provider really answered errors, and then answers again.
    statuses = summary["provider"]["responses_by_status"]
    assert statuses.get("503" if name == "outage" else "402", 0) > 0
    assert statuses.get("200", 0) > 0


def test_three_kill_9s_lose_nothing_and_bound_duplicates(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    summary = _run("crash", kafka_bootstrap, tmp_path)

    assert summary["passed"], _verdict(summary)
    assert [w["signal"] for w in summary["workers"]][:3] == ["SIGKILL"] * 3
    assert summary["lost"] == 0
    assert summary["duplicates"] <= 3 * summary["options"]["max_buffered"]


def test_a_worker_joining_and_leaving_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    summary = _run("rebalance", kafka_bootstrap, tmp_path)

    assert summary["passed"], _verdict(summary)
    assert len(summary["workers"]) == 2
    assert summary["rebalances"].get("assign", 0) >= 2
    assert summary["duplicates"] <= 2 * summary["options"]["max_buffered"]


def test_a_broker_restart_on_its_data_loses_nothing(tmp_path: Path) -> None:
    summary = _run(
        "broker-restart",
        f"{RESTART_BROKER.host}:{RESTART_BROKER.port}",
        tmp_path,
        broker=RESTART_BROKER,
    )

    assert summary["passed"], _verdict(summary)
    assert summary["lost"] == 0
    assert any("broker started again" in a["action"] for a in summary["actions"])


def test_poison_command_dead_letters_exactly_the_malformed(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    summary_path = tmp_path / "poison.json"
    env = {
        **os.environ,
        "STREAMS_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAMS_OBSERVABILITY__LOG_FORMAT": "json",
    }
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "chaos",
            "--scenario",
            "poison",
            "--limit-per-source",
            str(LIMIT_PER_SOURCE),
            "--timeout",
            str(TIMEOUT_S),
            "--run-dir",
            str(tmp_path / "run"),
            "--summary-json",
            str(summary_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S + 120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    summary = orjson.loads(summary_path.read_bytes())

    assert summary["passed"], _verdict(summary)
    assert summary["lost"] == 0
    assert summary["unexpected_outcomes"] == 0
    assert summary["dead_letter_reasons"] == {
        "empty_value": 3,
        "invalid_json": 6,
        "invalid_utf8": 3,
        "schema_violation": 12,
        "tombstone": 3,
    }
