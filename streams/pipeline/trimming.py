"""Trimming an event's prompt text to the pipeline's input token limit.

A pipeline may set ``input_token_limit``: the most tokens the event text (the
user message, labels included) may take. The fixed instructions are not
counted; they are the same for every event and mostly cache hits. Text under
the limit is sent unchanged; the check is free for any text whose UTF-8
length is at most the limit (``tokens <= bytes``). Text over it loses, in
this order, stopping as soon as it fits:

1. ``quoted_history``: earlier messages of the thread. A reply header
   ("Le 3 mai 2018 à 10:17, X a écrit :", "On Mon, ... wrote:", also when
   wrapped over two lines), an "-----Original Message-----" or "Message
   d'origine" line, or a header block (De/From then A, Date, Objet, Envoyé,
   To, Sent, Subject ...) below the sender's own text, and everything after
   it; every line quoted with ``>``. Forward markers ("----- Transféré par
   ...", "---------- Forwarded message ---------") and a header block right
   after such a marker or with nothing written above it are removed, but
   the forwarded text is kept: in
   a support mailbox a forward is how the customer's message arrives (an
   adviser passing it on), so it is the message, not its history.
2. ``signature``: a ``-- `` line and what follows; a closing formula
   ("Cordialement", "Bien à vous", "Best regards", ...) when at most six
   short lines (name, title, phone) follow it to the end of the field.
3. ``head_tail_cut``: the longest field is cut to fit, keeping its first two
   thirds and last third of the tokens it may keep, joined by ``CUT_MARKER``.
   The beginning holds the request, the end the latest words and the
   sign-off context; the middle is what a reader skims. Repeated on the next
   longest field if one field cannot absorb the whole excess.

Only the text sent to the model is trimmed. The content hash stays over the
original fields: the same content must map to the same enrichment, and the
trimmed text is a function of the content and the pipeline's limit. A change
of ``input_token_limit`` therefore goes with a new ``prompt_version``, like
any other change to what is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.llm import token_count

QUOTED_HISTORY = "quoted_history"
SIGNATURE = "signature"
HEAD_TAIL_CUT = "head_tail_cut"

HEAD_SHARE = 2 / 3
"""Share of the kept tokens taken from the beginning of a cut field."""

CUT_MARKER = "\n[...]\n"
"""Put where the middle of a field was cut out."""

SIGNATURE_MAX_LINES = 6
SIGNATURE_LINE_MAX_CHARS = 80
_MAX_CUT_ROUNDS = 6

Field = tuple[str, str]
"""A prompt field: its label and its rendered text."""

_REPLY_HEADER = re.compile(
    r"^[ \t]*(?:>[ \t]*)*(?:Le|On)\b[^\n]{0,300}?"
    r"(?:\n[^\n]{0,200}?)?\b(?:a\s+écrit|wrote)\s*:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^[ \t]*-{3,}[ \t]*(?:Original Message|Message d'origine|Message original)"
    r"[ \t]*-{3,}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FORWARD_MARKER = re.compile(
    r"^[ \t]*-{3,}[ \t]*(?:Transféré par|Forwarded (?:message|by)|"
    r"Message transféré|Début du message réexpédié)[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE = re.compile(
    r"^[ \t]*(?:De|A|À|Cc|Cci|Date|Objet|Envoyé|From|To|Sent|Subject)[ \t]*:",
    re.IGNORECASE,
)
_SENDER_LINE = re.compile(r"^[ \t]*(?:De|From)[ \t]*:", re.IGNORECASE)
_QUOTED_LINE = re.compile(r"^[ \t]*>")
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$", re.MULTILINE)
_SIGN_OFF = re.compile(
    r"^[ \t]*(?:bien\s+)?(?:cordialement|à\s+vous|sincèrement|salutations|"
    r"(?:meilleures|sincères)\s+salutations|bien\s+à\s+vous|"
    r"(?:best|kind|warm)?\s*regards|sincerely|(?:many\s+)?thanks|thank\s+you|"
    r"cheers)\b[ \t.,!]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Trim:
    """How an event's text was trimmed.

    Attributes:
        original_tokens: Tokens of the event text as rendered.
        sent_tokens: Tokens of the text sent.
        steps: The steps that changed the text, in order.
    """

    original_tokens: int
    sent_tokens: int
    steps: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The form written into enriched records."""
        return {
            "original_tokens": self.original_tokens,
            "sent_tokens": self.sent_tokens,
            "steps": list(self.steps),
        }


def _header_block_at(lines: list[str], index: int) -> int:
    """The number of header lines starting at ``index`` (0 when none).

    A header block is a sender line (De, From) with at least one more header
    line (A, Date, Objet, Envoyé, To, Sent, Subject ...) right after it.
    """
    if not _SENDER_LINE.match(lines[index]):
        return 0
    end = index + 1
    while end < len(lines) and _HEADER_LINE.match(lines[end]):
        end += 1
    return end - index if end - index >= 2 else 0


