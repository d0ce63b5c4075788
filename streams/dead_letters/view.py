"""Showing an inspection, a replay plan and a replay result as rich tables.

Everything shown from a record (reasons, messages, ids, payloads) passes
through :func:`~streams.dead_letters.preview.printable` first and goes into
:class:`rich.text.Text` cells, so neither control characters nor rich markup
in a record can change what the terminal shows.
"""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.columns import Columns
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.dead_letters.inspection import Inspection, ranked
from streams.dead_letters.preview import preview, printable
from streams.dead_letters.record import DeadLetterRecord
from streams.dead_letters.replay import ReplayResult
from streams.dead_letters.replay_plan import ReplayPlan
from streams.dead_letters.selection import Selection, format_time

PLAN_EXAMPLES = 10
"""Records to replay listed by coordinates; the counts cover all of them."""


def render_inspection(
    inspection: Inspection, console: Console, *, show_payloads: bool = False
) -> None:
    """Counts by reason, pipeline, stage and hour, then the sample.

    Args:
        inspection: What was found.
        console: Where to draw.
        show_payloads: Add each sampled record's key and value.
    """
    console.print(
        _heading(
            f"{inspection.topic}: {inspection.read} read, {inspection.matched} matched",
            inspection.selection,
        )
    )
    if inspection.matched == 0:
        console.print("no dead letters match")
        return
    console.print(
        Columns(
            [
                _counts("reason", inspection.by_reason),
                _counts("pipeline", inspection.by_pipeline),
                _counts("stage", inspection.by_stage),
                _counts("retry tiers", inspection.by_retry_tiers),
            ],
            padding=(0, 4),
        )
    )
    hours = Counter(dict(sorted(inspection.by_hour.items())))
    console.print(_counts("hour (UTC, last failure)", hours, order=False))
    notes = []
    if inspection.payloads_omitted:
        notes.append(f"{inspection.payloads_omitted} carry a pointer, not the payload")
    if inspection.unreadable_headers:
        notes.append(f"{inspection.unreadable_headers} have unreadable dlq.* headers")
    if inspection.previously_replayed:
        notes.append(
            f"{inspection.previously_replayed} failed again after an earlier replay"
        )
    if notes:
        console.print(Text("; ".join(notes), style="yellow"))

    sample = inspection.sample
    if not sample:
        return
    table = _table(f"newest {len(sample)} of {inspection.matched}")
    for heading in ("dead letter", "dead-lettered", "original", "event id", "reason"):
        table.add_column(heading, overflow="fold")
    table.add_column("attempts", justify="right")
    table.add_column("cost USD", justify="right")
    table.add_column("message", ratio=1)
    for record in sample:
        cells = (
            _coordinates(record),
            format_time(record.timestamp),
            _original(record),
            _text(record.event_id),
            _text(record.reason),
            _number(record.attempts),
            "-" if record.cost_usd is None else f"{record.cost_usd:.6f}",
            _text(record.message),
        )
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    if show_payloads:
        console.print(_payloads(sample))


def _payloads(sample: list[DeadLetterRecord]) -> Table:
    """Keys and values, folded rather than cut, so every shown byte is visible."""
    table = _table("payloads (UTF-8 text, else hex; at most 500 bytes each)")
    table.add_column("dead letter", no_wrap=True)
    table.add_column("key", overflow="fold", ratio=1)
    table.add_column("value", overflow="fold", ratio=3)
    for record in sample:
        key, value = preview(record.source.key), preview(record.source.value)
        table.add_row(
            Text(_coordinates(record)),
            Text(str(key) if key is not None else "(null)"),
            Text(str(value) if value is not None else "(null)"),
        )
    return table


