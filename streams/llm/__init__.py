"""Calling an OpenAI-compatible chat API: client, retries, circuit, prices."""
