"""Log setup: JSON lines by default, text on a terminal, secrets redacted.

Every module logs ``event.name key=value ...`` with lazy arguments. The JSON
formatter writes ``{"ts", "level", "logger", "event", "msg"}``. A redaction
filter is the backstop for secrets: it masks the configured API key and
anything shaped like a bearer token or ``sk-`` key wherever it appears.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

_SECRET_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{8,})")


class RedactionFilter(logging.Filter):
    """Masks secrets in the formatted message of every record.

    Args:
        secrets: Literal values to mask (the API key, SASL passwords).
    """

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in (secrets or []) if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET_SHAPES.sub("[redacted]", message)
        for secret in self._secrets:
            masked = masked.replace(secret, "[redacted]")
        if masked != message:
            record.msg = masked
            record.args = None
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "event": message.split(" ", 1)[0],
            "msg": message,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(
    level: str = "INFO", fmt: str = "auto", secrets: list[str] | None = None
) -> None:
    """Installs the handler, the formatter and the redaction filter on root."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JSONFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s")
    )
    handler.addFilter(RedactionFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpx2", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
