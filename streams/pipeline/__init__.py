"""The enrichment pipeline: decode, hash, deduplicate, prompt, enrich.

Nothing in this package imports Kafka or an HTTP client; the worker feeds it
records and an LLM client.
"""
