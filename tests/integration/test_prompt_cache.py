"""The tickets through the real broker and the simulator: prompts hit the cache.

The simulator reports, on ``GET /stats``, how many prompt tokens it served
from its 64-token block cache. With the fixed instructions first and only
the ticket text after them, at least 80 % of all prompt tokens of the run
must be hits. The worker's own records must add up to the same tokens.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from streams.data.produce import produce_events
from streams.service import build_service
from tests.integration.harness import isolate, own_simulator, run_worker_until

pytestmark = pytest.mark.broker


def read_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as response:
        stats: dict[str, int] = json.loads(response.read())
    return stats


def test_most_ticket_prompt_tokens_are_cache_hits(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    with own_simulator(tmp_path, "--latency-mean-ms", "5") as simulator:
        isolated = isolate(tmp_path, kafka_bootstrap, simulator.url)
        report = produce_events(
            isolated.settings.kafka.bootstrap_servers,
            pipelines=["tickets"],
            malformed=False,
            topics=isolated.topics,
        )
        ledger = isolated.ledger()
        service = build_service(isolated.settings)
        expected = {(r.topic, r.partition, r.offset) for r in report.records}
        try:
            missing = asyncio.run(
                run_worker_until(service.worker.run, ledger, expected, 180)
            )
        finally:
            ledger.close()
        assert not missing, f"{len(missing)} tickets have no outcome"
        stats = read_stats(simulator.url)

    hit = stats["prompt_cache_hit_tokens"]
    miss = stats["prompt_cache_miss_tokens"]
    share = hit / (hit + miss)
    print(f"tickets: {hit} hit, {miss} miss, share {share:.3f}")
    assert share >= 0.80

    usage = service.worker.stats.usage
    assert usage.prompt_cache_hit_tokens == hit
    assert usage.prompt_cache_miss_tokens == miss
    assert stats["requests_total"] == service.worker.stats.llm_calls
    assert len(expected) > 600  # every ticket, plus the replays
