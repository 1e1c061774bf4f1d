"""Training and the run store: cached, resumable (also after kill -9), refuses corrupt files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from sepnb.core import paths, profiles
from sepnb.data import select, toy
from sepnb.priors.flowavenet import FloWaveNet
from sepnb.runs import catalogue, config, loop
from sepnb.runs import store as runstore

TINY = {
    "wavenet": dict(n_layers=3, n_stacks=1, channels=8, kernel_size=2),
    "flow": dict(n_blocks=2, n_flows=2, n_layers=2, channels=8, kernel_size=3),
    "denoiser": dict(channels=8, layers=3, emb=8),
}


def tiny_config(family="flow", **kw):
    base = dict(
        family=family,
        source="sine",
        model=TINY.get(family, TINY["flow"]),
        steps=12,
        batch=2,
        window=128,
        eval_every=4,
        eval_items=2,
        ckpt_every=3,
        n_items=50,
        seed=0,
    )
    base.update(kw)
    return config.RunConfig(**base)


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.mark.parametrize("family", ["flow", "wavenet", "denoiser"])
def test_resume_matches_uninterrupted_run(family, store, monkeypatch):
    """Also for the denoiser, whose training draws its noise levels from torch's global generator:
    the checkpoint keeps that generator's state."""
    cfg = tiny_config(family)
    _, full = loop.train(cfg, progress=False)
    monkeypatch.setenv("SEPNB_RUNS", str(store / "second"))
    _, part = loop.train(cfg, progress=False, stop_after=5)  # interrupted after step 5 (checkpoint at 3)
    assert len(part["train"]) == 5 and (runstore.run_dir(cfg) / "checkpoint.pt").exists()
    _, resumed = loop.train(cfg, progress=False)
    # steps 4-5 are redone from the step-3 checkpoint; the curve is that of the uninterrupted run
    assert resumed["step"] == full["step"]
    torch.testing.assert_close(torch.tensor(resumed["train"]), torch.tensor(full["train"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(resumed["eval"]), torch.tensor(full["eval"]), rtol=1e-5, atol=1e-6)


def test_resume_after_kill_9(store):
    cfg = tiny_config("flow", steps=200, ckpt_every=5, window=64)
    script = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(paths.ROOT)!r})
        import torch
        torch.set_num_threads({torch.get_num_threads()})  # as this process: same reductions, same numbers
        from sepnb.data import select
        from sepnb.runs import catalogue
        from sepnb.runs import config
        from sepnb.runs import loop
        from sepnb.runs import store
        from tests.test_train import tiny_config
        loop.train(tiny_config("flow", steps=200, ckpt_every=5, window=64), progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "SEPNB_RUNS": str(store)})
    ckpt = runstore.run_dir(cfg) / "checkpoint.pt"
    deadline = time.time() + 60
    while time.time() < deadline and not ckpt.exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the training subprocess wrote no checkpoint"
    step_at_kill = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < step_at_kill < 200
    assert not (runstore.run_dir(cfg) / "final.pt").exists()
    _, resumed = loop.train(cfg, progress=False)
    assert resumed["step"] == list(range(1, 201))
    # and it matches a run that was never killed
    os.environ["SEPNB_RUNS"] = str(store / "clean")
    _, clean = loop.train(cfg, progress=False)
    torch.testing.assert_close(torch.tensor(resumed["train"]), torch.tensor(clean["train"]), rtol=1e-5, atol=1e-6)


def test_get_prior_trains_once_then_loads(store):
    cfg = tiny_config("wavenet", steps=4)
    m1, h1 = loop.get_prior(cfg, progress=False)
    final = runstore.run_dir(cfg) / "final.pt"
    stamp = final.stat().st_mtime_ns
    m2, h2 = loop.get_prior(cfg, progress=False)
    assert final.stat().st_mtime_ns == stamp and h1 == h2
    x = torch.rand(2, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m1.log_prob(x), m2.log_prob(x))
    assert json.loads((runstore.run_dir(cfg) / "config.json").read_text())["family"] == "wavenet"


def test_config_key_covers_every_field():
    cfg = tiny_config()
    assert cfg.key() == tiny_config().key()
    for change in (
        {"seed": 1},
        {"steps": 13},
        {"lr": 2e-3},
        {"source": "saw"},
        {"window": 256},
        {"model": {**TINY["flow"], "channels": 16}},
    ):
        assert cfg.replace(**change).key() != cfg.key(), change
    noisy = cfg.replace(sigma=0.1, parent=cfg)
    assert noisy.key() != cfg.replace(sigma=0.1, parent=cfg, noise_mode="authors").key()


