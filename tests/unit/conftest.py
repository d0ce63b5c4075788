"""Shared fixtures of the unit tests: the real pipelines and sample events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams import paths
from streams.pipeline.config import Pipeline, load_pipelines


@pytest.fixture(scope="session")
def pipelines() -> dict[str, Pipeline]:
    by_topic = load_pipelines(paths.PIPELINES_DIR, paths.SCHEMAS_DIR)
    return {pipeline.name: pipeline for pipeline in by_topic.values()}


def ticket_body(
    text: str = "I want to cancel order 1234567", **data: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "tkt-1",
        "source": "/helpdesk/test",
        "type": "support.ticket.created",
        "time": "2026-11-02T08:00:00Z",
        "datacontenttype": "application/json",
        "data": {"ticket_id": "T-1", "channel": "chat", "text": text, **data},
    }


def ticket_bytes(text: str = "I want to cancel order 1234567", **data: Any) -> bytes:
    return orjson.dumps(ticket_body(text, **data))
