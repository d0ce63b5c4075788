"""The container image, the compose stack and the Kubernetes manifests.

Offline checks, no network and no cluster:

* every core-API manifest validates against the Kubernetes schemas that
  ``kubernetes-validate`` bundles, for :data:`KUBERNETES_VERSION`, strictly
  (unknown fields are errors);
* the custom resources (ServiceMonitor, ScaledObject) and the Kustomization,
  which the package has no schema for, are checked field by field here;
* everything the files name must exist in the project: files in the
  repository, ports the code serves, ``STREAMS_*`` variables that are
  settings fields, metric names of :mod:`streams.observability.metrics`,
  topics and the consumer group of ``config/pipelines`` and the settings
  defaults, and the commands of ``streams``.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import generate_latest
from pydantic import BaseModel

from streams import paths
from streams.cli import build_parser
from streams.kafka.retry_topics import retry_tiers
from streams.kafka.topics import ensure_topics
from streams.observability.metrics import Metrics
from streams.pipeline.config import PipelineConfig
from streams.settings import (
    BrokerSettings,
    KafkaSettings,
    RetrySettings,
    Settings,
    load_settings,
)

ROOT = paths.PROJECT_ROOT
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"

# The schemas the manifests are validated against: a release that managed
# clusters still run, bundled by kubernetes-validate (1.25 to 1.37 in 1.37.0).
KUBERNETES_VERSION = "1.33.0"
CORE_MANIFESTS = (
    "configmap.yaml",
    "secret.example.yaml",
    "deployment.yaml",
    "service.yaml",
    "poddisruptionbudget.yaml",
)
CUSTOM_RESOURCES = ("servicemonitor.yaml", "keda-scaledobject.yaml")

# Ports the stack may name. 9108 is the worker's metrics endpoint (the image's
# STREAMS_OBSERVABILITY__METRICS_PORT, `streams status`'s default); the
# simulator's is the default of `streams simulate-llm --port`; 9092 and 9093
# are the apache/kafka image's broker and controller listeners; 9090 and
# 3000 are Prometheus's and Grafana's own.
METRICS_PORT = 9108
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000


def simulator_port() -> int:
    parser = build_parser()
    arguments = parser.parse_args(["simulate-llm"])
    port: int = arguments.port
    return port


ALLOWED_PORTS = {
    METRICS_PORT,
    simulator_port(),
    KAFKA_PORT,
    KAFKA_CONTROLLER_PORT,
    PROMETHEUS_PORT,
    GRAFANA_PORT,
}

# host:port in a value: "kafka:9092", "http://simulator:8089", "PLAINTEXT://:9092".
HOST_PORT = re.compile(r"(?:^|[\s/@,'\"=])(?:[A-Za-z0-9][\w.-]*)?:(\d{2,5})(?![\d.])")
METRIC_NAME = re.compile(r"\bstreams_[a-z0-9_]+\b")
TOPIC_NAME = re.compile(r"\bevents\.[a-z][a-z0-9.-]*[a-z0-9]\b")
ENV_NAME = re.compile(r"^(STREAMS|DEEPSEEK)_[A-Z0-9_]+$")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")
DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")
DEEPSEEK_VARIABLES = {"DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"}


# -- what the project defines --------------------------------------------------


def pipeline_configs() -> list[PipelineConfig]:
    return [
        PipelineConfig.model_validate(yaml.safe_load(path.read_text()))
        for path in sorted(paths.PIPELINES_DIR.glob("*.yaml"))
    ]


def input_topics() -> set[str]:
    return {config.input_topic for config in pipeline_configs()}


def known_topics() -> set[str]:
    kafka = KafkaSettings()
    tiers = {tier.topic for tier in retry_tiers(RetrySettings())}
    return input_topics() | {kafka.output_topic, kafka.dead_letter_topic} | tiers


def setting_variables() -> set[str]:
    """Every environment variable that names a settings field."""
    names = set(DEEPSEEK_VARIABLES)
    for name, info in Settings.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names.update(
                f"STREAMS_{name.upper()}__{field.upper()}"
                for field in section.model_fields
            )
        else:
            names.add(f"STREAMS_{name.upper()}")
    # The settings file's location, read by Settings.settings_customise_sources.
    if '"STREAMS_CONFIG"' in (ROOT / "streams" / "settings.py").read_text():
        names.add("STREAMS_CONFIG")
    return names


def metric_sample_names() -> set[str]:
    """Every series name a worker exports, from the TYPE lines of its registry.

    The TYPE lines are there even for labelled metrics without a child yet. A
    counter's series is its ``_total`` name; a histogram's are its buckets,
    sum and count; ``_created`` series accompany both.
    """
    text = generate_latest(Metrics().registry).decode()
    suffixes = {
        "counter": ("",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
    }
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        names.update(name + suffix for suffix in suffixes[kind])
        if kind == "counter":
            names.add(name.removesuffix("_total") + "_created")
    return names


def default_partitions() -> int:
    partitions: int = inspect.signature(ensure_topics).parameters["partitions"].default
    return partitions


# -- reading the files ---------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} with NAME unset."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", value)


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: interpolate(str(value)) for key, value in environment.items()}


def manifests(name: str) -> list[dict[str, Any]]:
    return [
        document
        for document in yaml.safe_load_all((K8S_DIR / name).read_text())
        if document
    ]


def manifest(name: str) -> dict[str, Any]:
    (document,) = manifests(name)
    return document


def worker_container() -> dict[str, Any]:
    containers = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "worker"]
    return container


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined."""
    instructions = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_final_stage() -> list[Instruction]:
    instructions = dockerfile_instructions()
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[starts[-1] :]