def test_corrupt_checkpoint_is_refused_not_overwritten(store):
    cfg = tiny_config("flow", steps=3)
    loop.get_prior(cfg, progress=False)
    final = runstore.run_dir(cfg) / "final.pt"
    final.write_bytes(b"not a checkpoint")
    with pytest.raises(runstore.StoreError, match="final.pt"):
        loop.get_prior(cfg, progress=False)
    assert final.read_bytes() == b"not a checkpoint"


def test_mismatched_config_is_refused(store):
    cfg = tiny_config("flow", steps=3)
    loop.get_prior(cfg, progress=False)
    cfg_file = runstore.run_dir(cfg) / "config.json"
    cfg_file.write_text(cfg_file.read_text().replace('"steps": 3', '"steps": 4'))
    with pytest.raises(runstore.StoreError, match="does not match"):
        loop.get_prior(cfg, progress=False)


def test_divergence_stops_with_clear_error_and_saves_nothing_broken(store, monkeypatch):
    cfg = tiny_config("flow", steps=8, ckpt_every=2)
    real_loss = FloWaveNet.loss
    calls = {"n": 0}

    def flaky(self, x):
        calls["n"] += 1
        out = real_loss(self, x)
        return out * float("nan") if self.training and calls["n"] > 5 else out

    monkeypatch.setattr(FloWaveNet, "loss", flaky)
    with pytest.raises(loop.TrainingDiverged, match="nan at step"):
        loop.train(cfg, progress=False)
    folder = runstore.run_dir(cfg)
    assert not (folder / "final.pt").exists()
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_noise_modes():
    x = torch.zeros(400, 100)
    g = torch.Generator().manual_seed(0)
    fixed = loop.add_noise(x, 0.1, "fixed", g)
    assert abs(float(fixed.std()) - 0.1) < 0.005
    ones = torch.full((400, 100), 0.99)
    authors = loop.add_noise(ones, 0.359, "authors", g)
    assert float(authors.max()) <= 1.0  # clamped
    per_example = loop.add_noise(x, 0.359, "authors", g).std(dim=1)
    assert 0.0 < float(per_example.min()) < 0.1 and 0.3 < float(per_example.max()) < 0.4
    with pytest.raises(ValueError, match="noise_mode"):
        loop.add_noise(x, 0.1, "loud", g)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"family": "glow"}, "unknown model family"),
        ({"source": "piano"}, "unknown source"),
        ({"sigma": -0.1}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": 0.1}, "parent"),
        ({"steps": 0}, "steps"),
        ({"noise_mode": "x"}, "noise_mode"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**change)


# --------------------------------------------------------------------------- music runs
#: Keys of toy runs computed before music runs existed (hours of trained priors in runs/ are
#: stored under them). If a profile's sizes change on purpose, these change with them.
TOY_KEYS = {
    ("book", "flow", "sine"): "97a91e60bee4",
    ("book", "wavenet", "saw"): "f23d0cd0d22c",
    ("smoke", "wavenet", "sine"): "71fe64cdf465",
    ("paper", "flow", "saw"): "929cfda33e0a",
}


def test_toy_keys_are_unchanged_by_music_support():
    for (profile, family, source), key in TOY_KEYS.items():
        cfg = catalogue.prior_config(profile, family, source)
        assert cfg.key() == key, (profile, family, source)
        assert "music" not in cfg.to_dict() and "data_root" not in cfg.to_dict()
    parent = catalogue.prior_config("book", "flow", "sine")
    assert catalogue.finetune_config(parent, 0.1, "book").key() == "0c9cc55ab136"
    # the book's Conv-TasNet trains 16000 steps with its own eval cadence since issue 12 (a new run by design);
    # since then it continues from them until its validation loss stops improving: the first stage's key stays
    sep = catalogue.separator_config("book")
    assert sep.parent.key() == "ec05c42635f9" and sep.eval_split == "val" and sep.stop_patience > 0
    # the plateau fields are in the key only where set
    assert not {"eval_split", "lr_patience", "stop_patience", "min_delta"} & set(sep.parent.to_dict())
    assert {"eval_split", "lr_patience", "stop_patience", "min_delta"} <= set(sep.to_dict())


def test_plateau_rules_halve_the_step_size_and_stop():
    cfg = catalogue.separator_config("smoke").replace(lr_patience=2, stop_patience=3, min_delta=0.1)
    plateau = {
        "best": None,
        "best_step": None,
        "since": 0,
        "since_lr": 0,
        "lr_scale": 1.0,
        "halved_at": [],
        "stopped_at": None,
    }
    # losses: improve, improve, 3 evaluations within min_delta of the best -> halve after 2, stop after 3
    calls = [(0, 5.0), (10, 4.0), (20, 3.95), (30, 4.5), (40, 3.91)]
    stops = [loop._plateau_update(cfg, plateau, s, v) for s, v in calls]
    assert stops == [False, False, False, False, True]
    assert plateau["best"] == 4.0 and plateau["best_step"] == 10 and plateau["halved_at"] == [30]
    assert plateau["lr_scale"] == 0.5
    # an improvement by more than min_delta resets both counters
    assert not loop._plateau_update(cfg, plateau, 50, 3.0) and plateau["since"] == plateau["since_lr"] == 0


def test_plateau_rules_refuse_the_test_items():
    first = catalogue.separator_config("smoke").parent
    with pytest.raises(ValueError, match="eval_split='val'"):
        first.replace(stop_patience=3)
    with pytest.raises(ValueError, match="eval_split must be"):
        first.replace(eval_split="holdout")
    with pytest.raises(ValueError, match="lr_patience must be"):
        first.replace(eval_split="val", lr_patience=-1)


def test_early_stopping_keeps_the_best_weights_and_resumes(tmp_path, monkeypatch):
    """A run stopped by its plateau rule saves its best held-out weights; validation items are never trained on."""
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path))
    # no gain can beat min_delta = 100 dB: the best weights are the initial ones, the stop comes at 2 x 5 steps
    cfg = catalogue.separator_config("smoke").replace(
        parent=None, steps=60, stop_patience=2, lr_patience=1, min_delta=100.0, lr=3e-2, eval_every=5
    )
    val = loop._eval_batch(cfg)
    items = toy.ToyWindows("train", window=cfg.window, n_items=cfg.n_items + cfg.eval_items, seed=cfg.seed)
    assert torch.equal(val, items.batch(np.arange(cfg.n_items, cfg.n_items + cfg.eval_items)))
    loop.train(cfg, progress=False, stop_after=7)  # interrupted, then resumed from its checkpoint
    model, h = loop.get_prior(cfg, progress=False)
    p = h["plateau"]
    assert p["best_step"] == 0 and p["best"] == h["eval"][0] and p["halved_at"] == [5, 10]
    assert p["stopped_at"] == 10 and h["step"][-1] == 10 and h["eval_step"] == [0, 5, 10]
    assert min(h["eval"][1:]) < h["eval"][0]  # the last weights were better, yet within min_delta: not kept
    assert loop._evaluate(model, val) == pytest.approx(p["best"], abs=1e-5)


