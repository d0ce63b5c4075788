"""Settings: one frozen model, read from a YAML file and the environment.

Precedence, highest first: keyword arguments, environment variables with the
``STREAMS_`` prefix (nested sections joined by ``__``, for example
``STREAMS_KAFKA__BOOTSTRAP_SERVERS``), the YAML file named by
``STREAMS_CONFIG`` (default ``config/streams.yaml``), then the defaults here.
``DEEPSEEK_API_KEY`` and ``DEEPSEEK_BASE_URL`` are read as well, because that is
where users already keep them.

librdkafka's dotted keys are produced in exactly one place per client:
:meth:`KafkaSettings.consumer_config` and :meth:`KafkaSettings.producer_config`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from streams import paths
from streams.kafka.retry_topics import check_tier_delays

LOCAL_BOOTSTRAP = "127.0.0.1:19092"
DEEPSEEK_BASE_URL = "https://api.deepseek.com"


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(Section):
    """How the worker talks to Kafka."""

    bootstrap_servers: str = Field(
        LOCAL_BOOTSTRAP,
        description="Comma-separated host:port list; the local broker by default.",
    )
    group_id: str = Field("streams-enricher", description="Consumer group id.")
    output_topic: str = Field("events.enriched", description="Enriched events.")
    dead_letter_topic: str = Field(
        "events.dead-letter", description="Records that could not be enriched."
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a group with no committed offset starts."
    )
    session_timeout_ms: int = Field(45_000, ge=6_000)
    max_poll_interval_ms: int = Field(
        300_000,
        ge=1_000,
        description="librdkafka evicts a member that does not poll for this long; "
        "the worker polls continuously, so slow LLM calls do not count.",
    )
    max_message_bytes: int = Field(
        1_000_000,
        ge=1_024,
        description="Largest record the worker produces; larger enriched records "
        "are dead-lettered with reason output_too_large before producing.",
    )
    client_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka properties (security, tuning) for every client.",
    )
    client_secret_config: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="librdkafka properties that are secrets, e.g. sasl.password.",
    )

    def common_config(self) -> dict[str, Any]:
        """Properties shared by every client, secrets included."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        config.update(self.client_config)
        config.update(
            {
                key: value.get_secret_value()
                for key, value in self.client_secret_config.items()
            }
        )
        return config

    def consumer_config(self, *, group_id: str | None = None) -> dict[str, Any]:
        """librdkafka consumer properties: manual commits of stored offsets only."""
        config = self.common_config()
        config.update(
            {
                "group.id": group_id or self.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": self.auto_offset_reset,
                "session.timeout.ms": self.session_timeout_ms,
                "max.poll.interval.ms": self.max_poll_interval_ms,
                "partition.assignment.strategy": "cooperative-sticky",
                "enable.partition.eof": False,
            }
        )
        return config

    def producer_config(self) -> dict[str, Any]:
        """librdkafka producer properties: idempotent, fully acknowledged."""
        config = self.common_config()
        config.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": self.max_message_bytes + 64_000,
                "delivery.timeout.ms": 120_000,
            }
        )
        return config


