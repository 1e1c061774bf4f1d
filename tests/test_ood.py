"""Evaluation code of the out-of-distribution chapters: AUC, cross-likelihood, sigma checks."""

import math

import numpy as np
import pytest
import torch
from gaussian import Gauss

from sepnb.analysis import ood
from sepnb.data import toy
from sepnb.runs import catalogue, config, loop
from sepnb.runs import store as runstore


def test_auc_hand_checked_case():
    # pairs (pos, neg): 3>1, 3>2, 3=3 (1/2), 2>1, 2=2 (1/2), 2<3 -> (1+1+.5+1+.5+0)/6 = 4/6
    assert ood.auc([3, 2], [1, 2, 3]) == pytest.approx(4 / 6)
    assert ood.auc([5, 6], [1, 2]) == 1.0 and ood.auc([1], [2]) == 0.0
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 300), rng.normal(0, 1, 300)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    assert ood.auc(a, b) == pytest.approx(brute)
    with pytest.raises(ValueError):
        ood.auc([], [1.0])


def test_cross_likelihood_shapes_labels_and_values():
    priors = {"a": Gauss(0.0, 0.1), "b": Gauss(1.0, 0.1)}
    x = {"a": torch.zeros(5, 8), "b": torch.ones(5, 8), "c": torch.full((5, 8), 0.5)}
    r = ood.cross_likelihood(priors, x, batch=2)
    assert r.values.shape == (2, 3, 5) and r.priors == ["a", "b"] and r.data == ["a", "b", "c"]
    expected_own = -math.log(0.1) - 0.5 * math.log(2 * math.pi)
    assert r.mean[0, 0] == pytest.approx(expected_own) and r.mean[1, 1] == pytest.approx(expected_own)
    assert r.mean[0, 1] == pytest.approx(expected_own - 50.0)
    assert list(r.aucs()) == [1.0, 1.0]
    assert list(r.own_prior_ranks_first()) == [True, True]
    js = r.to_json()
    assert js["rows_prior"] == ["a", "b"] and np.isfinite(js["mean_loglik_per_sample"]).all()


def test_prior_trained_on_one_class_scores_it_above_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path))
    cfg = config.RunConfig(
        family="wavenet",
        source="square",
        model=dict(n_layers=4, channels=16),
        steps=60,
        batch=4,
        window=256,
        n_items=100,
        eval_every=30,
        eval_items=4,
        ckpt_every=30,
        lr=3e-3,
    )
    model, _ = loop.get_prior(cfg, progress=False)
    own = toy.ToyWindows("test", window=256, source="square", n_items=8).batch(np.arange(8))
    noise = 0.5 * torch.randn(8, 256, generator=torch.Generator().manual_seed(0))
    r = ood.cross_likelihood({"square": model}, {"square": own, "noise": noise.clamp(-1, 1)})
    assert r.mean[0, 0] > r.mean[0, 1] + 1.0
    assert r.aucs()[0] == 1.0


@pytest.mark.parametrize("bad", [-0.1, 0, 0.0, float("nan"), float("inf"), "0.359", None, True])
def test_bad_sigma_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="sigma"):
        ood.check_sigma(bad)


def test_good_sigma():
    assert ood.check_sigma(0.359) == 0.359 and ood.check_sigma(1) == 1.0
    assert ood.check_sigma(0, allow_zero=True) == 0.0


def test_finetune_config_starts_from_parent():
    parent = catalogue.prior_config("smoke", "flow", "sine")
    cfg = catalogue.finetune_config(parent, 0.077, "smoke")
    assert cfg.parent == parent and cfg.sigma == 0.077 and cfg.key() != parent.key()
    assert cfg.steps == 10 and cfg.noise_mode == "fixed"


def test_toy_priors_covers_every_family_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path))
    got = catalogue.toy_priors("smoke", families=("wavenet",), sigma=0.01, progress=False)
    assert sorted(got) == [("wavenet", s) for s in sorted(toy.SOURCES)]
    model, history = got[("wavenet", "saw")]
    assert history["step"][-1] == 10  # the smoke profile's fine-tuning steps
    cfg = catalogue.finetune_config(catalogue.prior_config("smoke", "wavenet", "saw"), 0.01, "smoke")
    assert (runstore.run_dir(cfg) / "final.pt").exists() and (runstore.run_dir(cfg.parent) / "final.pt").exists()


