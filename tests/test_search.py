"""Issue 23's model-judged search: sets of fundamentals below the FFT's resolution, every assignment,
the priors' criterion, and the search end to end on priors whose answer is known."""

import numpy as np
import pytest
import torch

from sepnb.data import toy
from sepnb.separation import harmonic, metrics, search

FS = 16_000


class Bandpass(torch.nn.Module):
    """A stand-in denoiser that knows only its frequency: D(x) projects x onto sin/cos at f."""

    def __init__(self, f, T):
        super().__init__()
        t = torch.arange(T, dtype=torch.float64) / FS
        q, _ = torch.linalg.qr(torch.stack([torch.cos(2 * np.pi * f * t), torch.sin(2 * np.pi * f * t)]).T)
        self.register_buffer("q", q.float())

    def forward(self, x, sigma):
        return (x @ self.q) @ self.q.T

    def score(self, x, sigma):
        return (self(x, sigma) - x) / sigma**2


def test_the_cached_comb_residual_equals_the_least_squares_fit_even_where_harmonics_coincide():
    x = toy.mix(toy.render(toy.toy_params([3], seed=0, split="test"), 2048))[0].double().numpy()
    combs = harmonic.CombFit(x, FS, 16, cache=True)
    for f0s in ([310.0, 620.0, 1003.0, 77.7], [200.0, 400.0], [123.4, 500.1, 901.0]):  # 2:1 repeats columns
        want = float(np.sum(harmonic.harmonic_fit(x, f0s, FS, 16)[1] ** 2))
        assert combs.residual_energy(f0s) == pytest.approx(want, rel=1e-6, abs=1e-8)


def test_f0_sets_resolve_two_fundamentals_closer_than_one_bin():
    T, bin_hz = 2048, FS / 2048
    truth = np.array([180.0, 433.0, 433.0 + 0.4 * bin_hz, 1210.0])  # two saws 0.4 bins apart
    t = np.arange(T) / FS
    x = np.mean([toy.waveform("saw", f * t + 0.3 * k) for k, f in enumerate(truth)], axis=0)
    sets = search.f0_sets(x, 4, FS, search.SearchConfig(n_candidates=8, max_harmonics=16))
    err = min(np.abs(np.sort(s) - truth).max() for s in sets) / bin_hz
    assert err < 0.05, err
    # the peaks alone cannot: no subset of them has both close fundamentals
    peaks = harmonic.spectral_peaks(x, 8, FS)
    assert ((np.abs(peaks[:, None] - truth[None, 1:3]) < 0.1 * bin_hz).sum(axis=0) < 1).any()


def test_the_criterion_uses_the_same_noise_for_every_candidate_and_prefers_the_truth():
    T, freqs = 1024, [523.0, 97.0, 1880.0, 260.0]
    t = np.arange(T) / FS
    truth = torch.tensor(
        np.stack([0.9 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs)]), dtype=torch.float32
    )
    priors = [Bandpass(f, T) for f in freqs]
    swapped = truth[[1, 0, 2, 3]]
    c = search.criterion(priors, torch.stack([truth, swapped, truth]), sigmas=(0.02, 0.05), seed=3)
    assert c[0] == c[2] and c[0] < c[1] / 100  # paired noise; the truth lies in every prior's subspace
    with pytest.raises(ValueError, match="one column per prior"):
        search.criterion(priors, truth, sigmas=(0.02,))


def test_the_search_finds_the_sources_and_the_assignment_and_keeps_the_mix():
    T, freqs = 2048, [523.0, 97.0, 1880.0, 260.0]  # source k is a sine at freqs[k]
    t = np.arange(T) / FS
    truth = torch.tensor(
        np.stack([0.9 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs)]), dtype=torch.float32
    )
    mix = truth.mean(dim=0)
    priors = [Bandpass(f, T) for f in freqs]
    cfg = search.SearchConfig(n_candidates=6, max_harmonics=1, n_sets=2, n_screen=3, brief_steps=3, top_m=2)
    r = search.search_mix(mix, priors, cfg, refine_sigmas=(0.05, 0.01), refine_steps=3, seed=1)
    np.testing.assert_allclose(r.f0, freqs, atol=0.3)
    assert torch.allclose(r.sources.mean(dim=0), mix, atol=1e-5)  # exactly the mix
    assert (metrics.si_sdr(truth[None], r.sources[None]) > 20).all()
    assert r.candidate_f0.shape == (len(r.candidate_cost), 4) and len(r.finalists) == 2
    assert r.criterion == pytest.approx(r.final_cost.min()) and r.criterion <= r.brief_cost.min() * 10
    est, results = search.search_mixes(
        mix[None], priors, cfg, progress=False, refine_sigmas=(0.05, 0.01), refine_steps=3
    )
    assert est.shape == (1, 4, T) and len(results) == 1


def test_search_config_refuses_bad_knobs():
    with pytest.raises(ValueError, match="top_m"):
        search.SearchConfig(top_m=0)
    with pytest.raises(ValueError, match="criterion_sigmas"):
        search.SearchConfig(criterion_sigmas=())
    with pytest.raises(ValueError, match="one finite mix"):
        search.search_mix(torch.zeros(2, 64), [Bandpass(100.0, 64)] * 4)
