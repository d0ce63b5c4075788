"""Showing untrusted bytes and text on a terminal without surprises.

Dead-letter records hold whatever the producers wrote, so anything shown from
them is made inert first: control characters (an escape sequence could
redraw the terminal) become visible ``\\x1b``-style escapes, and a value
becomes text only when it is valid UTF-8, otherwise hexadecimal. Values are
cut to :data:`PREVIEW_BYTES` before they are shown.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

PREVIEW_BYTES = 500


@dataclass(frozen=True)
class Preview:
    """A value as it can be shown.

    Attributes:
        encoding: ``utf-8`` when the whole value is UTF-8 text, else ``hex``.
        text: The first :data:`PREVIEW_BYTES` bytes, as text or hexadecimal.
        size_bytes: The size of the whole value.
        truncated: Whether ``text`` covers only the start of the value.
    """

    encoding: str
    text: str
    size_bytes: int
    truncated: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "encoding": self.encoding,
            "text": self.text,
            "size_bytes": self.size_bytes,
            "truncated": self.truncated,
        }

    def __str__(self) -> str:
        shown = self.text if self.encoding == "utf-8" else f"hex:{self.text}"
        if self.truncated:
            shown += f" ... ({self.size_bytes} bytes)"
        return shown


def preview(value: bytes | None, limit: int = PREVIEW_BYTES) -> Preview | None:
    """The start of a value as text (if it is UTF-8) or hexadecimal.

    A multi-byte character cut by the limit is dropped rather than shown
    broken. Control characters in text are escaped (see :func:`printable`).

    Args:
        value: The bytes; ``None`` for a record without a value.
        limit: Most bytes to show.

    Returns:
        The preview, or ``None`` when there is no value.
    """
    if value is None:
        return None
    head = value[:limit]
    truncated = len(value) > limit
    try:
        value.decode()
    except UnicodeDecodeError:
        return Preview("hex", head.hex(), len(value), truncated)
    text = head.decode(errors="ignore") if truncated else head.decode()
    return Preview("utf-8", printable(text), len(value), truncated)


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Escapes control and format characters, so text cannot steer a terminal.

    Args:
        text: Untrusted text.
        keep_newlines: Keep line feeds and tabs as they are.

    Returns:
        The text with each such character written as an escape: ``\\xNN``,
        ``\\uNNNN`` or ``\\UNNNNNNNN``.
    """
    kept = "\n\t" if keep_newlines else ""
    return "".join(
        _escape(char)
        if unicodedata.category(char).startswith("C") and char not in kept
        else char
        for char in text
    )


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
