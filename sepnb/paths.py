"""Where things live on disk. Paths are resolved here, never relative to the cwd.

Jupyter Book runs a notebook in its own folder and papermill in the shell's,
so every notebook asks this module instead of using relative paths.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def environ(**values):
    """Set environment variables (``None`` unsets one) for the ``with`` block; restored afterwards.

    How a process points the run store or the results at a scratch folder for a
    while (``environ(SEPNB_RUNS=tmp)``) without losing its own settings.
    """
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def data_dir() -> Path:
    """Where generated data sets live (the music stand-in, frame caches): ``$SEPNB_DATA`` if set,
    else ``data/`` at the root (git-ignored). The tests point it at a temporary folder."""
    return Path(os.environ.get("SEPNB_DATA", ROOT / "data")).expanduser().resolve()


def update_results(stem: str, key: str, payload: dict) -> Path:
    """Store ``payload`` under ``key`` in ``<results_dir>/<stem>.json`` and return the path.

    Entries under other keys (other profiles or parameter values) are kept, so
    that re-running a chapter at another setting adds to its results instead of
    replacing them. The write is atomic (temp file + rename).
    """
    import json

    path = results_dir() / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = {}
    if path.exists():
        try:
            runs = json.loads(path.read_text())["runs"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a sepnb results file ({err}); move it away and run again") from None
    runs[key] = payload
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"runs": dict(sorted(runs.items()))}, indent=2) + "\n")
    os.replace(tmp, path)
    return path
