"""The scores that repair a raw likelihood (issue 24, sepnb.analysis.remedies) on cases with a known
answer, and the background models' perturbed inputs (sepnb.runs.loop.perturb_samples)."""

import math

import numpy as np
import pytest
import torch

from sepnb.analysis import remedies
from sepnb.data.select import run_windows
from sepnb.runs import catalogue, loop, store


class Gaussian:
    """An iid N(0, s^2) prior over waveforms, with its exact log density in nats per window."""

    def __init__(self, s: float):
        self.s = s

    def log_prob(self, x, sigma=None):
        x = x.double()
        return (-0.5 * (x / self.s) ** 2 - math.log(self.s * math.sqrt(2 * math.pi))).sum(-1)

    def sample(self, n, T, seed=0):
        g = torch.Generator().manual_seed(seed)
        return self.s * torch.randn((n, T), generator=g, dtype=torch.float64)


def test_likelihood_ratio_of_two_gaussians_is_the_closed_form():
    p, q = Gaussian(0.3), Gaussian(0.6)
    x = p.sample(5, 1000, seed=1)
    want = (math.log(0.6 / 0.3) - 0.5 * x**2 * (1 / 0.3**2 - 1 / 0.6**2)).mean(-1).numpy()
    np.testing.assert_allclose(remedies.likelihood_ratio(p, q, x), want, rtol=1e-10)
    # the ratio ranks the prior's own draws above the background's, where log p alone does not
    y = q.sample(5, 1000, seed=2)
    assert remedies.likelihood_ratio(p, q, x).min() > remedies.likelihood_ratio(p, q, y).max()


def test_typicality_of_the_priors_own_draws_is_near_zero():
    p = Gaussian(0.5)
    H = remedies.reference_entropy(p, p.sample(64, 2048, seed=3))
    assert H == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.5**2), abs=0.01)  # the entropy
    own = remedies.typicality(p, p.sample(16, 2048, seed=4), H)
    assert np.abs(own).max() < 0.06  # the per-sample NLL of a draw: std sqrt(1/2) / sqrt(T) = 0.016
    # zeros are far likelier than any draw, and atypical: the score that repairs what log p gets wrong
    zeros = torch.zeros((1, 2048), dtype=torch.float64)
    assert remedies.loglik(p, zeros)[0] > remedies.loglik(p, p.sample(16, 2048, seed=4)).max()
    assert remedies.typicality(p, zeros, H)[0] < own.min() - 0.4
    with pytest.raises(ValueError, match="finite"):
        remedies.typicality(p, zeros, float("nan"))


def test_flac_needs_almost_nothing_for_silence_and_sixteen_bits_for_white_noise():
    T = 16_000
    silence = remedies.flac_bits(torch.zeros(T)) / T
    g = torch.Generator().manual_seed(0)
    white = remedies.flac_bits(torch.rand((1, T), generator=g) * 2 - 1) / T
    assert silence[0] < 0.1 and white[0] > 15.5
    sine = remedies.flac_bits(0.5 * torch.sin(2 * math.pi * 440 * torch.arange(T) / 16_000)) / T
    assert silence[0] < sine[0] < white[0]
    with pytest.raises(ValueError, match="shape"):
        remedies.flac_bits(torch.zeros((2, 3, 4)))


def test_complexity_is_the_code_length_difference_in_bits():
    p = Gaussian(0.5)
    x = p.sample(3, 4096, seed=5).float()
    got = remedies.complexity(p, x)
    want = (remedies.loglik(p, x) + math.log(2 / 2**16)) / math.log(2) + remedies.flac_bits(x) / 4096
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a prior's own draws: it codes them about as well as FLAC does (within half a bit per sample);
    # white noise at full scale is coded far worse by a narrow prior than by FLAC
    assert np.abs(got).max() < 0.5
    narrow = Gaussian(0.1)
    own = remedies.complexity(narrow, narrow.sample(3, 4096, seed=7).float())
    g = torch.Generator().manual_seed(6)
    assert np.abs(own).max() < 0.5
    assert remedies.complexity(narrow, torch.rand((1, 4096), generator=g) * 2 - 1)[0] < own.min() - 10


def test_perturb_samples_replaces_the_given_share_by_uniform_draws():
    x = torch.full((8, 4096), 0.25)
    g = torch.Generator().manual_seed(0)
    y = loop.perturb_samples(x, 0.2, g)
    hit = y != 0.25
    assert 0.19 < hit.float().mean() < 0.21
    assert y[hit].min() >= -1 and y[hit].max() <= 1 and abs(float(y[hit].mean())) < 0.02
    assert loop.perturb_samples(x, 0.0, g) is x  # draws nothing, so earlier runs are unchanged


def test_a_background_run_differs_from_its_prior_only_by_the_perturbation():
    prior = catalogue.prior_config("smoke", "flow", "sine")
    bg = catalogue.background_config("smoke", "flow", "sine")
    assert bg.perturb == 0.2 and bg.replace(perturb=0.0) == prior
    assert store.run_dir(bg).name != store.run_dir(prior).name
    assert "perturb" not in prior.to_dict() and bg.to_dict()["perturb"] == 0.2
    x = loop._train_batch(bg, run_windows(bg, "train", bg.n_items), 0)
    clean = loop._train_batch(prior, run_windows(prior, "train", prior.n_items), 0)
    assert 0.1 < (x != clean).float().mean() < 0.3  # the same windows, a fifth of their samples replaced
    with pytest.raises(ValueError, match="probability"):
        prior.replace(perturb=1.0)


def test_all_scores_scores_the_prior_once_and_agrees_with_each_score():
    class Counting(Gaussian):
        calls = 0

        def log_prob(self, x, sigma=None):
            Counting.calls += 1
            return super().log_prob(x)

    p, q = Counting(0.4), Gaussian(0.8)
    x = p.sample(4, 1024, seed=8).float()
    H = remedies.reference_entropy(p, p.sample(8, 1024, seed=9))
    Counting.calls = 0
    got = remedies.all_scores(p, x, H, background=q)
    assert Counting.calls == 1 and list(got) == list(remedies.SCORES)
    np.testing.assert_allclose(got["typicality"], remedies.typicality(p, x, H))
    np.testing.assert_allclose(got["llr"], remedies.likelihood_ratio(p, q, x))
    np.testing.assert_allclose(got["complexity"], remedies.complexity(p, x))
    assert "llr" not in remedies.all_scores(p, x, H)
