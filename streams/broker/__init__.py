"""A local single-node Apache Kafka broker, run from Maven Central jars."""

from streams.broker.runtime import (
    BrokerStatus,
    broker_status,
    restart_broker,
    start_broker,
    stop_broker,
)

__all__ = [
    "BrokerStatus",
    "broker_status",
    "restart_broker",
    "start_broker",
    "stop_broker",
]
