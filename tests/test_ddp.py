"""Data-parallel training with torchrun (gloo, 2 CPU processes) equals one process on the whole batch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sepnb.core import paths
from sepnb.data import select
from sepnb.runs import config, loop
from sepnb.runs import store as runstore
from tests.test_train import tiny_config

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

WORKER = paths.ROOT / "tests" / "ddp_worker.py"


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "ddp"))
    return tmp_path / "ddp"


@pytest.fixture
def on_cpu(monkeypatch):
    """The in-process reference runs on the CPU, as the gloo ranks do (CUDA is hidden from them)."""
    from sepnb.runs import loop

    for module in (loop, runstore):
        monkeypatch.setattr(module, "device", lambda: torch.device("cpu"))


def torchrun(spec: dict, store, **popen) -> subprocess.Popen:
    env = {
        **os.environ,
        "SEPNB_RUNS": str(store),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([str(paths.ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        json.dumps(spec),
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(proc, timeout=120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def final_state(cfg):
    return torch.load(runstore.run_dir(cfg) / "final.pt", weights_only=True)


def single_process(kw: dict, store):
    """The reference: one process on the whole batch, one thread like each rank, on the CPU.

    It runs in a subprocess so that this process keeps its thread count: changing it here trips
    torch's MKL batched-solve bug in later tests (see sepnb.separation.metrics).
    """
    script = (
        "import json, sys, torch; torch.set_num_threads(1); from sepnb.runs import loop; "
        "from tests.test_train import tiny_config; loop.train(tiny_config(**json.loads(sys.argv[1])), progress=False)"
    )
    env = {
        **os.environ,
        "SEPNB_RUNS": str(store / "single"),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([str(paths.ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", script, json.dumps(kw)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(store / "single" / runstore.run_dir(tiny_config(**kw)).name / "final.pt", weights_only=True)
    return state["model"], state["history"]


#: Parameters: the two runs sum the batch's gradients in another order (float32 rounding, ~1e-7
#: relative); Adam divides each gradient by its own running size, so for a gradient near zero (the
#: ActNorm scales right after their data-dependent initialisation) that rounding can move a parameter
#: by up to one step's learning rate (here at most 4e-4). Measured: 3e-5 after 8 steps, 1.5e-4 after 60. The test also checks that the
#: parameters moved by far more than this tolerance, so that it can fail.
ATOL = 1e-4


def initial_weights(cfg):
    """The weights before the first step (seeded init, then the flow's data-dependent ActNorm)."""
    torch.manual_seed(cfg.seed)
    model = config.build_model(cfg.family, cfg.model).train()
    with torch.no_grad():
        model.loss(loop._train_batch(cfg, select.run_windows(cfg, "train", cfg.n_items), 0))
    return model.state_dict()


def assert_same(state, ref_weights, ref_history, cfg):
    init = initial_weights(cfg)
    moved = max(float((ref_weights[k] - v).abs().max()) for k, v in init.items() if v.is_floating_point())
    assert moved > 10 * ATOL, f"training moved the parameters by only {moved}: the comparison cannot fail"
    for name, ref in ref_weights.items():
        torch.testing.assert_close(state["model"][name], ref, rtol=1e-4, atol=ATOL, msg=lambda m: f"{name}: {m}")
    h = state["history"]
    assert h["step"] == ref_history["step"] and h["eval_step"] == ref_history["eval_step"]
    torch.testing.assert_close(torch.tensor(h["train"]), torch.tensor(ref_history["train"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(h["eval"]), torch.tensor(ref_history["eval"]), rtol=1e-5, atol=1e-6)


def test_two_processes_match_one_on_the_whole_batch(store, monkeypatch, on_cpu):
    # batch 4 split 2 + 2; the flow's ActNorm is initialised from the whole first batch on both ranks
    kws = [dict(family="flow", batch=4, steps=8, ckpt_every=4), dict(family="wavenet", batch=4, steps=8, ckpt_every=4)]
    out = finish(torchrun({"configs": kws}, store))
    assert "rank 0 of 2 done" in out and "rank 1 of 2 done" in out
    for kw in kws:
        cfg = tiny_config(**kw)
        state = final_state(cfg)
        assert state["meta"]["sessions"][-1]["world_size"] == 2
        assert not (runstore.run_dir(cfg) / "checkpoint.pt").exists()
        weights, history = single_process(kw, store)
        assert_same(state, weights, history, cfg)


def test_killed_two_process_run_resumes_to_the_uninterrupted_result(store, monkeypatch, on_cpu):
    kw = dict(family="flow", batch=4, steps=30, ckpt_every=3, window=64)
    cfg = tiny_config(**kw)
    ckpt = runstore.run_dir(cfg) / "checkpoint.pt"
    pid_dir = store.parent / "pids"
    pid_dir.mkdir()
    proc = torchrun({"configs": [kw], "pid_dir": str(pid_dir)}, store, start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline and not ckpt.exists() and proc.poll() is None:
        time.sleep(0.02)
    # kill -9 torchrun and both ranks (torchrun starts each rank in a session of its own): nobody cleans up
    os.killpg(proc.pid, signal.SIGKILL)
    for f in pid_dir.glob("rank*.pid"):
        try:
            os.kill(int(f.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, _ = proc.communicate()
    assert ckpt.exists(), f"the 2-process run wrote no checkpoint before it was killed: {out[-3000:]}"
    step_at_kill = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < step_at_kill < cfg.steps and not (runstore.run_dir(cfg) / "final.pt").exists()
    assert (runstore.run_dir(cfg) / "lock.json").exists()  # the killed rank 0 could not release it
    out = finish(torchrun({"configs": [kw]}, store))
    assert "taking over the stale lock" in out
    assert not (runstore.run_dir(cfg) / "lock.json").exists()
    state = final_state(cfg)
    sessions = state["meta"]["sessions"]
    assert sessions[-1]["from_step"] == step_at_kill and sessions[-1]["world_size"] == 2
    # the uninterrupted run (one process on the whole batch, which the test above equates with two)
    weights, history = single_process(kw, store)
    assert_same(state, weights, history, cfg)


def test_batch_that_does_not_split_is_refused(store, monkeypatch):
    from sepnb.runs import ddp

    monkeypatch.setattr(ddp, "world_size", lambda: 2)  # as under torchrun --nproc_per_node 2
    with pytest.raises(ValueError, match="cannot be split evenly over 2 processes"):
        loop.train(tiny_config(batch=3), progress=False)
    assert not runstore.run_dir(tiny_config(batch=3)).exists()


def test_dataloader_workers_give_the_same_run(store, monkeypatch, on_cpu):
    """Batches rendered by DataLoader worker processes are those of the training process itself."""
    cfg = tiny_config("flow", steps=6, ckpt_every=3)
    _, inline = loop.train(cfg, progress=False, workers=0)
    monkeypatch.setenv("SEPNB_RUNS", str(store / "workers"))
    _, workers = loop.train(cfg, progress=False, workers=2)
    assert workers["train"] == inline["train"] and workers["eval"] == inline["eval"]
    meta = json.loads((runstore.run_dir(cfg) / "meta.json").read_text())
    assert meta["sessions"][-1]["workers"] == 2


def test_bf16_is_refused_on_the_cpu(store, on_cpu):
    with pytest.raises(ValueError, match="CUDA only"):
        loop.train(tiny_config(), progress=False, bf16=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: bf16 autocast is a GPU option")
def test_bf16_run_on_cuda_records_its_precision(store):
    cfg = tiny_config("flow", steps=4)
    _, history = loop.train(cfg, progress=False, bf16=True)
    assert all(torch.isfinite(torch.tensor(history["train"])))
    state = torch.load(runstore.run_dir(cfg) / "final.pt", weights_only=True)
    assert state["meta"]["sessions"][-1]["precision"] == "bf16-autocast"
    assert state["meta"]["sessions"][-1]["device"] == "cuda"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for every purpose here
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_stops_a_two_process_run_which_resumes_to_the_uninterrupted_result(store, tmp_path):
    """torchrun passes SIGTERM to both ranks; they agree on a step, rank 0 checkpoints and releases the lock,
    every process exits; the same command resumes to the weights of an uninterrupted 2-process run (issue 25)."""
    kw = dict(family="flow", batch=4, steps=600, ckpt_every=50, window=64)
    cfg = tiny_config(**kw)
    folder = runstore.run_dir(cfg)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    proc = torchrun({"configs": [kw], "pid_dir": str(pid_dir)}, store)
    deadline = time.time() + 120
    while time.time() < deadline and not (folder / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.02)
    ranks = [int(f.read_text()) for f in pid_dir.glob("rank*.pid")]
    assert len(ranks) == 2 and proc.poll() is None, "the run ended before it could be stopped"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    while any(_alive(p) for p in ranks) and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    assert not any(_alive(p) for p in ranks), "a rank outlived torchrun"
    assert proc.returncode != 0 and "stopped by SIGTERM" in out, out[-3000:]
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert 0 < state["step"] < cfg.steps and not (folder / "final.pt").exists()
    assert not (folder / "lock.json").exists(), "the lock was not released"
    finish(torchrun({"configs": [kw]}, store))
    resumed = final_state(cfg)
    assert resumed["meta"]["sessions"][-1]["from_step"] == state["step"]
    other = tmp_path / "uninterrupted"
    finish(torchrun({"configs": [kw]}, other))
    ref = torch.load(other / folder.name / "final.pt", weights_only=True)
    for name, value in ref["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    assert resumed["history"]["train"] == ref["history"]["train"]
