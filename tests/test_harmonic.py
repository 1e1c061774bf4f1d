"""Chapter 07's harmonic start: peaks, harmonic combs, fundamentals refined, groups assigned by the priors."""

import numpy as np
import pytest
import torch

from sepnb.data import toy
from sepnb.separation import harmonic, metrics

FS = 16_000


def test_spectral_peaks_find_a_sine_to_a_fraction_of_a_bin():
    t = np.arange(2048) / FS
    x = np.sin(2 * np.pi * 441.3 * t) + 0.5 * np.sin(2 * np.pi * 1000.0 * t + 1.0)
    peaks = harmonic.spectral_peaks(x, 2, FS)
    assert abs(peaks[0] - 441.3) < 0.5 and abs(peaks[1] - 1000.0) < 0.5  # strongest first; a bin is 7.8 Hz


def test_harmonic_frequencies_fold_at_nyquist():
    fr = harmonic.harmonic_frequencies(3000.0, FS, max_harmonics=4)
    np.testing.assert_allclose(fr, [3000.0, 6000.0, 7000.0, 4000.0])  # 9000 -> 7000, 12000 -> 4000


def test_a_comb_at_the_true_fundamental_reconstructs_an_aliased_square_wave():
    x = toy.waveform("square", 0.1 + 1234.5 * np.arange(2048) / FS)  # naive: aliases above 8 kHz
    parts, res = harmonic.harmonic_fit(x, [1234.5], FS, max_harmonics=64)
    # the comb folds 25 harmonics (up to 2 fs); the square's energy beyond them is 8/pi^2 sum 1/h^2 ~ 1.6 %
    assert np.sum(res**2) / np.sum(x**2) < 0.02
    assert np.allclose(parts[0] + res, x)
    _, off = harmonic.harmonic_fit(x, [1239.5], FS, max_harmonics=64)  # 5 Hz off: most of the wave is missed
    assert np.sum(off**2) / np.sum(x**2) > 0.3


def test_the_fast_comb_fit_is_the_least_squares_fit_with_folded_and_coinciding_harmonics():
    """CombFit (closed-form Gram matrix, columns from powers of one exponential) against harmonic_fit
    (lstsq on explicit cosines and sines): the same parts and residual, where harmonics fold at the
    Nyquist frequency (3000 Hz), coincide (200:400, 440:880:1760) or lie a quarter bin apart."""
    x = toy.mix(toy.render(toy.toy_params([5], seed=1, split="test"), 2048))[0].double().numpy()
    bin_hz = FS / len(x)
    for H in (8, 32):
        combs = harmonic.CombFit(x, FS, H, cache=True)
        for f0s in ([310.0, 1003.0, 77.7, 3000.0], [200.0, 400.0], [440.0, 440.0 + 0.25 * bin_hz, 880.0, 1760.0]):
            parts, res = harmonic.harmonic_fit(x, f0s, FS, H)
            fast_parts, fast_res = combs.fit(f0s)
            np.testing.assert_allclose(fast_parts, parts, atol=1e-9 * np.abs(x).max())
            np.testing.assert_allclose(fast_res, res, atol=1e-9 * np.abs(x).max())
            assert combs.residual_energy(f0s) == pytest.approx(float(res @ res), rel=1e-8)
    # the closed-form Gram block is the brute-force A^T A of the columns
    cols_a, cols_b = combs.comb(310.0)[1], combs.comb(3000.0)[1]
    np.testing.assert_allclose(combs.gram(310.0, 3000.0), cols_a.T @ cols_b, atol=1e-8)
    np.testing.assert_allclose(combs.gram(310.0, 310.0), cols_a.T @ cols_a, atol=1e-8)
    t = np.arange(len(x)) / FS  # and the columns are the cosines and sines at the folded frequencies
    fr = harmonic.harmonic_frequencies(3000.0, FS, 32)
    np.testing.assert_allclose(
        cols_b,
        np.concatenate([np.cos(2 * np.pi * np.outer(t, fr)), np.sin(2 * np.pi * np.outer(t, fr))], axis=1),
        atol=1e-9,
    )
    with pytest.raises(ValueError, match="one signal"):
        harmonic.CombFit(np.zeros((2, 8)), FS)


def test_refine_f0_moves_a_wrong_fundamental_to_the_true_one():
    x = toy.waveform("saw", 300.0 * np.arange(2048) / FS)
    assert abs(harmonic.refine_f0(x, [300.4], 0, 1.0, FS, max_harmonics=16)[0] - 300.0) < 0.05


class Bandpass(torch.nn.Module):
    """A stand-in prior that only knows its frequency: D(x) = x projected onto sin/cos at f (all levels)."""

    def __init__(self, f, T):
        super().__init__()
        t = torch.arange(T, dtype=torch.float64) / FS
        basis = torch.stack([torch.cos(2 * np.pi * f * t), torch.sin(2 * np.pi * f * t)])  # [2, T]
        q, _ = torch.linalg.qr(basis.T)
        self.register_buffer("q", q.float())

    def forward(self, x, sigma):
        return (x @ self.q) @ self.q.T