def dockerfile_env() -> dict[str, str]:
    environment: dict[str, str] = {}
    for instruction in dockerfile_final_stage():
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                environment[key] = value
    return environment


def dockerfile_copies() -> dict[str, Path]:
    """Where the final stage copies project files: image path -> repo path."""
    workdir = "/"
    copies: dict[str, Path] = {}
    for instruction in dockerfile_final_stage():
        if instruction.keyword == "WORKDIR":
            workdir = instruction.arguments
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments:
            source, destination = instruction.arguments.split()
            target = (Path(workdir) / destination).as_posix()
            copies[target.replace("/./", "/")] = ROOT / source
    return copies


def image_path_in_repo(image_path: str) -> Path | None:
    """The repository file an image path comes from, when the image copies it."""
    for destination, source in dockerfile_copies().items():
        if image_path == destination or image_path.startswith(destination + "/"):
            return source / image_path[len(destination) :].lstrip("/")
    return None


def exec_form(arguments: str) -> list[str]:
    value: list[str] = yaml.safe_load(arguments)
    return value


def strings_in(node: Any) -> Iterator[str]:
    """Every key and scalar value of a YAML tree, as text; comments excluded."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)
    elif node is not None:
        yield str(node)


def all_k8s_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in manifests(path.name):
            yield path.name, document


def settings_from(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> Settings:
    """The settings a process with exactly these variables would read."""
    for name in list(os.environ):
        if name.startswith(("STREAMS_", "DEEPSEEK_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings()


# -- Kubernetes: core API, validated against the bundled schemas ---------------


def test_the_pinned_kubernetes_version_is_bundled() -> None:
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("name", CORE_MANIFESTS)
def test_core_manifest_validates_against_the_kubernetes_schemas(name: str) -> None:
    for document in manifests(name):
        problem = validated = None
        try:
            validated = kubernetes_validate.validate(
                document, KUBERNETES_VERSION, strict=True
            )
        except kubernetes_validate.ValidationError as exc:
            location = ".".join(str(part) for part in exc.path)
            problem = f"{name}: {document['kind']} {location}: {exc.message}"
        # Asserted outside the handler, so the report is one line, not the schema.
        assert problem is None, problem
        assert validated == KUBERNETES_VERSION.rsplit(".", 1)[0]


def test_every_manifest_is_a_core_manifest_a_custom_resource_or_kustomization() -> None:
    on_disk = {path.name for path in K8S_DIR.glob("*.yaml")}

    assert on_disk == {*CORE_MANIFESTS, *CUSTOM_RESOURCES, "kustomization.yaml"}


def test_deployment_runs_the_worker_as_non_root_with_probes_and_resources() -> None:
    deployment = manifest("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    container = worker_container()

    assert build_parser().parse_args(container["args"]).command == "run"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"metrics": METRICS_PORT}
    probes = {
        kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "metrics"),
        "livenessProbe": ("/healthz", "metrics"),
        "readinessProbe": ("/readyz", "metrics"),
    }
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_user()[0] != 0
    assert pod["securityContext"]["runAsGroup"] == dockerfile_user()[1]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert (
        selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_deployment_reads_settings_from_the_configmap_and_the_key_from_a_secret() -> (
    None
):
    container = worker_container()
    config_map = manifest("configmap.yaml")
    secret = manifest("secret.example.yaml")

    (source,) = container["envFrom"]
    assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
    (api_key,) = container["env"]
    assert api_key["name"] == "DEEPSEEK_API_KEY"
    reference = api_key["valueFrom"]["secretKeyRef"]
    assert reference["name"] == secret["metadata"]["name"]
    assert reference["key"] in secret["stringData"]
    assert "DEEPSEEK_API_KEY" not in config_map["data"]


def test_the_example_secret_holds_no_key() -> None:
    secret = manifest("secret.example.yaml")

    for value in secret.get("stringData", {}).values():
        assert not re.search(r"sk-[A-Za-z0-9]{8,}", value)
        assert value.startswith("replace-")
    assert "data" not in secret


def test_termination_grace_outlasts_the_worker_shutdown_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(monkeypatch, manifest("configmap.yaml")["data"])
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]

    assert pod["terminationGracePeriodSeconds"] > settings.worker.shutdown_grace_s


def test_service_and_disruption_budget_select_the_worker_pods() -> None:
    pod_labels = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    service = manifest("service.yaml")
    budget = manifest("poddisruptionbudget.yaml")

    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == (
        "metrics",
        METRICS_PORT,
        "metrics",
    )


# -- Kubernetes: custom resources and kustomization, by hand --------------------


# Fields of the ServiceMonitor CRD (monitoring.coreos.com/v1) these files may use.
SERVICE_MONITOR_SPEC_KEYS = {
    "selector",
    "endpoints",
    "namespaceSelector",
    "jobLabel",
    "targetLabels",
    "podTargetLabels",
    "sampleLimit",
}
SERVICE_MONITOR_ENDPOINT_KEYS = {
    "port",
    "path",
    "scheme",
    "interval",
    "scrapeTimeout",
    "honorLabels",
    "relabelings",
    "metricRelabelings",
}


def test_servicemonitor_scrapes_the_metrics_port_of_the_service() -> None:
    monitor = manifest("servicemonitor.yaml")
    service = manifest("service.yaml")

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["name"]
    spec = monitor["spec"]
    assert set(spec) <= SERVICE_MONITOR_SPEC_KEYS
    assert (
        spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= SERVICE_MONITOR_ENDPOINT_KEYS
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"
        assert DURATION.match(endpoint["interval"])
        assert DURATION.match(endpoint["scrapeTimeout"])
        assert seconds(endpoint["scrapeTimeout"]) <= seconds(endpoint["interval"])


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(
        int(amount) * units[unit]
        for amount, unit in re.findall(r"(\d+)(ms|s|m|h)", duration)
    )


KAFKA_TRIGGER_KEYS = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "scaleToZeroOnInvalidOffset",
    "excludePersistentLag",
    "limitToPartitionsWithLag",
}


def test_scaledobject_scales_the_deployment_on_the_lag_of_every_input_topic() -> None:
    scaled = manifest("keda-scaledobject.yaml")
    deployment = manifest("deployment.yaml")
    config_map = manifest("configmap.yaml")["data"]

    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["kind"] == "ScaledObject"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        deployment["kind"],
        deployment["metadata"]["name"],
    )
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    # More replicas than partitions of a topic would sit idle.
    assert spec["maxReplicaCount"] <= default_partitions()
    assert isinstance(spec["pollingInterval"], int)
    assert isinstance(spec["cooldownPeriod"], int)
    assert "replicas" not in deployment["spec"]

    topics = set()
    for trigger in spec["triggers"]:
        assert trigger["type"] == "kafka"
        metadata = trigger["metadata"]
        # KEDA's trigger metadata is a map of strings.
        assert all(isinstance(value, str) for value in metadata.values())
        assert set(metadata) <= KAFKA_TRIGGER_KEYS
        assert (
            metadata["bootstrapServers"]
            == config_map["STREAMS_KAFKA__BOOTSTRAP_SERVERS"]
        )
        assert metadata["consumerGroup"] == config_map["STREAMS_KAFKA__GROUP_ID"]
        assert metadata["offsetResetPolicy"] == KafkaSettings().auto_offset_reset
        assert int(metadata["lagThreshold"]) > 0
        topics.add(metadata["topic"])
    assert topics == input_topics()


def test_scaledobject_scaling_behaviour_is_a_valid_hpa_behaviour() -> None:
    """KEDA passes ``advanced.horizontalPodAutoscalerConfig`` to the HPA as is."""
    scaled = manifest("keda-scaledobject.yaml")["spec"]
    behaviour = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-streams-worker"},
        "spec": {
            "scaleTargetRef": scaled["scaleTargetRef"],
            "minReplicas": scaled["minReplicaCount"],
            "maxReplicas": scaled["maxReplicaCount"],
            "behavior": behaviour,
        },
    }

    kubernetes_validate.validate(autoscaler, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_except_the_example_secret() -> None:
    kustomization = manifest("kustomization.yaml")

    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert set(kustomization["resources"]) == {
        *CORE_MANIFESTS,
        *CUSTOM_RESOURCES,
    } - {"secret.example.yaml"}
    for resource in kustomization["resources"]:
        assert (K8S_DIR / resource).is_file()
    image_name = worker_container()["image"].split(":")[0]
    assert [image["name"] for image in kustomization["images"]] == [image_name]


# -- the image -------------------------------------------------------------------


def dockerfile_user() -> tuple[int, int]:
    (user,) = [i for i in dockerfile_final_stage() if i.keyword == "USER"]
    uid, _, gid = user.arguments.partition(":")
    return int(uid), int(gid or uid)


def test_image_is_multi_stage_and_runs_as_a_numeric_non_root_user() -> None:
    froms = [i for i in dockerfile_instructions() if i.keyword == "FROM"]

    assert len(froms) >= 2
    assert all("slim" in i.arguments or "${" in i.arguments for i in froms)
    uid, gid = dockerfile_user()
    assert uid != 0
    assert gid != 0


def test_image_serves_metrics_on_9108_on_every_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    final = dockerfile_final_stage()
    exposed = [i.arguments for i in final if i.keyword == "EXPOSE"]
    environment = dockerfile_env()

    assert exposed == [str(METRICS_PORT)]
    in_repo = {
        name: str(image_path_in_repo(value) or value)
        for name, value in environment.items()
        if ENV_NAME.match(name)
    }
    settings = settings_from(monkeypatch, in_repo)
    assert settings.observability.metrics_host == "0.0.0.0"
    assert settings.observability.metrics_port == METRICS_PORT


def test_image_healthcheck_probes_healthz_with_python() -> None:
    (check,) = [i for i in dockerfile_final_stage() if i.keyword == "HEALTHCHECK"]
    command = exec_form(check.arguments.split(" CMD ", 1)[1])

    assert command[0] == "python"
    assert "/healthz" in command[-1]
    assert "STREAMS_OBSERVABILITY__METRICS_PORT" in command[-1]
    assert str(METRICS_PORT) in command[-1]
    assert "curl" not in check.arguments
    compile(command[-1], "<healthcheck>", "exec")


def test_image_entrypoint_is_the_streams_command_and_runs_the_worker() -> None:
    final = dockerfile_final_stage()
    (entrypoint,) = [i for i in final if i.keyword == "ENTRYPOINT"]
    (command,) = [i for i in final if i.keyword == "CMD"]
    scripts = (ROOT / "pyproject.toml").read_text()

    assert exec_form(entrypoint.arguments) == ["streams"]
    assert re.search(r'^streams = "streams\.cli:main"$', scripts, re.MULTILINE)
    assert build_parser().parse_args(exec_form(command.arguments)).command == "run"


def test_image_copies_files_that_exist_and_points_the_settings_at_them() -> None:
    copies = dockerfile_copies()
    environment = dockerfile_env()

    for destination, source in copies.items():
        assert source.exists(), f"COPY source {source} for {destination} is missing"
    for name in ("STREAMS_CONFIG", "STREAMS_PIPELINES_DIR", "STREAMS_SCHEMAS_DIR"):
        in_repo = image_path_in_repo(environment[name])
        assert in_repo is not None, f"{name}={environment[name]} is not copied"
        assert in_repo.exists(), f"{name}={environment[name]} -> {in_repo} missing"
    assert image_path_in_repo(environment["STREAMS_PIPELINES_DIR"]) == (
        paths.PIPELINES_DIR
    )
    assert image_path_in_repo(environment["STREAMS_SCHEMAS_DIR"]) == paths.SCHEMAS_DIR
    assert image_path_in_repo("/app/data/sample") == paths.SAMPLE_DATA_DIR


def test_image_build_stage_copies_what_the_package_build_needs() -> None:
    instructions = dockerfile_instructions()
    final_start = instructions.index(dockerfile_final_stage()[0])
    build_copies = [
        i.arguments.split()[:-1]
        for i in instructions[:final_start]
        if i.keyword == "COPY"
    ]

    for sources in build_copies:
        for source in sources:
            assert (ROOT / source).exists()
    assert ["pyproject.toml", "README.md"] in build_copies


# -- the compose stack ---------------------------------------------------------

SERVICE_KEYS = {
    "build",
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "depends_on",
    "healthcheck",
    "ports",
    "expose",
    "volumes",
    "restart",
    "stop_grace_period",
    "stop_signal",
    "user",
    "working_dir",
    "networks",
    "hostname",
    "deploy",
    "profiles",
}
HEALTHCHECK_KEYS = {
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
}
DEPENDENCY_CONDITIONS = set(
    ["service_started", "service_healthy", "service_completed_successfully"]
)
IMAGE_SERVICES = {"simulator", "worker-1", "worker-2", "producer"}
SERVICE_PORTS = {
    "kafka": {KAFKA_PORT, KAFKA_CONTROLLER_PORT},
    "simulator": {simulator_port()},
    "worker-1": {METRICS_PORT},
    "worker-2": {METRICS_PORT},
    "producer": set(),
    "prometheus": {PROMETHEUS_PORT},
    "grafana": {GRAFANA_PORT},
}


def test_compose_file_has_valid_structure() -> None:
    document = compose()
    services = compose_services()

    assert {key for key in document if not key.startswith("x-")} <= {
        "name",
        "services",
        "volumes",
        "networks",
        "configs",
        "secrets",
    }
    assert set(services) == set(SERVICE_PORTS)
    named_volumes = set(document.get("volumes") or {})
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        assert "image" in service or "build" in service
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in DEPENDENCY_CONDITIONS
        if "healthcheck" in service:
            assert set(service["healthcheck"]) <= HEALTHCHECK_KEYS
            test = service["healthcheck"].get("test")
            assert test is None or test[0] in {"CMD", "CMD-SHELL", "NONE"}
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in named_volumes, f"{name}: undeclared volume {source}"
        assert isinstance(service.get("command", []), list)


def test_compose_uses_the_official_images() -> None:
    services = compose_services()

    assert (
        services["kafka"]["image"] == f"apache/kafka:{BrokerSettings().kafka_version}"
    )
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name in IMAGE_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (
            ROOT / services[name]["build"]["context"] / "deploy/Dockerfile"
        ).is_file()
        assert services[name]["image"] == services["simulator"]["image"]


def test_compose_kafka_is_a_single_kraft_node_listening_on_9092() -> None:
    environment = service_environment(compose_services()["kafka"])

    assert set(environment["KAFKA_PROCESS_ROLES"].split(",")) == {
        "broker",
        "controller",
    }
    assert (
        environment["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://kafka:{KAFKA_PORT}"
    )
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
        f"1@kafka:{KAFKA_CONTROLLER_PORT}"
    )


def test_compose_commands_are_streams_commands() -> None:
    parser = build_parser()
    services = compose_services()
    commands = {name: services[name]["command"] for name in IMAGE_SERVICES}

    parsed = {name: parser.parse_args(command) for name, command in commands.items()}
    assert parsed["simulator"].command == "simulate-llm"
    assert parsed["simulator"].host == "0.0.0.0"
    assert parsed["worker-1"].command == parsed["worker-2"].command == "run"
    assert parsed["producer"].command == "produce"
    data_dir = image_path_in_repo(str(parsed["producer"].data_dir))
    assert data_dir == paths.SAMPLE_DATA_DIR


def test_compose_workers_share_one_group_and_reach_kafka_and_the_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose_services()

    groups = set()
    for name in ("worker-1", "worker-2"):
        settings = settings_from(monkeypatch, service_environment(services[name]))
        groups.add(settings.kafka.group_id)
        assert settings.kafka.bootstrap_servers == f"kafka:{KAFKA_PORT}"
        assert settings.llm.base_url == f"http://simulator:{simulator_port()}"
        assert settings.llm.api_key is not None
        assert settings.observability.metrics_host == "0.0.0.0"
        assert settings.observability.metrics_port == METRICS_PORT
        assert seconds(services[name]["stop_grace_period"]) > (
            settings.worker.shutdown_grace_s
        )
    assert groups == {KafkaSettings().group_id}


def test_compose_publishes_only_known_ports_and_only_on_loopback() -> None:
    published_host_ports = []
    for name, service in compose_services().items():
        for mapping in service.get("ports", []):
            host, host_port, container_port = mapping.split(":")
            assert host == "127.0.0.1", f"{name} publishes {mapping} beyond loopback"
            assert int(container_port) in SERVICE_PORTS[name], f"{name}: {mapping}"
            published_host_ports.append(host_port)
    assert len(published_host_ports) == len(set(published_host_ports))


def test_compose_grafana_lets_anonymous_users_view() -> None:
    environment = service_environment(compose_services()["grafana"])

    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# Files of the monitoring stack, mounted by docker-compose.yml.
MONITORING_MOUNTS = {
    "prometheus": {
        "deploy/prometheus/prometheus.yml": "/etc/prometheus/prometheus.yml",
        "deploy/prometheus/alerts.yml": "/etc/prometheus/alerts.yml",
    },
    "grafana": {
        "deploy/grafana/provisioning": "/etc/grafana/provisioning",
        "deploy/grafana/dashboards": "/var/lib/grafana/dashboards/streams",
    },
}


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[source.removeprefix("./")] = target
    return mounts


def test_compose_mounts_the_monitoring_files_read_only() -> None:
    services = compose_services()

    for name, expected in MONITORING_MOUNTS.items():
        assert bind_mounts(services[name]) == expected
        for volume in services[name]["volumes"]:
            if volume.startswith("."):
                assert volume.endswith(":ro")


def test_every_file_compose_mounts_exists_in_the_repository() -> None:
    missing = [
        source
        for service in compose_services().values()
        for source in bind_mounts(service)
        if not (ROOT / source).exists()
    ]

    assert not missing, f"referenced by docker-compose.yml but missing: {missing}"


def test_prometheus_scrapes_the_compose_workers_when_its_config_exists() -> None:
    config_file = ROOT / "deploy/prometheus/prometheus.yml"
    if not config_file.exists():
        pytest.skip("deploy/prometheus/prometheus.yml is not written yet")
    config = yaml.safe_load(config_file.read_text())
    services = compose_services()

    targets = {
        target
        for job in config.get("scrape_configs", [])
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }
    workers = {f"{name}:{METRICS_PORT}" for name in ("worker-1", "worker-2")}
    assert workers <= targets
    for target in targets:
        host, _, port = target.rpartition(":")
        assert host in services or host in {"localhost", "127.0.0.1"}, target
        assert int(port) in SERVICE_PORTS.get(host, {PROMETHEUS_PORT}), target
    mounted = set(MONITORING_MOUNTS["prometheus"].values())
    config_dir = "/etc/prometheus"
    for rule_file in config.get("rule_files", []):
        absolute = (
            rule_file if rule_file.startswith("/") else f"{config_dir}/{rule_file}"
        )
        assert absolute in mounted, f"rule file {rule_file} is not mounted"


def test_grafana_provisioning_matches_the_mounts_when_it_exists() -> None:
    provisioning = ROOT / "deploy/grafana/provisioning"
    providers = sorted(provisioning.glob("dashboards/*.y*ml"))
    sources = sorted(provisioning.glob("datasources/*.y*ml"))
    if not providers and not sources:
        pytest.skip("deploy/grafana/provisioning is not written yet")
    mounts = bind_mounts(compose_services()["grafana"])
    services = compose_services()

    for provider_file in providers:
        for provider in yaml.safe_load(provider_file.read_text()).get("providers", []):
            path = provider["options"]["path"]
            assert any(
                path == target
                or (
                    path.startswith(target + "/")
                    and (ROOT / source / path[len(target) + 1 :]).is_dir()
                )
                for source, target in mounts.items()
            ), f"{provider_file.name}: {path} is not a mounted folder"
    for source_file in sources:
        for source in yaml.safe_load(source_file.read_text()).get("datasources", []):
            host, _, port = source["url"].split("//", 1)[1].partition(":")
            assert host in services, f"{source_file.name}: {source['url']}"
            assert int(port.split("/")[0]) in SERVICE_PORTS[host], source["url"]


# -- names shared by every file ------------------------------------------------


def deployment_sources() -> dict[str, str]:
    """File name -> text of every file this test vouches for."""
    sources = {
        "docker-compose.yml": COMPOSE_FILE.read_text(),
        "deploy/Dockerfile": DOCKERFILE.read_text(),
    }
    for path in sorted(K8S_DIR.glob("*.yaml")):
        sources[f"deploy/k8s/{path.name}"] = path.read_text()
    return sources


def environment_variables() -> dict[str, set[str]]:
    """Every STREAMS_* or DEEPSEEK_* variable a file sets, by file."""
    found: dict[str, set[str]] = {
        "deploy/Dockerfile": set(dockerfile_env()),
        "docker-compose.yml": {
            name
            for service in compose_services().values()
            for name in service_environment(service)
        },
    }
    for name, document in all_k8s_documents():
        names = found.setdefault(f"deploy/k8s/{name}", set())
        if document["kind"] == "ConfigMap":
            names.update(document["data"])
        if document["kind"] == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                names.update(variable["name"] for variable in container.get("env", []))
    return {
        file: {name for name in names if ENV_NAME.match(name)}
        for file, names in found.items()
    }


def test_environment_variables_name_settings_fields() -> None:
    fields = setting_variables()

    for file, names in environment_variables().items():
        assert names <= fields, f"{file}: not settings fields: {names - fields}"
    # The scan itself found what it should.
    assert (
        "STREAMS_KAFKA__GROUP_ID"
        in environment_variables()["deploy/k8s/configmap.yaml"]
    )


def test_configmap_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    data = manifest("configmap.yaml")["data"]

    settings = settings_from(monkeypatch, data)

    defaults = KafkaSettings()
    assert settings.kafka.group_id == defaults.group_id
    assert settings.kafka.output_topic == defaults.output_topic
    assert settings.kafka.dead_letter_topic == defaults.dead_letter_topic
    assert settings.observability.metrics_host == "0.0.0.0"
    assert settings.observability.metrics_port == METRICS_PORT
    assert settings.observability.log_format == "json"


def test_ports_named_anywhere_are_ports_the_stack_serves() -> None:
    for file, text in deployment_sources().items():
        if file == "docker-compose.yml":
            # Published host ports are checked separately; the rest is scanned.
            services = {
                name: {key: value for key, value in service.items() if key != "ports"}
                for name, service in compose_services().items()
            }
            values = list(strings_in(services))
        elif file == "deploy/Dockerfile":
            values = [
                i.arguments for i in dockerfile_instructions() if i.keyword != "USER"
            ]
            values += [value for value in dockerfile_env().values()]
        else:
            values = list(strings_in(list(yaml.safe_load_all(text))))
        for value in values:
            for port in HOST_PORT.findall(value):
                assert int(port) in ALLOWED_PORTS, f"{file}: port {port} in {value!r}"


def integer_ports(node: Any) -> Iterator[int]:
    """Values of Kubernetes port fields that are numbers."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"port", "containerPort", "targetPort"} and isinstance(
                value, int
            ):
                yield value
            else:
                yield from integer_ports(value)
    elif isinstance(node, list):
        for item in node:
            yield from integer_ports(item)