def remove_quoted_history(text: str) -> str:
    """``text`` without earlier messages of its thread (step 1 above)."""
    text = text.replace("\r\n", "\n")
    for pattern in (_REPLY_HEADER, _ORIGINAL_MESSAGE):
        match = pattern.search(text)
        if match is not None:
            text = text[: match.start()]

    lines = text.split("\n")
    kept: list[str] = []
    forwarding = False
    index = 0
    while index < len(lines):
        if _FORWARD_MARKER.match(lines[index]):
            forwarding = True
            index += 1
            continue
        headers = _header_block_at(lines, index)
        if headers and not forwarding and any(line.strip() for line in kept):
            break  # a reply's header block: the rest is the earlier message
        if headers:
            # A forward's header block: drop it, keep what it forwards.
            forwarding = False
            index += headers
            continue
        if not _QUOTED_LINE.match(lines[index]):
            kept.append(lines[index])
        index += 1
    return "\n".join(kept).rstrip()


def remove_signature(text: str) -> str:
    """``text`` without its closing formula and signature (step 2 above)."""
    text = text.replace("\r\n", "\n")
    delimiter = _SIGNATURE_DELIMITER.search(text)
    if delimiter is not None:
        text = text[: delimiter.start()]

    lines = text.rstrip().split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if not _SIGN_OFF.match(lines[index]):
            continue
        after = [line for line in lines[index + 1 :] if line.strip()]
        if len(after) <= SIGNATURE_MAX_LINES and all(
            len(line.strip()) <= SIGNATURE_LINE_MAX_CHARS for line in after
        ):
            lines = lines[:index]
        break
    return "\n".join(lines).rstrip()


def cut_head_tail(text: str, max_tokens: int) -> str:
    """``text`` cut to about ``max_tokens`` tokens, keeping both ends.

    The tokens kept besides the marker go two thirds to the head and one
    third to the tail. Decoding may split a multi-byte character at the cut;
    its remains are dropped. Re-encoding the joined text can differ from the
    sum by a token or two at the seams, which the caller absorbs.
    """
    ids = token_count.encode(text)
    if len(ids) <= max_tokens:
        return text
    keep = max(max_tokens - token_count.count_fixed_tokens(CUT_MARKER), 0)
    head = round(keep * HEAD_SHARE)
    tail = keep - head
    head_text = token_count.decode(ids[:head]).rstrip("\ufffd")
    tail_text = (
        token_count.decode(ids[len(ids) - tail :]).lstrip("\ufffd") if tail else ""
    )
    return head_text + CUT_MARKER + tail_text


def _substantive(clean: Callable[[str], str], text: str) -> str:
    """``clean(text)``, or ``text`` itself when only whitespace would change."""
    cleaned = clean(text)
    if cleaned.split() == text.split():
        return text
    return cleaned


def trim_fields(
    fields: list[Field], limit: int, join: Callable[[list[Field]], str]
) -> tuple[list[Field], Trim | None]:
    """Trims prompt fields until their joined text fits ``limit`` tokens.

    Args:
        fields: The event's prompt fields, in prompt order.
        limit: The most tokens the joined text may take.
        join: Renders fields into the text that is sent.

    Returns:
        The fields to send, and how they were trimmed (None when unchanged).
    """
    text = join(fields)
    if len(text.encode()) <= limit:
        return fields, None
    original = token_count.count_tokens(text)
    if original <= limit:
        return fields, None

    tokens = original
    steps: list[str] = []
    cleaners: tuple[tuple[str, Callable[[str], str]], ...] = (
        (QUOTED_HISTORY, remove_quoted_history),
        (SIGNATURE, remove_signature),
    )
    for step, clean in cleaners:
        cleaned = [(label, _substantive(clean, value)) for label, value in fields]
        if cleaned == fields:
            continue
        fields = cleaned
        steps.append(step)
        tokens = token_count.count_tokens(join(fields))
        if tokens <= limit:
            return fields, Trim(original, tokens, tuple(steps))

    fields = list(fields)
    for _ in range(_MAX_CUT_ROUNDS):
        if tokens <= limit:
            break
        index = max(range(len(fields)), key=lambda i: len(fields[i][1]))
        label, value = fields[index]
        if not value:
            break
        value_tokens = token_count.count_tokens(value)
        budget = max(value_tokens - (tokens - limit) - 2, 0)
        fields[index] = (label, cut_head_tail(value, budget) if budget else "")
        tokens = token_count.count_tokens(join(fields))
    if HEAD_TAIL_CUT not in steps:
        steps.append(HEAD_TAIL_CUT)
    return fields, Trim(original, tokens, tuple(steps))
