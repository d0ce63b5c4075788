"""The deterministic rule that cuts the shipped sample out of the full data.

The sample in ``data/sample`` is small enough to ship and still covers every
label. ``write_sample`` rebuilds it byte for byte from the full public files:

- tickets: 600 rows. Each of the 11 categories gets a quota proportional to its
  size (largest remainder, ties to the earlier name); within a category the
  rows at positions ``floor(k * size / quota)`` are kept, which spreads the
  picks over every intent. Kept rows stay in file order and are written with
  the original header;
- emails: all 41, the file copied unchanged;
- contacts: 240 records at positions ``floor(k * 992 / 240)``, in file order, in
  the same ``{"records": [...]}`` shape and indentation;
- the licence files, copied unchanged.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from streams.data.crm import read_contacts
from streams.data.sample import (
    CONTACTS_FILE,
    EMAILS_FILE,
    LICENSE_FILES,
    TICKETS_FILE,
    locate_data_files,
)

logger = logging.getLogger(__name__)

TICKET_SAMPLE_SIZE: Final = 600
CONTACT_SAMPLE_SIZE: Final = 240
CATEGORY_COLUMN: Final = "category"


def spread_positions(total: int, count: int) -> list[int]:
    """Return ``count`` positions spread evenly over ``range(total)``.

    The k-th position is ``floor(k * total / count)``; when ``count`` is not
    smaller than ``total`` every position is returned.

    Args:
        total: Number of items to choose from.
        count: Number of positions wanted.

    Returns:
        Distinct ascending positions.
    """
    if count >= total:
        return list(range(total))
    return [k * total // count for k in range(count)]


def allocate_quotas(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Split ``total`` over groups in proportion to their sizes.

    Each group first gets ``floor(total * size / sum)``; the seats left over go
    to the largest fractional remainders, ties to the name that sorts first. A
    quota never exceeds its group's size.

    Args:
        sizes: Number of items per group.
        total: Number of items to pick overall; capped at the sum of the sizes.

    Returns:
        The quota of every group.
    """
    grand = sum(sizes.values())
    total = min(total, grand)
    if grand == 0:
        return dict.fromkeys(sizes, 0)

    quotas = {name: total * size // grand for name, size in sizes.items()}
    by_remainder = sorted(
        sizes, key=lambda name: (-(total * sizes[name] % grand), name)
    )
    for name in by_remainder[: total - sum(quotas.values())]:
        quotas[name] += 1
    return quotas


def select_ticket_rows(categories: Sequence[str], count: int) -> list[int]:
    """Choose ``count`` rows, stratified by category, as described above.

    Args:
        categories: The category of every row, in file order.
        count: Number of rows to keep.

    Returns:
        The kept row indices, ascending.
    """
    rows_by_category: dict[str, list[int]] = defaultdict(list)
    for index, category in enumerate(categories):
        rows_by_category[category].append(index)

    quotas = allocate_quotas({c: len(r) for c, r in rows_by_category.items()}, count)
    kept: list[int] = []
    for category, rows in rows_by_category.items():
        kept.extend(rows[p] for p in spread_positions(len(rows), quotas[category]))
    return sorted(kept)


def _write_tickets(source: Path, target: Path, count: int) -> int:
    with source.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    column = header.index(CATEGORY_COLUMN)
    kept = select_ticket_rows([row[column] for row in rows], count)

    # The public file ends lines with LF and quotes only where needed.
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[index] for index in kept)
    return len(kept)


def _write_contacts(source: Path, target: Path, count: int) -> int:
    records = read_contacts(source)
    kept = [records[p] for p in spread_positions(len(records), count)]
    text = json.dumps({"records": kept}, indent=4, ensure_ascii=False) + "\n"
    target.write_text(text, encoding="utf-8")
    return len(kept)


def write_sample(
    source_dir: Path,
    target_dir: Path,
    *,
    tickets: int = TICKET_SAMPLE_SIZE,
    contacts: int = CONTACT_SAMPLE_SIZE,
    licenses_dir: Path | None = None,
) -> None:
    """Write the sample subset of a full data directory.

    Args:
        source_dir: Directory holding the three full source files.
        target_dir: Directory to write to; created when missing. Existing files
            of the same names are replaced; ``ATTRIBUTION.md`` is left alone.
        tickets: Number of ticket rows to keep.
        contacts: Number of contact records to keep.
        licenses_dir: Directory holding the licence texts; ``None`` means
            ``source_dir / "licenses"``.

    Raises:
        FileNotFoundError: If a source file or licence text is missing.
        ValueError: If a source file has the wrong shape.
    """
    files = locate_data_files(source_dir)
    licenses = source_dir / "licenses" if licenses_dir is None else licenses_dir
    target_dir.mkdir(parents=True, exist_ok=True)

    ticket_count = _write_tickets(files.tickets, target_dir / TICKETS_FILE, tickets)
    shutil.copyfile(files.emails, target_dir / EMAILS_FILE)
    contact_count = _write_contacts(
        files.contacts, target_dir / CONTACTS_FILE, contacts
    )
    for name in LICENSE_FILES:
        shutil.copyfile(licenses / name, target_dir / name)

    logger.info(
        "subset.written tickets=%d contacts=%d licenses=%d",
        ticket_count,
        contact_count,
        len(LICENSE_FILES),
    )
