"""Device handling (issue 10): SEPNB_DEVICE, and every chapter's core calls with the priors on that device.

The CPU half runs everywhere. The CUDA half runs each chapter's core calls
(training through the run store, likelihoods, the Figure 4 grid, Langevin
separation, the supervised baseline, sampling) with the priors on the GPU and
the data on the CPU, as the chapters pass it; without a GPU it skips, saying
why.
"""

import numpy as np
import pytest
import torch
from gaussian import Gauss

from sepnb.analysis import ood
from sepnb.core import profiles
from sepnb.data import toy
from sepnb.runs import catalogue, devices, loop
from sepnb.separation import langevin

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device visible to torch on this machine")


def test_sepnb_device_override(monkeypatch):
    monkeypatch.setenv("SEPNB_DEVICE", "cpu")
    assert devices.device() == torch.device("cpu")
    monkeypatch.setenv("SEPNB_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu, cuda|cpu or cuda"):
        devices.device()
    monkeypatch.setenv("SEPNB_DEVICE", "cuda:not-a-number")
    with pytest.raises(ValueError, match="SEPNB_DEVICE"):
        devices.device()
    if not CUDA:
        monkeypatch.setenv("SEPNB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA device"):
            devices.device()
    monkeypatch.delenv("SEPNB_DEVICE")
    assert devices.device() == torch.device("cuda" if CUDA else "cpu")


def test_separate_follows_the_priors_device_and_returns_on_the_mix_device():
    priors = [Gauss(0.1, 0.5), Gauss(-0.2, 0.3)]
    mix = torch.randn(2, 64, dtype=torch.float32)
    out = langevin.separate(mix, priors, steps_per_sigma=3, progress=False)
    assert out.device == mix.device and out.shape == (2, 2, 64)
    assert langevin.prior_device(priors) == torch.device("cpu")
    assert langevin.prior_device([], default="cpu") == torch.device("cpu")


@needs_cuda
def test_priors_on_two_devices_are_a_clear_error():
    priors = [Gauss(0.0, 1.0), Gauss(0.0, 1.0).cuda()]
    with pytest.raises(ValueError, match="different devices"):
        langevin.prior_device(priors)


@needs_cuda
def test_chapter_core_calls_run_with_the_priors_on_cuda(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SEPNB_DEVICE", "cuda")
    P = profiles.get("smoke")
    # chapter 02: training through the store puts the prior on the device; loading does too
    cfg = catalogue.prior_config(P, "flow", "sine")
    model, _ = loop.get_prior(cfg, progress=False)
    assert next(model.parameters()).is_cuda
    model, _ = loop.get_prior(cfg, progress=False)
    assert next(model.parameters()).is_cuda
    wn, _ = loop.get_prior(catalogue.prior_config(P, "wavenet", "sine"), progress=False)
    assert wn.sample(1, 64, seed=0).is_cuda
    assert torch.isfinite(model.sample(1, 64, seed=0)).all()
    # chapters 03/04: likelihoods and the noise grid take CPU data
    windows = toy.ToyWindows("test", window=P.window, n_items=4, seed=0).batch(np.arange(4))  # [4, 4, T]
    r = ood.cross_likelihood({"flow": model, "wavenet": wn}, {"sine": windows[:, 0]})
    assert np.isfinite(r.values).all()
    grid = ood.noise_grid({0.0: {s: model for s in toy.SOURCES}}, windows, toy.SOURCES, [0.0, 0.1], progress=False)
    assert np.isfinite(grid.values).all()
    # chapter 06: Langevin with noise-conditioned priors on the GPU, CPU mixes in and out
    mix = toy.mix(windows)
    priors = [langevin.NoiseConditionedPrior({0.1: model}) for _ in toy.SOURCES]
    out = langevin.separate(mix, priors, sigmas=[0.1], steps_per_sigma=2, clip=(-1, 1), progress=False)
    assert out.device == mix.device and torch.isfinite(out).all()
    tasnet, _ = loop.get_prior(catalogue.separator_config(P), progress=False)
    with torch.no_grad():
        est = tasnet(mix.to(devices.device())).cpu()
    assert est.shape == windows.shape


@needs_cuda
def test_chapter_07_core_calls_run_with_the_priors_on_cuda(tmp_path, monkeypatch):
    """Denoisers trained through the store on the GPU; the constrained sampler and the harmonic start take CPU mixes."""
    from sepnb.priors.denoiser import StackedDenoisers
    from sepnb.separation import constrained, harmonic

    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SEPNB_DEVICE", "cuda")
    P = profiles.get("smoke")
    denoisers = [m for m, _ in catalogue.toy_denoisers(P, progress=False).values()]
    assert all(next(m.parameters()).is_cuda for m in denoisers)
    truth = toy.ToyWindows("test", window=P.sep_length, n_items=2, seed=0).batch(np.arange(2))
    mix = toy.mix(truth)
    x = truth.to("cuda")
    loop, vmapped = StackedDenoisers(denoisers), StackedDenoisers(denoisers, vmap=True)
    torch.testing.assert_close(loop.score_all(x, 0.1), vmapped.score_all(x, 0.1), rtol=1e-3, atol=1e-3)
    out = constrained.constrained_langevin(mix, loop, sigmas=[0.1, 0.05], steps_per_sigma=2, init=truth, progress=False)
    assert out.device == mix.device and torch.isfinite(out).all()
    torch.testing.assert_close(out.mean(1), mix, rtol=0, atol=1e-5)  # the mix is kept exactly
    start, _ = harmonic.harmonic_start(mix, denoisers, progress=False, **P.harmonic)
    assert start.shape == truth.shape and start.device == mix.device


@needs_cuda
def test_separator_continuation_stops_by_its_plateau_rule_on_cuda(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SEPNB_DEVICE", "cuda")
    cfg = catalogue.separator_config("smoke").replace(min_delta=100.0)  # no gain counts: stops after stop_patience
    model, h = loop.get_prior(cfg, progress=False)
    assert next(model.parameters()).is_cuda
    assert h["plateau"]["stopped_at"] == cfg.stop_patience * cfg.eval_every and h["plateau"]["best_step"] == 0
    assert loop._evaluate(model, loop._eval_batch(cfg)) == pytest.approx(h["eval"][0], abs=1e-4)
