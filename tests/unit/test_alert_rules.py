"""The alert rules tell an operator what to do, and their unit tests cover each one.

promtool itself runs in tests/integration/test_prometheus_dashboards.py; these
checks need nothing but the files.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from streams import paths

PROMETHEUS_DIR = paths.PROJECT_ROOT / "deploy" / "prometheus"
SEVERITIES = {"warning", "critical"}


def load(name: str) -> Any:
    return yaml.safe_load((PROMETHEUS_DIR / name).read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for group in load("alerts.yml")["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_every_rule_file_is_loaded_and_tested() -> None:
    assert load("prometheus.yml")["rule_files"] == ["alerts.yml"]
    assert load("alerts_test.yml")["rule_files"] == ["alerts.yml"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_rule_waits_has_a_severity_and_says_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["alert"].startswith("Streams")
    assert rule.get("for"), "a rule without `for` pages on one bad evaluation"
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) >= {"summary", "description"}
    assert len(annotations["description"].split()) >= 20


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_unit_tests_cover_each_rule_firing_and_silent(rule: dict[str, Any]) -> None:
    cases = [
        case
        for test in load("alerts_test.yml")["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == rule["alert"]
    ]
    assert any(case["exp_alerts"] for case in cases), "no case where it fires"
    assert any(not case["exp_alerts"] for case in cases), "no case where it is silent"


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
