"""Request packing on the real broker with the simulator: fewer calls, nothing lost.

Each run has its own simulator process (so its prompt cache and counters
belong to the run), its own topics and group, and only the tickets pipeline,
whose file gets a ``packing`` section for the packed runs. The comparison at
the end is the measurement quoted in ``docs/packing.md``; it prints its
figures (run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams import json_codec, paths
from streams.data.produce import ProduceReport, produce_events
from streams.demo.ledger import Outcome
from streams.llm.pricing import PriceList
from streams.llm.usage import Usage
from streams.pipeline.config import compile_schema, load_pipelines
from streams.service import build_service
from streams.settings import PricingSettings
from tests.integration.harness import isolate, own_simulator, run_worker_until

pytestmark = pytest.mark.broker

PACKING = {"max_items": 8, "max_prompt_tokens": 3000, "max_wait_ms": 20}
OFF_PEAK = PricingSettings(peak_windows=[])


@dataclass
class TicketRun:
    """What one run produced, wrote and spent."""

    report: ProduceReport
    outcomes: dict[tuple[str, int, int], list[Outcome]]
    simulator: dict[str, Any]
    packed_items: dict[str, float]
    llm_calls: int

    @property
    def enriched(self) -> list[Outcome]:
        return [
            o for outs in self.outcomes.values() for o in outs if o.kind == "enriched"
        ]

    def usage(self) -> Usage:
        stats = self.simulator
        return Usage(
            prompt_cache_hit_tokens=stats["prompt_cache_hit_tokens"],
            prompt_cache_miss_tokens=stats["prompt_cache_miss_tokens"],
            completion_tokens=stats["completion_tokens"],
        )


def run_tickets(
    tmp_path: Path,
    bootstrap: str,
    *,
    limit: int,
    packing: dict[str, Any] | None,
    faults: dict[str, Any] | None = None,
    duplicate_ratio: float = 0.0,
) -> TicketRun:
    tmp_path.mkdir(parents=True, exist_ok=True)
    options = ["--latency-mean-ms", "20"]
    if faults:
        options += ["--faults", json.dumps(faults)]
    with own_simulator(tmp_path, *options) as simulator:
        isolated = isolate(tmp_path, bootstrap, simulator.url)
        if packing is not None:
            tickets_file = isolated.settings.pipelines_dir / "tickets.yaml"
            config = yaml.safe_load(tickets_file.read_text())
            config["packing"] = packing
            tickets_file.write_text(yaml.safe_dump(config, sort_keys=False))
        settings = isolated.settings.model_copy(update={"pipelines": ["tickets"]})
        report = produce_events(
            bootstrap,
            pipelines=["tickets"],
            limit_per_source=limit,
            duplicate_ratio=duplicate_ratio,
            malformed=False,
            topics={"tickets": isolated.topics["tickets"]},
        )
        service = build_service(settings)
        ledger = isolated.ledger()
        expected = {(r.topic, r.partition, r.offset) for r in report.records}
        try:
            missing = asyncio.run(
                run_worker_until(service.worker.run, ledger, expected, 180)
            )
            assert not missing, f"{len(missing)} inputs have no outcome"
            registry = service.worker.metrics.registry
            packed_items = {
                outcome: registry.get_sample_value(
                    "streams_llm_packed_items_total",
                    {"pipeline": "tickets", "outcome": outcome},
                )
                or 0.0
                for outcome in ("answered", "retried_alone", "fallback", "alone")
            }
            return TicketRun(
                report=report,
                outcomes=dict(ledger.outcomes),
                simulator=simulator.stats(),
                packed_items=packed_items,
                llm_calls=service.worker.stats.llm_calls,
            )
        finally:
            ledger.close()


def assert_everything_enriched_once_and_valid(run: TicketRun) -> None:
    for record in run.report.records:
        (outcome,) = run.outcomes[(record.topic, record.partition, record.offset)]
        assert outcome.kind == "enriched", (record, outcome.reason)
        assert outcome.event_id == record.event_id
    assert Counter(o.event_id for o in run.enriched) == Counter(
        r.event_id for r in run.report.records
    )
    validate_enriched = compile_schema(paths.SCHEMAS_DIR, "enriched_event.schema.json")
    (tickets,) = [
        p
        for p in load_pipelines(paths.PIPELINES_DIR, paths.SCHEMAS_DIR).values()
        if p.name == "tickets"
    ]
    for outcome in run.enriched:
        record = json_codec.loads(outcome.value or b"")
        validate_enriched(record)
        tickets.validate_output(record["enrichment"])


def recorded_usage(run: TicketRun) -> Usage:
    """The usage the output records carry, summed over the events' own calls."""
    total = Usage()
    for outcome in run.enriched:
        if outcome.dedup == "miss":
            usage = outcome.metadata["usage"]
            total = total + Usage(
                usage["prompt_cache_hit_tokens"],
                usage["prompt_cache_miss_tokens"],
                usage["completion_tokens"],
                usage["reasoning_tokens"],
            )
    return total


def test_a_packed_pipeline_with_spoiled_items_enriches_every_ticket(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    faults = {"rates": {"packed_item_dropped": 0.3, "packed_item_malformed": 0.2}}
    run = run_tickets(
        tmp_path,
        kafka_bootstrap,
        limit=160,
        packing=PACKING,
        faults=faults,
        duplicate_ratio=0.1,
    )

    assert_everything_enriched_once_and_valid(run)
    events = len(run.report.records)
    requests = run.simulator["requests_total"]
    print(
        "packing with spoiled items:",
        json.dumps({"events": events, "llm_calls": requests, **run.packed_items}),
    )
    assert requests == run.llm_calls
    assert requests < events / 2, (requests, events)
    assert run.packed_items["retried_alone"] > 0
    assert run.packed_items["answered"] > events / 2
    # Per-event accounting adds up to what the provider reported.
    assert recorded_usage(run) == run.usage()


def test_packing_makes_fewer_calls_and_spends_fewer_prompt_tokens(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    single = run_tickets(tmp_path / "single", kafka_bootstrap, limit=600, packing=None)
    packed = run_tickets(
        tmp_path / "packed", kafka_bootstrap, limit=600, packing=PACKING
    )

    for run in (single, packed):
        assert_everything_enriched_once_and_valid(run)
        assert recorded_usage(run) == run.usage()
    prices = PriceList(OFF_PEAK)
    figures = {}
    for name, run in (("single", single), ("packed", packed)):
        events = len(run.report.records)
        usage = run.usage()
        per_thousand = 1000 / events
        figures[name] = {
            "events": events,
            "llm_calls": run.simulator["requests_total"],
            "prompt_tokens_per_1000": round(usage.prompt_tokens * per_thousand),
            "cache_hit_tokens_per_1000": round(
                usage.prompt_cache_hit_tokens * per_thousand
            ),
            "cache_miss_tokens_per_1000": round(
                usage.prompt_cache_miss_tokens * per_thousand
            ),
            "completion_tokens_per_1000": round(usage.completion_tokens * per_thousand),
            "cost_usd_per_1000_off_peak": round(
                prices.cost_usd("deepseek-flash", usage) * per_thousand, 6
            ),
            "latency_s_mean": round(run.simulator["latency_seconds_mean"], 4),
        }
    print("packing measurement:", json.dumps(figures, indent=2))

    events = figures["packed"]["events"]
    assert figures["packed"]["llm_calls"] <= events / 4
    assert (
        figures["packed"]["prompt_tokens_per_1000"]
        < figures["single"]["prompt_tokens_per_1000"]
    )