FRAMES = dict(sample_rate=16000, frames_per_song=3, frame_seconds=1.0, mono="mean", normalize=None)
STANDIN = {"kind": "standin", "standin": dict(n_train=2, n_test=1, seconds=3.0, seed=0, version=1), "frames": FRAMES}


def music_config(music=STANDIN, **kw):
    return tiny_config(**{"source": "bass", "dataset": "music", "music": music, "data_root": "/somewhere", **kw})


def test_music_keys_cover_the_data_and_the_frames():
    cfg = music_config()
    assert cfg.key() == music_config(data_root="/elsewhere").key()  # where a stand-in lies is not what it is
    assert "data_root" not in cfg.to_dict() and cfg.to_dict()["music"] == STANDIN
    musdb = {"kind": "musdb", "root": "/data/musdb18", "frames": FRAMES}
    variants = [
        music_config(music={**STANDIN, "standin": {**STANDIN["standin"], "seconds": 4.0}}),
        music_config(music={**STANDIN, "standin": {**STANDIN["standin"], "seed": 1}}),
        music_config(music=musdb),
        music_config(music={**musdb, "root": "/data/other-musdb18"}),
        music_config(music={**STANDIN, "frames": {**FRAMES, "frames_per_song": 4}}),
        music_config(music={**STANDIN, "frames": {**FRAMES, "mono": "left"}}),
        music_config(music={**STANDIN, "frames": {**FRAMES, "normalize": "stem_peak"}}),
        music_config(source="drums"),
    ]
    keys = [cfg.key()] + [v.key() for v in variants]
    assert len(set(keys)) == len(keys)
    assert runstore.run_dir(cfg).name.startswith("flow-bass-")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"source": "sine"}, "unknown source 'sine' for dataset 'music'"),
        ({"music": None}, "needs music="),
        ({"music": {"kind": "musdb", "frames": FRAMES}}, "music\\['root'\\]"),
        ({"music": {"kind": "standin", "standin": {}, "frames": {"sample_rate": 16000}}}, "exactly"),
        ({"window": 16001}, "frame length"),
        ({"dataset": "mus"}, "unknown dataset"),
    ],
)
def test_bad_music_config(change, match):
    with pytest.raises(ValueError, match=match):
        music_config(**change)


