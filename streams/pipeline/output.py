"""The enriched record: the input event, its enrichment, and how it was made.

Layout (``schemas/enriched_event.schema.json``): every field of the input
event as it came, plus ``enrichment`` (the model's validated answer) and
``enrichment_metadata``:

* ``pipeline``, ``content_hash``, ``prompt_version``, ``model``;
* ``dedup``: ``miss`` (this record's own call), ``hit`` (served from the
  result cache) or ``joined`` (shared a call in flight for equal content);
* ``usage`` and ``cost_usd``: what this record's own calls spent (zero for
  ``hit`` and ``joined``), ``latency_ms`` and ``attempts`` likewise;
* ``request_id``: the provider's id of the answer used;
* ``trimmed`` (only when the event text was trimmed to the pipeline's
  ``input_token_limit``): ``original_tokens``, ``sent_tokens`` and the
  ``steps`` taken; a ``hit`` or ``joined`` record carries the trimming of
  the call it reuses, which is the same content's;
* ``source``: topic, partition, offset and timestamp of the input record;
* ``enriched_at``: when the record was built (RFC 3339, UTC).

The record key stays the input's key, so per-key order survives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from streams import json_codec
from streams.llm.usage import Usage
from streams.pipeline.config import Pipeline
from streams.pipeline.decode import Event
from streams.pipeline.enricher import Enrichment

DedupKind = Literal["miss", "hit", "joined"]
_NO_USAGE = Usage()


def build_enriched_record(
    pipeline: Pipeline,
    event: Event,
    enrichment: Enrichment,
    *,
    dedup: DedupKind,
    content_hash: str,
    source: dict[str, Any],
) -> bytes:
    """Serialises the enriched event for the output topic."""
    own_call = dedup == "miss"
    usage = enrichment.usage if own_call else _NO_USAGE
    record = dict(event.body)
    record["enrichment"] = enrichment.values
    record["enrichment_metadata"] = {
        "pipeline": pipeline.name,
        "content_hash": content_hash,
        "prompt_version": pipeline.config.prompt_version,
        "model": enrichment.model,
        "dedup": dedup,
        "usage": usage.as_dict(),
        "cost_usd": round(enrichment.cost_usd, 10) if own_call else 0.0,
        "latency_ms": round(enrichment.latency_s * 1000, 1) if own_call else 0.0,
        "attempts": enrichment.attempts if own_call else 0,
        "request_id": enrichment.request_id,
        "source": source,
        "enriched_at": datetime.now(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    if enrichment.trimmed is not None:
        record["enrichment_metadata"]["trimmed"] = enrichment.trimmed.as_dict()
    return json_codec.dumps(record)
