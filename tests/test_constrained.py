"""Langevin separation with the mix constraint kept exact: the constraint, a known posterior, guards."""

import numpy as np
import pytest
import torch
from gaussian import Gauss

from sepnb.separation import constrained, langevin

ALPHAS = [0.4, 0.3, 0.2, 0.1]
MU, VAR = [0.3, -0.2, 0.1, 0.0], [0.04, 0.06, 0.09, 0.05]
SIGMA = 1e-3  # one small level: the smoothed variances are VAR + 1e-6
MIXES = [0.3, -0.2, 0.0, 0.5]  # one constant mix per batch row; every time sample is an independent chain


class ExactGauss:
    """N(mu, v) with the exact score of its noisy version N(mu, v + sigma^2); no parameters."""

    def __init__(self, mu, v):
        self.mu, self.v = mu, v

    def score(self, x, sigma):
        return -(x - self.mu) / (self.v + sigma**2)


class AllGauss:
    """The same K Gaussians scored in one batched ``score_all`` call."""

    def __init__(self, mu, v):
        self.mu, self.v = torch.tensor(mu)[None, :, None], torch.tensor(v)[None, :, None]

    def __len__(self):
        return self.mu.shape[1]

    def score_all(self, x, sigma):
        return -(x - self.mu) / (self.v + sigma**2)


def restricted_posterior(mu, v, alphas, m):
    """Per time sample: mean [K] and covariance [K, K] of prod_k N(mu_k, v_k) on {sum_k a_k s_k = m}."""
    mu, v, a = map(np.asarray, (mu, v, alphas))
    S = np.sum(a**2 * v)
    return mu + v * a * (m - a @ mu) / S, np.diag(v) - np.outer(v * a, a * v) / S


def mix_error(s, mix, alphas):
    return (mix - (torch.tensor(alphas, dtype=s.dtype)[:, None] * s).sum(-2)).abs().max().item()


def gaussian_run(priors, T, seed=0):
    """300 steps at sigma = 1e-3 from the analytic mean (plus the sampler's 1e-3 * N(0, I)); eta = 0.02 * min(VAR).

    The variance starts at ~0, so it has to be built by the projected noise against the projected drift.
    """
    v = np.array(VAR) + SIGMA**2
    mix = torch.tensor(MIXES, dtype=torch.float32)[:, None].expand(-1, T).contiguous()
    means = np.stack([restricted_posterior(MU, v, ALPHAS, m)[0] for m in MIXES])  # [B, K]
    init = torch.tensor(means, dtype=torch.float32)[:, :, None].expand(-1, -1, T)
    # eta * largest restricted precision <= 0.02 (ULA inflates the variance by < 1 %); the slowest mode's
    # variance reaches 1 - (1 - 0.02 * 0.04 / 0.09)^600 > 99.5 % of its stationary value in 300 steps
    step = 0.02 * min(VAR) / SIGMA**2
    out = constrained.constrained_langevin(
        mix,
        priors,
        alphas=ALPHAS,
        sigmas=[SIGMA],
        steps_per_sigma=300,
        step=step,
        init=init,
        seed=seed,
        denoise_last=False,
        progress=False,
    )
    return out, means, restricted_posterior(MU, v, ALPHAS, 0.0)[1]


def check_moments(out, means, cov, mean_atol, var_rtol, cov_atol):
    out = out.double().numpy()
    np.testing.assert_allclose(out.mean(axis=2), means, atol=mean_atol)  # per mix and source
    resid = (out - means[:, :, None]).transpose(1, 0, 2).reshape(4, -1)  # the covariance is the same for every mix
    emp = resid @ resid.T / resid.shape[1]
    np.testing.assert_allclose(np.diag(emp), np.diag(cov), rtol=var_rtol)
    np.testing.assert_allclose(emp, cov, atol=cov_atol)  # cross-covariances: negative, from the constraint
    assert cov[0, 1] < -0.01 and emp[0, 1] < -0.01


def test_the_constraint_holds_after_every_step_even_under_a_stiff_prior():
    alphas = [0.1, 0.2, 0.3, 0.4]
    centres = torch.tensor([3.0, -2.0, 1.0, 4.0])[None, :, None]

    class Stiff:  # score up to ~3000 at the start: a single unprojected step would break the mix by far
        def __len__(self):
            return 4

        def score_all(self, x, sigma):
            return 1e3 * (centres - x)

    mix = torch.randn(2, 256, generator=torch.Generator().manual_seed(0))
    out, trace = constrained.constrained_langevin(
        mix,
        Stiff(),
        alphas=alphas,
        sigmas=[0.1, 0.03],
        steps_per_sigma=10,
        step=0.05,
        seed=0,
        progress=False,
        return_trace=True,
    )
    assert trace.max_violation < 1e-5 and mix_error(out, mix, alphas) < 1e-5
    assert max(mix_error(lv, mix, alphas) for lv in trace.levels) < 1e-5
    assert trace.levels.shape == (2, 2, 4, 256) and list(trace.sigma) == [0.1, 0.03] and trace.seconds > 0
    # the drift acted: the sources sit at the point of the constraint nearest the prior's centres
    target = constrained.project_mix(centres.expand(2, 4, 256), mix, torch.tensor(alphas))
    assert (out - target).abs().max() < 0.05


