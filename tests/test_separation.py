"""Langevin separation (chapter 06): a case with a known posterior, the schedule, guards, models."""

import math

import numpy as np
import pytest
import torch
from gaussian import Gauss

from sepnb.priors import flowavenet, wavenet
from sepnb.separation import langevin


def gaussian_posterior(mu, s, alphas, gamma, m):
    """Per time sample: N(mean, cov) of (s_1..s_K) given m = sum a_k s_k + N(0, gamma^2)."""
    mu, s, a = map(np.asarray, (mu, s, alphas))
    precision = np.diag(1 / s**2) + np.outer(a, a) / gamma**2
    cov = np.linalg.inv(precision)
    return cov @ (mu / s**2 + a * m / gamma**2), cov


def test_sgld_reproduces_the_analytic_gaussian_posterior():
    mu, s, alphas, gamma, m = [0.4, -0.3, 0.1], [0.3, 0.2, 0.5], [0.5, 0.3, 0.2], 0.1, 0.25
    priors = [Gauss(u, v) for u, v in zip(mu, s)]
    mix = torch.full((2, 1500), m, dtype=torch.float64)  # every time sample is an independent chain
    priors = [p.double() for p in priors]
    out, trace = langevin.separate(
        mix,
        priors,
        alphas=alphas,
        sigmas=[1.0],
        steps_per_sigma=1200,
        delta=2e-3,
        gamma=gamma,
        seed=3,
        progress=False,
        return_trace=True,
    )
    mean, cov = gaussian_posterior(mu, s, alphas, gamma, m)
    samples = out.permute(0, 2, 1).reshape(-1, 3).numpy()  # one draw per chain after 1200 steps
    # mean: standard error ~ sqrt(var / 3000) < 0.006; discretisation bias of ULA is O(eta)
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.02)
    # covariance: ULA inflates it by ~eta * lambda / 2 (< 5 % here); sampling error ~ 5 %
    np.testing.assert_allclose(np.cov(samples.T), cov, rtol=0.15, atol=2e-3)
    # the mix term pulls g(s) onto m: the residual ends near the posterior's, far below the start
    assert trace.mix_error[-1].mean() < 0.2 * trace.mix_error[0].mean()
    assert trace.log_prior.shape == (1200, 2, 3) and trace.sigma.shape == (1200,)


def test_same_seed_same_result_and_other_seed_differs():
    priors = [Gauss(0.1, 0.3), Gauss(-0.1, 0.3)]
    mix = torch.zeros(3, 64)
    kw = dict(sigmas=[0.5, 0.1], steps_per_sigma=5, delta=1e-3, progress=False)
    a = langevin.separate(mix, priors, seed=1, **kw)
    assert a.shape == (3, 2, 64)
    assert torch.equal(a, langevin.separate(mix, priors, seed=1, **kw))
    assert not torch.equal(a, langevin.separate(mix, priors, seed=2, **kw))
    assert langevin.separate(mix[0], priors, seed=1, **kw).shape == (2, 64)


def test_annealed_schedule_matches_its_formula():
    sig = langevin.annealed_sigmas(1.0, 0.01, 10)
    assert len(sig) == 10 and sig[0] == pytest.approx(1.0) and sig[-1] == pytest.approx(0.01)
    np.testing.assert_allclose(sig[1:] / sig[:-1], (0.01 / 1.0) ** (1 / 9))
    eta = langevin.step_sizes(sig, delta=3e-5)
    np.testing.assert_allclose(eta, 3e-5 * sig**2 / 0.01**2)
    assert eta[-1] == pytest.approx(3e-5) and eta[0] == pytest.approx(0.3)
    assert list(langevin.annealed_sigmas(1.0, 0.05, 1)) == [0.05]
    with pytest.raises(ValueError, match="below"):
        langevin.annealed_sigmas(0.01, 1.0, 3)
    with pytest.raises(ValueError, match="positive"):
        langevin.step_sizes([0.1, 0.0])


