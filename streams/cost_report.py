"""``streams cost-report``: what 1,000 tickets cost, naive, ours, ours packed.

Every way enriches the same records: the shipped tickets plus the replays a
retrying producer adds (``--duplicate-ratio``, 10 % by default, the same
selection as ``streams produce``). Each way gets a fresh in-process simulator
on loopback, so none warms another's prompt cache, and its ``usage`` is
priced with the configured price list (``pricing`` in the settings). No Kafka
is involved: the report calls the LLM client (naive), the ``Enricher`` (ours)
or the worker's ``PackingRouter`` (ours packed) directly, because the broker
changes neither the tokens nor the calls.

* naive: one call per record, replays included; the event id and time open
  the system message ("Event <id> received at <time>."), so no two prompts
  share a first cache block; priced at the multiplier averaged over the week
  (the calls run whenever the events arrive).
* ours: one call per distinct content hash (the worker's result cache);
  instructions first and byte-identical, the event text last, trimmed to the
  pipeline's limit; priced off-peak, for work that may wait for off-peak
  hours.
* ours-packed: ours, with the tickets pipeline given a ``packing`` section
  (``max_items`` 8, the other settings at their defaults), so up to eight
  distinct tickets share one call; the usage of a packed call is split over
  its items and the items' usage adds up to the simulator's.

cost per 1,000 = cost of the run / records x 1,000.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from streams.data.plan import select_replays
from streams.data.sample import load_pipeline_events
from streams.llm.circuit_breaker import CircuitBreaker
from streams.llm.client import ChatRequest, open_chat_client
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.pipeline.config import PackingConfig, Pipeline, load_pipelines
from streams.pipeline.content_hash import content_hash
from streams.pipeline.decode import Event, decode_event
from streams.pipeline.enricher import Enricher
from streams.pipeline.packing import PackingRouter
from streams.pipeline.prompt import build_messages
from streams.settings import Settings
from streams.simulator import SimulatorConfig, serve

logger = logging.getLogger(__name__)

PIPELINE = "tickets"
CONCURRENCY = 32
SIMULATOR_KEY = "cost-report-local"
REPLAY_SEED = 7
"""The seed `streams produce` uses, so the same records are replayed."""


@dataclass(frozen=True, slots=True)
class Strategy:
    """One way of spending tokens on the same records.

    Attributes:
        name: Its label in the table.
        deduplicate: One call per distinct content hash instead of per record.
        cache_friendly: Fixed instructions first; otherwise per-event values
            open the prompt.
        off_peak: Priced off-peak; otherwise at the week's average multiplier.
        events_per_call: Request packing: at most this many events share
            one call (``packing.max_items``, 2 to 64); 1 sends each alone.
            Packing needs ``cache_friendly``, because it goes through the
            worker's enrichment step.
    """

    name: str
    deduplicate: bool
    cache_friendly: bool
    off_peak: bool
    events_per_call: int = 1


NAIVE = Strategy("naive", deduplicate=False, cache_friendly=False, off_peak=False)
OURS = Strategy("ours", deduplicate=True, cache_friendly=True, off_peak=True)
OURS_PACKED = dataclasses.replace(OURS, name="ours-packed", events_per_call=8)


@dataclass
class StrategyResult:
    """What one strategy spent on the records."""

    strategy: Strategy
    records: int
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    multiplier: float = 1.0
    cost_usd: float = 0.0

    @property
    def cost_per_1000_usd(self) -> float:
        """Cost per 1,000 input records."""
        return self.cost_usd / self.records * 1000 if self.records else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "strategy": self.strategy.name,
            "records": self.records,
            "calls": self.calls,
            "events_per_call": self.strategy.events_per_call,
            **self.usage.as_dict(),
            "price_multiplier": round(self.multiplier, 4),
            "cost_usd": round(self.cost_usd, 8),
            "cost_per_1000_usd": round(self.cost_per_1000_usd, 6),
        }


def naive_messages(pipeline: Pipeline, event: Event) -> list[dict[str, str]]:
    """The messages with the event's id and time at the very top."""
    messages = build_messages(pipeline, event)
    header = f"Event {event.event_id} received at {event.body.get('time', '')}.\n"
    return [
        {"role": "system", "content": header + messages[0]["content"]},
        *messages[1:],
    ]


def load_records(
    settings: Settings, duplicate_ratio: float, limit: int | None
) -> tuple[Pipeline, list[Event]]:
    """The tickets pipeline and its events, replays appended, decoded."""
    pipelines = load_pipelines(settings.pipelines_dir, settings.schemas_dir, [PIPELINE])
    pipeline = next(iter(pipelines.values()))
    sources = load_pipeline_events(pipelines=[PIPELINE], limit_per_source=limit)[
        PIPELINE
    ]
    records = [*sources, *select_replays(sources, duplicate_ratio, seed=REPLAY_SEED)]
    return pipeline, [decode_event(record.value, pipeline) for record in records]


