"""The Grafana dashboards and the alert rules against a real worker and Prometheus.

promtool checks the scrape config and the rules and runs their unit tests.
Then a ``streams run`` process enriches sample events while a real Prometheus
(loopback, a free port, a temporary store) scrapes it every second and
evaluates the rules. The session's simulator fails a fifth of the calls
meanwhile (its previous faults are put back after), so failures and retries
show. Every panel query of both dashboards, for every pipeline, and every
measure of every alert rule is then evaluated with ``/api/v1/query``: each must
return a value that is not NaN, and every ``streams_*`` metric it names must be
one the worker exports, so a query of a metric that does not exist fails even
behind ``or``. ``$__rate_interval`` and ``$__range`` stand for a window as long
as the run, since one instant query at the end has to see all of it.

Alert expressions compare measures with numbers (``<measure> > 0.05``), and
such an expression is empty whenever the alert does not fire. alerts.yml
therefore keeps one form: measures, each with at most one trailing comparison
with a number, joined by ``and``, ``or`` or ``unless``. The test splits a rule
at those top-level operators, drops each part's trailing comparison and
evaluates what is left.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams import paths
from streams.data.produce import produce_events
from streams.demo.local_services import SimulatorProcess
from tests.integration.harness import Isolated, isolate

pytestmark = pytest.mark.broker

PROMETHEUS_DIR = paths.PROJECT_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
DASHBOARDS = sorted(
    (paths.PROJECT_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")
)

FAULTS = {"error_rate": 0.2}
"""Transient failures (429, 500, 503) on a fifth of the calls: retries happen."""
WARM_UP_LIMIT = 3
LIMIT_PER_SOURCE = 30
RUN_TIMEOUT_S = 60.0
SCRAPES_AFTER_BATCH = 3
FINISHED = (
    "sum(streams_records_enriched_total)"
    " + (sum(streams_records_dead_lettered_total) or vector(0))"
)
"""Records that have their one outcome, enriched or dead-lettered."""
SCRAPES = 'count_over_time(up{job="streams"}[10m])'


# -- reading the dashboards and the rules ----------------------------------------


def panel_targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """Every panel query as (panel title, expression), rows' nested panels too."""
    found = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        found.extend(
            (panel["title"], target["expr"])
            for target in panel.get("targets", [])
            if target.get("expr")
        )
    return found


def substitute(expr: str, pipeline: str, window: str) -> str:
    """Replaces the Grafana variables the dashboards use; leaves no ``$`` behind.

    ``$__rate_interval`` and ``$__range`` become ``window``. Panels are queried
    once, after the run, so a window as long as the run is what makes a
    pipeline that finished early still count (Grafana draws the whole run with
    range queries and short windows; an instant query at the end cannot).
    """
    for name, value in (
        ("__rate_interval", window),
        ("__interval", "1s"),
        ("__range", window),
        ("pipeline", pipeline),
    ):
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def _mask_nested(expr: str) -> str:
    """The expression with everything inside brackets or quotes blanked out.

    Operators found in the result are top level; positions match the original.
    """
    masked = []
    depth = 0
    quote: str | None = None
    escaped = False
    for char in expr:
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            masked.append(" ")
            continue
        if char in "([{":
            masked.append(char if depth == 0 else " ")
            depth += 1
        elif char in ")]}":
            depth -= 1
            masked.append(char if depth == 0 else " ")
        elif char in "\"'`":
            quote = char
            masked.append(" ")
        else:
            masked.append(char if depth == 0 else " ")
    return "".join(masked)


_SET_OPERATOR = re.compile(
    r"\s(?:and|or|unless)(?:\s+(?:on|ignoring)\s*\(\s*\))?\s", re.IGNORECASE
)
_TRAILING_COMPARISON = re.compile(
    r"(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?\s*$",
    re.IGNORECASE,
)


