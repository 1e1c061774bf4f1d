"""Build the book: execute every chapter headlessly, then run Jupyter Book.

``python -m sepnb.book --profile book`` (what ``make book`` runs):

1. checks that each ``notebooks/NN_topic.py`` and its paired ``.ipynb`` hold
   the same cells (the ``.py`` is the reviewed source);
2. executes each chapter listed in ``_toc.yml`` with papermill at the chosen
   profile into ``book/NN_topic.ipynb`` (a chapter's previous copy is only
   replaced when the new run succeeds; a failed run is kept as
   ``book/NN_topic.failed.ipynb`` and the build stops naming the cell);
3. runs ``jupyter-book build`` with warnings as errors.

``python -m sepnb.book --save-notebooks`` (``make notebooks``) is the only way
the ``notebooks/*.ipynb`` are written: a fresh top-to-bottom run of the
``.py`` at the ``smoke`` profile, with timings stripped so that the stored
outputs are deterministic (``pytest --nbval`` compares against them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sepnb.core import atomic, paths, profiles

__all__ = [
    "chapters",
    "cell_differences",
    "execute_chapter",
    "save_notebook",
    "stale_chapters",
    "copy_static_assets",
    "build",
    "main",
]

KERNEL = "python3"
#: Per-cell time limit when executing a chapter (seconds); the book profile trains priors.
CELL_TIMEOUT = 4 * 3600


class BookError(RuntimeError):
    """A step of the build failed; the message says which and what to do."""


def chapters() -> list[str]:
    """The chapter stems (``01_data`` ...) in ``_toc.yml`` order."""
    import yaml

    toc = yaml.safe_load((paths.ROOT / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("book/") and (paths.NOTEBOOKS / (Path(f).name + ".py")).exists():
                files.append(Path(f).name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    root = toc.get("root", "")
    if root.startswith("book/") and (paths.NOTEBOOKS / (Path(root).name + ".py")).exists():
        files.insert(0, Path(root).name)
    walk(toc)
    return files


#: Chapters executed after all others although listed first: the opening page's scorecard reads
#: the other chapters' results.
EXECUTE_LAST = ("00_intro",)


def execution_order(stems: list[str]) -> list[str]:
    """``stems`` with the chapters of :data:`EXECUTE_LAST` moved to the end."""
    return [s for s in stems if s not in EXECUTE_LAST] + [s for s in stems if s in EXECUTE_LAST]


def _cells(nb) -> list[tuple[str, str, tuple]]:
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", ()))) for c in nb.cells]


def cell_differences(stem: str) -> list[str]:
    """Differences between ``notebooks/<stem>.py`` and ``.ipynb`` (empty when in sync)."""
    import jupytext

    py, ipynb = paths.NOTEBOOKS / f"{stem}.py", paths.NOTEBOOKS / f"{stem}.ipynb"
    if not ipynb.exists():
        return [f"{ipynb.name} is missing"]
    a, b = _cells(jupytext.read(py)), _cells(jupytext.read(ipynb))
    out = []
    if len(a) != len(b):
        out.append(f"{py.name} has {len(a)} cells, {ipynb.name} has {len(b)}")
    for i, (ca, cb) in enumerate(zip(a, b)):
        if ca != cb:
            out.append(f"cell {i} differs: {ca[1][:60]!r} vs {cb[1][:60]!r}")
            break
    return out


def _rel(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it (for messages)."""
    try:
        return str(path.relative_to(paths.ROOT))
    except ValueError:
        return str(path)


def _strip_volatile(nb) -> None:
    """Drop timings and papermill bookkeeping, give cells stable ids, so that saved files are deterministic."""
    import hashlib

    for i, cell in enumerate(nb.cells):
        md = cell.get("metadata", {})
        if "injected-parameters" in md.get("tags", ()):
            cell["id"] = "injected-parameters"  # papermill gives it a random id
        else:  # jupytext and nbformat draw random ids: derive them from position and source instead
            cell["id"] = hashlib.sha1(f"{i}\n{cell.get('source', '')}".encode()).hexdigest()[:8]
        for key in ("execution", "papermill", "ExecuteTime"):
            md.pop(key, None)
    pm = nb.metadata.get("papermill")
    if pm is not None:
        nb.metadata["papermill"] = {k: pm[k] for k in ("parameters",) if k in pm}


def _write_atomic(nb, path: Path) -> None:
    import nbformat

    atomic.replace_with(path, lambda tmp: nbformat.write(nb, tmp))


