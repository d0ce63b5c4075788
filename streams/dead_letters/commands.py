"""``streams dlq inspect`` and ``streams dlq replay``, callable without a shell.

Both read the configured dead-letter topic (``kafka.dead_letter_topic``) with
the configured client properties, from the beginning or from ``since``, up
to the end it had when the command started; neither joins a group or
commits. Only ``replay`` with ``execute`` writes anything: the replayed
records and their ledger entries (see :mod:`streams.dead_letters.ledger`).
"""

from __future__ import annotations

import logging

from rich.console import Console

from streams import json_codec
from streams.dead_letters.inspection import Inspection, inspect_records
from streams.dead_letters.ledger import ensure_ledger_topic, read_replayed
from streams.dead_letters.reader import TopicReader
from streams.dead_letters.record import decode_record
from streams.dead_letters.replay import (
    ReplayFailedError,
    ReplayResult,
    execute_replay,
)
from streams.dead_letters.replay_plan import plan_replay
from streams.dead_letters.selection import Selection
from streams.dead_letters.view import render_inspection, render_plan, render_result
from streams.settings import Settings

logger = logging.getLogger(__name__)


def inspect_dead_letters(
    settings: Settings,
    *,
    selection: Selection,
    sample_size: int = 10,
    show_payloads: bool = False,
    as_json: bool = False,
    console: Console | None = None,
) -> Inspection:
    """Counts the dead letters by reason, pipeline, stage and hour, with a sample.

    Args:
        settings: Where the cluster and the dead-letter topic are.
        selection: Which records count; ``since`` also decides where to start.
        sample_size: How many of the newest matched records to show.
        show_payloads: Show the sampled records' keys and values.
        as_json: Print one JSON object instead of tables.
        console: Where to print; standard output by default.

    Returns:
        The inspection that was printed.

    Raises:
        KafkaUnreachableError: The cluster did not answer.
        MissingTopicError: The dead-letter topic does not exist.
        TopicReadError: The read stopped short of the end.
    """
    console = console or Console()
    topic = settings.kafka.dead_letter_topic
    with TopicReader(
        settings.kafka.common_config(), topic, since=selection.since
    ) as reader:
        inspection = inspect_records(
            (decode_record(record) for record in reader),
            topic=topic,
            selection=selection,
            sample_size=sample_size,
        )
    logger.info(
        "dlq_inspect.finished topic=%s read=%d matched=%d",
        topic,
        inspection.read,
        inspection.matched,
    )
    if as_json:
        document = inspection.as_dict(show_payloads=show_payloads)
        console.file.write(json_codec.dumps(document).decode() + "\n")
    else:
        render_inspection(inspection, console, show_payloads=show_payloads)
    return inspection


def replay_dead_letters(
    settings: Settings,
    *,
    selection: Selection,
    execute: bool = False,
    console: Console | None = None,
) -> ReplayResult:
    """Shows what a replay would do, and with ``execute`` does it.

    The replay ledger is read in full before the dead-letter topic, so a
    record replayed by an earlier run is reported as already replayed and
    never sent again. The ledger topic is created (compacted) only when
    something is executed.

    Args:
        settings: Where the cluster and the dead-letter topic are.
        selection: Which records to replay.
        execute: Produce the records; without it nothing is written.
        console: Where to print; standard output by default.

    Returns:
        The plan and, when executed, what happened to each record; a dry run
        returns a result with nothing replayed.

    Raises:
        KafkaUnreachableError: The cluster did not answer.
        MissingTopicError: The dead-letter topic does not exist.
        TopicReadError: A read stopped short of the end.
        ReplayFailedError: A record was not delivered or not marked; the
            outcome of every record was printed first.
    """
    console = console or Console()
    config = settings.kafka.common_config()
    topic = settings.kafka.dead_letter_topic
    with TopicReader(config, topic, since=selection.since) as reader:
        replayed = read_replayed(config, topic)
        plan = plan_replay(
            (decode_record(record) for record in reader),
            dead_letter_topic=topic,
            selection=selection,
            replayed=replayed,
            partitions=reader.topic_partitions,
        )
        replication_factor = reader.replication_factor
    logger.info(
        "dlq_replay.planned topic=%s selected=%d to_replay=%d already_replayed=%d "
        "skipped=%d execute=%s",
        topic,
        plan.selected,
        len(plan.to_replay),
        len(plan.already_replayed),
        len(plan.skipped),
        execute,
    )
    render_plan(plan, console, execute=execute)
    if not execute:
        return ReplayResult(plan=plan)
    if not plan.to_replay:
        # Nothing to send: no producer, and no ledger topic created for nothing.
        result = ReplayResult(plan=plan)
        render_result(result, console)
        return result

    ledger = ensure_ledger_topic(config, topic, replication_factor=replication_factor)
    try:
        result = execute_replay(
            plan, settings.kafka.producer_config(), ledger_topic=ledger
        )
    except ReplayFailedError as exc:
        render_result(exc.result, console)
        raise
    render_result(result, console)
    return result