def test_gamma_ties_to_sigma_per_level():
    # flat priors: only the mix term acts; with gamma = sigma the pull per step is eta / sigma^2 = delta / sigma_L^2
    class Flat(torch.nn.Module):
        def log_prob(self, x):
            return 0.0 * x.sum(1)

    mix = torch.ones(1, 4000)
    out, tr = langevin.separate(
        mix,
        [Flat(), Flat()],
        sigmas=[0.2, 0.1],
        steps_per_sigma=200,
        delta=1e-3,
        init="mix",
        seed=0,
        progress=False,
        return_trace=True,
    )
    assert tr.sigma[0] == 0.2 and tr.sigma[-1] == 0.1
    # stationary residual variance of the mix direction is about gamma^2 * sum(a^2) / ... > 0 and small
    assert 0 < tr.mix_error[-1, 0] < 0.05


def test_divergence_is_a_clear_error_with_step_and_level():
    class Explode(torch.nn.Module):
        def log_prob(self, x):
            return (1e30 * x**4).sum(1)

    with pytest.raises(langevin.LangevinDiverged, match=r"step \d+ of 6 .*sigma=0.1"):
        langevin.separate(torch.zeros(1, 16), [Explode()], sigmas=[0.1], steps_per_sigma=6, delta=1e-2, progress=False)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(mix=torch.full((1, 8), float("nan"))), "NaN"),
        (dict(alphas=[0.5]), "alphas"),
        (dict(init="zeros"), "init"),
        (dict(gamma=-1.0), "gamma"),
        (dict(sigmas=[]), "sigmas"),
        (dict(mix=torch.zeros(1, 2, 8)), "shape"),
    ],
)
def test_bad_arguments_are_clear_errors(kw, match):
    args = dict(mix=torch.zeros(1, 8), priors=[Gauss(0, 1), Gauss(0, 1)], progress=False)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        langevin.separate(**args)


def test_noise_conditioned_prior_picks_the_nearest_level():
    p = langevin.NoiseConditionedPrior({0: Gauss(0, 0.1), 0.01: Gauss(0, 0.2), 0.129: Gauss(0, 0.3)})
    assert p.level(None) == 0 and p.level(0.012) == 0.01 and p.level(0.1) == 0.129
    with pytest.raises(KeyError, match="near"):
        p.level(0.5)
    x = torch.zeros(1, 10)
    assert p.log_prob(x, sigma=0.129).item() == pytest.approx(Gauss(0, 0.3).log_prob(x).item())
    # separate() passes the level to such priors
    out = langevin.separate(torch.zeros(1, 8), [p, p], sigmas=[0.129, 0.01], steps_per_sigma=2, progress=False)
    assert out.shape == (1, 2, 8)


def test_wavenet_smooth_log_prob_matches_exact_at_bin_centres_and_has_gradients():
    torch.manual_seed(0)
    net = wavenet.WaveNet(n_layers=3, channels=8)
    c = torch.randint(0, 256, (2, 50))
    x = wavenet.mu_law_decode(c)  # bin centres
    torch.testing.assert_close(net.smooth_log_prob(x), net.log_prob(x), rtol=1e-4, atol=1e-3)
    xr = (0.3 * torch.randn(2, 50)).clamp(-1, 1).requires_grad_(True)
    (g,) = torch.autograd.grad(net.smooth_log_prob(xr).sum(), xr)
    assert torch.isfinite(g).all() and (g.abs() > 0).float().mean() > 0.9
    assert torch.autograd.grad(net.log_prob(xr).sum(), xr, allow_unused=True)[0] is None  # exact: no gradient


def test_separate_runs_with_both_model_families_and_leaves_them_as_they_were():
    torch.manual_seed(0)
    flow = flowavenet.FloWaveNet(n_blocks=2, n_flows=2, n_layers=2, channels=8)
    net = wavenet.WaveNet(n_layers=3, channels=8)
    flow.log_prob(0.1 * torch.randn(2, 64))  # data-dependent init
    flow.train()
    out, tr = langevin.separate(
        0.1 * torch.randn(2, 64), [flow, net], sigmas=[0.1], steps_per_sigma=3, progress=False, return_trace=True
    )
    assert out.shape == (2, 2, 64) and np.isfinite(tr.log_prior).all()
    assert flow.training and all(p.requires_grad for p in flow.parameters())


