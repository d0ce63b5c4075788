"""JSON in and out, fast, without losing integers.

orjson is fast but reads an integer literal beyond 64 bits as a float, which
would silently change an id like ``123456789012345678901234567890``. A cheap
scan of the raw bytes for a run of 19 or more digits sends such documents to
the standard library's parser, which keeps integers exact; the encoder falls
back the same way. Strings with unpaired surrogates are refused by both
parsers, so they fail at decode time, before any money is spent.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(rb"\d{19,}")
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


class JSONError(ValueError):
    """The bytes are not JSON this service accepts."""


def loads(raw: bytes) -> Any:
    """Parses JSON, keeping integers of any size exact.

    Raises:
        JSONError: The bytes are not valid JSON (unpaired surrogates included).
    """
    try:
        if _LONG_DIGITS.search(raw) is None:
            return orjson.loads(raw)
        value = json.loads(raw)
    except (orjson.JSONDecodeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JSONError(str(exc)) from exc
    # The standard parser accepts unpaired surrogates that orjson refuses.
    _require_encodable(value)
    return value


def _require_encodable(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise JSONError(
                f"string holds an unpaired surrogate: {exc.reason}"
            ) from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _require_encodable(key)
            _require_encodable(item)
    elif isinstance(value, list):
        for item in value:
            _require_encodable(item)


def _has_wide_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value < _INT64_MIN or value > _UINT64_MAX
    if isinstance(value, dict):
        return any(_has_wide_int(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_wide_int(item) for item in value)
    return False


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Serialises to compact UTF-8 JSON; integers beyond 64 bits stay exact."""
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    try:
        return orjson.dumps(value, option=option)
    except TypeError:
        if not _has_wide_int(value):
            raise
    return json.dumps(
        value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False
    ).encode()
