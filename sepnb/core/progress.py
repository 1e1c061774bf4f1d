"""Progress bars for the person at the terminal, never for the book.

Long work (training a prior, a Langevin run, the Figure 4 grid, writing the
music stand-in) shows a ``tqdm`` bar. Where it goes:

* in a plain Python process (``sepnb train``, ``python -m sepnb.book``), to
  its standard error, as usual;
* inside a Jupyter kernel (papermill, nbval, JupyterLab), to the *kernel
  process's* own standard error: the terminal that started ``make book``,
  ``pytest`` or ``jupyter lab``. ipykernel captures ``sys.stderr`` into the
  notebook, but ``sys.stderr.fileno()`` still answers the terminal's file
  descriptor, and that is what the bar writes to. So an executed chapter
  stores no progress text, and the person running the build still sees one
  bar per prior trained.

``SEPNB_PROGRESS=off`` silences every bar (not :func:`say`'s messages); ``SEPNB_PROGRESS=notebook``
writes them into the notebook instead (interactive use in JupyterLab, where
the terminal may be out of sight).
"""

from __future__ import annotations

import atexit
import io
import os
import sys

__all__ = ["bar", "say", "ENV_VAR", "MODES"]

ENV_VAR = "SEPNB_PROGRESS"
MODES = ("terminal", "off", "notebook")

_terminal = None


def _mode() -> str:
    mode = os.environ.get(ENV_VAR, "terminal").strip().lower() or "terminal"
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR}={mode!r} is not understood: use one of {MODES}")
    return mode


def _terminal_stream():
    """A text stream on the process's real standard error (the terminal), opened once."""
    global _terminal
    if _terminal is None:
        try:
            fd = os.dup(sys.stderr.fileno())  # in a kernel: the fd the kernel was started with
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return sys.stderr  # no file descriptor behind it (a test's capture): write where it points
        _terminal = open(fd, "w", buffering=1, encoding="utf-8", errors="replace")
        atexit.register(_terminal.close)
    return _terminal


def bar(
    total=None,
    desc: str | None = None,
    *,
    initial: int = 0,
    unit: str = "it",
    disable: bool = False,
    mininterval: float = 2.0,
    **kwargs,
):
    """A ``tqdm`` bar on the terminal (see the module docstring); ``disable=True`` shows nothing."""
    from tqdm import tqdm

    mode = _mode()
    if mode == "off":
        disable = True
    stream = sys.stderr if mode == "notebook" else _terminal_stream()
    return tqdm(
        total=total,
        desc=desc,
        initial=initial,
        unit=unit,
        disable=disable,
        file=stream,
        mininterval=mininterval,
        dynamic_ncols=False,
        ncols=90,
        **kwargs,
    )


def say(message: str) -> None:
    """One line for the person at the terminal (a run waiting for a lock, a stale lock taken over).

    Said also with ``SEPNB_PROGRESS=off``, which silences the bars only: ``sepnb train --jobs`` runs its
    workers without bars, and a lock they wait for or take over must still be seen."""
    mode = _mode()
    stream = sys.stderr if mode == "notebook" else _terminal_stream()
    print(message, file=stream, flush=True)
