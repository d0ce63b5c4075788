"""``streams status``: a terminal view of one worker, read from its ``/metrics``.

The view is built in three steps, each usable alone:

* reading: :func:`read_metrics` parses the Prometheus text format into a
  :class:`Reading`, the counter totals and gauges of one instant;
* comparing: :func:`build_snapshot` turns two readings into rates. A rate is
  the increase of a counter divided by the seconds between the readings; a
  counter that went down was reset by a restart, so its whole current value
  is the increase;
* showing: :func:`render_snapshot` builds the rich table.

:func:`scrape` fetches the text and :func:`watch_status` repeats the three
steps every interval. Lag is the sum of ``streams_consumer_lag_records`` over
the partitions of a pipeline's input topic that this worker owns, so with
several workers each shows its own share.
"""

from streams.status.readings import (
    MetricsUnavailableError,
    Reading,
    configured_topics,
    default_url,
    metrics_url,
    read_metrics,
    scrape,
)
from streams.status.snapshot import PipelineStatus, StatusSnapshot, build_snapshot
from streams.status.view import render_snapshot, watch_status

__all__ = [
    "MetricsUnavailableError",
    "PipelineStatus",
    "Reading",
    "StatusSnapshot",
    "build_snapshot",
    "configured_topics",
    "default_url",
    "metrics_url",
    "read_metrics",
    "render_snapshot",
    "scrape",
    "watch_status",
]