def save_notebook(stem: str, profile: str = "smoke", scratch: str | None = None) -> float:
    """Execute ``notebooks/<stem>.py`` top to bottom and save it as the paired ``.ipynb``.

    ``scratch`` is a folder for the run store and the results the kernel
    writes (``$SEPNB_RUNS``, ``$SEPNB_RESULTS``), so that a smoke run never
    touches ``runs/`` or ``book/results/``; the default keeps the process's
    own settings.
    """
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    py = paths.NOTEBOOKS / f"{stem}.py"
    nb = jupytext.read(py)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL})
    stores = (
        {} if scratch is None else {"SEPNB_RUNS": Path(scratch) / "runs", "SEPNB_RESULTS": Path(scratch) / "results"}
    )
    t0 = time.perf_counter()
    try:
        with paths.environ(**{profiles.ENV_VAR: profile}, **stores):
            NotebookClient(
                nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, resources={"metadata": {"path": str(paths.NOTEBOOKS)}}
            ).execute()
    except CellExecutionError as err:
        raise BookError(f"{_rel(py)} failed; nothing was saved:\n{err}") from None
    _strip_volatile(nb)
    _write_atomic(nb, paths.NOTEBOOKS / f"{stem}.ipynb")
    return time.perf_counter() - t0


#: The profile whose chapters are the book: only a build at it writes ``book/`` and ``book/results``.
BOOK_PROFILE = "book"


def output_dir(profile: str) -> Path:
    """Where a build at ``profile`` puts its executed chapters: ``book/`` at the book's profile,
    ``_build/profile-<name>/`` (git-ignored) at any other, so that no other profile overwrites the book."""
    return paths.BOOK if profile == BOOK_PROFILE else paths.ROOT / "_build" / f"profile-{profile}"


def results_for(profile: str) -> Path:
    """The results folder of a build at ``profile``: ``$SEPNB_RESULTS`` if set, else ``book/results``
    at the book's profile and ``<output_dir>/results`` at any other."""
    if os.environ.get("SEPNB_RESULTS"):
        return paths.results_dir()
    return paths.RESULTS if profile == BOOK_PROFILE else output_dir(profile) / "results"


def execute_chapter(stem: str, profile: str, parameters: dict | None = None, out_dir: Path | None = None) -> float:
    """Execute ``notebooks/<stem>.ipynb`` with papermill into ``<out_dir>/<stem>.ipynb`` (default
    :func:`output_dir` of the profile); return seconds."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    # No per-cell bar from papermill: the kernel writes one bar per prior trained (or per long
    # computation) to this terminal (sepnb.core.progress), and nothing of it into the chapter.
    src = paths.NOTEBOOKS / f"{stem}.ipynb"
    out_dir = output_dir(profile) if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stem}.ipynb"
    running = out_dir / f"{stem}.running.ipynb"
    failed = out_dir / f"{stem}.failed.ipynb"
    params = {"profile": profile, **(parameters or {})}
    reads_log = out_dir / f".{stem}.reads.jsonl"
    reads_log.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        with paths.environ(**{paths.READS_ENV: reads_log}):
            pm.execute_notebook(
                str(src),
                str(running),
                parameters=params,
                kernel_name=KERNEL,
                cwd=str(paths.NOTEBOOKS),
                progress_bar=False,
                execution_timeout=CELL_TIMEOUT,
            )
    except PapermillExecutionError as err:
        reads_log.unlink(missing_ok=True)
        os.replace(running, failed)
        raise BookError(
            f"chapter {stem} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  cell source starts: {err.source.strip()[:200]!r}\n"
            f"  the partial run is in {_rel(failed)}; the previous {_rel(out)} was left as it was"
        ) from None
    except BaseException:
        reads_log.unlink(missing_ok=True)
        running.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    nb = nbformat.read(running, as_version=4)
    _strip_volatile(nb)
    nb.metadata["sepnb"] = {"reads": _reads(reads_log, own=stem)}
    reads_log.unlink(missing_ok=True)
    # a chapter that hides its parameters cell hides papermill's injected copy of it too
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    if any("parameters" in t and "remove-cell" in t for t in tags):
        for cell, t in zip(nb.cells, tags):
            if "injected-parameters" in t and "remove-cell" not in t:
                cell.metadata["tags"] = [*t, "remove-cell"]
    _write_atomic(nb, out)
    running.unlink()
    failed.unlink(missing_ok=True)
    return seconds


def _reads(log: Path, own: str) -> dict:
    """``{stem: sha256}`` of the other chapters' results a kernel read (its own results excluded)."""
    out = {}
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            if r["stem"] != own:
                out[r["stem"]] = r["sha256"]
    return dict(sorted(out.items()))


