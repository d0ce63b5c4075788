"""Deduplication marks after success; leases keep a stale report harmless."""

from __future__ import annotations

import asyncio

import pytest

from streams.errors import PermanentError
from streams.pipeline.deduplication import Deduplicator


def test_first_sight_leads_and_a_completed_hash_is_a_hit() -> None:
    async def scenario() -> list[str]:
        dedup = Deduplicator[str](capacity=10)
        lead = await dedup.acquire("h")
        dedup.complete("h", "result", lead.lease)
        hit = await dedup.acquire("h")
        return [lead.kind, hit.kind, str(hit.result)]

    assert asyncio.run(scenario()) == ["lead", "hit", "result"]


def test_followers_join_the_call_in_flight() -> None:
    async def scenario() -> list[str]:
        dedup = Deduplicator[str](capacity=10)
        lead = await dedup.acquire("h")
        followers = [asyncio.create_task(dedup.acquire("h")) for _ in range(3)]
        await asyncio.sleep(0)
        dedup.complete("h", "result", lead.lease)
        return [f"{x.kind}:{x.result}" for x in await asyncio.gather(*followers)]

    assert asyncio.run(scenario()) == ["joined:result"] * 3


def test_a_failed_leader_hands_over_and_its_stale_report_changes_nothing() -> None:
    async def scenario() -> tuple[str, str, int]:
        dedup = Deduplicator[str](capacity=10)
        first = await dedup.acquire("h")
        follower = asyncio.create_task(dedup.acquire("h"))
        await asyncio.sleep(0)
        dedup.fail("h", first.lease)
        second = await follower
        dedup.fail("h", first.lease)  # reported twice: must not evict the new leader
        third = asyncio.create_task(dedup.acquire("h"))
        await asyncio.sleep(0)
        in_flight = dedup.in_flight
        dedup.complete("h", "result", second.lease)
        return second.kind, (await third).kind, in_flight

    assert asyncio.run(scenario()) == ("lead", "joined", 1)


@pytest.mark.parametrize(
    ("reason", "shared"),
    [
        ("content_refused", True),
        ("output_schema_violation", True),
        ("rate_limited", False),
        ("blank_content", False),
        ("truncated", False),
        ("invalid_json", False),
    ],
)
def test_only_content_failures_are_shared(reason: str, shared: bool) -> None:
    async def scenario() -> str:
        dedup = Deduplicator[str](capacity=10)
        lead = await dedup.acquire("h")
        follower = asyncio.create_task(dedup.acquire("h"))
        await asyncio.sleep(0)
        dedup.fail("h", lead.lease, PermanentError("no", reason=reason))
        try:
            return (await follower).kind
        except PermanentError as exc:
            return exc.reason

    assert asyncio.run(scenario()) == (reason if shared else "lead")


def test_the_cache_is_bounded() -> None:
    async def scenario() -> int:
        dedup = Deduplicator[str](capacity=2)
        for name in "abc":
            lead = await dedup.acquire(name)
            dedup.complete(name, name, lead.lease)
        return len(dedup)

    assert asyncio.run(scenario()) == 2
