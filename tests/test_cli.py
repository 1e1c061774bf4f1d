"""The `sepnb` command: one command per prior (same key as the chapters), the list of a profile's runs,
two processes on one run, and torchrun."""

import json
import os
import re
import subprocess
import sys
import time
import tomllib

import pytest
import torch

from sepnb import cli
from sepnb.core import paths, profiles
from sepnb.runs import catalogue, lock, loop
from sepnb.runs import store as runstore


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SEPNB_DATA", str(tmp_path / "data"))
    return tmp_path / "runs"


def env_for(store) -> dict:
    return {
        **os.environ,
        "SEPNB_RUNS": str(store),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([str(paths.ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def sepnb(*args, store, check=True, timeout=120) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "sepnb", *args], env=env_for(store), capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_console_script_is_declared():
    meta = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["sepnb"] == "sepnb.cli:main"


def test_train_trains_then_loads_the_chapters_run(store):
    first = sepnb("train", "--profile", "smoke", "--family", "flow", "--source", "sine", store=store)
    cfg = catalogue.prior_config("smoke", "flow", "sine")  # what chapter 02 asks the store for
    folder = runstore.run_dir(cfg)
    assert f"run {folder}" in first.stdout and "final held-out loss" in first.stdout
    assert "flow/sine" in first.stderr  # the progress bar: it trained
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "final.pt", "meta.json"]
    meta = json.loads((folder / "meta.json").read_text())
    assert [(s["device"], s["precision"], s["world_size"], s["to_step"]) for s in meta["sessions"]] == [
        ("cpu", "float32", 1, cfg.steps)
    ]
    mtime = (folder / "final.pt").stat().st_mtime_ns
    second = sepnb("train", "--profile", "smoke", "--family", "flow", "--source", "sine", store=store)
    assert "flow/sine" not in second.stderr  # no progress bar: loaded
    assert (folder / "final.pt").stat().st_mtime_ns == mtime
    loss = re.search(r"final held-out loss (\S+)", first.stdout).group(1)
    assert f"final held-out loss {loss}" in second.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (["--profile", "huge", "--family", "flow", "--source", "sine"], "'book', 'paper', 'smoke'"),
        (["--profile", "smoke", "--family", "gan", "--source", "sine"], "'wavenet', 'flow', 'denoiser', 'convtasnet'"),
        (
            ["--profile", "smoke", "--family", "flow", "--source", "cello"],
            "'sine', 'square', 'saw', 'triangle', 'bass'",
        ),
        (["--profile", "smoke", "--family", "flow"], "--source must be one of"),
        (["--profile", "smoke", "--source", "sine"], "--family is required"),
        (["--profile", "smoke", "--family", "convtasnet", "--source", "sine"], "--source must be 'mix'"),
    ],
)
def test_bad_choices_name_the_valid_ones_and_exit_2(args, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", *args])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for example in (
        "sepnb train --profile smoke --family flow --source sine",
        "sepnb train --profile paper --all",
        "torchrun --nproc_per_node",
        "--break-lock",
    ):
        assert example in text


def test_bench_and_book_delegate(monkeypatch):
    import sepnb.bench
    import sepnb.book.build

    seen = []
    monkeypatch.setattr(sepnb.bench, "main", lambda argv: seen.append(("bench", argv)) or 0)
    monkeypatch.setattr(sepnb.book.build, "main", lambda argv: seen.append(("book", argv)) or 0)
    assert cli.main(["bench", "--json", "x.json"]) == 0 and cli.main(["book", "--profile", "smoke"]) == 0
    assert seen == [("bench", ["--json", "x.json"]), ("book", ["--profile", "smoke"])]


def chapter_sigmas() -> set:
    """Noise levels the chapters' fine-tunes use: the profile's sigmas and chapter 03's default parameter."""
    text = (paths.NOTEBOOKS / "03_noise.py").read_text()
    return {float(re.search(r"^sigma = ([0-9.]+)", text, re.M).group(1))}


