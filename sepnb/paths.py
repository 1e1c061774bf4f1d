"""Where things live on disk. Paths are resolved here, never relative to the cwd.

Jupyter Book runs a notebook in its own folder and papermill in the shell's,
so every notebook asks this module instead of using relative paths.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the folder holding ``_config.yml``); sepnb is installed editable.
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
RESULTS = BOOK / "results"


def results_dir() -> Path:
    """Where chapters write their headline numbers: ``$SEPNB_RESULTS`` if set, else ``book/results``.

    The tests point it at a temporary folder so that a smoke run never
    overwrites the book's results.
    """
    return Path(os.environ.get("SEPNB_RESULTS", RESULTS)).expanduser().resolve()


def runs_dir() -> Path:
    """The run store's folder: ``$SEPNB_RUNS`` if set, else ``runs/`` at the root."""
    return Path(os.environ.get("SEPNB_RUNS", ROOT / "runs")).expanduser().resolve()
