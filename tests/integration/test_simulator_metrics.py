"""The simulator exposes its counters to Prometheus, faults included."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families

from streams.simulator import SimulatorConfig, serve


def test_metrics_count_requests_statuses_faults_and_tokens() -> None:
    async def scenario() -> str:
        config = SimulatorConfig.from_mapping(
            {"latency_mean_ms": 0, "faults": {"rates": {"overloaded": 1.0}}}
        )
        async with await serve(config) as simulator:
            client = openai.AsyncOpenAI(
                base_url=simulator.url, api_key="test", max_retries=0
            )
            with contextlib.suppress(openai.APIStatusError):  # the injected 503
                await client.chat.completions.create(
                    model="deepseek-flash",
                    messages=[{"role": "user", "content": "reply in json"}],
                )
            await client.close()
            url = f"{simulator.url}/metrics"
            return await asyncio.to_thread(
                lambda: urllib.request.urlopen(url, timeout=5).read().decode()
            )

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(asyncio.run(scenario()))
        for sample in family.samples
    }
    assert samples[("streams_simulator_requests_total", ())] == 1
    assert samples[("streams_simulator_responses_total", (("status", "503"),))] == 1
    assert samples[("streams_simulator_faults_total", (("kind", "overloaded"),))] == 1
    assert samples[("streams_simulator_faults_total", (("kind", "rate_limited"),))] == 0
    assert ("streams_simulator_tokens_total", (("kind", "cache_hit"),)) in samples
