"""The content hash: what makes two events the same work.

The hash is SHA-256 over the canonical JSON (sorted keys, compact, UTF-8) of
``[pipeline name, prompt version, model, [value of each content field]]``. A
missing field hashes as null. Including the prompt version and the model means
a changed prompt or model never serves a stale enrichment. Ids, times and
sources are not content, so a producer's replay of an event, or the same text
sent twice, hashes the same.
"""

from __future__ import annotations

import hashlib

from streams import json_codec
from streams.pipeline.config import Pipeline, read_field
from streams.pipeline.decode import Event


def content_hash(pipeline: Pipeline, event: Event, model: str) -> str:
    """Returns the hex SHA-256 of the event's content for this pipeline."""
    config = pipeline.config
    content = [read_field(event.body, path) for path in config.content_fields]
    canonical = json_codec.dumps(
        [config.name, config.prompt_version, model, content], sort_keys=True
    )
    return hashlib.sha256(canonical).hexdigest()