async def _run_strategy(
    strategy: Strategy,
    settings: Settings,
    pipeline: Pipeline,
    events: list[Event],
    prices: PriceList,
) -> StrategyResult:
    if strategy.events_per_call > 1 and not strategy.cache_friendly:
        raise ValueError("request packing needs the cache-friendly prompt")
    result = StrategyResult(strategy, records=len(events))
    if strategy.events_per_call > 1:
        packing = PackingConfig.model_validate({"max_items": strategy.events_per_call})
        config = pipeline.config.model_copy(update={"packing": packing})
        pipeline = dataclasses.replace(pipeline, config=config)
    model = settings.llm.model or pipeline.config.model
    async with await serve(SimulatorConfig(latency_mean_ms=0)) as simulator:
        llm = settings.llm.model_copy(
            update={"base_url": simulator.url, "api_key": SecretStr(SIMULATOR_KEY)}
        )
        client = open_chat_client(llm)
        enricher = Enricher(
            client,
            policy=RetryPolicy.from_settings(llm),
            breaker=CircuitBreaker(simulator.url),
            prices=prices,
            max_in_flight=CONCURRENCY,
            model_override=settings.llm.model,
        )
        # Without a packing section the router hands every event to the enricher.
        router = PackingRouter(enricher, prices, [pipeline])
        slots = asyncio.Semaphore(CONCURRENCY)
        seen: set[str] = set()

        async def one(event: Event) -> Usage:
            async with slots:
                if strategy.cache_friendly:
                    return (await router.enrich(pipeline, event)).usage
                request = ChatRequest(
                    model, naive_messages(pipeline, event), pipeline.config.max_tokens
                )
                return (await client.complete(request)).usage

        work = []
        for event in events:
            if strategy.deduplicate:
                event_hash = content_hash(pipeline, event, model)
                if event_hash in seen:
                    continue
                seen.add(event_hash)
            work.append(one(event))
        try:
            for usage in await asyncio.gather(*work):
                result.usage = result.usage + usage
        finally:
            await client.close()
        # The enricher counts packed calls once; the naive way calls the client.
        result.calls = router.calls if strategy.cache_friendly else len(work)

    result.multiplier = 1.0 if strategy.off_peak else prices.average_multiplier()
    result.cost_usd = prices.base_cost_usd(model, result.usage) * result.multiplier
    return result


async def compare(
    settings: Settings,
    *,
    duplicate_ratio: float = 0.1,
    limit: int | None = None,
    strategies: tuple[Strategy, ...] = (NAIVE, OURS, OURS_PACKED),
) -> list[StrategyResult]:
    """Runs every strategy on the same records, one after the other."""
    pipeline, events = load_records(settings, duplicate_ratio, limit)
    prices = PriceList(settings.pricing)
    results = []
    for strategy in strategies:
        results.append(
            await _run_strategy(strategy, settings, pipeline, events, prices)
        )
        logger.info(
            "cost_report.strategy_done strategy=%s calls=%d cost_usd=%.6f",
            strategy.name,
            results[-1].calls,
            results[-1].cost_usd,
        )
    return results


def markdown_table(results: list[StrategyResult]) -> str:
    """The comparison as a Markdown table, each row's cost as a share of the first.

    A packed row also gets its calls and cost against the unpacked row of the
    same name (``ours-packed`` against ``ours``), which is what packing adds.
    """
    lines = [
        "| strategy | records | calls | cache-hit tokens | cache-miss tokens "
        "| completion tokens | reasoning tokens | price multiplier "
        "| cost (USD) | cost per 1,000 (USD) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        usage = result.usage
        lines.append(
            f"| {result.strategy.name} | {result.records} | {result.calls} "
            f"| {usage.prompt_cache_hit_tokens} | {usage.prompt_cache_miss_tokens} "
            f"| {usage.completion_tokens} | {usage.reasoning_tokens} "
            f"| {result.multiplier:.3f} | {result.cost_usd:.6f} "
            f"| {result.cost_per_1000_usd:.6f} |"
        )
    first = results[0] if results else None
    if first is not None and first.cost_usd and len(results) >= 2:
        lines.append("")
        for result in results[1:]:
            share = result.cost_usd / first.cost_usd
            lines.append(
                f"{result.strategy.name} costs {share:.1%} of {first.strategy.name}."
            )
    by_name = {result.strategy.name: result for result in results}
    for result in results:
        unpacked = by_name.get(result.strategy.name.removesuffix("-packed"))
        if result.strategy.events_per_call > 1 and unpacked and unpacked.calls:
            lines.append(
                f"{result.strategy.name} against {unpacked.strategy.name}: "
                f"calls {_change(result.calls, unpacked.calls)}, "
                f"cost {_change(result.cost_usd, unpacked.cost_usd)}."
            )
    return "\n".join(lines)


def _change(value: float, base: float) -> str:
    return f"{value / base - 1:+.1%}" if base else "n/a"


def _share(results: list[StrategyResult], name: str) -> float | None:
    """A strategy's cost as a share of naive's, when both ran."""
    by_name = {result.strategy.name: result for result in results}
    naive, other = by_name.get(NAIVE.name), by_name.get(name)
    if naive is None or other is None or not naive.cost_usd:
        return None
    return round(other.cost_usd / naive.cost_usd, 4)


def run_cost_report(
    settings: Settings,
    *,
    duplicate_ratio: float = 0.1,
    limit: int | None = None,
    json_path: Path | None = None,
) -> list[StrategyResult]:
    """Runs the comparison, prints the table, and writes JSON when asked."""
    results = asyncio.run(
        compare(settings, duplicate_ratio=duplicate_ratio, limit=limit)
    )
    print(markdown_table(results))
    if json_path is not None:
        payload = {
            "pipeline": PIPELINE,
            "duplicate_ratio": duplicate_ratio,
            "strategies": [result.as_dict() for result in results],
            "ours_share_of_naive": _share(results, OURS.name),
            "ours_packed_share_of_naive": _share(results, OURS_PACKED.name),
        }
        json_path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return results