class LLMSettings(Section):
    """How the worker calls the chat-completions API."""

    base_url: str = Field(DEEPSEEK_BASE_URL, description="API base URL.")
    api_key: SecretStr | None = Field(None, description="API key; DEEPSEEK_API_KEY.")
    model: str | None = Field(
        None, description="Overrides every pipeline's model when set."
    )
    call_deadline_s: float = Field(
        60.0,
        gt=0,
        description="Absolute deadline of one call; keep-alive bytes cannot extend it.",
    )
    connect_timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(
        3, ge=1, description="In-process attempts per event, the first included."
    )
    backoff_base_s: float = Field(0.5, ge=0, description="First backoff ceiling.")
    backoff_cap_s: float = Field(20.0, ge=0, description="Largest single backoff.")
    retry_after_cap_s: float = Field(
        60.0, ge=0, description="A server's retry-after is honoured up to this."
    )
    event_deadline_s: float = Field(
        300.0, gt=0, description="Total time one event may spend in LLM attempts."
    )
    max_in_flight: int = Field(
        256,
        ge=1,
        description="LLM calls in flight across all pipelines; the ceiling of the "
        "adaptive limit.",
    )
    adaptive_concurrency: bool = Field(
        True,
        description="Lower the in-flight limit on 429, 503 and high latency, raise "
        "it again after successes; off: the limit stays at max_in_flight.",
    )
    concurrency_floor: int = Field(
        8, ge=1, description="The adaptive limit never goes below this."
    )
    concurrency_decrease_factor: float = Field(
        0.7, gt=0, lt=1, description="One decrease multiplies the limit by this."
    )
    concurrency_cooldown_s: float = Field(
        5.0, ge=0, description="Least time between two decreases of the limit."
    )
    latency_target_s: float | None = Field(
        None,
        gt=0,
        description="Smoothed answer latency above which the limit decreases; "
        "latency is not used when unset.",
    )
    requests_per_minute: float | None = Field(
        None, gt=0, description="Calls per minute, all pipelines; no limit when unset."
    )
    tokens_per_minute: float | None = Field(
        None,
        gt=0,
        description="Prompt plus completion tokens per minute, all pipelines, "
        "estimated before each call and corrected from usage; no limit when unset.",
    )
    circuit_failure_threshold: int = Field(
        5, ge=1, description="Transient failures in a row that open the circuit."
    )
    circuit_cooldown_s: float = Field(
        5.0, gt=0, description="Wait before the first probe of an open circuit."
    )
    circuit_max_cooldown_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait between probes; the wait doubles per failed probe.",
    )
    transport: Literal["aiohttp", "openai-sdk"] = Field(
        "aiohttp",
        description="aiohttp: a lean client, about a tenth of the SDK's CPU per "
        "call; openai-sdk: the openai package's AsyncOpenAI. Same requests, "
        "answers and error handling.",
    )
    disable_thinking: bool = Field(
        True, description="Send thinking disabled; extraction needs no reasoning."
    )


class WorkerSettings(Section):
    """The poll loop and its bounds."""

    max_buffered: int = Field(
        2_000,
        ge=1,
        description="Records received and not yet committed before intake pauses; "
        "also the most records a crash can make the next owner redo.",
    )
    resume_ratio: float = Field(
        0.5, gt=0, lt=1, description="Intake resumes below this share of the bound."
    )
    commit_interval_s: float = Field(1.0, gt=0)
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="How long shutdown waits for in-flight work."
    )
    revoke_grace_s: float = Field(
        5.0, ge=0, description="How long a revocation waits for produced records."
    )
    ordering: Literal["unordered", "key"] = Field(
        "unordered",
        description="unordered: any record of a partition may finish first; key: "
        "records with the same key are enriched and produced in offset order.",
    )
    result_cache_size: int = Field(100_000, ge=0, description="Enrichments kept.")
    tombstones: Literal["dead_letter", "skip"] = Field(
        "dead_letter", description="What a record with a null value becomes."
    )


class RetrySettings(Section):
    """Delayed retry tiers: where an event goes when its in-process attempts ran out.

    A transient failure that outlasts ``llm.max_attempts`` (or the event
    deadline) sends the record to the next tier's topic instead of the
    dead-letter topic; it is tried again once the tier's delay has passed.
    After the last tier it is dead-lettered. See ``docs/retry-topics.md``.
    """

    tiers_s: list[float] = Field(
        default_factory=lambda: [30.0, 300.0, 3600.0],
        description="Delay of each tier in seconds, strictly increasing; an empty "
        "list sends exhausted events straight to the dead-letter topic.",
    )
    topic_prefix: str = Field(
        "events.retry",
        min_length=1,
        description="Tier topics are named <prefix>.<delay>, e.g. events.retry.5m.",
    )

    @field_validator("tiers_s")
    @classmethod
    def _check_tiers(cls, tiers: list[float]) -> list[float]:
        check_tier_delays(tiers)
        return tiers


class ModelPrice(Section):
    """USD per one million tokens, off-peak."""

    cache_hit: float = Field(ge=0)
    cache_miss: float = Field(ge=0)
    output: float = Field(ge=0)