def alert_measures(expr: str) -> list[str]:
    """The measures of an alert expression, without their threshold comparisons.

    ``a > 1000 and on (topic) b > 0`` gives ``["a", "b"]``.
    """
    masked = _mask_nested(expr)
    cuts = [0]
    for match in _SET_OPERATOR.finditer(masked):
        cuts.extend(match.span())
    cuts.append(len(expr))
    measures = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=True):
        comparison = _TRAILING_COMPARISON.search(masked[start:end])
        stop = start + comparison.start() if comparison else end
        measures.append(expr[start:stop].strip())
    return measures


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_alert_measures_split_at_top_level_operators_only() -> None:
    assert alert_measures(
        'sum by (topic) (x{a=~"b|c"}) > 0\nunless on (topic)\n'
        "sum by (topic) (increase(y[10m])) >= bool 1e3"
    ) == ['sum by (topic) (x{a=~"b|c"})', "sum by (topic) (increase(y[10m]))"]
    assert alert_measures('1 - a{k="x > 1 and y"} / b < 0.5') == [
        '1 - a{k="x > 1 and y"} / b'
    ]
    assert alert_measures("max by (e) (histogram_quantile(0.9, z)) > 0") == [
        "max by (e) (histogram_quantile(0.9, z))"
    ]


# -- promtool --------------------------------------------------------------------


def promtool(*args: str) -> None:
    result = subprocess.run(
        ["promtool", *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_and_scrape_config_pass_promtool() -> None:
    promtool("check", "rules", "alerts.yml")
    promtool("check", "config", "prometheus.yml")


def test_alert_unit_tests_pass_promtool() -> None:
    promtool("test", "rules", "alerts_test.yml")


# -- a real run, scraped by a real Prometheus -----------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def http_json(url: str, data: dict[str, str] | bytes | None = None) -> Any:
    """GET, or POST a form (dict) or a JSON body (bytes); the decoded answer."""
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    # Only the loopback servers this module started.
    with urllib.request.urlopen(url, data=body, timeout=10) as response:
        return json.loads(response.read())


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL when it has not ended within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class ScrapedRun:
    """A finished worker run and the Prometheus that scraped it (still running)."""

    prometheus_url: str
    exported: set[str]
    """Sample names the worker serves at /metrics (``_bucket`` etc. included)."""
    pipelines: list[str]
    window: str
    """A range covering the whole run, from Prometheus's first scrape on."""
    worker_log: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = http_json(f"{self.prometheus_url}/api/v1/query", {"query": expr})
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else math.nan


def exported_names(metrics_url: str) -> set[str]:
    """The sample names of a Prometheus text exposition."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    return {
        re.split(r"[{\s]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None
) -> None:
    """Polls ``condition`` twice a second; fails with the log's tail on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def start_worker(
    env: dict[str, str], metrics_port: int, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "run"],
            env={
                **os.environ,
                **env,
                "STREAMS_LLM__BACKOFF_BASE_S": "0.05",
                "STREAMS_OBSERVABILITY__METRICS_HOST": "127.0.0.1",
                "STREAMS_OBSERVABILITY__METRICS_PORT": str(metrics_port),
            },
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )


def start_prometheus(
    tmp_path: Path, port: int, metrics_port: int, log: Path
) -> subprocess.Popen[bytes]:
    """Prometheus on loopback, scraping only the worker, evaluating alerts.yml."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": "streams",
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                    }
                ],
            }
        )
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )


def answers(url: str) -> bool:
    """Whether a GET of ``url`` succeeds (2xx)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def produce_batch(
    run: ScrapedRun, isolated: Isolated, limit: int, produced_before: int
) -> int:
    """Produces sample events; returns once each has its outcome, scraped.

    Returns:
        The records produced so far, this batch included.
    """
    report = produce_events(
        isolated.settings.kafka.bootstrap_servers,
        topics=isolated.topics,
        limit_per_source=limit,
    )
    produced = produced_before + len(report.records)
    wait_until(
        lambda: run.scalar(FINISHED) >= produced,
        RUN_TIMEOUT_S,
        f"{produced} records to be enriched or dead-lettered",
        run.worker_log,
    )
    scrapes = run.scalar(SCRAPES)
    wait_until(
        lambda: run.scalar(SCRAPES) >= scrapes + SCRAPES_AFTER_BATCH,
        10,
        "more scrapes",
    )
    return produced


