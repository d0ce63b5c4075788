"""No API key, prompt, completion or event text reaches a log line or the output.

The demo runs end to end against the session's broker with a key that looks
real, every log at DEBUG, and the simulator standing in for the provider
behind ``DEEPSEEK_BASE_URL``. Then every line the demo and the simulator
printed is searched for the key and for the text of the events it read.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import paths
from streams.demo.local_services import SimulatorProcess, start_simulator

pytestmark = pytest.mark.broker

API_KEY = "sk-hygiene-3f9c1d2e7b6a4c5d8e9f0a1b2c3d4e5f"
LIMIT = 40


def sample_texts() -> list[str]:
    """Distinctive event texts the demo will read (first LIMIT of each source)."""
    texts = []
    with (paths.SAMPLE_DATA_DIR / "tickets_bitext.csv").open(newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if index >= LIMIT:
                break
            texts.append(row["instruction"])
    emails = json.loads((paths.SAMPLE_DATA_DIR / "emails_melusine.json").read_text())
    for email in emails[:LIMIT]:
        texts.extend(line for line in email["body"].splitlines() if len(line) > 30)
    contacts = json.loads(
        (paths.SAMPLE_DATA_DIR / "crm_contacts_coralcloud.json").read_text()
    )["records"]
    for contact in contacts[:LIMIT]:
        texts.extend(
            [contact["Email"], contact["MobilePhone"], contact["MailingStreet"]]
        )
    return [text.strip() for text in texts if text and len(text.strip()) > 12]


def test_demo_logs_carry_no_key_and_no_event_text(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    simulator_log = tmp_path / "simulator.log"
    with simulator_log.open("wb") as log:
        simulator: SimulatorProcess = start_simulator(
            ["--latency-mean-ms", "5"], log=log
        )
        try:
            env = {
                **os.environ,
                "DEEPSEEK_API_KEY": API_KEY,
                "DEEPSEEK_BASE_URL": simulator.url,
                "STREAMS_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
                "STREAMS_KAFKA__GROUP_ID": "streams-hygiene",
                "STREAMS_OBSERVABILITY__LOG_FORMAT": "json",
            }
            summary = tmp_path / "summary.json"
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "streams",
                    "--log-level",
                    "DEBUG",
                    "demo",
                    "--limit",
                    str(LIMIT),
                    "--summary-json",
                    str(summary),
                ],
                env=env,
                capture_output=True,
                timeout=300,
                check=False,
            )
        finally:
            simulator.stop()

    output = completed.stdout + completed.stderr + simulator_log.read_bytes()
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(summary.read_text())["lost"] == 0
    assert b'"level":"DEBUG"' in completed.stderr  # the strictest level was on
    assert API_KEY.encode() not in output
    assert API_KEY[3:15].encode() not in output
    leaked = [text for text in sample_texts() if text.encode() in output]
    assert not leaked, f"{len(leaked)} event texts in the logs, e.g. {leaked[0]!r}"