class PeakWindow(Section):
    """A daily UTC window, on the given weekdays (0 = Monday), at a multiplier."""

    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    start: str = Field(description="HH:MM, UTC, inclusive.")
    end: str = Field(description="HH:MM, UTC, exclusive.")


class PricingSettings(Section):
    """The provider's price list; it changes, so it is configuration."""

    models: dict[str, ModelPrice] = Field(
        default_factory=lambda: {
            "deepseek-flash": ModelPrice(cache_hit=0.003, cache_miss=0.15, output=0.60),
            "deepseek-v4-pro": ModelPrice(
                cache_hit=0.022, cache_miss=0.66, output=1.98
            ),
        }
    )
    peak_multiplier: float = Field(2.0, ge=1)
    peak_windows: list[PeakWindow] = Field(
        default_factory=lambda: [
            PeakWindow(start="01:00", end="04:00"),
            PeakWindow(start="06:00", end="10:00"),
        ]
    )


class BrokerSettings(Section):
    """The local single-node Kafka broker run from Maven Central jars."""

    kafka_version: str = Field("4.1.1", description="Apache Kafka release.")
    cache_dir: Path = Field(paths.CACHE_DIR / "kafka", description="Jars, reused.")
    state_dir: Path = Field(paths.STATE_DIR / "broker", description="Data and pid.")
    host: str = Field("127.0.0.1", description="Listener address; loopback.")
    port: int = Field(19092, ge=1, le=65535)
    controller_port: int = Field(19093, ge=1, le=65535)
    heap: str = Field("512m", description="JVM heap, -Xmx.")
    start_timeout_s: float = Field(90.0, gt=0)


class ObservabilitySettings(Section):
    """Logs and the metrics endpoint."""

    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text on a terminal, JSON lines otherwise."
    )
    log_level: str = Field("INFO")
    metrics_host: str = Field("127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of /metrics, /healthz and /readyz; off when unset.",
    )
    readiness_circuit_open_s: float = Field(
        300.0,
        gt=0,
        description="/readyz fails once the LLM circuit is open this long.",
    )


class Settings(BaseSettings):
    """Everything the service reads at start."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="STREAMS_",
        env_nested_delimiter="__",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)  # type: ignore[arg-type]  # all fields default
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]  # all fields default
    worker: WorkerSettings = Field(default_factory=WorkerSettings)  # type: ignore[arg-type]  # all fields default
    retry: RetrySettings = Field(default_factory=RetrySettings)  # type: ignore[arg-type]  # all fields default
    pricing: PricingSettings = Field(default_factory=PricingSettings)  # type: ignore[arg-type]  # all fields default
    broker: BrokerSettings = Field(default_factory=BrokerSettings)  # type: ignore[arg-type]  # all fields default
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)  # type: ignore[arg-type]  # all fields default
    pipelines_dir: Path = Field(paths.PIPELINES_DIR)
    schemas_dir: Path = Field(paths.SCHEMAS_DIR)
    pipelines: list[str] | None = Field(
        None, description="Names of the pipelines to run; all when unset."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Adds the YAML file below the environment."""
        named = os.environ.get("STREAMS_CONFIG")
        config_file = Path(named) if named else paths.CONFIG_DIR / "streams.yaml"
        if named and not config_file.is_file():
            raise ValueError(f"STREAMS_CONFIG names {named}, which is not a file")
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file)
        return (init_settings, env_settings, yaml_source)


def load_settings(**overrides: Any) -> Settings:
    """Reads the settings, folding in the DeepSeek variables users already set.

    Args:
        **overrides: Section values that win over files and environment.

    Returns:
        The frozen settings.
    """
    settings = Settings(**overrides)
    llm_updates: dict[str, Any] = {}
    api_key = os.environ.get("DEEPSEEK_API_KEY")
    if api_key and settings.llm.api_key is None:
        llm_updates["api_key"] = SecretStr(api_key)
    base_url = os.environ.get("DEEPSEEK_BASE_URL")
    if base_url and "STREAMS_LLM__BASE_URL" not in os.environ:
        llm_updates["base_url"] = base_url
    if llm_updates:
        settings = settings.model_copy(
            update={"llm": settings.llm.model_copy(update=llm_updates)}
        )
    return settings
