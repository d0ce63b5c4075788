"""Building the chat messages for one event.

Layout, fixed for the provider's prefix cache: the system message is the
pipeline's instructions, byte-identical for every event; the user message
holds the event's prompt fields as ``label: value`` lines, and nothing that
varies per event (no id, no time) comes before it. Strings are written as they
are; lists and objects as compact JSON with sorted keys. Fields named in
``redact_fields`` are replaced by ``[redacted]`` (empty values stay empty, so
"missing" is still visible) before any text leaves the process.
"""

from __future__ import annotations

import copy
from typing import Any

from streams import json_codec
from streams.pipeline.config import Pipeline, read_field
from streams.pipeline.decode import Event

REDACTED = "[redacted]"


def redact(body: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Returns a copy of ``body`` with the values at ``paths`` masked."""
    if not paths:
        return body
    masked = copy.deepcopy(body)
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = masked
        for step in parents:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) not in (None, ""):
            node[leaf] = REDACTED
    return masked


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json_codec.dumps(value, sort_keys=True).decode()


def render_event_text(pipeline: Pipeline, event: Event) -> str:
    """The user message: the event's prompt fields, redacted, one per line."""
    config = pipeline.config
    body = redact(event.body, config.redact_fields)
    lines = []
    for path in config.prompt_fields:
        value = read_field(body, path)
        if value is not None:
            lines.append(f"{path.rsplit('.', 1)[-1]}: {_render(value)}")
    return "\n".join(lines)


def build_messages(pipeline: Pipeline, event: Event) -> list[dict[str, str]]:
    """The chat messages: fixed instructions first, the event text last."""
    return [
        {"role": "system", "content": pipeline.config.instructions},
        {"role": "user", "content": render_event_text(pipeline, event)},
    ]
