"""Training many runs at once (`sepnb train --all --jobs N`, sepnb.runs.schedule): parents before their
fine-tunes, the same weights as a run trained on its own, failures reported with what they blocked."""

import io
import json
import subprocess
import sys

import pytest
import torch

from sepnb.runs import catalogue, schedule
from sepnb.runs import store as runstore
from tests.test_cli import env_for, sepnb


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SEPNB_DATA", str(tmp_path / "data"))
    return tmp_path / "runs"


def smoke_runs():
    parent = catalogue.prior_config("smoke", "flow", "sine")
    tuned = catalogue.finetune_config(parent, 0.129, "smoke")
    other = catalogue.prior_config("smoke", "wavenet", "saw")
    return parent, tuned, other


def test_default_threads_share_out_the_cores():
    assert schedule.default_threads(1, cores=2) == 2
    assert schedule.default_threads(2, cores=2) == 1
    assert schedule.default_threads(3, cores=2) == 1  # never zero
    assert schedule.default_threads(4, cores=16) == 4


def test_chain_cost_puts_a_parent_before_a_longer_lone_run():
    parent, tuned, other = smoke_runs()
    long_alone = other.replace(steps=parent.steps + tuned.steps - 1)
    cost = schedule.chain_cost([tuned, parent, long_alone])
    samples = lambda c: c.steps * c.batch * c.window  # noqa: E731
    assert cost[parent.key()] == samples(parent) + samples(tuned)
    assert cost[tuned.key()] == samples(tuned) and cost[long_alone.key()] == samples(long_alone)
    assert cost[parent.key()] > cost[long_alone.key()]  # the chain starts first


def test_two_jobs_train_parents_first_and_match_a_run_trained_alone(store, tmp_path):
    parent, tuned, other = smoke_runs()
    log = io.StringIO()
    # the fine-tune only: its missing parent is added and trained first
    summary = schedule.train_runs([tuned, other], jobs=2, threads=1, out=log)
    names = [r["run"] for r in summary["trained"]]
    assert sorted(names) == sorted(runstore.run_dir(c).name for c in (parent, tuned, other))
    assert names.index(runstore.run_dir(parent).name) < names.index(runstore.run_dir(tuned).name)
    text = log.getvalue()
    assert "training 3 runs (0 already in the store), 2 at a time with 1 thread each" in text
    assert text.index(f"done   {runstore.run_dir(parent).name}") < text.index(f"start  {runstore.run_dir(tuned).name}")
    for c in (parent, tuned, other):
        assert (runstore.run_dir(c) / "final.pt").exists()
    # the same run trained alone by `sepnb train` with one thread, in another store: the same weights
    # (a subprocess: changing this process's thread count would leave torch's thread pools unsettled)
    alone = tmp_path / "alone"
    sepnb("train", "--profile", "smoke", "--family", "flow", "--source", "sine", "--sigma", "0.129", store=alone)
    a = torch.load(alone / runstore.run_dir(tuned).name / "final.pt", weights_only=True)["model"]
    b = torch.load(runstore.run_dir(tuned) / "final.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # everything is in the store now: nothing to do
    again = schedule.train_runs([tuned, other], jobs=2, out=io.StringIO())
    assert again["trained"] == [] and again["skipped_done"] == 3


def test_a_failed_run_blocks_only_its_descendants(store):
    parent, tuned, other = smoke_runs()
    folder = runstore.run_dir(parent)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"not": "this run"}))  # the store refuses to train it
    log = io.StringIO()
    with pytest.raises(schedule.ScheduleError) as err:
        schedule.train_runs([parent, tuned, other], jobs=2, out=log)
    msg = str(err.value)
    assert "2 of 3 runs did not finish" in msg and "run the same command again" in msg
    assert f"{folder.name} (flow sine 20 steps): StoreError" in msg and "delete the folder to retrain" in msg
    assert f"{runstore.run_dir(tuned).name}" in msg and f"the run it starts from ({folder.name}) failed" in msg
    assert (runstore.run_dir(other) / "final.pt").exists()  # the independent run was trained
    assert not runstore.run_dir(tuned).exists()  # never started
    assert f"FAILED {folder.name}" in log.getvalue()


def test_cli_trains_every_run_of_the_profile_then_reports_them_done(store):
    out = sepnb("train", "--profile", "smoke", "--all", "--no-music", "--jobs", "2", store=store, timeout=600)
    assert "2 at a time with 1 thread each" in out.stderr and "trained" in out.stderr
    listed = sepnb("train", "--profile", "smoke", "--all", "--no-music", store=store).stdout
    n = len(catalogue.profile_runs("smoke", with_music=False))
    assert f"{n} done" in listed and not any(line.startswith("missing") for line in listed.splitlines())
    again = sepnb("train", "--profile", "smoke", "--all", "--no-music", "--jobs", "2", store=store)
    assert "are in the store" in again.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (
            ["--jobs", "2", "--family", "flow", "--source", "sine"],
            "--jobs trains every run of the profile: use it with --all",
        ),
        (["--all", "--jobs", "0"], "--jobs must be at least 1"),
    ],
)
def test_cli_jobs_usage_errors(store, args, says):
    out = subprocess.run(
        [sys.executable, "-m", "sepnb", "train", "--profile", "smoke", *args],
        env=env_for(store),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and says in out.stderr
