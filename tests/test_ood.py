"""Evaluation code of the out-of-distribution chapters: AUC, cross-likelihood, sigma checks."""

import math

import numpy as np
import pytest
import torch

from sepnb import data, ood, train


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


class Gauss(torch.nn.Module):
    """A prior with a known density: iid N(mu, s^2) per sample."""

    def __init__(self, mu, s):
        super().__init__()
        self.mu, self.s = torch.nn.Parameter(torch.tensor(float(mu))), float(s)

    def log_prob(self, x):
        return (-0.5 * ((x - self.mu) / self.s) ** 2 - math.log(self.s) - 0.5 * math.log(2 * math.pi)).sum(1)


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
    cfg = train.RunConfig(family="wavenet", source="square", model=dict(n_layers=4, channels=16),
                          steps=60, batch=4, window=256, n_items=100, eval_every=30, eval_items=4,
                          ckpt_every=30, lr=3e-3)
    model, _ = train.get_prior(cfg, progress=False)
    own = data.ToyWindows("test", window=256, source="square", n_items=8).batch(np.arange(8))
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
    parent = train.prior_config("smoke", "flow", "sine")
    cfg = train.finetune_config(parent, 0.077, "smoke")
    assert cfg.parent == parent and cfg.sigma == 0.077 and cfg.key() != parent.key()
    assert cfg.steps == 10 and cfg.noise_mode == "fixed"


def test_toy_priors_covers_every_family_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path))
    got = train.toy_priors("smoke", families=("wavenet",), sigma=0.01, progress=False)
    assert sorted(got) == [("wavenet", s) for s in sorted(data.SOURCES)]
    model, history = got[("wavenet", "saw")]
    assert history["step"][-1] == 10  # the smoke profile's fine-tuning steps
    cfg = train.finetune_config(train.prior_config("smoke", "wavenet", "saw"), 0.01, "smoke")
    assert (train.run_dir(cfg) / "final.pt").exists() and (train.run_dir(cfg.parent) / "final.pt").exists()