def test_exact_scores_reproduce_the_restricted_gaussian_posterior():
    # T = 2000: [B, K, T] stays under torch's 32768-element parallel grain (threads crawl on a busy 2-core CPU)
    out, means, cov = gaussian_run([ExactGauss(u, v) for u, v in zip(MU, VAR)], T=2000)
    assert out.shape == (4, 4, 2000) and mix_error(out, torch.tensor(MIXES)[:, None], ALPHAS) < 1e-5
    # standard errors over 8000 draws: mean < 0.007 per mix, variance ~1.6 %, covariance < 6e-4
    check_moments(out, means, cov, mean_atol=0.03, var_rtol=0.05, cov_atol=2e-3)


def test_autograd_log_prob_priors_agree_with_exact_scores():
    exact = [ExactGauss(u, v) for u, v in zip(MU, VAR)]
    models = [Gauss(u, np.sqrt(v)) for u, v in zip(MU, VAR)]  # log_prob only; its mu is a parameter
    out_exact, means, cov = gaussian_run(exact, T=1024)
    out_grad, _, _ = gaussian_run(models, T=1024)
    # same seed, same noise: the two differ only by the 1e-6 smoothing and float rounding
    assert (out_grad - out_exact).abs().max() < 1e-3
    check_moments(out_grad, means, cov, mean_atol=0.03, var_rtol=0.1, cov_atol=3e-3)
    assert all(p.mu.requires_grad and p.mu.grad is None and p.training for p in models)  # restored, untouched


def test_batched_score_all_matches_per_prior_scores_and_chunking():
    mix = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    kw = dict(alphas=ALPHAS, sigmas=[0.3, 0.1], steps_per_sigma=5, step=0.5, seed=4, progress=False)
    per_prior = constrained.constrained_langevin(mix, [ExactGauss(u, v) for u, v in zip(MU, VAR)], **kw)
    batched = constrained.constrained_langevin(mix, AllGauss(MU, VAR), chunk=2, **kw)
    torch.testing.assert_close(batched, per_prior, rtol=0, atol=1e-6)


def test_same_seed_same_result_and_other_seed_differs():
    priors = [Gauss(0.1, 0.3), Gauss(-0.1, 0.3)]
    mix = torch.zeros(3, 64)
    kw = dict(sigmas=[0.5, 0.1], steps_per_sigma=5, step=0.1, progress=False)
    a = constrained.constrained_langevin(mix, priors, seed=1, **kw)
    assert a.shape == (3, 2, 64)
    assert torch.equal(a, constrained.constrained_langevin(mix, priors, seed=1, **kw))
    assert not torch.equal(a, constrained.constrained_langevin(mix, priors, seed=2, **kw))
    one, trace = constrained.constrained_langevin(mix[0], priors, seed=1, return_trace=True, init="mix", **kw)
    assert one.shape == (2, 64) and trace.levels.shape == (2, 2, 64)


def test_divergence_is_a_clear_error_with_step_and_level():
    class Explode:
        def score(self, x, sigma):
            return 1e30 * x**3

    with pytest.raises(langevin.LangevinDiverged, match=r"step \d of 6 .*sigma=0.1"):
        constrained.constrained_langevin(
            torch.ones(1, 16),
            [Explode(), ExactGauss(0.0, 1.0)],
            sigmas=[0.1],
            steps_per_sigma=6,
            step=1.0,
            init="mix",
            progress=False,
        )


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(mix=torch.zeros(1, 2, 8)), "shape"),
        (dict(mix=torch.full((1, 8), float("nan"))), "NaN"),
        (dict(init=torch.zeros(1, 3, 8)), "init sources"),
        (dict(init="zeros"), "init"),
        (dict(alphas=[0.5]), "alphas"),
        (dict(alphas=[0.0, 0.0]), "not all zero"),
        (dict(step=-1.0), "step"),
        (dict(sigmas=[]), "sigmas"),
    ],
)
def test_bad_arguments_are_clear_errors(kw, match):
    args = dict(mix=torch.zeros(1, 8), priors=[Gauss(0, 1), Gauss(0, 1)], progress=False)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        constrained.constrained_langevin(**args)


def test_projections_keep_or_restore_the_mix():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    v = torch.randn(3, 4, 10, generator=g, dtype=torch.float64)
    mix = torch.randn(3, 10, generator=g, dtype=torch.float64)
    p = constrained.project_null(v, a)
    torch.testing.assert_close((a[:, None] * p).sum(1), torch.zeros(3, 10, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(constrained.project_null(p, a), p)  # idempotent
    assert abs((p * (v - p)).sum().item()) < 1e-10  # orthogonal: what it removes is perpendicular to what it keeps
    s = constrained.project_mix(v, mix, a)
    torch.testing.assert_close((a[:, None] * s).sum(1), mix, atol=1e-12, rtol=0)
    torch.testing.assert_close(constrained.project_mix(s, mix, a), s)
    # nearest point: the correction has no component along the constraint's directions
    torch.testing.assert_close(constrained.project_null(s - v, a), torch.zeros_like(v), atol=1e-12, rtol=0)