def test_toy_config_refuses_music_fields():
    with pytest.raises(ValueError, match="dataset='music'"):
        tiny_config(music=STANDIN)
    with pytest.raises(ValueError, match="unknown source 'bass' for dataset 'toy'"):
        tiny_config(source="bass")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data folder holding the smoke profile's stand-in (2 + 1 songs of 3 s, about 1 s to make)."""
    from sepnb.core import profiles
    from sepnb.data import standin as standinlib

    folder = tmp_path_factory.mktemp("data")
    standinlib.make_standin(folder / "musdb-standin-smoke", **profiles.get("smoke").standin, progress=False)
    return folder


def test_music_windows_of_a_run(data_dir, monkeypatch):
    monkeypatch.setenv("SEPNB_DATA", str(data_dir))
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    cfg = catalogue.music_prior_config("smoke", "wavenet", "vocals", progress=False)  # auto: the stand-in
    assert cfg.dataset == "music" and cfg.data_root == str(data_dir / "musdb-standin-smoke")
    assert cfg.music["kind"] == "standin" and cfg.n_items == 2 * 3  # one item per training frame
    ds = select.run_windows(cfg, "train", cfg.n_items)
    assert ds.split == "train" and len(ds.data.songs) == 2 and ds.batch([0, 5]).shape == (2, cfg.window)
    test = select.run_windows(cfg, "test", 4)
    assert test.data.subset == "test" and test.batch([0, 1, 2, 3]).shape == (4, cfg.window)
    # a separator's windows hold all four stems
    sep = cfg.replace(family="convtasnet", source="mix", model={})
    assert select.run_windows(sep, "test", 2).batch([0, 1]).shape == (2, 4, cfg.window)


