"""The executed chapters hold what a reader should see, nothing else (issue 10).

Progress bars go to the terminal (sepnb.core.progress), so no stored output may
hold a stderr stream, a warning, a traceback or a path of the machine that
executed it. Checked over the book's chapters (``book/*.ipynb``, what the
HTML shows) and over the stored smoke runs that nbval compares against
(``notebooks/*.ipynb``).
"""

import re

import nbformat
import pytest

from sepnb.core import paths

NOTEBOOKS = sorted(paths.BOOK.glob("[0-9][0-9]_*.ipynb")) + sorted(paths.NOTEBOOKS.glob("*.ipynb"))
BLOB = re.compile(r"base64,[A-Za-z0-9+/=\s]+|\"data:[^\"]*\"")  # embedded audio/images: not text
WARNING = re.compile(r"\b[A-Z]\w*Warning\b|warnings\.warn|^\s*warn(ing)?:", re.I | re.M)
MACHINE_PATH = re.compile(
    r"(?<![\w.:/])/(home|root|tmp|usr|opt|var|work|Users|private|mnt|srv|etc)/[\w.\-/]+"
    r"|site-packages|\.venv/|[A-Z]:\\\\"
)
PROGRESS = re.compile(r"\d+%\|")


def _texts(nb):
    """``(cell index, kind, text)`` of every text output."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                yield i, f"stream:{out.get('name')}", out.get("text", "")
            elif kind == "error":
                yield i, "error", "\n".join(out.get("traceback", [])) or out.get("ename", "error")
            else:
                for mime, value in out.get("data", {}).items():
                    if mime.startswith("text/") or mime.endswith("+json") or "papermill" in mime:
                        yield i, mime, value if isinstance(value, str) else str(value)


def _problems(nb) -> list[str]:
    found = []
    for i, kind, text in _texts(nb):
        text = BLOB.sub("", text)
        if kind == "error" or "Traceback (most recent call last)" in text:
            found.append(f"cell {i}: a traceback")
        if kind == "stream:stderr":
            found.append(f"cell {i}: a stderr stream {text[:80]!r}")
        for pattern, what in (
            (WARNING, "warning text"),
            (MACHINE_PATH, "a path of the machine"),
            (PROGRESS, "a progress bar"),
        ):
            m = pattern.search(text)
            if m:
                found.append(f"cell {i} ({kind}): {what} {text[max(0, m.start() - 40) : m.end() + 40]!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_outputs_hold_no_clutter(path):
    problems = _problems(nbformat.read(path, as_version=4))
    shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
    assert not problems, f"{path.relative_to(paths.ROOT)}:\n  " + "\n  ".join(shown)


@pytest.mark.parametrize(
    "text, what",
    [
        ("sine:  40%|####      | 4/10 [00:01<00:02]", "a progress bar"),
        ("/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found", "warning"),
        ("saved to /tmp/sepnb-test-runs-abc/flow-sine", "a path of the machine"),
    ],
)
def test_the_check_catches_clutter(text, what):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])]
    )
    assert any(what in p for p in _problems(nb))


def test_the_check_passes_clean_text_and_audio():
    html = '<audio controls><source src="data:audio/wav;base64,UklGR/tmp/abc/site-packages+/Warning=" /></audio>'
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                outputs=[
                    nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "nats/sample 0.93"})
                ]
            )
        ]
    )
    assert _problems(nb) == []