def test_si_sdr_against_a_hand_computed_case():
    from sepnb.separation import metrics

    t = torch.arange(1000, dtype=torch.float64)
    r = torch.sin(0.05 * t)
    e = torch.cos(0.05 * t) * 0.1  # orthogonal to r over whole periods, energy 1/100 of r's
    q = torch.sign(torch.sin(0.13 * t + 1.0))  # nearly uncorrelated with r
    ref = torch.stack([r, q])[None]
    est = torch.stack([3 * r + e, q])[None]  # the scale 3 does not matter
    got = metrics.si_sdr(ref, est)
    alpha = (est[0, 0] @ r) / (r @ r)
    by_hand = 10 * math.log10((alpha * r).pow(2).sum() / (est[0, 0] - alpha * r).pow(2).sum())
    assert got[0, 0].item() == pytest.approx(by_hand) and got[0, 0].item() == pytest.approx(
        10 * math.log10(900), abs=0.05
    )
    assert got[0, 1].item() > 100  # perfect estimate
    # swapped estimates: low in the given order, recovered by the best permutation
    swapped = est.flip(1)
    assert metrics.si_sdr(ref, swapped).max() < -10
    np.testing.assert_allclose(metrics.si_sdr(ref, swapped, permute=True).numpy(), got.numpy(), rtol=1e-6)
    bss = metrics.bss_eval(ref, swapped, permute=True)
    assert bss["perm"].tolist() == [[1, 0]] and (bss["sdr"] > 15).all()
    with pytest.raises(ValueError, match="silent"):
        metrics.si_sdr(torch.zeros(1, 2, 10), torch.ones(1, 2, 10))


def test_clip_projects_every_iterate():
    class Push(torch.nn.Module):  # a prior that pulls far outside [-1, 1]
        def log_prob(self, x):
            return -((x - 5.0) ** 2).sum(1)

    out = langevin.separate(
        torch.zeros(2, 32), [Push(), Push()], sigmas=[0.5], steps_per_sigma=50, delta=1e-2, clip=(-1, 1), progress=False
    )
    assert out.abs().max() <= 1.0 and (out > 0.9).float().mean() > 0.5
    with pytest.raises(ValueError, match="clip"):
        langevin.separate(torch.zeros(1, 8), [Push()], clip=(1, -1), progress=False)


def test_bss_eval_in_the_given_order_and_short_signals():
    from sepnb.separation import metrics

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 3, 200, generator=g, dtype=torch.float64)
    est = ref + 0.01 * torch.randn(2, 3, 200, generator=g, dtype=torch.float64)
    out = metrics.bss_eval(ref, est)  # 200 samples: the filter is cut to 50 taps
    assert out["sdr"].shape == (2, 3) and (out["sdr"] > 20).all() and out["perm"].tolist() == [[0, 1, 2]] * 2
    assert (metrics.bss_eval(ref, est.flip(1))["sdr"][:, [0, 2]] < 0).all()


# ----------------------------------------------------------------- chapter 06's diagnosis (issue 12)
def test_start_from_truth_is_the_same_sampler_with_another_start():
    """init=<sources> runs the very code of init='noise': with a zero start the two are identical."""
    priors = [Gauss(0.1, 0.3), Gauss(-0.1, 0.3)]
    mix = 0.1 * torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    kw = dict(sigmas=[0.5, 0.1], steps_per_sigma=4, delta=1e-3, progress=False, seed=5)
    from_noise = langevin.separate(mix, priors, **kw)
    from_zero = langevin.separate(mix, priors, init=torch.zeros(3, 2, 64), **kw)
    assert torch.equal(from_noise, from_zero)  # start = given sources + sigma_1 * the same noise draw
    truth = torch.randn(3, 2, 64, generator=torch.Generator().manual_seed(1))
    held = langevin.separate(mix, priors, init=truth, **{**kw, "sigmas": [1e-3], "delta": 1e-9})
    assert (held - truth).abs().max() < 0.01  # tiny steps: the start survives
    with pytest.raises(ValueError, match="init sources"):
        langevin.separate(mix, priors, init=torch.zeros(3, 3, 64), progress=False)


