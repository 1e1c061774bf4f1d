"""The run store shared by many processes: a lock per run folder, waited for, released, taken over when stale."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from sepnb.runs import lock, loop
from sepnb.runs import store as runstore
from tests.test_train import tiny_config


@pytest.fixture(autouse=True)
def _messages_on_stderr(monkeypatch):
    # lock messages go to the terminal (sepnb.core.progress); here to sys.stderr, where capsys reads them
    monkeypatch.setenv("SEPNB_PROGRESS", "notebook")


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def write_lock(folder, host, pid, started=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / lock.LOCK_NAME).write_text(json.dumps({"host": host, "pid": pid, "started": started or time.time()}))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_and_released(tmp_path):
    folder = tmp_path / "run"
    messages = []
    with lock.RunLock(folder) as held:
        info = lock.read_lock(folder)
        assert info["host"] == socket.gethostname() and info["pid"] == os.getpid()
        # a second taker (another process, as far as the file is concerned) times out, naming the holder
        other = lock.RunLock(folder, timeout=0.3, poll=0.05, say=messages.append)
        other.info = None
        lock._HELD.clear()  # pretend to be another process: no re-entrancy
        with pytest.raises(lock.LockTimeout, match=f"pid {os.getpid()}"):
            other.acquire()
        lock._HELD[str(held.path.resolve())] = 1
    assert not (folder / lock.LOCK_NAME).exists()
    assert any("is being trained by" in m for m in messages)


def test_lock_released_when_training_fails(store, monkeypatch):
    cfg = tiny_config()

    def boom(*a, **k):
        raise RuntimeError("crash inside training")

    monkeypatch.setattr(loop, "_train_locked", boom)
    with pytest.raises(RuntimeError, match="crash inside training"):
        loop.get_prior(cfg, progress=False)
    assert not (runstore.run_dir(cfg) / lock.LOCK_NAME).exists()


def test_stale_lock_of_this_host_is_taken_over(store, capsys):
    cfg = tiny_config(steps=4)
    pid = dead_pid()
    write_lock(runstore.run_dir(cfg), socket.gethostname(), pid)
    assert runstore.run_status(cfg)[0] == "locked" and "stale" in runstore.run_status(cfg)[1]
    loop.get_prior(cfg, progress=False)
    err = capsys.readouterr().err
    assert "taking over the stale lock" in err and f"pid {pid}" in err
    assert (runstore.run_dir(cfg) / "final.pt").exists() and not (runstore.run_dir(cfg) / lock.LOCK_NAME).exists()
    assert runstore.run_status(cfg) == ("done", "")


def test_lock_of_another_host_is_waited_for_then_broken_on_request(store, capsys):
    cfg = tiny_config(steps=4)
    write_lock(runstore.run_dir(cfg), "some-other-machine", 12345)
    with pytest.raises(lock.LockTimeout, match="some-other-machine"):
        loop.get_prior(cfg, progress=False, lock_timeout=0.2)
    assert "on another machine" in capsys.readouterr().err
    assert not (runstore.run_dir(cfg) / "final.pt").exists()
    loop.get_prior(cfg, progress=False, break_lock=True)
    assert "breaking the lock" in capsys.readouterr().err
    assert (runstore.run_dir(cfg) / "final.pt").exists() and not (runstore.run_dir(cfg) / lock.LOCK_NAME).exists()


def test_waiter_loads_what_the_holder_finished(store, capsys):
    """A waiting process trains nothing: once the lock is gone it loads the finished run."""
    cfg = tiny_config(steps=4)
    folder = runstore.run_dir(cfg)
    write_lock(folder, "some-other-machine", 1)
    calls = []
    real = loop._train_locked

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    def finish_elsewhere():  # the "other machine" finishes the run, then releases its lock
        time.sleep(0.5)
        real(cfg, progress=False)
        (folder / lock.LOCK_NAME).unlink()

    t = threading.Thread(target=finish_elsewhere)
    t.start()
    try:
        loop._train_locked = counting
        model, history = loop.get_prior(cfg, progress=False)
    finally:
        loop._train_locked = real
        t.join()
    assert calls == [] and history["step"][-1] == 4
    assert "is being trained by host some-other-machine" in capsys.readouterr().err


def test_lock_left_half_written_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / lock.LOCK_NAME
    path.write_text("")  # created, never filled: its writer died in between
    old = time.time() - 120
    os.utime(path, (old, old))
    messages = []
    with lock.RunLock(folder, timeout=5, poll=0.05, say=messages.append):
        assert lock.read_lock(folder)["pid"] == os.getpid()
    assert any("unreadable" in m for m in messages) and not path.exists()


# --------------------------------------------------------------------------- heartbeats (issue 25)
def write_beating_lock(folder, host, pid, age, pidns="pid:[1]"):
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    info = {"host": host, "pid": pid, "pidns": pidns, "started": now - age - 10, "heartbeat": now - age}
    (folder / lock.LOCK_NAME).write_text(json.dumps(info))


def test_the_holder_refreshes_its_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    folder = tmp_path / "run"
    with lock.RunLock(folder):
        first = lock.read_lock(folder)
        time.sleep(0.3)
        later = lock.read_lock(folder)
        assert later["heartbeat"] > first["heartbeat"] and later["started"] == first["started"]
        assert later["pidns"] == lock._pid_namespace()
    assert not (folder / lock.LOCK_NAME).exists()


def test_a_lock_of_another_host_with_an_old_heartbeat_is_taken_over(store, capsys):
    cfg = tiny_config(steps=4)
    write_beating_lock(runstore.run_dir(cfg), "a-dead-machine", 4242, age=lock.STALE_AFTER_S + 60)
    assert "stale" in runstore.run_status(cfg)[1]
    loop.get_prior(cfg, progress=False)
    err = capsys.readouterr().err
    assert "taking over the stale lock" in err and "a-dead-machine" in err and "no heartbeat for over" in err
    assert (runstore.run_dir(cfg) / "final.pt").exists()


def test_a_lock_with_a_fresh_heartbeat_is_waited_for_on_any_host(store, capsys):
    cfg = tiny_config(steps=4)
    write_beating_lock(runstore.run_dir(cfg), "another-machine", 4242, age=1)
    with pytest.raises(lock.LockTimeout, match="another-machine"):
        loop.get_prior(cfg, progress=False, lock_timeout=0.3)
    assert "taken over once its heartbeat is older than" in capsys.readouterr().err
    assert not (runstore.run_dir(cfg) / "final.pt").exists()


def test_a_live_holder_in_another_pid_namespace_is_not_judged_by_its_pid(tmp_path):
    """Two containers, one host name: a pid that is not alive here may be alive there; only the heartbeat counts."""
    folder = tmp_path / "run"
    pid = dead_pid()
    write_beating_lock(folder, socket.gethostname(), pid, age=1, pidns="pid:[999999]")
    info = lock.read_lock(folder)
    assert not lock.is_stale(info)
    assert lock.is_stale(info, now=time.time() + lock.STALE_AFTER_S + 1)  # once its heartbeat is old
    write_beating_lock(folder, socket.gethostname(), pid, age=1, pidns=lock._pid_namespace())
    assert lock.is_stale(lock.read_lock(folder))  # here, in this namespace: its pid is gone


def test_jobs_print_a_takeover(store):
    """With --jobs the workers run without progress bars, but a lock taken over is still said in the terminal."""
    from sepnb.runs import catalogue

    cfg = catalogue.prior_config("smoke", "flow", "sine")
    write_lock(runstore.run_dir(cfg), socket.gethostname(), dead_pid())
    env = {**os.environ, "SEPNB_RUNS": str(store), "SEPNB_PROGRESS": "terminal", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "sepnb", "train", "--profile", "smoke", "--all", "--no-music", "--jobs", "2"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "taking over the stale lock of " + runstore.run_dir(cfg).name in done.stderr
