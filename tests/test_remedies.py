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


def _cross(values, names=("a", "b")):
    from sepnb.analysis.ood import CrossLikelihood

    return CrossLikelihood(np.asarray(values, dtype=float), list(names), list(names))


def test_cross_scores_are_each_score_of_the_same_windows_and_feed_chapter_04s_aucs():
    rng = np.random.default_rng(0)
    T, n = 64, 20
    ll = _cross(rng.normal(size=(2, 2, n)))
    bg = _cross(rng.normal(size=(2, 2, n)))
    bits = {"a": rng.integers(100, 2000, n), "b": rng.integers(100, 2000, n)}
    got = remedies.cross_scores(ll, bits, T, {"a": 0.3, "b": -0.2}, background=bg)
    assert list(got) == list(remedies.SCORES)
    np.testing.assert_allclose(got["typicality"].values[1, 0], -np.abs(-ll.values[1, 0] + 0.2))
    np.testing.assert_allclose(got["llr"].values, ll.values - bg.values)
    np.testing.assert_allclose(got["complexity"].values[0, 1], remedies.complexity_from(ll.values[0, 1], bits["b"], T))
    assert got["llr"].aucs().shape == (2,)
    assert "llr" not in remedies.cross_scores(ll, bits, T, {"a": 0.3, "b": -0.2})
    with pytest.raises(ValueError, match="background"):
        remedies.cross_scores(ll, bits, T, {"a": 0, "b": 0}, background=_cross(bg.values, ("b", "a")))


def test_a_score_that_separates_the_classes_has_auc_one_at_every_level_and_its_minimum_is_the_worst():
    n = 30
    own, other = np.full(n, 1.0), np.full(n, -1.0)
    perfect = _cross([[own, other], [other, own]])
    coin = _cross(np.random.default_rng(1).normal(size=(2, 2, n)))
    iv, means = remedies.min_auc_over_levels([perfect, coin, perfect])
    assert means[0] == means[2] == 1.0
    assert iv.value == pytest.approx(coin.aucs().mean()) and iv.low <= iv.value <= iv.high
    with pytest.raises(ValueError, match="same test items"):
        remedies.min_auc_over_levels([perfect, _cross(np.zeros((2, 2, n + 1)))])


def test_operating_point_accepts_95_percent_of_the_reference_and_probes_below_it_are_rejected():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(4, 1000))
    t = remedies.operating_points(ref)
    assert np.allclose((ref >= t[:, None]).mean(1), 0.95, atol=0.002)
    far_below = np.full((4, 32), -10.0)
    iv = remedies.accepted_fraction(far_below, t)
    assert iv.value == 0 and iv.low == 0 and 0.05 < iv.high < 0.15  # exact: 0 of 32 reaches 0.109
    half = np.where(np.arange(32) % 2 == 0, 10.0, -10.0)[None].repeat(4, 0)
    assert remedies.accepted_fraction(half, t).value == pytest.approx(0.5)
    nan = np.full((4, 8), np.nan)  # a score that could not be computed accepts nothing
    assert remedies.accepted_fraction(nan, t).value == 0


def test_best_remedy_is_the_highest_minimum_ties_to_the_earlier_score():
    assert remedies.best_remedy({"typicality": 0.7, "llr": 0.9, "complexity": 0.8}) == "llr"
    assert remedies.best_remedy({"typicality": 0.9, "llr": 0.9, "complexity": 0.9}) == "typicality"
    with pytest.raises(ValueError, match="complexity"):
        remedies.best_remedy({"typicality": 0.9, "llr": 0.9})


def test_the_likelihood_ratio_as_a_prior_has_the_closed_form_gradient():
    p, q = Gaussian(0.3), Gaussian(1.0)
    x = torch.linspace(-0.9, 0.9, 16, dtype=torch.float64)[None].requires_grad_(True)
    lr = remedies.LikelihoodRatio(p, q)
    (g,) = torch.autograd.grad(lr.log_prob(x, sigma=None).sum(), x)
    np.testing.assert_allclose(g.numpy(), (-x / 0.3**2 + x / 1.0).detach().numpy(), rtol=1e-10)
    assert lr.modules() == []


def test_training_windows_are_training_items_the_priors_never_saw():
    a = remedies.training_windows("smoke", remedies.REFERENCE_ITEMS[:3])
    b = remedies.training_windows("smoke", remedies.REFERENCE_ITEMS[:3])
    assert a.shape[:2] == (3, 4) and torch.equal(a, b)
    assert not torch.equal(a, remedies.training_windows("smoke", remedies.VALIDATION_ITEMS[:3]))
    with pytest.raises(ValueError, match="training-split items >= 5000"):
        remedies.training_windows("smoke", range(10))


def test_the_study_of_one_family_end_to_end_at_toy_sizes(tmp_path, monkeypatch):
    """Priors and their backgrounds trained through a fresh store at two levels, every score on every
    window set, the entry the scorecard judges, chapter 04's numbers reused only where they are these."""
    from sepnb.analysis import ood, scorecard
    from sepnb.core import profiles

    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    P = profiles.get("smoke").replace(sigmas=(0.359,))
    outside = {"speech stand-in": torch.sin(torch.linspace(0, 300, P.ood_length))[None].repeat(3, 1)}
    e = remedies.study(P, "flow", outside=outside, progress=False)
    assert e["levels"] == [0.0, 0.359] and e["best_remedy"] in remedies.REMEDIES
    assert e["chapter04_reuse"] == {"reused": 0, "recomputed": 3}
    for key in ("noisefree_auc", "conditioned_min_auc", "probes_accepted_max", "outside_accepted"):
        assert set(e[key]) == set(remedies.SCORES), key
        for iv in e[key].values():
            assert iv["low"] <= iv["value"] <= iv["high"], (key, iv)
    assert all(len(v) == 2 for v in e["probes_accepted"].values())
    # chapter 04's numbers of the same priors on the same windows are reused; another store's are not
    trained = {s: m for (f, s), (m, _) in runs_toy_priors(P).items()}
    fig3 = ood.fig3_windows(P)
    c3 = ood.cross_likelihood(trained, {s: fig3[:, j] for j, s in enumerate(trained)})
    grid = np.zeros((2, 2, 4, 4, P.ood_items))
    grid[0, 0] = c3.values[..., : P.ood_items]
    r04 = {"figure3_per_item": {"flow": c3.values.tolist()}, "figure4_per_item": {"flow": grid.tolist()}}
    again = remedies.study(P, "flow", r04=r04, progress=False)
    assert again["chapter04_reuse"] == {"reused": 2, "recomputed": 1}  # level 0.359's grid cell is zeros here
    assert again["noisefree_auc"] == e["noisefree_auc"] and again["outside_accepted"] is None
    rows = scorecard.remedy_rows({"profile": "smoke", "families": {"flow": e}})
    assert rows["remedy_speech_rejected"]["flow"][e["best_remedy"]]["verdict"] == "not tested"  # smoke


def runs_toy_priors(P):
    from sepnb.runs import catalogue

    return catalogue.toy_priors(P, families=("flow",), progress=False)
