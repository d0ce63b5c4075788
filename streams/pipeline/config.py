"""Pipelines as configuration: one YAML file per input topic.

A pipeline names its input topic, the JSON Schemas of what it reads and what
the model must return, the model and its ``max_tokens``, the fields that are
hashed for deduplication, the fields rendered into the prompt, the fields
masked before text leaves the process, the fixed instructions, when set the
most tokens an event's text may take before it is trimmed, and, optionally,
how several events are packed into one request (``packing``; absent = off).
Optional limits: spend budgets per calendar UTC hour and day, and whether the
pipeline may wait out the provider's peak hours (see
:mod:`streams.pipeline.gate`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.errors import ConfigurationError

logger = logging.getLogger(__name__)

Validator = Callable[[Any], Any]


class PackingConfig(BaseModel):
    """How a pipeline packs several events into one LLM request.

    A pack is sent when it holds ``max_items`` events, when the next event
    would push its estimated prompt past ``max_prompt_tokens``, or
    ``max_wait_ms`` after its first event arrived, whichever comes first. An
    event too long to share a request goes alone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_items: int = Field(8, ge=2, le=64, description="Events per request, at most.")
    max_prompt_tokens: int = Field(
        3000, ge=64, description="Estimated prompt tokens of one packed request."
    )
    max_wait_ms: float = Field(
        20.0, ge=0.0, le=10_000.0, description="Longest wait for a pack to fill."
    )
    max_completion_tokens: int = Field(
        8192,
        ge=16,
        le=384_000,
        description="Cap of a packed request's max_tokens (max_tokens x items).",
    )


class PipelineConfig(BaseModel):
    """One pipeline's file, as written in ``config/pipelines/``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,40}$")
    input_topic: str
    input_schema: str = Field(description="File in schemas/ for the whole record.")
    output_schema: str = Field(description="File in schemas/ for the model's answer.")
    model: str = "deepseek-flash"
    max_tokens: int = Field(400, ge=16, le=384_000)
    max_concurrency: int = Field(64, ge=1, description="LLM calls in flight.")
    content_fields: list[str] = Field(min_length=1)
    prompt_fields: list[str] = Field(min_length=1)
    redact_fields: list[str] = Field(default_factory=list)
    prompt_version: int = Field(1, ge=1, description="Part of the content hash.")
    input_token_limit: int | None = Field(
        None,
        ge=32,
        description=(
            "Most tokens the event text (the user message) may take; longer "
            "text is trimmed before sending (streams/pipeline/trimming.py). "
            "None sends every event whole."
        ),
    )
    instructions: str = Field(min_length=1)
    packing: PackingConfig | None = Field(
        None, description="Several events per request; absent = one per request."
    )
    budget_usd_per_hour: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Spend per calendar UTC hour; the pipeline pauses once reached.",
    )
    budget_usd_per_day: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Spend per calendar UTC day; the pipeline pauses once reached.",
    )
    deferrable: bool = Field(
        False,
        description="Wait out the provider's peak hours (pricing.peak_windows) "
        "with partitions paused; false: urgent, never deferred.",
    )


@dataclass(frozen=True)
class Pipeline:
    """A pipeline ready to run: its configuration and compiled schemas."""

    config: PipelineConfig
    validate_input: Validator
    validate_output: Validator

    @property
    def name(self) -> str:
        """The pipeline's name, used in metrics and records."""
        return self.config.name


def read_field(body: dict[str, Any], path: str) -> Any:
    """Returns the value at a dotted path, or None when any step is missing."""
    value: Any = body
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def schema_problem(error: fastjsonschema.JsonSchemaValueException) -> str:
    """Where and which rule a value broke, without any of the value's text.

    The validator's own message can quote the data (unexpected keys, for
    example), which may be payload or model output; this names only the
    path and the schema keyword.
    """
    return f"{error.name} breaks rule '{error.rule}'"


def _load_schema(schemas_dir: Path, name: str) -> dict[str, Any]:
    path = schemas_dir / name
    try:
        schema: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigurationError(f"schema file {path} does not exist") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"schema file {path} is not JSON: {exc}") from exc
    return schema


def _inline_refs(node: Any, schemas_dir: Path) -> Any:
    """Replaces ``{"$ref": "<file>"}`` with that file's schema, recursively.

    Only whole-file references are used in ``schemas/``; inlining them keeps
    the compiled validator free of any resolver.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            target = _load_schema(schemas_dir, ref)
            target.pop("$id", None)
            target.pop("$schema", None)
            return _inline_refs(target, schemas_dir)
        return {key: _inline_refs(value, schemas_dir) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, schemas_dir) for item in node]
    return node


def compile_schema(schemas_dir: Path, name: str) -> Validator:
    """Compiles a schema file of ``schemas/`` into a fast validator.

    Raises:
        ConfigurationError: The file is missing, not JSON or not a schema.
    """
    schema = _inline_refs(copy.deepcopy(_load_schema(schemas_dir, name)), schemas_dir)
    try:
        validator: Validator = fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ConfigurationError(f"schema {name} is not a valid schema: {exc}") from exc
    return validator


def load_pipeline(path: Path, schemas_dir: Path) -> Pipeline:
    """Reads one pipeline file and compiles its schemas."""
    try:
        raw = yaml.safe_load(path.read_text())
        config = PipelineConfig.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"pipeline file {path} is invalid: {exc}") from exc
    return Pipeline(
        config=config,
        validate_input=compile_schema(schemas_dir, config.input_schema),
        validate_output=compile_schema(schemas_dir, config.output_schema),
    )


def load_pipelines(
    pipelines_dir: Path, schemas_dir: Path, names: Iterable[str] | None = None
) -> dict[str, Pipeline]:
    """Loads the pipelines of a folder, keyed by input topic.

    Args:
        pipelines_dir: Folder of ``*.yaml`` pipeline files.
        schemas_dir: Folder of the JSON Schemas they name.
        names: Only these pipelines; all when None.

    Raises:
        ConfigurationError: A file is invalid, a name is unknown, or two
            pipelines read the same topic.
    """
    wanted = set(names) if names is not None else None
    by_topic: dict[str, Pipeline] = {}
    found: set[str] = set()
    for path in sorted(pipelines_dir.glob("*.yaml")):
        pipeline = load_pipeline(path, schemas_dir)
        found.add(pipeline.name)
        if wanted is not None and pipeline.name not in wanted:
            continue
        topic = pipeline.config.input_topic
        if topic in by_topic:
            raise ConfigurationError(
                f"pipelines {by_topic[topic].name} and {pipeline.name} "
                f"both read topic {topic}"
            )
        by_topic[topic] = pipeline
    if wanted is not None and wanted - found:
        raise ConfigurationError(
            f"unknown pipeline(s) {sorted(wanted - found)}; found {sorted(found)}"
        )
    if not by_topic:
        raise ConfigurationError(f"no pipeline files in {pipelines_dir}")
    logger.info(
        "pipelines.loaded names=%s", ",".join(p.name for p in by_topic.values())
    )
    return by_topic