def test_trace_keeps_the_iterate_at_the_end_of_every_level_and_chunks_change_nothing():
    priors = [Gauss(0.1, 0.3), Gauss(-0.1, 0.3)]
    mix = 0.1 * torch.randn(5, 32, generator=torch.Generator().manual_seed(0))
    kw = dict(sigmas=[0.5, 0.2, 0.1], steps_per_sigma=3, delta=1e-3, progress=False, seed=2, return_trace=True)
    out, tr = langevin.separate(mix, priors, **kw)
    assert tr.levels.shape == (3, 5, 2, 32) and torch.equal(tr.levels[-1], out)
    out2, tr2 = langevin.separate(mix, priors, chunk=2, **kw)  # scored 2 mixes at a time: same result
    torch.testing.assert_close(out2, out, rtol=0, atol=1e-6)
    one, tr1 = langevin.separate(mix[0], priors, **kw)
    assert tr1.levels.shape == (3, 2, 32)


def test_oracle_masks_against_hand_computed_cases():
    from sepnb.separation.oracle import oracle_mask

    t = torch.arange(4096, dtype=torch.float64)
    # two sinusoids on exact STFT bins far apart: each bin belongs to one source, so both masks are
    # (nearly) binary and recover the sources almost exactly, the mix's scaling undone
    s = torch.stack([torch.sin(2 * math.pi * 16 * t / 512), 0.5 * torch.cos(2 * math.pi * 100 * t / 512)])[None]
    for kind in ("irm", "wiener"):
        est = oracle_mask(s, kind=kind)
        assert est.shape == s.shape
        from sepnb.separation import metrics

        assert (metrics.si_sdr(s, est) > 30).all()
        # the masks sum to one per bin: the estimates remix to the mix
        torch.testing.assert_close(est.mean(1), s.mean(1), rtol=0, atol=1e-9)
    # one bin shared by two sources with magnitudes 3 and 1 (the same sinusoid, scaled): the IRM gives
    # each 3/4 and 1/4 of the mix, the Wiener filter 9/10 and 1/10
    x = torch.sin(2 * math.pi * 16 * t / 512)
    pair = torch.stack([3 * x, x])[None]
    mix = pair.mean(1)  # = 2 x
    inner = slice(512, -512)  # away from the ends' padding
    irm = oracle_mask(pair, kind="irm")
    torch.testing.assert_close(irm[0, 0, inner], (0.75 * mix[0] * 2)[inner], rtol=0, atol=1e-9)
    torch.testing.assert_close(irm[0, 1, inner], (0.25 * mix[0] * 2)[inner], rtol=0, atol=1e-9)
    wiener = oracle_mask(pair, kind="wiener")
    torch.testing.assert_close(wiener[0, 0, inner], (0.9 * mix[0] * 2)[inner], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="unknown mask"):
        oracle_mask(pair, kind="ibm")
    with pytest.raises(ValueError, match="shorter"):
        oracle_mask(pair[..., :100])


def test_fixed_order_and_best_permutation_agree_when_the_order_is_right():
    from sepnb.separation import metrics

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(4, 3, 500, generator=g, dtype=torch.float64)
    est = ref + 0.3 * torch.randn(4, 3, 500, generator=g, dtype=torch.float64)
    torch.testing.assert_close(metrics.si_sdr(ref, est, permute=True), metrics.si_sdr(ref, est))
    worse = metrics.si_sdr(ref, est.roll(1, dims=1))
    assert (metrics.si_sdr(ref, est.roll(1, dims=1), permute=True) > worse).all()


def test_cluster_bootstrap_interval():
    from sepnb.analysis.stats import cluster_bootstrap

    rng = np.random.default_rng(0)
    v = rng.normal(2.0, 1.0, size=(400, 4))  # 400 clusters of 4 correlated... values
    iv = cluster_bootstrap(v)
    assert iv.low < iv.value < iv.high and iv.n_clusters == 400
    assert iv.value == pytest.approx(v.mean())
    # the interval's half-width is about 1.96 standard errors of the cluster means
    se = v.mean(1).std(ddof=1) / math.sqrt(400)
    assert (iv.high - iv.low) / 2 == pytest.approx(1.96 * se, rel=0.15)
    # rows that are copies of each other (one cluster) give a wider interval than treating
    # every value as independent would
    same = np.repeat(rng.normal(size=(20, 1)), 10, axis=1)
    assert cluster_bootstrap(same).high - cluster_bootstrap(same).low > 2 * 1.96 * same.std() / math.sqrt(200)
    assert cluster_bootstrap(v, resamples=500, seed=1) == cluster_bootstrap(v, resamples=500, seed=1)
    with pytest.raises(ValueError, match="NaN"):
        cluster_bootstrap([1.0, float("nan")])
