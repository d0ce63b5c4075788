"""Where the project's files live.

The package is installed in editable mode from the repository, so the
configuration, schemas and sample data are found next to it. Each location can
be overridden in the settings.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
PIPELINES_DIR = CONFIG_DIR / "pipelines"
SAMPLE_DATA_DIR = PROJECT_ROOT / "data" / "sample"
CACHE_DIR = PROJECT_ROOT / ".cache"
STATE_DIR = PROJECT_ROOT / ".state"
