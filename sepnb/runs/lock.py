"""A lock per run folder, so that many processes (and machines) can share one run store.

The lock is a file ``<run folder>/lock.json`` created atomically
(``O_CREAT | O_EXCL``, which also holds on NFS v3+ and other shared file
systems) holding the host, the process id, the process's PID namespace, the
start time of its holder and its **heartbeat**: the holder rewrites the time
every :data:`HEARTBEAT_S` seconds (from a thread, whatever training is doing),
so a lock whose heartbeat is older than :data:`STALE_AFTER_S` is stale on
every host, and a dead machine does not block a shared store.

* A second process asking for the same run waits, printing who holds it,
  until the lock is gone (then :func:`sepnb.runs.get_prior` loads the run the
  first one finished); ``timeout`` seconds bound the wait (:class:`LockTimeout`).
* A lock is stale, and taken over with a message, when its heartbeat is
  older than :data:`STALE_AFTER_S` (any host: the holder or its machine is
  gone; the hosts' clocks must agree to within that much), or at once when
  its holder ran on this host *in this PID namespace* and its pid is not
  alive (``kill -9`` here). A live holder is never judged stale by its pid
  from another namespace (two containers with one host name): there only the
  heartbeat counts. A lock written without a heartbeat (by an older sepnb)
  is judged by its pid on this host and waited for elsewhere;
  ``break_lock=True`` (``sepnb train --break-lock``) takes any lock over, for
  when you know its process is gone.
* The holder removes the lock in a ``finally`` (also on an exception or
  Ctrl-C); only ``kill -9`` or a crash of the machine leaves it, and that is
  the stale case above.

Locks are re-entrant within a process (a fine-tune that trains its parent
inside its own lock takes the parent's lock too, a different folder).
Chapter 02 (the run store).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from sepnb.core import progress

__all__ = ["RunLock", "LockTimeout", "read_lock", "lock_path", "describe", "is_stale", "LOCK_NAME"]

LOCK_NAME = "lock.json"
_UNREADABLE_AFTER = 60  # seconds: a lock file still not holding JSON by then was left by a crash
_HELD: dict[str, int] = {}  # lock paths this process holds -> depth (re-entrancy)
#: Seconds between two refreshes of a held lock's heartbeat.
HEARTBEAT_S = 30.0
#: A lock whose heartbeat is older than this (seconds) is stale on every host: four missed beats.
STALE_AFTER_S = 120.0


def _pid_namespace() -> str | None:
    """This process's PID namespace (``pid:[4026531836]`` on Linux), or ``None`` where there is none to read."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


class LockTimeout(TimeoutError):
    """The run's lock was not released within the timeout; the message names its holder."""


def lock_path(folder) -> Path:
    return Path(folder) / LOCK_NAME


def read_lock(folder) -> dict | None:
    """The holder of ``folder``'s lock (``host``, ``pid``, ``started``), or ``None`` if it is not locked."""
    path = lock_path(folder)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
        if not isinstance(info, dict):
            raise ValueError("not an object")
        return info
    except ValueError:
        # being written right now (created, not yet filled), or garbage: report what we know
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        return {"host": "?", "pid": -1, "started": mtime, "unreadable": True}


