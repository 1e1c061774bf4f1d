"""Where things live on disk. Paths are resolved here, never relative to the cwd.

Jupyter Book runs a notebook in its own folder and papermill in the shell's,
so every notebook asks this module instead of using relative paths.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

#: The repository root (the folder holding ``_config.yml``). sepnb runs from a checkout
#: (``pip install -e .``, as ``make`` does); see :func:`home` for an installed wheel.
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
#: The book's results, read by the chapters and the tests; written only by ``make book``
#: (``python -m sepnb.book`` at the ``book`` profile), which points ``$SEPNB_RESULTS`` here.
RESULTS = BOOK / "results"
RULES = BOOK / "scorecard.yaml"
HOME_ENV = "SEPNB_HOME"


def in_checkout() -> bool:
    """Whether this sepnb is a checkout of its repository (an editable install), not a wheel."""
    return (ROOT / "_config.yml").is_file() and (ROOT / "sepnb").is_dir()


def home() -> Path:
    """Where the run store, the data and scratch results live: ``$SEPNB_HOME`` if set, else the checkout.

    Installed from a wheel (no checkout around the package) sepnb refuses to guess a
    folder inside site-packages: set ``SEPNB_HOME`` (or each of ``SEPNB_RUNS``,
    ``SEPNB_DATA``, ``SEPNB_RESULTS``), or work in a checkout.
    """
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    if not in_checkout():
        raise RuntimeError(
            f"sepnb is installed outside a checkout of its repository ({ROOT}), so it has no folder for its "
            f"run store, data and results: set {HOME_ENV}=/some/folder (runs/, data/ and results/ go there), "
            f"or clone the repository and run `pip install -e .` in it"
        )
    return ROOT


def results_dir() -> Path:
    """Where chapters write their headline numbers: ``$SEPNB_RESULTS`` if set, else ``results/`` under
    :func:`home` (git-ignored scratch).

    ``make book`` sets ``$SEPNB_RESULTS`` to ``book/results`` for the chapters it executes at
    the ``book`` profile: it is the one writer of the book's results. A chapter run by hand
    (papermill, jupyter) writes to the scratch folder and never over the book's numbers.
    """
    if os.environ.get("SEPNB_RESULTS"):
        return Path(os.environ["SEPNB_RESULTS"]).expanduser().resolve()
    return home() / "results"


#: The environment variable naming the file where :func:`note_read` records the results a
#: process reads (set by the book's build for each chapter it executes).
READS_ENV = "SEPNB_READS_LOG"


def note_read(path: Path) -> None:
    """Record that this process read the results file ``path`` (its stem and the SHA-256 of its
    bytes) in ``$SEPNB_READS_LOG``, when set: the book's build stores what a chapter read in the
    chapter's metadata, so a chapter executed against other results than the committed ones is
    found (``python -m sepnb.book --stale``, ``tests/test_book.py``)."""
    log = os.environ.get(READS_ENV)
    if not log or not Path(path).is_file():
        return
    import hashlib
    import json

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with open(log, "a") as f:
        f.write(json.dumps({"stem": Path(path).stem, "sha256": digest}) + "\n")


def read_results(stem: str) -> Path:
    """The results file ``<stem>.json`` a chapter reads from another: this process's
    :func:`results_dir` if it has one, else the book's (``book/results``). The read is
    recorded (:func:`note_read`)."""
    mine = results_dir() / f"{stem}.json"
    path = mine if mine.exists() else RESULTS / f"{stem}.json"
    note_read(path)
    return path


def runs_dir() -> Path:
    """The run store's folder: ``$SEPNB_RUNS`` if set, else ``runs/`` under :func:`home`."""
    if os.environ.get("SEPNB_RUNS"):
        return Path(os.environ["SEPNB_RUNS"]).expanduser().resolve()
    return home() / "runs"


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
    else ``data/`` under :func:`home` (git-ignored). The tests point it at a temporary folder."""
    if os.environ.get("SEPNB_DATA"):
        return Path(os.environ["SEPNB_DATA"]).expanduser().resolve()
    return home() / "data"


def update_results(stem: str, key: str, payload: dict) -> Path:
    """Store ``payload`` under ``key`` in ``<results_dir>/<stem>.json`` and return the path.

    Entries under other keys (other profiles or parameter values) are kept, so
    that re-running a chapter at another setting adds to its results instead of
    replacing them. The write is atomic (:mod:`sepnb.core.atomic`).
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
    from sepnb.core import atomic

    return atomic.write_json(path, {"runs": dict(sorted(runs.items()))})
