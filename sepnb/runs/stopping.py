"""Stopping training as a cluster stops it: SIGTERM (a scheduler's time limit, ``kill``) and SIGINT
(Ctrl-C, ``kill -INT``) end a run cleanly, a second signal ends it at once.

While a run trains, :func:`stop_on_signals` holds handlers for both signals. The first signal only
*asks* to stop: the training loop sees :func:`requested` before its next step, writes its checkpoint
(atomically, as always), releases the run's lock and raises :class:`TrainingInterrupted` naming the
run and its step; under ``torchrun`` all ranks agree on the step to stop at. A second signal restores
the default action and re-sends itself: the process ends at once, and the last checkpoint (never
half-written) is what a restart resumes from.

``sepnb train --jobs N`` (:mod:`sepnb.runs.schedule`) passes a stop on to its workers as
:data:`REQUEST` (SIGUSR1: it asks, and never counts as a second signal, because a Ctrl-C reaches
the workers from the terminal as well), waits for them (at most :data:`GRACE_S` seconds, then
kills them) and ends listing the interrupted runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

__all__ = [
    "TrainingInterrupted",
    "stop_on_signals",
    "requested",
    "request",
    "SIGNALS",
    "REQUEST",
    "GRACE_S",
    "exit_status",
]

#: The signals that stop training.
SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: What a parent sends to ask a worker to stop: a request only, never the "second signal".
REQUEST = signal.SIGUSR1
#: Seconds ``sepnb train --jobs`` waits for its workers to checkpoint after a signal before killing them.
GRACE_S = 30.0

_state = {"signal": None, "depth": 0, "previous": {}}


class TrainingInterrupted(RuntimeError):
    """A run stopped by a signal after its checkpoint was written; ``folder``, ``step``, ``signum`` say which."""

    def __init__(self, message: str, folder=None, step: int | None = None, signum: int | None = None):
        super().__init__(message)
        self.folder, self.step, self.signum = folder, step, signum

    def __reduce__(self):  # crosses whole from a --jobs worker to its parent
        return type(self), (str(self), self.folder, self.step, self.signum)


def exit_status(signum: int | None) -> int:
    """The shell's status for a process ended by ``signum`` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum or signal.SIGTERM)


def requested() -> int | None:
    """The signal that asked this process's training to stop, or ``None``."""
    return _state["signal"]


def request(signum: int = signal.SIGTERM) -> None:
    """Ask this process's training to stop as a signal would (a worker whose parent is gone)."""
    if _state["signal"] is None:
        _state["signal"] = int(signum)


def _handler(signum, frame):
    if signum == REQUEST:
        request(signal.SIGTERM)
        return
    if _state["signal"] is None:
        _state["signal"] = int(signum)
        return
    # the second signal: its default action, now (the last checkpoint is intact)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def stop_on_signals():
    """Hold the handlers of :data:`SIGNALS` and :data:`REQUEST` for the block (re-entrant; a no-op
    outside the main thread). A stop request belongs to the training it stopped: it is forgotten when
    the outermost block starts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state["depth"] == 0:
        _state["signal"] = None
        _state["previous"] = {s: signal.signal(s, _handler) for s in (*SIGNALS, REQUEST)}
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            for s, old in _state["previous"].items():
                signal.signal(s, old if old is not None else signal.SIG_DFL)
            _state["previous"] = {}
