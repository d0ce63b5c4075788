"""``streams cost-report`` against in-process simulators on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from streams.cli import main
from streams.cost_report import NAIVE, OURS, OURS_PACKED, compare, markdown_table
from streams.settings import Settings


def test_ours_costs_at_most_40_percent_of_naive() -> None:
    naive, ours = asyncio.run(compare(Settings(), limit=120, strategies=(NAIVE, OURS)))

    assert naive.records == ours.records == 132  # 120 tickets and 12 replays
    assert naive.calls == 132
    assert ours.calls < 132  # replays are served by the result cache
    assert naive.multiplier == pytest.approx(203 / 168)
    assert ours.multiplier == 1.0
    # Ids and times on top: only byte-identical replays share a prefix.
    assert naive.usage.prompt_cache_hit_tokens < naive.usage.prompt_cache_miss_tokens
    assert ours.usage.prompt_cache_hit_tokens > 4 * ours.usage.prompt_cache_miss_tokens
    assert ours.cost_usd <= 0.40 * naive.cost_usd

    table = markdown_table([naive, ours])
    assert table.splitlines()[2].startswith("| naive | 132 | 132 |")
    assert "ours costs" in table


def test_packing_cuts_calls_much_more_than_cost() -> None:
    ours, packed = asyncio.run(
        compare(Settings(), limit=120, strategies=(OURS, OURS_PACKED))
    )

    assert packed.records == ours.records == 132
    # 120 distinct tickets, eight to a call (a last pack may close short).
    assert 15 <= packed.calls <= 20
    assert ours.calls == 120
    assert packed.multiplier == 1.0
    # The instructions go once per pack: far fewer prompt tokens...
    assert packed.usage.prompt_tokens < ours.usage.prompt_tokens / 2
    # ...but output dominates the bill, and each item's answer grows a little.
    assert packed.usage.completion_tokens >= ours.usage.completion_tokens
    assert 0.80 * ours.cost_usd < packed.cost_usd < ours.cost_usd

    table = markdown_table([ours, packed])
    assert "| ours-packed | 132 |" in table
    assert "ours-packed against ours: calls -8" in table


def test_the_command_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cost.json"
    assert main(["cost-report", "--limit", "30", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "| strategy | records | calls |" in printed
    report = json.loads(path.read_text())
    strategies = report["strategies"]
    assert [s["strategy"] for s in strategies] == ["naive", "ours", "ours-packed"]
    assert [s["events_per_call"] for s in strategies] == [1, 1, 8]
    assert strategies[2]["calls"] < strategies[1]["calls"] / 4
    assert 0 < report["ours_share_of_naive"] <= 0.40
    assert 0 < report["ours_packed_share_of_naive"] < report["ours_share_of_naive"]