def test_list_names_every_run_of_the_paper_profile(store):
    out = sepnb("train", "--profile", "paper", "--all", store=store).stdout
    p = profiles.get("paper")
    rows = [line for line in out.splitlines() if line.startswith(("missing", "done", "partial", "locked"))]
    n_toy, n_tuned = 8, 8 * len(p.sigmas)
    n_variants = len(catalogue.variant_runs(p))  # chapter 05
    n_seeds = 8 * (len(p.train_seeds) - 1)  # chapter 04: the noise-free toy priors of the other training seeds
    n_basis = 4 * len(catalogue.basis_extra_sigmas(p))  # chapter 06: the flows at BASIS's other levels
    assert len(rows) == n_toy + n_tuned + 8 + 1 + 4 + n_variants + n_seeds + n_basis and f"{len(rows)} runs" in out
    assert all(r.startswith("missing") for r in rows)
    commands = [r.split(None, 2)[2] for r in rows]
    assert "sepnb train --profile paper --family flow --source sine" in commands
    assert "sepnb train --profile paper --family wavenet --source saw --seed 2" in commands
    assert "sepnb train --profile paper --family convtasnet" in commands
    assert "sepnb train --profile paper --family denoiser --source triangle" in commands
    assert "sepnb train --profile paper --family wavenet --source drums" in commands
    for sigma in set(p.sigmas) | chapter_sigmas():
        assert f"sepnb train --profile paper --family wavenet --source saw --sigma {sigma:g}" in commands
    # the folder of every row is the run the chapters ask for (chapter 04's loop over the sigmas)
    assert (
        f" {runstore.run_dir(catalogue.finetune_config(catalogue.prior_config(p, 'flow', 'sine'), 0.359, p)).name} "
        in out
    )
    assert not (paths.data_dir() / "musdb-standin-paper").exists()  # listing wrote no stand-in


def test_list_keys_of_music_runs_match_the_built_stand_in(store):
    listed = {
        (c.family, c.source): c for _, c in catalogue.profile_runs("smoke", music="standin") if c.dataset == "music"
    }
    built = catalogue.music_prior_config("smoke", "flow", "bass", music="standin", progress=False)
    assert listed[("flow", "bass")].key() == built.key() and listed[("flow", "bass")].n_items == built.n_items


def test_list_reports_done_partial_and_locked(store):
    runs = catalogue.profile_runs("smoke", with_music=False)
    (_, done), (_, partial), (_, locked) = runs[0], runs[1], runs[2]
    loop.get_prior(done, progress=False)
    loop.train(partial, progress=False, stop_after=10)
    folder = runstore.run_dir(locked)
    folder.mkdir(parents=True)
    (folder / lock.LOCK_NAME).write_text(json.dumps({"host": "node17", "pid": 4242, "started": time.time()}))
    out = sepnb("train", "--profile", "smoke", "--all", "--no-music", store=store).stdout
    assert re.search(rf"^done +{runstore.run_dir(done).name} ", out, re.M)
    assert re.search(rf"^partial +{runstore.run_dir(partial).name} .*checkpoint at step 10/20", out, re.M)
    assert re.search(rf"^locked +{folder.name} .*host node17, pid 4242", out, re.M)


def test_two_processes_on_one_run_train_it_once(store):
    """Both start while the run is locked (by this test); once it is free one trains and the other loads."""
    cfg = catalogue.prior_config("smoke", "wavenet", "sine")
    folder = runstore.run_dir(cfg)
    folder.mkdir(parents=True)
    (folder / lock.LOCK_NAME).write_text(
        json.dumps({"host": lock.socket.gethostname(), "pid": os.getpid(), "started": time.time()})
    )
    args = [sys.executable, "-m", "sepnb", "train", "--profile", "smoke", "--family", "wavenet", "--source", "sine"]
    procs = [
        subprocess.Popen(args, env=env_for(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(4)
    assert all(p.poll() is None for p in procs), "a process did not wait for the lock"
    (folder / lock.LOCK_NAME).unlink()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("is being trained by" in err and "waiting" in err for _, err in outs)
    trained = ["wavenet/sine" in err for _, err in outs]  # only a training process draws a progress bar
    assert sorted(trained) == [False, True], outs
    assert all(f"done: {folder / 'final.pt'}" in out for out, _ in outs)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "final.pt", "meta.json"]
    state = torch.load(folder / "final.pt", weights_only=True)
    assert state["history"]["step"] == list(range(1, cfg.steps + 1)) and len(state["meta"]["sessions"]) == 1


@pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)
def test_torchrun_trains_then_resumes_and_loads(store):
    """`torchrun --nproc_per_node 2 -m sepnb train ...` (gloo) stopped after a checkpoint, then run to the end."""
    cfg = catalogue.prior_config("smoke", "flow", "square")
    folder = runstore.run_dir(cfg)
    loop.train(cfg, progress=False, stop_after=10)  # a checkpoint at step 10 (of 20), as a killed run leaves
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sepnb",
        "train",
        "--profile",
        "smoke",
        "--family",
        "flow",
        "--source",
        "square",
        "--quiet",
    ]
    out = subprocess.run(cmd, env=env_for(store), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "(2 processes, DDP)" in out.stdout and out.stdout.count("final held-out loss") == 1  # rank 0 prints
    state = torch.load(folder / "final.pt", weights_only=True)
    assert [(s["from_step"], s["to_step"], s["world_size"]) for s in state["meta"]["sessions"]] == [
        (0, 10, 1),
        (10, 20, 2),
    ]
    assert state["history"]["step"] == list(range(1, 21)) and not (folder / "checkpoint.pt").exists()
    again = sepnb("train", "--profile", "smoke", "--family", "flow", "--source", "square", store=store)
    assert "flow/square" not in again.stderr