def test_music_prior_trains_resumes_and_loads(data_dir, store, monkeypatch):
    monkeypatch.setenv("SEPNB_DATA", str(data_dir))
    cfg = catalogue.music_prior_config("smoke", "flow", "drums", music="standin", progress=False)
    cfg = cfg.replace(model=TINY["flow"], steps=6, ckpt_every=2, eval_every=3)
    _, full = loop.train(cfg, progress=False)
    assert runstore.run_dir(cfg).name.startswith("flow-drums-")
    assert json.loads((runstore.run_dir(cfg) / "config.json").read_text())["music"]["kind"] == "standin"
    monkeypatch.setenv("SEPNB_RUNS", str(store / "second"))
    _, part = loop.train(cfg, progress=False, stop_after=3)
    assert len(part["train"]) == 3 and (runstore.run_dir(cfg) / "checkpoint.pt").exists()
    _, resumed = loop.train(cfg, progress=False)
    assert resumed["step"] == full["step"]
    torch.testing.assert_close(torch.tensor(resumed["train"]), torch.tensor(full["train"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(resumed["eval"]), torch.tensor(full["eval"]), rtol=1e-5, atol=1e-6)
    model, loaded = loop.get_prior(cfg, progress=False)  # finished: loaded, not trained again
    assert loaded == resumed and not model.training


def test_music_priors_and_where_the_data_come_from(data_dir, store, monkeypatch, tmp_path):
    from sepnb.data import musdb

    monkeypatch.setenv("SEPNB_DATA", str(data_dir))
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    priors = catalogue.music_priors("smoke", families=("wavenet",), progress=False)
    assert list(priors) == [("wavenet", s) for s in musdb.MUSIC_SOURCES]
    assert all(len(h["step"]) == 20 for _, h in priors.values())
    standin_key = catalogue.music_prior_config("smoke", "wavenet", "bass", progress=False).key()
    # the same stand-in reached through MUSDB_PATH is the same data: same key, runs reused
    monkeypatch.setenv("MUSDB_PATH", str(data_dir / "musdb-standin-smoke"))
    assert catalogue.music_prior_config("smoke", "wavenet", "bass", music="musdb", progress=False).key() == standin_key
    # a musdb18-like folder (the stand-in's songs without its marker) is keyed by its path
    fake = tmp_path / "musdb18"
    for subset in ("train", "test"):
        shutil.copytree(data_dir / "musdb-standin-smoke" / subset, fake / subset)
    monkeypatch.setenv("MUSDB_PATH", str(fake))
    cfg = catalogue.music_prior_config("smoke", "wavenet", "bass", progress=False)  # auto: MUSDB_PATH
    assert cfg.music["kind"] == "musdb" and cfg.music["root"] == str(fake.resolve()) and cfg.key() != standin_key
    assert select.run_windows(cfg, "test", 2).batch([0, 1]).shape == (2, cfg.window)
    assert not (fake / ".sepnb_cache").exists()  # musdb18's frame cache is kept under the data folder
    assert list((data_dir / "musdb-cache").iterdir())


def test_import_train_does_not_need_musdb():
    code = "import sys, sepnb.runs; print('musdb' in sys.modules or 'stempeg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_variant_configs_change_only_what_they_name():
    """Chapter 05's variants: the authors' flow objective and the longer budget, keyed apart from the 1x priors."""
    P = profiles.get("book")
    base = catalogue.prior_config(P, "flow", "sine")
    obj = catalogue.variant_config(P, "flow", "sine", "authors-objective")
    assert obj.model == {**base.model, "logdet_weight": P.authors_logdet_weight} and obj.key() != base.key()
    assert obj.replace(model=base.model) == base
    wn = catalogue.prior_config(P, "wavenet", "saw")
    long = catalogue.variant_config(P, "wavenet", "saw", "budget")
    assert long.steps == P.budget_factor * wn.steps and long.replace(steps=wn.steps) == wn
    with pytest.raises(ValueError, match="family must be 'flow'"):
        catalogue.variant_config(P, "wavenet", "saw", "authors-objective")
    with pytest.raises(ValueError, match="unknown variant"):
        catalogue.variant_config(P, "flow", "saw", "longer")
    runs = catalogue.variant_runs(P)
    assert len(runs) == len(P.sigmas) * 4 + 12 and len({c.key() for _, c in runs}) == len(runs)
    theirs = catalogue.variant_config(P, "flow", "saw", "authors-data")
    assert theirs.dataset == "toy_authors" and theirs.replace(dataset="toy") == catalogue.prior_config(P, "flow", "saw")
    authors_noise = [c for w, c in runs if w.get("noise_mode") == "authors"]
    assert all(
        c.parent == catalogue.prior_config(P, "flow", c.source) and c.noise_mode == "authors" for c in authors_noise
    )
    # every listed run is one `sepnb train` command away (the CLI builds the same configuration)
    from sepnb import cli

    parser = cli._parser()
    for what, cfg in runs:
        args = parser.parse_args(cli.train_command(what, "book").split()[1:])
        assert cli.config_from_args(args) == cfg


def test_device_control_trains_in_a_scratch_store_and_never_overwrites(tmp_path, monkeypatch):
    """python -m sepnb.analysis.control: the 1x WaveNets retrained on this device, scored like chapter 05; the store is untouched."""
    from sepnb.analysis import control

    store = tmp_path / "runs"
    monkeypatch.setenv("SEPNB_RUNS", str(store))
    out = tmp_path / "control.json"
    assert control.main(["--profile", "smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["profile"] == "smoke" and len(result["auc_per_prior"]) == 4
    assert 0 <= result["auc_mean"]["low"] <= result["auc_mean"]["value"] <= result["auc_mean"]["high"] <= 1
    assert not store.exists() and os.environ["SEPNB_RUNS"] == str(store)  # the chapters' store is never used
    # the same configurations as chapter 02's: loading them from a store gives the same scores
    models = {s: loop.get_prior(catalogue.prior_config("smoke", "wavenet", s), progress=False)[0] for s in toy.SOURCES}
    from sepnb.analysis import ood

    w = ood.fig3_windows("smoke")

    r = ood.cross_likelihood(models, {s: w[:, j] for j, s in enumerate(toy.SOURCES)})
    assert r.aucs().mean() == pytest.approx(result["auc_mean"]["value"], abs=1e-4)
    with pytest.raises(SystemExit):
        control.main(["--profile", "smoke", "--out", str(out)])  # refuses to overwrite
