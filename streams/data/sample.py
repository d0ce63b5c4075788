"""Where the source data lives, and loading every pipeline's events from it.

A data directory holds one file per source, under the same names in the full
public data set and in the subset shipped with the package (``data/sample``):

- ``tickets_bitext.csv``: support requests (Bitext), for ``tickets``;
- ``emails_melusine.json``: customer emails (Melusine), for ``emails``;
- ``crm_contacts_coralcloud.json``: CRM contacts (Coral Cloud), for ``crm``.

The licence of each source sits next to its file; ``ATTRIBUTION.md`` in the
shipped subset names the sources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streams.data.crm import load_contacts
from streams.data.emails import load_emails
from streams.data.events import PIPELINES, SourceEvent
from streams.data.tickets import load_tickets

logger = logging.getLogger(__name__)

TICKETS_FILE: Final = "tickets_bitext.csv"
EMAILS_FILE: Final = "emails_melusine.json"
CONTACTS_FILE: Final = "crm_contacts_coralcloud.json"
LICENSE_FILES: Final[tuple[str, ...]] = (
    "Bitext_CDLA-Sharing-1.0_LICENSE.txt",
    "melusine_LICENSE.txt",
    "coral-cloud_CC0-1.0_LICENSE.md",
)
"""Licence texts of the three sources, in the order of the files above."""

Loader = Callable[[Path, int | None], list[SourceEvent]]

_LOADERS: Final[dict[str, Loader]] = {
    "tickets": load_tickets,
    "emails": load_emails,
    "crm": load_contacts,
}


@dataclass(frozen=True, slots=True)
class DataFiles:
    """The source files of one data directory.

    Attributes:
        tickets: The Bitext support-request CSV.
        emails: The Melusine email list.
        contacts: The Coral Cloud contact data tree.
    """

    tickets: Path
    emails: Path
    contacts: Path

    def for_pipeline(self, pipeline: str) -> Path:
        """Return the source file a pipeline's events are loaded from.

        Raises:
            ValueError: If the pipeline is unknown.
        """
        paths = {"tickets": self.tickets, "emails": self.emails, "crm": self.contacts}
        if pipeline not in paths:
            raise ValueError(f"unknown pipeline {pipeline!r}; known: {PIPELINES}")
        return paths[pipeline]


def default_data_dir() -> Path:
    """Return the sample directory shipped with the source tree (``data/sample``)."""
    return Path(__file__).resolve().parents[2] / "data" / "sample"


def locate_data_files(data_dir: Path | None = None) -> DataFiles:
    """Find the source files in a data directory.

    Args:
        data_dir: A directory holding the three source files, such as the shipped
            sample or a copy of the full public data; ``None`` means
            ``default_data_dir()``.

    Returns:
        The paths of the three files.

    Raises:
        FileNotFoundError: If any of the files is missing; the message names it.
    """
    directory = default_data_dir() if data_dir is None else data_dir
    files = DataFiles(
        tickets=directory / TICKETS_FILE,
        emails=directory / EMAILS_FILE,
        contacts=directory / CONTACTS_FILE,
    )
    for path in (files.tickets, files.emails, files.contacts):
        if not path.is_file():
            raise FileNotFoundError(f"source file {path.name} not found in {directory}")
    return files


def check_pipelines(pipelines: Iterable[str] | None) -> tuple[str, ...]:
    """Return the chosen pipelines in the canonical order of ``PIPELINES``.

    Args:
        pipelines: Pipeline names, or ``None`` for all of them.

    Returns:
        The names, without duplicates, ordered as in ``PIPELINES``.

    Raises:
        ValueError: If a name is unknown or none is chosen.
    """
    chosen = set(PIPELINES if pipelines is None else pipelines)
    unknown = chosen - set(PIPELINES)
    if unknown:
        raise ValueError(f"unknown pipelines {sorted(unknown)}; known: {PIPELINES}")
    if not chosen:
        raise ValueError("no pipeline chosen")
    return tuple(name for name in PIPELINES if name in chosen)


def load_pipeline_events(
    data_dir: Path | None = None,
    *,
    pipelines: Iterable[str] | None = None,
    limit_per_source: int | None = None,
) -> dict[str, list[SourceEvent]]:
    """Load the events of the chosen pipelines from one data directory.

    Args:
        data_dir: The data directory; ``None`` means ``default_data_dir()``.
        pipelines: Pipeline names, or ``None`` for all of them.
        limit_per_source: Read at most this many source rows per file. For CRM
            it counts contacts, so updates come on top.

    Returns:
        The events of each pipeline, keyed by name in the order of ``PIPELINES``.

    Raises:
        FileNotFoundError: If a source file is missing.
        ValueError: If a pipeline is unknown or a file has the wrong shape.
    """
    if limit_per_source is not None and limit_per_source < 0:
        raise ValueError("limit_per_source must not be negative")

    chosen = check_pipelines(pipelines)
    files = locate_data_files(data_dir)
    loaded: dict[str, list[SourceEvent]] = {}
    for pipeline in chosen:
        load = _LOADERS[pipeline]
        loaded[pipeline] = load(files.for_pipeline(pipeline), limit_per_source)

    logger.info(
        "sample.loaded pipelines=%d events=%d",
        len(loaded),
        sum(len(events) for events in loaded.values()),
    )
    return loaded
