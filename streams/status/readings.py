"""Reading a worker's ``/metrics``: fetch, parse, and the pipelines' topics."""

import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from streams.errors import StreamsError
from streams.pipeline.config import PipelineConfig

logger = logging.getLogger(__name__)


DEFAULT_METRICS_PORT = 9108
SCRAPE_TIMEOUT_S = 5.0

# streams_circuit_state values, as streams.service sets them.
CIRCUIT_STATES = {0: "closed", 1: "half open", 2: "open"}

# Per-pipeline counters, by the field of PipelineReading they fill.
_PIPELINE_COUNTERS = {
    "consumed": "streams_records_consumed_total",
    "enriched": "streams_records_enriched_total",
    "dead_lettered": "streams_records_dead_lettered_total",
    "retries": "streams_llm_retries_total",
    "cost_usd": "streams_llm_cost_usd_total",
}

Samples = dict[str, list[tuple[dict[str, str], float]]]


class MetricsUnavailableError(StreamsError):
    """The metrics endpoint did not answer, or not with Prometheus text."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="metrics_unavailable")


# -- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineReading:
    """One pipeline's counter totals and lag at one instant.

    ``lag`` is None when the worker owns no partition of the pipeline's topic.
    """

    topics: tuple[str, ...] = ()
    lag: float | None = None
    consumed: float = 0.0
    enriched: float = 0.0
    dead_lettered: float = 0.0
    retries: float = 0.0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Reading:
    """Everything the view needs from one scrape."""

    taken_at: float
    pipelines: dict[str, PipelineReading]
    in_flight: float = 0.0
    buffered: float = 0.0
    buffered_limit: float = 0.0
    partitions_paused: float = 0.0
    worker_up: bool = False
    circuits: dict[str, float] = field(default_factory=dict)


def read_metrics(
    text: str,
    *,
    taken_at: float,
    topic_pipelines: Mapping[str, str] | None = None,
) -> Reading:
    """Parses a ``/metrics`` body into a :class:`Reading`.

    Args:
        text: The Prometheus text exposition of one worker.
        taken_at: When it was read, in seconds of a monotonic clock.
        topic_pipelines: Input topic to pipeline name, from the local pipeline
            files; the worker's own ``streams_records_consumed_total`` labels
            win, and a topic known to neither is shown under its own name.

    Returns:
        The reading.

    Raises:
        MetricsUnavailableError: The text is not the Prometheus format.
    """
    samples = _samples_by_name(text)

    pipeline_of = dict(topic_pipelines or {})
    for labels, _value in samples.get("streams_records_consumed_total", []):
        if "topic" in labels and "pipeline" in labels:
            pipeline_of[labels["topic"]] = labels["pipeline"]

    names = set(pipeline_of.values())
    for metric in _PIPELINE_COUNTERS.values():
        names.update(labels["pipeline"] for labels, _ in samples.get(metric, []))
    lag_by_topic = _sum_by_label(samples, "streams_consumer_lag_records", "topic")
    names.update(pipeline_of.get(topic, topic) for topic in lag_by_topic)

    counters = {
        key: _sum_by_label(samples, metric, "pipeline")
        for key, metric in _PIPELINE_COUNTERS.items()
    }
    pipelines: dict[str, PipelineReading] = {}
    for name in sorted(names):
        topics = tuple(sorted(t for t, p in pipeline_of.items() if p == name))
        if not topics and name in lag_by_topic:
            topics = (name,)
        owned = [lag_by_topic[t] for t in topics if t in lag_by_topic]
        pipelines[name] = PipelineReading(
            topics=topics,
            lag=sum(owned) if owned else None,
            **{key: sums.get(name, 0.0) for key, sums in counters.items()},
        )

    return Reading(
        taken_at=taken_at,
        pipelines=pipelines,
        in_flight=_total(samples, "streams_records_in_flight"),
        buffered=_total(samples, "streams_records_buffered"),
        buffered_limit=_total(samples, "streams_records_buffered_limit"),
        partitions_paused=_total(samples, "streams_partitions_paused"),
        worker_up=_total(samples, "streams_worker_up") >= 1,
        circuits=_sum_by_label(samples, "streams_circuit_state", "endpoint"),
    )


def _samples_by_name(text: str) -> Samples:
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(
                    (dict(sample.labels), float(sample.value))
                )
    except ValueError as exc:
        raise MetricsUnavailableError(
            f"the answer is not Prometheus text: {exc}"
        ) from exc
    return samples


def _total(samples: Samples, name: str) -> float:
    return sum(value for _labels, value in samples.get(name, []))


def _sum_by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    sums: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        key = labels.get(label)
        if key is not None:
            sums[key] = sums.get(key, 0.0) + value
    return sums


def configured_topics(pipelines_dir: Path) -> dict[str, str]:
    """Input topic to pipeline name, from the pipeline files of a folder.

    Only names and topics are read (no schemas are compiled); a file that
    cannot be read is left out, because the worker's metrics name the
    pipelines of every topic it has consumed from anyway.
    """
    topics: dict[str, str] = {}
    for path in sorted(pipelines_dir.glob("*.yaml")):
        try:
            config = PipelineConfig.model_validate(yaml.safe_load(path.read_text()))
        except (OSError, yaml.YAMLError, ValidationError):
            logger.debug("status.pipeline_file_skipped path=%s", path)
            continue
        topics[config.input_topic] = config.name
    return topics


# -- comparing -----------------------------------------------------------------


def default_url(metrics_port: int | None) -> str:
    """The local worker's endpoint: the configured metrics port, else 9108."""
    return f"http://127.0.0.1:{metrics_port or DEFAULT_METRICS_PORT}/metrics"


def metrics_url(url: str) -> str:
    """The endpoint to scrape: ``/metrics`` when ``url`` names no path.

    Raises:
        MetricsUnavailableError: The URL is not http or https.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetricsUnavailableError(
            f"not an http(s) URL: {url!r}; e.g. http://127.0.0.1:9108"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urlunsplit(parts)


def scrape(url: str, *, timeout_s: float = SCRAPE_TIMEOUT_S) -> str:
    """Fetches the text of a metrics endpoint.

    Raises:
        MetricsUnavailableError: No answer within ``timeout_s``, a refused
            connection, or an HTTP error status.
    """
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise MetricsUnavailableError(
            f"{url} answered HTTP {exc.code} {exc.reason}"
        ) from exc
    except urllib.error.URLError as exc:
        raise MetricsUnavailableError(
            f"no answer from {url}: {exc.reason}; is `streams run` serving "
            "metrics there (STREAMS_OBSERVABILITY__METRICS_PORT)?"
        ) from exc
    except (TimeoutError, OSError) as exc:
        raise MetricsUnavailableError(f"no answer from {url}: {exc}") from exc
    return body.decode("utf-8", errors="replace")
