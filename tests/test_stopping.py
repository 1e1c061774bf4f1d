"""Stopping training as a cluster stops it (issue 25): SIGTERM and SIGINT to `sepnb train`, one run or
`--all --jobs 2`, stop every worker within a bound, keep every checkpoint loadable, release every lock,
exit with the signal's status naming what resumes; a rerun finishes with the weights of an
uninterrupted run. (Two ranks under torchrun: tests/test_ddp.py.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sepnb.runs import stopping
from tests.test_cli import env_for

#: The bound the README states for SIGTERM to the last process gone (measured: a few seconds).
BOUND_S = 30.0
JOBS = ["train", "--profile", "smoke", "--all", "--no-music", "--jobs", "2"]


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        out |= kids
        todo += list(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _weights(store: Path) -> dict:
    return {f.parent.name: torch.load(f, weights_only=True)["model"] for f in sorted(store.glob("*/final.pt"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The smoke profile's runs trained by the same command, never interrupted."""
    store = tmp_path_factory.mktemp("uninterrupted") / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "sepnb", *JOBS], env=env_for(store), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _weights(store)


def _start_and_signal(store: Path, signals: list[int], after_done: int = 3):
    """Start `sepnb train ... --jobs 2`, wait for ``after_done`` finished runs, send ``signals`` to the
    parent alone; return (status, seconds from the first signal to the last process gone, stderr)."""
    err_path = store.parent / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sepnb", *JOBS], env=env_for(store), stdout=subprocess.DEVNULL, stderr=err, text=True
        )
    deadline = time.time() + 300
    while time.time() < deadline and err_path.read_text().count("done   ") < after_done and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the command ended before it could be stopped:\n" + err_path.read_text()[-2000:]
    family = _descendants(proc.pid)
    assert family, "no worker processes found"
    t0 = time.monotonic()
    for sig in signals:
        os.kill(proc.pid, sig)
        time.sleep(0.05)
    status = proc.wait(timeout=BOUND_S + 15)
    while any(_alive(p) for p in family) and time.monotonic() - t0 < BOUND_S:
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    left = [p for p in family if _alive(p)]
    for p in left:  # never leave them behind, even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes outlived the command: {left}"
    return status, seconds, err_path.read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_parent_stops_every_worker_and_a_rerun_resumes(tmp_path, uninterrupted, sig):
    store = tmp_path / "runs"
    status, seconds, err = _start_and_signal(store, [sig])
    assert status == stopping.exit_status(sig), err[-3000:]
    assert seconds < BOUND_S
    assert f"stopped by {signal.Signals(sig).name}" in err and "run the same command again" in err
    assert "sepnb train --profile smoke --all --no-music --jobs 2" in err  # the command that resumes
    for ckpt in store.glob("*/checkpoint.pt"):  # every checkpoint left is whole
        assert "model" in torch.load(ckpt, weights_only=True)
    assert not list(store.glob("*/lock.json")), "a lock was left behind"
    again = subprocess.run(
        [sys.executable, "-m", "sepnb", *JOBS], env=env_for(store), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = _weights(store)
    assert resumed.keys() == uninterrupted.keys()
    for run, weights in uninterrupted.items():
        for name, value in weights.items():
            assert torch.equal(resumed[run][name], value), f"{run} {name} differs from the uninterrupted run"


def test_a_second_signal_stops_at_once(tmp_path):
    store = tmp_path / "runs"
    status, seconds, err = _start_and_signal(store, [signal.SIGTERM, signal.SIGTERM])
    assert status == stopping.exit_status(signal.SIGTERM), err[-3000:]
    assert seconds < 10
    for ckpt in store.glob("*/checkpoint.pt"):  # written atomically: whole, or the previous one
        assert "model" in torch.load(ckpt, weights_only=True)


def test_one_run_stops_on_sigterm_with_its_checkpoint_and_the_command_that_resumes(tmp_path):
    """`sepnb train` of one book-size run: SIGTERM mid-training checkpoints the current step."""
    store = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "sepnb",
        "train",
        "--profile",
        "book",
        "--family",
        "wavenet",
        "--source",
        "sine",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=env_for(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(store.glob("*/meta.json")):
        time.sleep(0.05)
    time.sleep(3.0)  # some steps
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=BOUND_S)
    assert time.monotonic() - t0 < BOUND_S
    assert proc.returncode == stopping.exit_status(signal.SIGTERM), err[-3000:]
    (folder,) = store.iterdir()
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert 0 < state["step"] < 400 and not (folder / "final.pt").exists() and not (folder / "lock.json").exists()
    assert f"stopped by SIGTERM at step {state['step']}/400" in err
    assert "resume with: sepnb train --profile book --family wavenet --source sine --quiet" in err
