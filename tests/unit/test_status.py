"""``streams status``: reading, comparing and showing a worker's metrics.

The metrics text comes from a real :class:`Metrics` registry, so a renamed
metric or label breaks these tests rather than the view.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import generate_latest
from rich.console import Console

from streams import paths
from streams.cli import main
from streams.observability.metrics import Metrics
from streams.status import (
    MetricsUnavailableError,
    Reading,
    build_snapshot,
    configured_topics,
    default_url,
    metrics_url,
    read_metrics,
    render_snapshot,
    scrape,
    watch_status,
)

URL = "http://127.0.0.1:9108/metrics"
ENDPOINT = "https://api.deepseek.com"
TOPICS = {"events.tickets": "tickets", "events.emails": "emails", "events.crm": "crm"}


def first_metrics() -> Metrics:
    """A worker some way into a run."""
    metrics = Metrics()
    metrics.worker_up.set(1)
    metrics.records_in_flight.set(37)
    metrics.records_buffered.set(412)
    metrics.records_buffered_limit.set(2000)
    metrics.partitions_paused.set(0)
    metrics.circuit_state.labels(ENDPOINT).set(0)
    metrics.records_consumed.labels("tickets", "events.tickets").inc(100)
    metrics.records_consumed.labels("emails", "events.emails").inc(20)
    metrics.consumer_lag.labels("events.tickets", "0").set(120)
    metrics.consumer_lag.labels("events.tickets", "1").set(30)
    metrics.consumer_lag.labels("events.emails", "2").set(0)
    metrics.records_enriched.labels("tickets", "miss").inc(80)
    metrics.records_enriched.labels("emails", "miss").inc(20)
    metrics.records_dead_lettered.labels("tickets", "decode", "invalid_json").inc(2)
    metrics.llm_cost.labels("tickets").inc(0.012)
    return metrics


def advance(metrics: Metrics) -> None:
    """Ten seconds later: more records, a retry storm on emails, the circuit open."""
    metrics.records_consumed.labels("tickets", "events.tickets").inc(60)
    metrics.records_enriched.labels("tickets", "miss").inc(40)
    metrics.records_enriched.labels("tickets", "hit").inc(8)
    metrics.records_dead_lettered.labels("tickets", "llm", "content_refused").inc(2)
    metrics.llm_retries.labels("emails", "rate_limited").inc(4)
    metrics.llm_cost.labels("tickets").inc(0.006)
    metrics.consumer_lag.labels("events.tickets", "0").set(90)
    metrics.circuit_state.labels(ENDPOINT).set(2)


def text_of(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


@pytest.fixture
def two_readings() -> tuple[Reading, Reading]:
    metrics = first_metrics()
    before = read_metrics(text_of(metrics), taken_at=100.0, topic_pipelines=TOPICS)
    advance(metrics)
    after = read_metrics(text_of(metrics), taken_at=110.0, topic_pipelines=TOPICS)
    return before, after


def test_reading_sums_lag_over_the_partitions_of_each_pipeline_topic() -> None:
    reading = read_metrics(
        text_of(first_metrics()), taken_at=0.0, topic_pipelines=TOPICS
    )

    assert reading.pipelines["tickets"].lag == 150
    assert reading.pipelines["tickets"].topics == ("events.tickets",)
    assert reading.pipelines["emails"].lag == 0
    # crm is configured but this worker owns none of its partitions.
    assert reading.pipelines["crm"].lag is None
    assert reading.pipelines["tickets"].enriched == 80
    assert reading.pipelines["tickets"].dead_lettered == 2
    assert reading.pipelines["tickets"].cost_usd == pytest.approx(0.012)
    assert reading.in_flight == 37
    assert reading.buffered == 412
    assert reading.buffered_limit == 2000
    assert reading.worker_up
    assert reading.circuits == {ENDPOINT: 0}


def test_reading_learns_topics_from_the_consumed_counter_without_config() -> None:
    reading = read_metrics(text_of(first_metrics()), taken_at=0.0)

    assert set(reading.pipelines) == {"tickets", "emails"}
    assert reading.pipelines["tickets"].topics == ("events.tickets",)
    assert reading.pipelines["tickets"].lag == 150


def test_a_topic_without_a_known_pipeline_is_shown_under_its_own_name() -> None:
    metrics = Metrics()
    metrics.consumer_lag.labels("events.other", "0").set(7)

    reading = read_metrics(text_of(metrics), taken_at=0.0)

    assert reading.pipelines["events.other"].lag == 7
    assert reading.pipelines["events.other"].topics == ("events.other",)


def test_snapshot_rates_are_increases_over_the_elapsed_seconds(
    two_readings: tuple[Reading, Reading],
) -> None:
    before, after = two_readings

    snapshot = build_snapshot(after, before, url=URL)
    rows = {row.name: row for row in snapshot.pipelines}

    assert snapshot.interval_s == 10.0
    tickets = rows["tickets"]
    assert tickets.lag == 120
    assert tickets.consumed_per_s == pytest.approx(6.0)
    assert tickets.enriched_per_s == pytest.approx(4.8)
    assert tickets.dead_lettered_per_s == pytest.approx(0.2)
    assert tickets.dead_letter_share == pytest.approx(2 / 50)
    assert tickets.cost_usd == pytest.approx(0.018)
    assert tickets.cost_usd_per_hour == pytest.approx(0.006 / 10 * 3600)
    assert rows["emails"].retries_per_s == pytest.approx(0.4)
    assert rows["emails"].enriched_per_s == 0
    # Nothing finished on crm in the interval: no share to speak of.
    assert rows["crm"].dead_letter_share is None
    assert snapshot.total.enriched_per_s == pytest.approx(4.8)
    assert snapshot.total.retries_per_s == pytest.approx(0.4)
    assert snapshot.total.lag == 120
    assert snapshot.circuits == {ENDPOINT: "open"}
    assert snapshot.in_flight == 37
    assert snapshot.worker_up


def test_a_single_reading_has_totals_but_no_rates(
    two_readings: tuple[Reading, Reading],
) -> None:
    _before, after = two_readings

    snapshot = build_snapshot(after, url=URL)

    assert snapshot.interval_s is None
    tickets = next(row for row in snapshot.pipelines if row.name == "tickets")
    assert tickets.enriched_per_s is None
    assert tickets.cost_usd_per_hour is None
    assert tickets.cost_usd == pytest.approx(0.018)
    assert tickets.lag == 120


def test_a_counter_that_went_down_was_reset_and_counts_from_zero(
    two_readings: tuple[Reading, Reading],
) -> None:
    _before, after = two_readings
    restarted = first_metrics()
    restarted.records_enriched.labels("tickets", "miss").reset()
    restarted.records_enriched.labels("tickets", "miss").inc(5)
    later = read_metrics(text_of(restarted), taken_at=115.0, topic_pipelines=TOPICS)

    snapshot = build_snapshot(later, after, url=URL)

    tickets = next(row for row in snapshot.pipelines if row.name == "tickets")
    assert tickets.enriched_per_s == pytest.approx(5 / 5.0)


def test_rendering_shows_each_pipeline_the_total_and_the_worker_line(
    two_readings: tuple[Reading, Reading],
) -> None:
    before, after = two_readings
    console = Console(record=True, width=120, color_system=None)

    console.print(render_snapshot(build_snapshot(after, before, url=URL)))
    text = console.export_text()

    assert f"streams status  {URL}" in text
    assert "rates over 10.0 s" in text
    cells = [line.split() for line in text.splitlines()]
    rows = {
        row[0]: row[1:] for row in cells if row and row[0] in {*TOPICS.values(), "all"}
    }
    assert rows["tickets"] == [
        "120",
        "6.0",
        "4.8",
        "0.2",
        "4.0%",
        "0.0",
        "0.0180",
        "2.1600",
    ]
    assert rows["emails"] == ["0", "0.0", "0.0", "0.0", "-", "0.4", "0.0000", "0.0000"]
    assert rows["crm"][0] == "-"
    assert rows["all"] == [
        "120",
        "6.0",
        "4.8",
        "0.2",
        "4.0%",
        "0.4",
        "0.0180",
        "2.1600",
    ]
    assert "in flight 37" in text
    assert "buffered 412/2000" in text
    assert f"circuit {ENDPOINT} open" in text


def test_rendering_without_rates_or_with_a_problem() -> None:
    reading = read_metrics(text_of(Metrics()), taken_at=0.0, topic_pipelines=TOPICS)
    console = Console(record=True, width=120, color_system=None)

    console.print(
        render_snapshot(build_snapshot(reading, url=URL), problem="no answer")
    )
    text = console.export_text()

    assert "rates need a second scrape" in text
    assert "worker down" in text
    assert "no answer" in text


def fake_endpoint(texts: list[str]) -> tuple[Callable[[str], str], list[str]]:
    """A fetch function serving ``texts`` in turn, and the URLs it was asked."""
    asked: list[str] = []
    answers: Iterator[str] = iter(texts)

    def fetch(url: str) -> str:
        asked.append(url)
        return next(answers)

    return fetch, asked


def test_once_prints_one_table_with_rates_over_one_interval() -> None:
    metrics = first_metrics()
    first = text_of(metrics)
    advance(metrics)
    fetch, asked = fake_endpoint([first, text_of(metrics)])
    clock = iter([100.0, 110.0])
    slept: list[float] = []
    console = Console(record=True, width=120, color_system=None)

    code = watch_status(
        "http://127.0.0.1:9108",
        interval_s=10.0,
        once=True,
        topic_pipelines=TOPICS,
        console=console,
        fetch=fetch,
        clock=lambda: next(clock),
        sleep=slept.append,
    )

    assert code == 0
    assert asked == [URL, URL]
    assert slept == [10.0]
    assert "rates over 10.0 s" in console.export_text()


def test_once_with_no_interval_scrapes_once() -> None:
    fetch, asked = fake_endpoint([text_of(first_metrics())])
    console = Console(record=True, width=120, color_system=None)

    watch_status(URL, interval_s=0, once=True, console=console, fetch=fetch)

    assert len(asked) == 1
    assert "rates need a second scrape" in console.export_text()


def test_watching_survives_a_failed_refresh_and_stops_on_interrupt() -> None:
    metrics = first_metrics()
    first = text_of(metrics)
    advance(metrics)
    second = text_of(metrics)
    answers: list[str | Exception] = [
        first,
        MetricsUnavailableError("no answer"),
        second,
    ]

    def fetch(_url: str) -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    clock = iter([0.0, 4.0])
    console = Console(record=True, width=120, color_system=None)

    code = watch_status(
        URL,
        interval_s=0.1,
        once=False,
        console=console,
        fetch=fetch,
        clock=lambda: next(clock),
        sleep=sleep,
    )

    assert code == 0
    assert answers == []
    # The interval is raised to the watching minimum.
    assert naps == [0.5, 0.5, 0.5]
    # The failed refresh kept the first reading, so the rate spans 4 s.
    assert "rates over 4.0 s" in console.export_text()


def test_the_first_scrape_failing_is_an_error() -> None:
    def fetch(_url: str) -> str:
        raise MetricsUnavailableError("no answer from the worker")

    with pytest.raises(MetricsUnavailableError, match="no answer"):
        watch_status(URL, interval_s=1.0, once=True, fetch=fetch)


def test_text_that_is_not_prometheus_is_an_error() -> None:
    with pytest.raises(MetricsUnavailableError, match="not Prometheus text"):
        read_metrics("<html>Not found</html>", taken_at=0.0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:9108", URL),
        ("http://127.0.0.1:9108/", URL),
        ("http://127.0.0.1:9108/metrics", URL),
        ("https://worker.example:443/prom", "https://worker.example:443/prom"),
    ],
)
def test_metrics_url_adds_the_path_when_none_is_given(
    given: str, expected: str
) -> None:
    assert metrics_url(given) == expected


@pytest.mark.parametrize("given", ["127.0.0.1:9108", "ftp://host/metrics", "http://"])
def test_metrics_url_refuses_what_is_not_http(given: str) -> None:
    with pytest.raises(MetricsUnavailableError, match="not an http"):
        metrics_url(given)


def test_default_url_uses_the_configured_port_else_9108() -> None:
    assert default_url(None) == URL
    assert default_url(9200) == "http://127.0.0.1:9200/metrics"


def closed_loopback_port() -> int:
    """A loopback port that was free a moment ago and has no listener now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_scraping_a_port_nobody_listens_on_says_so() -> None:
    url = f"http://127.0.0.1:{closed_loopback_port()}/metrics"

    with pytest.raises(MetricsUnavailableError, match=f"no answer from {url}"):
        scrape(url, timeout_s=2.0)


def test_the_command_reports_an_endpoint_that_does_not_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_loopback_port()}"

    code = main(["status", "--url", url, "--once", "--interval", "0"])

    assert code == 1
    assert f"streams status: no answer from {url}/metrics" in capsys.readouterr().err


def test_configured_topics_match_the_pipeline_files() -> None:
    assert configured_topics(paths.PIPELINES_DIR) == TOPICS