def test_add_test_noise_one_draw_scaled_and_clipped():
    x = torch.zeros(3, 2, 50)
    a, b = ood.add_test_noise(x, 0.01, seed=4), ood.add_test_noise(x, 0.02, seed=4)
    assert torch.allclose(b, 2 * a)  # the same draw, scaled (no clipping at this level)
    assert not torch.equal(a, ood.add_test_noise(x, 0.01, seed=5))
    assert ood.add_test_noise(x, 0.0) is x
    assert ood.add_test_noise(torch.full((2, 1, 500), 0.9), 1.0).abs().max() <= 1.0
    with pytest.raises(ValueError, match="sigma"):
        ood.add_test_noise(x, -0.1)


def test_noise_grid_matches_cell_by_cell_and_analytic_gaussians():
    # priors: N(mu_source, s^2) with s growing with the prior's noise level, like a fine-tuned prior
    mus = {"lo": -0.5, "hi": 0.5}
    prior_sets = {
        0.0: {k: Gauss(m, 0.05) for k, m in mus.items()},
        0.3: {k: Gauss(m, math.hypot(0.05, 0.3)) for k, m in mus.items()},
    }
    windows = torch.stack([torch.full((6, 40), -0.5), torch.full((6, 40), 0.5)], dim=1)  # [n, 2, T]
    grid = ood.noise_grid(prior_sets, windows, ["lo", "hi"], test_sigmas=[0.0, 0.3], seed=1, batch=4, progress=False)
    assert grid.values.shape == (2, 2, 2, 2, 6)
    assert grid.prior_sigmas == [0.0, 0.3] and grid.test_sigmas == [0.0, 0.3]
    for a, ps in enumerate(prior_sets):
        for b, ts in enumerate(grid.test_sigmas):
            noisy = ood.add_test_noise(windows, ts, seed=1)
            ref = ood.cross_likelihood(prior_sets[ps], {"lo": noisy[:, 0], "hi": noisy[:, 1]})
            np.testing.assert_allclose(grid.cell(a, b).values, ref.values, rtol=1e-12)
    m = grid.mean
    # clean data: the narrow priors score their own source at the analytic density of N(mu, 0.05^2) at mu
    assert m[0, 0, 0, 0] == pytest.approx(-math.log(0.05) - 0.5 * math.log(2 * math.pi))
    # noisy data is far more likely under the prior that was widened for it than under the narrow one
    assert m[1, 1, 0, 0] > m[0, 1, 0, 0] + 5
    assert grid.aucs().shape == (2, 2, 2) and grid.own_prior_ranks_first().shape == (2, 2, 2)
    js = grid.to_json()
    assert js["axes"][:2] == ["prior_sigma", "test_sigma"] and np.isfinite(js["mean_loglik_per_sample"]).all()
    with pytest.raises(ValueError, match="windows must be"):
        ood.noise_grid(prior_sets, windows[:, :1], ["lo", "hi"], [0.0], progress=False)


def test_auc_bootstrap_draws_match_the_rank_auc_and_resample_items():
    from sepnb.analysis.stats import resample_indices

    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 3, 40))
    values[0, 0] += 1.0  # prior 0 prefers its own data a little
    values[1, 1, :5] = values[1, 0, :5]  # ties between own and other examples
    r = ood.CrossLikelihood(values, ["a", "b"], ["a", "b", "c"])
    identity = np.arange(40)[None]
    np.testing.assert_allclose(r.auc_draws(identity)[0], r.aucs(), rtol=0, atol=1e-12)
    idx = resample_indices(40, 3, seed=1)
    for row in range(3):  # each draw is the AUC of the resampled items, all windows of an item together
        sub = ood.CrossLikelihood(values[..., idx[row]], ["a", "b"], ["a", "b", "c"])
        np.testing.assert_allclose(r.auc_draws(idx)[row], sub.aucs(), rtol=0, atol=1e-12)
    per_prior, mean = r.auc_intervals(resamples=500)
    assert mean.low <= mean.value <= mean.high and mean.n_clusters == 40
    assert per_prior[0].low > 0.5 and per_prior[0].high < 1.0
