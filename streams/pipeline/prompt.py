"""Building the chat messages for one event.

Layout, fixed for the provider's prefix cache: the system message is the
pipeline's instructions, byte-identical for every event; the user message
holds the event's prompt fields as ``label: value`` lines, and nothing that
varies per event (no id, no time) comes before it. Strings are written as they
are; lists and objects as compact JSON with sorted keys. Fields named in
``redact_fields`` are replaced by ``[redacted]`` (empty values stay empty, so
"missing" is still visible) before any text leaves the process.

When the pipeline sets ``input_token_limit``, the fields are trimmed to it
before they are joined (see :mod:`streams.pipeline.trimming`); the prompt
then says how.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from streams import json_codec
from streams.pipeline.config import Pipeline, read_field
from streams.pipeline.decode import Event
from streams.pipeline.trimming import Field, Trim, trim_fields

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


def render_fields(pipeline: Pipeline, event: Event) -> list[Field]:
    """The event's prompt fields, redacted, as (label, text) in prompt order.

    A field missing from the event is left out; its label is the last step of
    its path.
    """
    config = pipeline.config
    body = redact(event.body, config.redact_fields)
    fields = []
    for path in config.prompt_fields:
        value = read_field(body, path)
        if value is not None:
            fields.append((path.rsplit(".", 1)[-1], _render(value)))
    return fields


def join_fields(fields: list[Field]) -> str:
    """The user message: one ``label: text`` line (or more) per field."""
    return "\n".join(f"{label}: {text}" for label, text in fields)


def render_event_text(pipeline: Pipeline, event: Event) -> str:
    """The user message: the event's prompt fields, redacted, one per line."""
    return join_fields(render_fields(pipeline, event))


@dataclass(frozen=True, slots=True)
class Prompt:
    """The messages of one call, and how the event text was trimmed to fit."""

    messages: list[dict[str, str]]
    trimmed: Trim | None = None


def build_prompt(pipeline: Pipeline, event: Event) -> Prompt:
    """The chat messages, the event text trimmed to the pipeline's limit."""
    fields = render_fields(pipeline, event)
    trimmed = None
    limit = pipeline.config.input_token_limit
    if limit is not None:
        fields, trimmed = trim_fields(fields, limit, join_fields)
    messages = [
        {"role": "system", "content": pipeline.config.instructions},
        {"role": "user", "content": join_fields(fields)},
    ]
    return Prompt(messages, trimmed)


def build_messages(pipeline: Pipeline, event: Event) -> list[dict[str, str]]:
    """The chat messages: fixed instructions first, the event text last."""
    return build_prompt(pipeline, event).messages