def describe(info: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    out = f"host {info.get('host', '?')}, pid {info.get('pid', '?')}, since {started}"
    if isinstance(info.get("heartbeat"), (int, float)):
        out += f", heartbeat {max(0.0, time.time() - info['heartbeat']):.0f} s ago"
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _same_process_space(info: dict) -> bool:
    """Whether the lock's pid can be checked from here: this host and this PID namespace (a lock
    written without its namespace, by an older sepnb, is taken to share it)."""
    if info.get("host") != socket.gethostname():
        return False
    ns = info.get("pidns")
    return ns is None or ns == _pid_namespace()


def is_stale(info: dict, now: float | None = None) -> bool:
    """True when the lock's holder is gone: its heartbeat is older than :data:`STALE_AFTER_S` (any host),
    or it ran here, in this PID namespace, and its pid is not alive."""
    beat = info.get("heartbeat")
    if isinstance(beat, (int, float)) and (time.time() if now is None else now) - beat > STALE_AFTER_S:
        return True
    return (
        _same_process_space(info)
        and isinstance(info.get("pid"), int)
        and info["pid"] > 0
        and not _pid_alive(info["pid"])
    )


def _beat_is_old(info: dict) -> bool:
    beat = info.get("heartbeat")
    return isinstance(beat, (int, float)) and time.time() - beat > STALE_AFTER_S


def _same_holder(a: dict | None, b: dict) -> bool:
    """Whether the lock ``a`` read now is still the lock ``b`` (same host, pid and start)."""
    return a is not None and all(a.get(k) == b.get(k) for k in ("host", "pid", "started"))


class RunLock:
    """``with RunLock(folder): ...`` holds ``folder``'s lock for the block (see the module's docstring).

    ``timeout``: seconds to wait (``None``: for ever). ``break_lock``: take
    over a lock of another host, or of a live process. ``poll``: seconds
    between looks at the lock. ``say``: where messages go (default: the terminal, sepnb.core.progress.say).
    """

    def __init__(self, folder, timeout: float | None = None, break_lock: bool = False, poll: float = 1.0, say=None):
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.timeout = timeout
        self.break_lock = break_lock
        self.poll = poll
        self.say = say or progress.say  # the terminal, never a notebook's output
        self.info = None
        self.waited = False  # whether another process held the lock when we asked
        self._beating = None  # (thread, stop event) while held

    # ------------------------------------------------------------------ taking and giving back
    def _try_create(self) -> bool:
        now = time.time()
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pidns": _pid_namespace(),
            "started": now,
            "heartbeat": now,
            "argv": " ".join(sys.argv)[:500],
        }
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.info = info
        return True

    def _take_over(self, old: dict) -> None:
        """Remove the lock ``old`` if it is still that one (a second breaker must not remove a fresh lock)."""
        breaker = self.path.with_name(LOCK_NAME + ".break")
        try:
            fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a breaker killed in this tiny window leaves its file: ignore it after a minute
                if time.time() - breaker.stat().st_mtime > 60:
                    breaker.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return
        os.close(fd)
        try:
            now = read_lock(self.folder)
            if _same_holder(now, old):
                self.path.unlink(missing_ok=True)
        finally:
            breaker.unlink(missing_ok=True)

    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if _HELD.get(key):
            _HELD[key] += 1
            return self
        t0 = time.monotonic()
        announced = None
        while not self._try_create():
            info = read_lock(self.folder)
            if info is None:
                continue  # released between our two looks
            if info.get("unreadable") and time.time() - info["started"] > _UNREADABLE_AFTER:
                self.say(
                    f"sepnb: taking over the lock of {self.folder.name}: {self.path} has been unreadable "
                    f"for over {_UNREADABLE_AFTER} s (its writer died while creating it)"
                )
                self._take_over(info)
                continue
            if is_stale(info):
                why = (
                    "that process is gone"
                    if _same_process_space(info) and not _beat_is_old(info)
                    else f"no heartbeat for over {STALE_AFTER_S:g} s"
                )
                self.say(
                    f"sepnb: taking over the stale lock of {self.folder.name} ({describe(info)}: {why}; "
                    f"its checkpoint, if any, is resumed)"
                )
                self._take_over(info)
                continue
            if self.break_lock and not info.get("unreadable"):
                self.say(f"sepnb: breaking the lock of {self.folder.name} ({describe(info)}) as asked")
                self._take_over(info)
                continue
            self.waited = True
            if announced != (info.get("host"), info.get("pid")):
                where = (
                    ""
                    if _same_process_space(info)
                    else (
                        " on another machine or in another container: taken over once its heartbeat is older than "
                        f"{STALE_AFTER_S:g} s"
                        if isinstance(info.get("heartbeat"), (int, float))
                        else " on another machine (its lock has no heartbeat: if that process is gone, rerun with "
                        "--break-lock)"
                    )
                )
                self.say(
                    f"sepnb: {self.folder.name} is being trained by {describe(info)}{where}; waiting for it"
                    + ("" if self.timeout is None else f" (at most {self.timeout:g} s)")
                )
                announced = (info.get("host"), info.get("pid"))
            if self.timeout is not None and time.monotonic() - t0 > self.timeout:
                raise LockTimeout(
                    f"{self.path} is still held by {describe(info)} after {self.timeout:g} s; "
                    f"try again later, or use --break-lock if that process is gone"
                )
            time.sleep(self.poll)
        _HELD[key] = 1
        self._start_heartbeat()
        return self

    # ------------------------------------------------------------------ heartbeat
    def _beat(self) -> bool:
        """Rewrite the heartbeat of the lock we hold (atomically); False once it is no longer ours."""
        if not _same_holder(read_lock(self.folder), self.info):
            return False
        self.info = {**self.info, "heartbeat": time.time()}
        tmp = self.path.with_name(f".{LOCK_NAME}.{os.getpid()}.beat")
        tmp.write_text(json.dumps(self.info) + "\n")
        os.replace(tmp, self.path)
        return True

    def _start_heartbeat(self) -> None:
        stop = threading.Event()

        def run():
            while not stop.wait(HEARTBEAT_S):
                try:
                    if not self._beat():
                        self.say(
                            f"sepnb: the lock of {self.folder.name} is no longer this process's "
                            f"(taken over); its heartbeat stops"
                        )
                        return
                except Exception as err:  # noqa: BLE001 -- a store that went away: say so, keep trying
                    self.say(f"sepnb: cannot refresh the lock of {self.folder.name} ({type(err).__name__}: {err})")

        thread = threading.Thread(target=run, name=f"sepnb-lock-{self.folder.name}", daemon=True)
        self._beating = (thread, stop)
        thread.start()

    def _stop_heartbeat(self) -> None:
        if self._beating is not None:
            thread, stop = self._beating
            stop.set()
            thread.join(timeout=5)
            self._beating = None

    def release(self) -> None:
        key = str(self.path.resolve())
        depth = _HELD.get(key, 0)
        if depth > 1:
            _HELD[key] = depth - 1
            return
        _HELD.pop(key, None)
        self._stop_heartbeat()
        if self.info is None:
            return
        now = read_lock(self.folder)
        if _same_holder(now, self.info):
            self.path.unlink(missing_ok=True)
        self.info = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