def _sha256(path: Path) -> str | None:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


_NO_RECORD = "(no record of what it read)"


def stale_chapters(out_dir: Path | None = None, results: Path | None = None, stems: list[str] | None = None) -> dict:
    """The executed chapters in ``out_dir`` (default ``book/``) that read other chapters' results which
    have changed since: ``{stem: [the results files that differ]}``.

    A chapter's metadata (``sepnb.reads``, written when it is executed) holds
    the SHA-256 of every results file it read; a file that differs now, or is
    gone, makes the chapter stale. Chapters without that record (executed
    before it was kept) are listed with ``["(no record of what it read)"]``.
    """
    import nbformat

    out_dir = paths.BOOK if out_dir is None else Path(out_dir)
    results = paths.RESULTS if results is None else Path(results)
    stale = {}
    for stem in stems or chapters():
        path = out_dir / f"{stem}.ipynb"
        if not path.exists():
            continue
        reads = nbformat.read(path, as_version=4).metadata.get("sepnb", {}).get("reads")
        if reads is None:
            stale[stem] = [_NO_RECORD]
            continue
        changed = [f"{s}.json" for s, h in reads.items() if _sha256(results / f"{s}.json") != h]
        if changed:
            stale[stem] = changed
    return stale


#: The git-ignored folder that ``_config.yml`` names as ``html_static_path``.
VENDOR = "_vendor"
#: What the book uses of MathJax 3's ``es5`` folder: the component ``mathjax_path``
#: names, and what it loads on demand (TeX extensions, fonts, menu, accessibility).
_MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output", "ui", "a11y", "sre", "adaptors")


