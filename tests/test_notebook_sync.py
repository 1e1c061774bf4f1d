"""Each notebooks/NN_topic.py (the reviewed source) and its .ipynb hold the same cells,
and every chapter follows the book's conventions."""

import re

import jupytext
import pytest

from sepnb.book import build
from sepnb.core import paths

STEMS = sorted(p.stem for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_there_are_chapters():
    assert "01_data" in STEMS


@pytest.mark.parametrize("stem", STEMS)
def test_py_and_ipynb_in_sync(stem):
    diff = build.cell_differences(stem)
    assert not diff, f"{stem}: {diff}; run `make notebooks` to re-save the .ipynb from a fresh run"


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_is_listed_in_toc(stem):
    assert stem in build.chapters()


@pytest.mark.parametrize("stem", STEMS)
def test_ipynb_was_saved_by_a_fresh_top_to_bottom_run(stem):
    nb = jupytext.read(paths.NOTEBOOKS / f"{stem}.ipynb")
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "cells were not executed once each, in order"


@pytest.mark.parametrize("stem", STEMS)
def test_one_parameters_cell_with_profile_and_no_sizes(stem):
    nb = jupytext.read(paths.NOTEBOOKS / f"{stem}.py")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    src = params[0].source
    assert re.search(r'^profile = os\.environ\.get\("SEPNB_PROFILE", "book"\)', src, re.M)


def test_book_differs_detects_a_change(tmp_path, monkeypatch):
    """The sync check itself can fail: an edited .py is reported."""
    stem = next(s for s in STEMS if "seed = 0" in (paths.NOTEBOOKS / f"{s}.py").read_text())
    (tmp_path / f"{stem}.ipynb").write_bytes((paths.NOTEBOOKS / f"{stem}.ipynb").read_bytes())
    text = (paths.NOTEBOOKS / f"{stem}.py").read_text()
    (tmp_path / f"{stem}.py").write_text(text.replace("seed = 0", "seed = 1", 1))
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path)
    assert build.cell_differences(stem)
