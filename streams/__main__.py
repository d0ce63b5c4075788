"""Entry point for ``python -m streams``."""

from streams.cli import main

raise SystemExit(main())