def copy_static_assets(root: Path | None = None) -> Path:
    """Copy MathJax 3 from the pip package ``django-static-mathjax`` into ``<root>/_vendor/mathjax``.

    The built pages then load MathJax (and its fonts) from ``_static/mathjax``
    instead of a CDN, so that equations render offline. Does nothing when the
    same version is already there. Returns the folder.
    """
    import importlib.metadata
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("mathjax")  # django-static-mathjax's import name; nothing is imported
    pkg = list(spec.submodule_search_locations or ()) if spec else []
    src = Path(pkg[0]) / "static" / "mathjax" / "es5" if pkg else None
    if src is None or not (src / _MATHJAX_PARTS[0]).is_file():
        raise BookError(
            "MathJax 3 was not found: install the pinned `django-static-mathjax` "
            "(`make setup` installs it from requirements.lock); the book serves MathJax itself, not from a CDN"
        )
    version = importlib.metadata.version("django-static-mathjax")
    dest = (root or paths.ROOT) / VENDOR / "mathjax"
    stamp = dest / "VERSION.txt"
    if stamp.is_file() and stamp.read_text().strip() == version:
        return dest
    tmp = dest.with_name(f".mathjax-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for part in _MATHJAX_PARTS:
            (shutil.copytree if (src / part).is_dir() else shutil.copy2)(src / part, tmp / part)
        (tmp / "VERSION.txt").write_text(f"{version}\n")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build(profile: str, only: list[str] | None = None, execute: bool = True, stale: bool = False) -> None:
    """Execute the chapters (all, or ``only``) at ``profile``; at the book's profile, build ``_build/html``.

    At the book's profile the chapters go to ``book/`` and their results to ``book/results``
    (this is the one writer of both); at any other profile to ``_build/profile-<name>/`` and
    its ``results/``, and the HTML (made from ``book/``) is left alone.

    A chapter that read another chapter's results which changed after it ran (a
    chapter executed later rewrote them) is executed again, until none is stale.
    ``stale=True`` executes only the chapters that are stale now (:func:`stale_chapters`).
    """
    profiles.get(profile)  # unknown name -> clear ValueError
    stems = chapters()
    if only:
        unknown = sorted(set(only) - set(stems))
        if unknown:
            raise BookError(f"unknown chapter(s) {unknown}; the chapters are {stems}")
        stems = [s for s in stems if s in only]
    for stem in stems:
        diff = cell_differences(stem)
        if diff:
            raise BookError(
                f"notebooks/{stem}.py and its .ipynb are out of sync ({'; '.join(diff)}); "
                "run `make notebooks` to re-save the .ipynb from a fresh run of the .py"
            )
    results = results_for(profile)
    timings_path = results / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    out_dir = output_dir(profile)
    if stale:
        found = stale_chapters(out_dir, results, stems)
        unrecorded = [s for s, why in found.items() if why == [_NO_RECORD]]
        if unrecorded:
            print(
                f"not executed: {', '.join(unrecorded)} (run before reads were recorded; "
                "execute them with --only if they are to be refreshed)",
                flush=True,
            )
        found = {s: why for s, why in found.items() if s not in unrecorded}
        for stem, why in found.items():
            print(f"{stem} is stale: it read {', '.join(why)}, which changed since", flush=True)
        stems = [s for s in stems if s in found]
        if not stems:
            print("no chapter is stale: every recorded chapter read the results that are there now", flush=True)
    if execute and stems:
        results.mkdir(parents=True, exist_ok=True)

        def run(order, tag=""):
            with paths.environ(SEPNB_RESULTS=results):  # the kernels inherit it
                for i, stem in enumerate(order, 1):
                    print(
                        f"[{i}/{len(order)}]{tag} executing {stem} at profile {profile!r} into {_rel(out_dir)}/ ...",
                        flush=True,
                    )
                    seconds = execute_chapter(stem, profile, out_dir=out_dir)
                    print(f"[{i}/{len(order)}]{tag} {stem} done in {seconds:.0f} s", flush=True)
                    timings[stem] = {"profile": profile, "seconds": round(seconds, 1)}
                    _write_json(timings_path, timings)

        before = {f.name: _sha256(f) for f in results.glob("*.json")}
        run(execution_order(stems))
        # A chapter (executed now or before) that read results this build rewrote runs again, until none
        # does: the book's chapters then all read the results that are there.
        for _ in range(len(chapters())):
            rewritten = {f.name for f in results.glob("*.json") if _sha256(f) != before.get(f.name)}
            again = {
                s: why
                for s, why in stale_chapters(out_dir, results).items()
                if why != [_NO_RECORD] and set(why) & rewritten
            }
            if not again:
                break
            for stem, why in again.items():
                print(f"{stem} read {', '.join(why)}, which this build rewrote: executing it again", flush=True)
            run(execution_order(list(again)), tag=" (again)")
    if profile != BOOK_PROFILE:
        print(
            f"done: the {profile!r} chapters are in {_rel(output_dir(profile))}/, their results in "
            f"{_rel(results)}/; the book (book/, _build/html) is built at the {BOOK_PROFILE!r} profile only"
        )
        return
    copy_static_assets()  # MathJax, served with the book (no CDN)
    print("building the HTML with jupyter-book (warnings are errors) ...", flush=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(paths.ROOT), "--warningiserror", "--keep-going"]
    if subprocess.run(cmd, cwd=paths.ROOT).returncode != 0:
        raise BookError("jupyter-book build failed: see the warnings above (they are errors here)")
    print(f"done: open {paths.ROOT / '_build' / 'html' / 'index.html'}")


def _write_json(path: Path, obj) -> None:
    atomic.write_json(path, obj, sort_keys=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sepnb.book", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="book", help=f"one of {sorted(profiles.PROFILES)} (default: book)")
    ap.add_argument("--only", nargs="+", metavar="CHAPTER", help="execute only these chapters (e.g. 01_data)")
    ap.add_argument("--no-execute", action="store_true", help="build the HTML from the chapters already in book/")
    ap.add_argument(
        "--stale",
        action="store_true",
        help="execute only the chapters that read other chapters' results which changed since they ran",
    )
    ap.add_argument(
        "--save-notebooks",
        action="store_true",
        help="re-save notebooks/*.ipynb from a fresh smoke-profile run of their .py, then stop",
    )
    args = ap.parse_args(argv)
    try:
        if args.save_notebooks:
            import tempfile

            stems = args.only or chapters()
            # a fresh, temporary run store and results folder: the saved outputs are those of a
            # first run, as in the tests, and book/results keeps the book's numbers
            with tempfile.TemporaryDirectory(prefix="sepnb-save-") as scratch:
                for stem in execution_order(stems):
                    print(f"saving notebooks/{stem}.ipynb from a fresh run of {stem}.py (smoke) ...", flush=True)
                    print(f"  done in {save_notebook(stem, scratch=scratch):.0f} s", flush=True)
            return 0
        build(args.profile, only=args.only, execute=not args.no_execute, stale=args.stale)
    except (BookError, ValueError) as err:
        print(f"\nsepnb.book: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
