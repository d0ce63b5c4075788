"""The worker: the poll loop and the processing of one record."""

from streams.worker.poll_loop import Worker
from streams.worker.stats import WorkerStats

__all__ = ["Worker", "WorkerStats"]