def test_kubernetes_port_fields_are_ports_the_stack_serves() -> None:
    for name, document in all_k8s_documents():
        for port in integer_ports(document):
            assert port in ALLOWED_PORTS, f"{name}: port {port}"


def monitoring_sources() -> dict[str, str]:
    """The alert rules and dashboards, which query the worker's metrics."""
    files = [
        *sorted((ROOT / "deploy/prometheus").glob("*.yml")),
        *sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")),
    ]
    return {path.relative_to(ROOT).as_posix(): path.read_text() for path in files}


def test_metric_names_anywhere_are_metrics_the_worker_exports() -> None:
    exported = metric_sample_names()
    sources = {**deployment_sources(), **monitoring_sources()}

    for file, text in sources.items():
        for name in METRIC_NAME.findall(text):
            assert name in exported, f"{file}: unknown metric {name}"


def test_topic_names_anywhere_are_pipeline_or_output_topics() -> None:
    topics = known_topics()

    for file, text in deployment_sources().items():
        for topic in TOPIC_NAME.findall(text):
            assert topic in topics, f"{file}: unknown topic {topic}"


def test_image_paths_anywhere_are_files_the_image_copies() -> None:
    image_path = re.compile(r"(?<![\w.])/app/[\w./-]+")

    for file, text in deployment_sources().items():
        for path in image_path.findall(text):
            in_repo = image_path_in_repo(path.rstrip("."))
            assert in_repo is not None, f"{file}: {path} is not in the image"
            assert in_repo.exists(), f"{file}: {path} -> {in_repo} is missing"