@pytest.fixture(scope="module")
def scraped_run(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    simulator: SimulatorProcess,
) -> Iterator[ScrapedRun]:
    """Sample events through a worker that a real Prometheus scrapes every second.

    The events are produced only once Prometheus scrapes the ready worker, so
    every counter is seen rising and rates over the run are not zero.
    """
    tmp_path = tmp_path_factory.mktemp("prometheus-dashboards")
    faults_url = f"{simulator.url}/admin/faults"
    previous_faults = http_json(faults_url)
    http_json(faults_url, json.dumps(FAULTS).encode())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        isolated = isolate(tmp_path, kafka_bootstrap, simulator.url)
        metrics_port, prometheus_port = free_port(), free_port()
        worker_log = tmp_path / "worker.log"
        prometheus_log = tmp_path / "prometheus.log"
        processes.append(start_worker(isolated.env(), metrics_port, worker_log))
        processes.append(
            start_prometheus(tmp_path, prometheus_port, metrics_port, prometheus_log)
        )
        run = ScrapedRun(
            prometheus_url=f"http://127.0.0.1:{prometheus_port}",
            exported=set(),
            pipelines=sorted(isolated.topics),
            worker_log=worker_log,
            window="",
        )
        started = time.monotonic()
        wait_until(
            lambda: answers(f"http://127.0.0.1:{metrics_port}/readyz"),
            30,
            "the worker to own partitions",
            worker_log,
        )
        wait_until(
            lambda: (
                answers(f"{run.prometheus_url}/-/ready")
                and run.scalar('sum(up{job="streams"})') == 1
            ),
            30,
            "Prometheus to scrape the worker",
            prometheus_log,
        )

        # The worker creates a labelled series at its first increment, and
        # Prometheus cannot see a rise it did not scrape. A small first batch
        # (with one malformed record of each kind) makes every series exist;
        # the main batch then raises them while Prometheus watches.
        produced = 0
        for limit in WARM_UP_LIMIT, LIMIT_PER_SOURCE:
            produced = produce_batch(run, isolated, limit, produced)
        assert run.scalar(FINISHED) == produced

        run.exported = exported_names(f"http://127.0.0.1:{metrics_port}/metrics")
        run.window = f"{math.ceil(time.monotonic() - started) + 5}s"
        yield run
    finally:
        for process in reversed(processes):
            stop_process(process)
        http_json(faults_url, json.dumps(previous_faults).encode())
    assert processes[0].returncode == 0, worker_log.read_text()[-3000:]


def assert_has_data(run: ScrapedRun, where: str, expr: str) -> None:
    for name in re.findall(r"\bstreams_[a-z0-9_]+", expr):
        assert name in run.exported, f"{where}: the worker exports no {name}"
    result = run.query(expr)
    assert result, f"{where}: no data for {expr}"
    values = [float(sample["value"][1]) for sample in result]
    assert any(not math.isnan(value) for value in values), (
        f"{where}: only NaN for {expr}"
    )


@pytest.mark.parametrize("dashboard_path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_panel_query_returns_data(
    scraped_run: ScrapedRun, dashboard_path: Path
) -> None:
    dashboard = json.loads(dashboard_path.read_text())
    targets = panel_targets(dashboard)
    assert targets
    uses_pipeline = any("$pipeline" in expr for _, expr in targets)
    for pipeline in scraped_run.pipelines if uses_pipeline else [""]:
        for title, expr in targets:
            where = f"{dashboard['title']} / {title} {pipeline}".strip()
            assert_has_data(
                scraped_run, where, substitute(expr, pipeline, scraped_run.window)
            )


@pytest.mark.parametrize("dashboard_path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_template_variable_lists_the_run(
    scraped_run: ScrapedRun, dashboard_path: Path
) -> None:
    dashboard = json.loads(dashboard_path.read_text())
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            assert variable["query"] == "prometheus"
            continue
        assert variable["type"] == "query", variable["name"]
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, f"{variable['name']}: {query}"
        selector, label = match.groups()
        url = (
            f"{scraped_run.prometheus_url}/api/v1/label/{label}/values?"
            + urllib.parse.urlencode({"match[]": selector})
        )
        values = set(http_json(url)["data"])
        if variable["name"] == "pipeline":
            assert set(scraped_run.pipelines) <= values


def test_dashboards_read_prometheus_through_the_datasource_variable() -> None:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["schemaVersion"] == 39
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in panels:
            sources = [panel["datasource"]] + [
                t["datasource"] for t in panel["targets"]
            ]
            for source in sources:
                assert source == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_measure_returns_data(
    scraped_run: ScrapedRun, rule: dict[str, Any]
) -> None:
    for measure in alert_measures(rule["expr"]):
        assert_has_data(scraped_run, rule["alert"], measure)


def test_prometheus_loads_and_evaluates_every_rule(scraped_run: ScrapedRun) -> None:
    answer = http_json(f"{scraped_run.prometheus_url}/api/v1/rules")
    loaded = {
        rule["name"]: rule
        for group in answer["data"]["groups"]
        for rule in group["rules"]
    }
    assert set(loaded) == {rule["alert"] for rule in alert_rules()}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
