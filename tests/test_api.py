"""The public API (issue 21): what `import sepnb` offers, that loading never trains, that the README's
snippet runs, that run keys survived the restructuring, that the chapters import only public names,
and that documented commands leave the checkout's tracked files alone."""

import ast
import json
import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sepnb
from sepnb.core import paths, profiles
from sepnb.data.toy import SOURCES
from sepnb.runs import catalogue, store

ROOT = paths.ROOT
SUBPACKAGES = ("core", "data", "priors", "runs", "separation", "analysis", "book")


@pytest.fixture
def run_store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_help_lists_the_public_api():
    text = pydoc.render_doc(sepnb, renderer=pydoc.plaintext)
    missing = [name for name in sepnb.__all__ if name != "__version__" and name not in text]
    assert not missing, f"help(sepnb) does not show {missing}"
    for name in sepnb.__all__:
        obj = getattr(sepnb, name)
        if callable(obj) and not isinstance(obj, type(sepnb)):
            assert (obj.__doc__ or "").strip(), f"sepnb.{name} has no docstring"


def test_every_subpackage_exports_what_it_names():
    import importlib

    for sub in SUBPACKAGES:
        module = importlib.import_module(f"sepnb.{sub}")
        assert (module.__doc__ or "").strip(), f"sepnb.{sub} has no docstring"
        for name in module.__all__:
            assert hasattr(module, name), f"sepnb.{sub}.__all__ names {name!r}, which it lacks"


def test_run_keys_are_those_before_the_restructuring():
    """Every run folder name of every profile (parents included) equals the one recorded before the move."""
    before = json.loads((Path(__file__).parent / "data" / "run_keys.json").read_text())
    assert sorted(before) == sorted(profiles.PROFILES)
    for name, keys in before.items():
        now = set()
        p = profiles.get(name)
        extra = set(catalogue.basis_extra_sigmas(p))
        for what, cfg in catalogue.profile_runs(name, music="standin", with_seeds=False):
            if what.get("sigma") in extra:
                continue  # added since (below)
            while cfg is not None:
                now.add(store.run_dir(cfg).name)
                cfg = cfg.parent
        assert sorted(now) == keys, f"profile {name!r}: run keys changed"
        # the runs added since (issue 22): the noise-free toy priors of the other training seeds, and the
        # flows fine-tuned at the levels of BASIS's schedule that the paper's levels lack
        added = {store.run_dir(c).name for _, c in catalogue.profile_runs(name, music="standin")} - now
        seeds = [s for s in p.train_seeds if s != 0]
        expect = {
            store.run_dir(catalogue.prior_config(p, f, s, seed=k)).name
            for f in catalogue.FAMILIES
            for s in SOURCES
            for k in seeds
        } | {
            store.run_dir(catalogue.finetune_config(catalogue.prior_config(p, "flow", s), sigma, p)).name
            for s in SOURCES
            for sigma in extra
        }
        assert len(extra) == 5 and added == expect, f"profile {name!r}: runs added besides the seeds and BASIS levels"


def test_load_never_trains_and_says_how_to_train(run_store):
    with pytest.raises(sepnb.RunNotFound) as err:
        sepnb.load_prior("flow", "square", profile="smoke", sigma=0.129)
    msg = str(err.value)
    assert "sepnb train --profile smoke --family flow --source square --sigma 0.129" in msg
    assert not run_store.exists() or not any(run_store.iterdir()), "loading wrote into the store"
    with pytest.raises(sepnb.RunNotFound, match="sepnb train --profile smoke --family denoiser --source saw"):
        sepnb.load_prior("denoiser", "saw", profile="smoke")
    with pytest.raises(sepnb.RunNotFound, match="no config.json"):
        sepnb.load_run(run_store)


def test_train_then_load_by_name_and_by_folder(run_store):
    trained = sepnb.train_prior("wavenet", "sine", profile="smoke", progress=False)
    loaded = sepnb.load_prior("wavenet", "sine", profile="smoke")
    cfg = sepnb.prior_config("wavenet", "sine", profile="smoke")
    assert cfg == catalogue.prior_config("smoke", "wavenet", "sine")  # what chapter 02 asks for
    model, history, config = sepnb.load_run(store.run_dir(cfg))
    x = torch.zeros(2, 256).uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = trained.log_prob(x.to(next(trained.parameters()).device)).cpu()
        for other in (loaded, model):
            torch.testing.assert_close(other.log_prob(x.to(next(other.parameters()).device)).cpu(), ref)
    assert config["family"] == "wavenet" and history["eval"]


def _readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use a prior in your own code", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's 'Use a prior in your own code' section has no python block"
    return blocks[0]


def test_readme_snippet_runs_against_a_store_filled_at_the_smoke_profile(run_store, monkeypatch):
    sepnb.train_prior("flow", "sine", profile="smoke", progress=False)
    monkeypatch.setenv("SEPNB_PROFILE", "smoke")
    scope = {}
    exec(compile(_readme_snippet(), "README.md", "exec"), scope)
    assert torch.isfinite(scope["log_p"]).all() and scope["log_p"].shape == (4,)


def _sepnb_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sepnb":
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "sepnb":
                    yield node.lineno, a.name, []


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_chapters_import_only_the_public_api(path):
    """`from sepnb import X` (X public) or `from sepnb.<layer> import X` (X in the layer's __all__)."""
    import importlib

    for line, module, names in _sepnb_imports(path):
        parts = module.split(".")
        assert len(parts) <= 2 and (len(parts) == 1 or parts[1] in SUBPACKAGES), (
            f"{path.name}:{line} imports {module}, an internal module; use sepnb or one of its layers"
        )
        public = importlib.import_module(module).__all__
        hidden = [n for n in names if n not in public]
        assert not hidden, f"{path.name}:{line}: {hidden} are not in {module}.__all__"


