"""``streams cost-report`` against in-process simulators on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from streams.cli import main
from streams.cost_report import OURS, Strategy, compare, markdown_table
from streams.settings import Settings


def test_ours_costs_at_most_40_percent_of_naive() -> None:
    naive, ours = asyncio.run(compare(Settings(), limit=120))

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


def test_request_packing_is_refused_until_it_exists() -> None:
    packed = Strategy("packed", True, True, True, events_per_call=8)
    with pytest.raises(NotImplementedError):
        asyncio.run(compare(Settings(), limit=2, strategies=(OURS, packed)))


def test_the_command_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cost.json"
    assert main(["cost-report", "--limit", "30", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "| strategy | records | calls |" in printed
    report = json.loads(path.read_text())
    assert [s["strategy"] for s in report["strategies"]] == ["naive", "ours"]
    assert 0 < report["ours_share_of_naive"] <= 0.40