def render_plan(plan: ReplayPlan, console: Console, *, execute: bool) -> None:
    """What a replay will do: counts, a few coordinates, every skipped record.

    Args:
        plan: The plan.
        console: Where to draw.
        execute: Whether the plan is about to run; a dry run says so.
    """
    if not execute:
        console.print(
            Text("dry run: nothing is produced; add --execute to replay", "yellow")
        )
    console.print(
        _heading(
            f"{plan.dead_letter_topic}: {plan.read} read, {plan.selected} selected: "
            f"{len(plan.to_replay)} to replay, "
            f"{len(plan.already_replayed)} already replayed, "
            f"{len(plan.skipped)} skipped",
            plan.selection,
        )
    )
    again = sum(1 for record in plan.to_replay if record.replayed_from)
    if again:
        console.print(
            Text(
                f"{again} of those to replay failed again after an earlier replay",
                "yellow",
            )
        )
    if plan.to_replay:
        counts = _table("to replay, by original topic and reason")
        counts.add_column("original topic")
        counts.add_column("reason")
        counts.add_column("records", justify="right")
        for topic, reason, count in plan.by_topic_and_reason():
            counts.add_row(Text(printable(topic)), Text(printable(reason)), str(count))
        console.print(counts)
        shown = plan.to_replay[:PLAN_EXAMPLES]
        examples = _table(f"first {len(shown)} of {len(plan.to_replay)} to replay")
        for heading in ("dead letter", "original", "event id", "reason"):
            examples.add_column(heading, overflow="fold")
        for record in shown:
            examples.add_row(
                *(
                    Text(cell)
                    for cell in (
                        _coordinates(record),
                        _original(record),
                        _text(record.event_id),
                        _text(record.reason),
                    )
                )
            )
        console.print(examples)
    if plan.skipped:
        skipped = _table(f"skipped ({len(plan.skipped)})")
        for heading in ("dead letter", "original", "event id"):
            skipped.add_column(heading, overflow="fold")
        skipped.add_column("why", ratio=1)
        for entry in plan.skipped:
            skipped.add_row(
                *(
                    Text(cell)
                    for cell in (
                        _coordinates(entry.record),
                        _original(entry.record),
                        _text(entry.record.event_id),
                        printable(entry.reason),
                    )
                )
            )
        console.print(skipped)


def render_result(result: ReplayResult, console: Console) -> None:
    """The outcome of every selected record, then each failure."""
    plan = result.plan
    summary = Text(
        f"replayed {len(result.replayed)}, "
        f"already replayed {len(plan.already_replayed)}, "
        f"skipped {len(plan.skipped)}, "
        f"failed {len(result.failed) + len(result.unmarked)}",
        style="bold" if result.complete else "bold red",
    )
    console.print(summary)
    if result.complete:
        return
    failures = _table("not replayed, or replayed but not marked", style="red")
    for heading in ("dead letter", "original", "outcome"):
        failures.add_column(heading, overflow="fold")
    failures.add_column("error", ratio=1)
    for outcome, entries in (
        ("not replayed", result.failed),
        ("replayed, not marked", result.unmarked),
    ):
        for failure in entries:
            failures.add_row(
                Text(_coordinates(failure.record)),
                Text(_original(failure.record)),
                outcome,
                Text(printable(failure.error)),
            )
    console.print(failures)


def _heading(line: str, selection: Selection) -> Text:
    filters = selection.describe()
    if filters:
        shown = ", ".join(
            f"{name}={','.join(value) if isinstance(value, list) else value}"
            for name, value in filters.items()
        )
        line += f"  (filters: {printable(shown)})"
    return Text(line, style="bold")


def _table(title: str, *, style: str | None = None) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style=style,
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )


def _counts(heading: str, counts: Counter[str], *, order: bool = True) -> Table:
    table = _table(f"by {heading.split(' ')[0]}")
    table.add_column(heading)
    table.add_column("records", justify="right")
    for name, count in (ranked(counts) if order else counts).items():
        table.add_row(Text(printable(name)), str(count))
    return table


def _coordinates(record: DeadLetterRecord) -> str:
    return f"{record.source.partition}:{record.source.offset}"


def _original(record: DeadLetterRecord) -> str:
    parts = (record.original_topic, record.original_partition, record.original_offset)
    return printable(":".join("?" if part is None else str(part) for part in parts))


def _text(value: str | None) -> str:
    return "-" if value is None else printable(value)


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)
