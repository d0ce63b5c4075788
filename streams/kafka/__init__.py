"""The Kafka side: offsets, producing, dead letters, topics, the poll loop."""
