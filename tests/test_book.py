"""The book driver: a failing chapter is named with its cell, and nothing already built is lost."""

import nbformat
import pytest

from sepnb.book import build
from sepnb.core import paths


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(paths, "BOOK", tmp_path / "book")
    return tmp_path


def test_failing_chapter_names_cell_and_keeps_previous_copy(tree):
    _notebook(tree / "notebooks" / "09_x.ipynb", "x = 1", "raise RuntimeError('boom in cell two')")
    previous = tree / "book" / "09_x.ipynb"
    previous.write_text("the previous, good copy")
    with pytest.raises(build.BookError) as err:
        build.execute_chapter("09_x", "book")
    msg = str(err.value)
    assert "chapter 09_x failed in cell" in msg and "RuntimeError: boom in cell two" in msg
    assert previous.read_text() == "the previous, good copy"
    assert (tree / "book" / "09_x.failed.ipynb").exists()
    assert not (tree / "book" / "09_x.running.ipynb").exists()


def test_successful_chapter_is_written_with_deterministic_metadata(tree):
    _notebook(tree / "notebooks" / "09_y.ipynb", "print(profile)")
    build.execute_chapter("09_y", "book")
    nb = nbformat.read(tree / "book" / "09_y.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and injected[0].id == "injected-parameters"
    assert nb.cells[-1].outputs[0].text == "book\n"
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)
    assert nb.metadata["papermill"] == {"parameters": {"profile": "book"}}


def test_other_profiles_never_write_the_book(tree, monkeypatch):
    """Only the book's profile writes book/; a smoke run goes to _build/profile-smoke/ (issue 21)."""
    monkeypatch.setattr(paths, "ROOT", tree)
    _notebook(tree / "notebooks" / "09_z.ipynb", "print(profile)")
    build.execute_chapter("09_z", "smoke")
    assert not (tree / "book" / "09_z.ipynb").exists()
    nb = nbformat.read(tree / "_build" / "profile-smoke" / "09_z.ipynb", as_version=4)
    assert nb.cells[-1].outputs[0].text == "smoke\n"
    assert build.output_dir("book") == paths.BOOK


def test_unknown_profile_or_chapter_is_refused_before_running(tree):
    with pytest.raises(ValueError, match="unknown profile"):
        build.build("huge")
    with pytest.raises(build.BookError, match="unknown chapter"):
        build.build("smoke", only=["99_nothing"])
