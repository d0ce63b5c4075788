"""Looking into the dead-letter topic and replaying what can be replayed.

``streams dlq inspect`` and ``streams dlq replay`` are built from parts that
are each usable alone:

* reading: :class:`TopicReader` reads a topic up to the end it had when the
  read began, without a group and without commits, and
  :func:`decode_record` turns each record's ``dlq.*`` headers into a typed
  :class:`DeadLetterRecord`;
* selecting: :class:`Selection` keeps records by reason, pipeline, event id
  and time;
* inspecting: :func:`inspect_records` counts by reason, pipeline, stage and
  hour and keeps the newest records as a sample;
* replaying: :func:`plan_replay` sorts the selected records into to replay,
  already replayed (the ledger, :mod:`streams.dead_letters.ledger`, has
  them) and skipped with a reason; :func:`execute_replay` produces them back
  to their original topics and marks each in the ledger;
* showing: :mod:`streams.dead_letters.view` draws the rich tables.

:func:`inspect_dead_letters` and :func:`replay_dead_letters` put the parts
together the way the command line does.
"""

from streams.dead_letters.commands import inspect_dead_letters, replay_dead_letters
from streams.dead_letters.inspection import Inspection, inspect_records
from streams.dead_letters.ledger import ledger_topic, read_replayed
from streams.dead_letters.reader import (
    KafkaUnreachableError,
    MissingTopicError,
    TopicReader,
    TopicReadError,
)
from streams.dead_letters.record import (
    REPLAYED_FROM_HEADER,
    DeadLetterRecord,
    decode_record,
    ledger_key,
)
from streams.dead_letters.replay import ReplayFailedError, ReplayResult, execute_replay
from streams.dead_letters.replay_plan import ReplayPlan, Skipped, plan_replay
from streams.dead_letters.selection import Selection, parse_duration, parse_time

__all__ = [
    "REPLAYED_FROM_HEADER",
    "DeadLetterRecord",
    "Inspection",
    "KafkaUnreachableError",
    "MissingTopicError",
    "ReplayFailedError",
    "ReplayPlan",
    "ReplayResult",
    "Selection",
    "Skipped",
    "TopicReadError",
    "TopicReader",
    "decode_record",
    "execute_replay",
    "inspect_dead_letters",
    "inspect_records",
    "ledger_key",
    "ledger_topic",
    "parse_duration",
    "parse_time",
    "plan_replay",
    "read_replayed",
    "replay_dead_letters",
]
