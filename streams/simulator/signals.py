"""Urgency, sentiment and sentence helpers read from free text.

Keyword lists cover English and French, the two languages of the sample
data. They are deliberately small and predictable: the simulator must give
the same answer for the same text, not the best possible answer.
"""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
"""Template slots such as ``{{Order Number}}`` in the sample tickets."""

_URGENT = re.compile(
    r"\burgen|\basap\b|\bimmediately\b|as soon as possible|right away|"
    r"\bemergency\b|d[èe]s que possible|au plus vite|tout de suite|\bimm[ée]diatement",
    re.IGNORECASE,
)
_ANGRY = re.compile(
    r"\bangry\b|\bfurious\b|unacceptable|inadmissible|inacceptable|\bscandal|"
    r"\boutrag|\blawyer\b|\bavocat\b|\bdamn\b|ridiculous|\bfed up\b|\bmarre\b",
    re.IGNORECASE,
)
_POSITIVE = re.compile(
    r"\bthanks?\b|\bthank you\b|\bgreat\b|\blove\b|\bappreciate|\bexcellent\b|"
    r"\bperfect\b|\bwonderful\b|\bmerci\b|\bparfait|\bsatisfaite?\b|\bravie?\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\bangry\b|\bterrible\b|\bnot happy\b|\bunhappy\b|\bcomplain|\bissues?\b|"
    r"\bproblems?\b|\berrors?\b|\bwrong\b|\bdisappoint|unacceptable|\bworst\b|"
    r"\bdamn\b|\bawful\b|\bmécontent|\bprobl[èe]me|\berreur|inadmissible|"
    r"\bdéçue?\b|\br[ée]clamation|\binsatisfait|\bsinistre\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WHITESPACE = re.compile(r"\s+")

LOW_URGENCY_INTENTS: frozenset[str] = frozenset(
    {
        "check_cancellation_fee",
        "check_invoice",
        "check_payment_methods",
        "check_refund_policy",
        "delivery_options",
        "newsletter_subscription",
        "review",
        "information_request",
        "general_inquiry",
    }
)
"""Intents that are questions rather than problems, hence low urgency."""


def detect_urgency(text: str, intent: str) -> str:
    """Return ``low``, ``medium``, ``high`` or ``critical``.

    Urgent wording together with anger is critical; either alone is high;
    informational intents without negative wording are low; the rest is
    medium.

    Args:
        text: The customer's text.
        intent: The intent already detected for the text.
    """
    urgent = _URGENT.search(text) is not None
    angry = _ANGRY.search(text) is not None
    if urgent and angry:
        return "critical"
    if urgent or angry:
        return "high"
    if intent in LOW_URGENCY_INTENTS and _NEGATIVE.search(text) is None:
        return "low"
    return "medium"


def detect_sentiment(text: str) -> str:
    """Return ``positive``, ``negative`` or ``neutral`` by counting lexicon hits.

    A text with more negative than positive hits is negative, with more
    positive than negative hits positive, otherwise neutral.
    """
    positive = len(_POSITIVE.findall(text))
    negative = len(_NEGATIVE.findall(text))
    if negative > positive:
        return "negative"
    if positive > negative:
        return "positive"
    return "neutral"


def normalize_space(text: str) -> str:
    """Collapse whitespace runs to single spaces and strip the ends."""
    return _WHITESPACE.sub(" ", text).strip()


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, cutting at a space.

    A shortened text ends with ``...``, which counts towards the limit.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "..."


def first_sentence(text: str, limit: int = 160) -> str:
    """Return the first non-empty sentence of ``text``, clipped to ``limit``."""
    flat = normalize_space(text)
    for sentence in _SENTENCE_END.split(flat):
        if sentence:
            return clip(sentence, limit)
    return ""