def test_default_results_are_scratch_and_ignored(monkeypatch):
    monkeypatch.delenv("SEPNB_RESULTS", raising=False)
    monkeypatch.delenv("SEPNB_HOME", raising=False)
    assert paths.results_dir() == ROOT / "results" != paths.RESULTS
    if (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", "results/x.json"], cwd=ROOT)
        assert ignored.returncode == 0, "results/ must be git-ignored"


def test_outside_a_checkout_sepnb_refuses_or_uses_sepnb_home(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ROOT", tmp_path / "site-packages")
    for var in ("SEPNB_HOME", "SEPNB_RUNS", "SEPNB_DATA", "SEPNB_RESULTS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="SEPNB_HOME"):
        paths.runs_dir()
    monkeypatch.setenv("SEPNB_HOME", str(tmp_path / "home"))
    assert paths.runs_dir() == tmp_path / "home" / "runs"
    assert paths.data_dir() == tmp_path / "home" / "data"
    assert paths.results_dir() == tmp_path / "home" / "results"


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_documented_commands_leave_tracked_files_alone(tmp_path):
    """The README's papermill example and `python -m sepnb.bench` change nothing git tracks."""
    env = {k: v for k, v in os.environ.items() if k != "SEPNB_RESULTS"}  # as a user runs them
    env.update(
        SEPNB_RUNS=str(tmp_path / "runs"),
        SEPNB_DATA=str(tmp_path / "data"),
        SEPNB_HOME=str(tmp_path),
        SEPNB_PROGRESS="off",
    )
    before = _status()
    bindir = Path(sys.executable).parent
    cmds = [
        [
            str(bindir / "papermill"),
            "notebooks/03_noise.ipynb",
            str(tmp_path / "out.ipynb"),
            "-p",
            "sigma",
            "0.3",
            "-p",
            "profile",
            "smoke",
            "--no-progress-bar",
        ],
        [sys.executable, "-m", "sepnb.bench", "--cases", "flow-smoke", "--steps", "1", "--warmup", "0"],
    ]
    for cmd in cmds:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    assert _status() == before, "a documented command changed tracked files"
    assert (tmp_path / "results" / "03_noise.json").exists()  # the chapter wrote its results to the scratch folder


def test_sepnb_separate_writes_the_four_sources_of_a_toy_mix(run_store, tmp_path, capsys):
    """`sepnb separate IN.wav OUT_DIR` (issue 23's usable-by-others entry point) on a toy mix of the test
    split, with smoke-profile denoisers: four WAV files. Bar: best-permutation SI-SDR of every source
    at least 8 dB (the smoke priors are too small to say which group is which, so the fixed order is
    not what this checks; the book's priors are judged in chapter 07)."""
    import soundfile as sf

    from sepnb import cli
    from sepnb.data import toy

    truth = toy.ToyWindows("test", window=4096, n_items=4, seed=0).batch([1])[0]  # [4, T]
    wav = tmp_path / "mix.wav"
    sf.write(wav, toy.mix(truth[None])[0].numpy(), 16_000, subtype="PCM_16")
    out = tmp_path / "out"
    assert cli.main(["separate", str(wav), str(out), "--profile", "smoke", "--quiet"]) == 2  # no denoisers yet
    assert "sepnb train --profile smoke --family denoiser --source sine" in capsys.readouterr().err
    assert not out.exists()
    for s in toy.SOURCES:
        sepnb.train_prior("denoiser", s, "smoke", progress=False)
    for method in ("refine", "search"):  # chapter 07's method, and issue 23's search at smoke's fixed configuration
        out = tmp_path / method
        assert cli.main(["separate", str(wav), str(out), "--profile", "smoke", "--quiet", "--method", method]) == 0
        est = torch.stack([torch.as_tensor(sf.read(out / f"{s}.wav", dtype="float32")[0]) for s in toy.SOURCES])
        assert est.shape == truth.shape
        assert (sepnb.si_sdr(truth[None], est[None], permute=True) >= 8.0).all(), method
        with pytest.raises(SystemExit):  # never overwrites without --force
            cli.main(["separate", str(wav), str(out), "--profile", "smoke", "--quiet"])
        assert "exist" in capsys.readouterr().err
    # the book's tuned search needs the book's denoisers, which this store lacks: the command that makes them
    assert cli.main(["separate", str(wav), str(tmp_path / "b"), "--profile", "book", "--method", "search"]) == 2
    assert "sepnb train --profile book --family denoiser" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "rate, channels, frames, message",
    [(44_100, 1, 4096, "44100 Hz"), (16_000, 2, 4096, "2 channel"), (16_000, 1, 100, "at least 1024")],
)
def test_sepnb_separate_refuses_what_the_priors_do_not_model(tmp_path, capsys, rate, channels, frames, message):
    import soundfile as sf

    from sepnb import cli

    wav = tmp_path / "mix.wav"
    sf.write(wav, np.zeros((frames, channels), dtype="float32"), rate)
    with pytest.raises(SystemExit):
        cli.main(["separate", str(wav), str(tmp_path / "out"), "--profile", "smoke"])
    assert message in capsys.readouterr().err
