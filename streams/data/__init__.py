"""Sample input data: loaders, malformed records and the sample producer.

The loaders turn three public data sets into the CloudEvents records the
pipelines consume (``tickets``, ``emails``, ``crm``); ``malformed`` builds
records with one known defect each; ``produce`` writes all of it, with replays,
to Kafka and returns the answer key of what the worker must do with each record.
"""

from streams.data.crm import load_contacts
from streams.data.emails import load_emails
from streams.data.events import PIPELINE_TOPICS, PIPELINES, SourceEvent
from streams.data.malformed import (
    MALFORMED_KINDS,
    MalformedRecord,
    build_malformed_records,
)
from streams.data.produce import DeliveryFailedError, produce_events
from streams.data.report import ProducedRecord, ProduceReport
from streams.data.sample import (
    default_data_dir,
    load_pipeline_events,
    locate_data_files,
)
from streams.data.tickets import load_tickets, ticket_gold_labels

__all__ = [
    "MALFORMED_KINDS",
    "PIPELINES",
    "PIPELINE_TOPICS",
    "DeliveryFailedError",
    "MalformedRecord",
    "ProduceReport",
    "ProducedRecord",
    "SourceEvent",
    "build_malformed_records",
    "default_data_dir",
    "load_contacts",
    "load_emails",
    "load_pipeline_events",
    "load_tickets",
    "locate_data_files",
    "produce_events",
    "ticket_gold_labels",
]
