"""The names of the benchmark's rows, as the report and the JSON spell them."""

from __future__ import annotations

OURS = "ours"
NAIVE = "naive"
FAUST = "faust"
PASSTHROUGH = "passthrough"
OURS_CACHE_HIT = "ours-cache-hit"
OURS_MEMORY = "ours-memory"
OURS_PACKED = "ours-packed"
ROW_NAMES = (OURS, NAIVE, FAUST, PASSTHROUGH, OURS_CACHE_HIT, OURS_PACKED)
"""The rows of the JSON's ``rows`` list; the memory row has its own key."""
