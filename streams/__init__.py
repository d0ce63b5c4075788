"""Kafka enrichment service for LLM workloads.

Consumes business events from Kafka, validates and deduplicates them, enriches
them with an OpenAI-compatible chat API (DeepSeek) and emits exactly one
enriched or dead-letter record per input.
"""

__version__ = "0.1.0"