def test_group_assigns_each_group_to_the_prior_that_explains_it_and_keeps_the_mix():
    T, freqs = 2048, [523.0, 97.0, 1880.0, 260.0]  # source k is a sine at freqs[k]
    t = np.arange(T) / FS
    truth = np.stack([0.9 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs)])
    mix = truth.mean(axis=0)
    priors = [Bandpass(f, T) for f in freqs]
    g = harmonic.group(mix, priors, np.full(4, 0.25), FS, n_candidates=6, max_harmonics=1)
    np.testing.assert_allclose(g.f0, freqs, atol=0.3)  # fundamentals found and given to the right source
    assert np.allclose(g.sources.mean(axis=0), mix, atol=1e-8)  # the decomposition adds up to the mix
    si = metrics.si_sdr(torch.tensor(truth)[None], torch.tensor(g.sources)[None])
    assert (si > 30).all(), si


def test_harmonic_start_checks_its_input():
    priors = [Bandpass(100.0 * (k + 1), 64) for k in range(4)]
    with pytest.raises(ValueError, match="batch, time"):
        harmonic.harmonic_start(torch.zeros(64), priors, progress=False)
    with pytest.raises(ValueError, match="n_candidates"):
        harmonic.harmonic_start(torch.zeros(1, 64), priors, n_candidates=3, progress=False)
    with pytest.raises(ValueError, match="silent"):
        harmonic.harmonic_start(torch.zeros(1, 64), priors, progress=False)


def _two_sawtooth_like_combs(f1, f2, T=2048, H=8):
    t = np.arange(T) / FS
    rng = np.random.default_rng(0)
    x = np.zeros(T)
    for f in (f1, f2):
        for h in range(1, H + 1):
            x += (0.5 / h) * np.cos(2 * np.pi * h * f * t + rng.uniform(0, 2 * np.pi))
    return x


def test_the_joint_fit_resolves_fundamentals_closer_than_one_bin():
    """Issue 23's sub-bin fit: two combs 3 Hz apart (0.38 of a 7.8 Hz bin) show as one peak; started
    from the peak split in two, the joint fit finds both within 0.05 Hz and explains the mix."""
    f1, f2 = 300.0, 303.0
    x = _two_sawtooth_like_combs(f1, f2)
    peak = harmonic.spectral_peaks(x, 1, FS)[0]
    assert abs(peak - 301.5) < 2.0  # one peak between them
    start = [peak - 0.25 * FS / len(x), peak + 0.25 * FS / len(x)]
    one_at_a_time = start
    for j in range(2):
        one_at_a_time = harmonic.refine_f0(x, one_at_a_time, j, 0.5, FS, max_harmonics=8)
    f, cost = harmonic.fit_f0s_jointly(x, start, FS, max_harmonics=8)
    assert np.abs(np.sort(f) - [f1, f2]).max() < 0.05
    assert cost < 1e-6 * float(x @ x)
    _, res = harmonic.harmonic_fit(x, one_at_a_time, FS, max_harmonics=8)
    assert cost < 1e-3 * float(res @ res)  # the coordinate refinement within +-0.5 Hz does not get there
    with pytest.raises(ValueError, match="positive"):
        harmonic.fit_f0s_jointly(x, [0.0, 300.0], FS)


def test_f0_proposals_split_peaks_and_add_integer_ratios():
    bin_hz = FS / 2048
    f = harmonic.f0_proposals([300.0, 1000.0], FS, 2048, splits=(0.5,), ratios=(0.5, 2))
    want = sorted(
        [
            300,
            1000,
            300 - 0.5 * bin_hz,
            300 + 0.5 * bin_hz,
            1000 - 0.5 * bin_hz,
            1000 + 0.5 * bin_hz,
            150,
            500,
            600,
            2000,
        ]
    )
    np.testing.assert_allclose(f, want)
    assert len(harmonic.f0_proposals([300.0, 300.0001], FS, 2048, splits=())) == 1  # duplicates merge
    with pytest.raises(ValueError, match="positive"):
        harmonic.f0_proposals([-1.0], FS, 2048)


def test_the_hand_written_assignment_recognises_the_four_waveforms_by_their_harmonics():
    """Issue 23's baseline without a learned prior: the Fourier-series templates tell the four toy
    waveforms apart from their comb fits (fundamentals low enough that no harmonic folds)."""
    T, f0s = 2048, [110.0, 173.0, 251.0, 331.0]
    t = np.arange(T) / FS
    sources = ["saw", "triangle", "sine", "square"]  # a shuffled order: source k is at f0s[k]
    parts = np.stack([toy.waveform(s, f * t + 0.1 * k) for k, (s, f) in enumerate(zip(sources, f0s))])
    amps = harmonic.harmonic_amplitudes(parts[3], f0s[3], FS)  # the square: odd harmonics 1/h
    np.testing.assert_allclose(amps[[0, 2, 4]] / amps[0], [1, 1 / 3, 1 / 5], atol=0.01)
    assert amps[1] < 0.01 * amps[0]
    perm = harmonic.assign_by_amplitudes(parts, f0s, list(toy.SOURCES), FS)
    # perm[k]: the group given to toy.SOURCES[k]
    assert [sources[g] for g in perm] == list(toy.SOURCES)
