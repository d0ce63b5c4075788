"""Every produced value is checked against the pipeline's own input schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest
import yaml

from streams.data.events import PIPELINE_TOPICS, PIPELINES, SourceEvent
from streams.data.malformed import build_malformed_records
from streams.data.sample import default_data_dir, load_pipeline_events

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path("/work/shared/data")


def _inline_refs(node: Any) -> Any:
    """Replace every ``{"$ref": "<file>"}`` with that schema file's content."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(".json"):
            target = json.loads((ROOT / "schemas" / ref).read_text(encoding="utf-8"))
            target.pop("$id", None)
            target.pop("$schema", None)
            return _inline_refs(target)
        return {key: _inline_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item) for item in node]
    return node


@cache
def pipeline_config(pipeline: str) -> dict[str, Any]:
    path = ROOT / "config" / "pipelines" / f"{pipeline}.yaml"
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return config


@cache
def input_validator(pipeline: str) -> jsonschema.Draft7Validator:
    name = pipeline_config(pipeline)["input_schema"]
    schema = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
    inlined = _inline_refs(schema)
    jsonschema.Draft7Validator.check_schema(inlined)
    return jsonschema.Draft7Validator(inlined)


@cache
def fast_validator(pipeline: str) -> Any:
    return fastjsonschema.compile(input_validator(pipeline).schema)


def schema_errors(pipeline: str, value: bytes) -> list[str]:
    decoded = json.loads(value)
    return [error.message for error in input_validator(pipeline).iter_errors(decoded)]


@pytest.fixture(scope="module")
def sample_events() -> dict[str, list[SourceEvent]]:
    return load_pipeline_events(default_data_dir())


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_topics_match_the_pipeline_configuration(pipeline: str) -> None:
    assert PIPELINE_TOPICS[pipeline] == pipeline_config(pipeline)["input_topic"]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_sample_event_satisfies_its_input_schema(
    pipeline: str, sample_events: dict[str, list[SourceEvent]]
) -> None:
    events = sample_events[pipeline]
    assert events

    for event in events:
        assert event.topic == PIPELINE_TOPICS[pipeline]
        assert schema_errors(pipeline, event.value) == [], event.event_id
        fast_validator(pipeline)(json.loads(event.value))


@pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="the full public data set is not on this machine"
)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_event_of_the_full_data_satisfies_its_input_schema(pipeline: str) -> None:
    events = load_pipeline_events(SHARED_DATA, pipelines={pipeline})[pipeline]
    validate = fast_validator(pipeline)

    for event in events:
        validate(json.loads(event.value))
    assert len({event.event_id for event in events}) == len(events)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_schema_violations_break_the_schema_and_nothing_else(pipeline: str) -> None:
    for record in build_malformed_records(pipeline):
        if record.expected_reason != "schema_violation":
            continue
        assert record.value is not None
        record.value.decode("utf-8")
        assert schema_errors(pipeline, record.value), record.kind


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_records_to_be_enriched_satisfy_the_schema(pipeline: str) -> None:
    enriched = [
        r for r in build_malformed_records(pipeline) if r.expected_outcome == "enriched"
    ]
    assert {r.kind for r in enriched} == {"big_integer", "invalid_utf8_key_and_header"}

    for record in enriched:
        assert record.value is not None
        assert schema_errors(pipeline, record.value) == [], record.kind
