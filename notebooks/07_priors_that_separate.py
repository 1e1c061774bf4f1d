# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# (sec-beyond)=
# # Beyond the paper: denoising priors separate once the search is solved
#
# Chapter {ref}`sec-separation` found the paper's method failing and asked
# whether the sampler or the priors were to blame. At the last noise level
# the target preferred the true sources to the sampler's estimate from noise
# on a fraction {glue:text}`ch06_prefers_flow` of the mixes with the flows
# and {glue:text}`ch06_prefers_wavenet` with the WaveNets; started at the
# truth at that level alone, the sampler ended at
# {glue:text}`ch06_keeps_flow:.1f` dB (flows) and
# {glue:text}`ch06_keeps_wavenet:.1f` dB (WaveNets); its diagnosis read
# **{glue:text}`ch06_diagnosis_flow`** for the flows and
# **{glue:text}`ch06_diagnosis_wavenet`** for the WaveNets. This chapter
# keeps the paper's premise (one generative prior per source, trained on
# that source alone, never on mixes) and changes three things, each checked
# before it is believed:
#
# 1. **Denoising (score) priors.** One denoiser per source, trained on that
#    source's windows plus Gaussian noise at every level from
#    $\sigma =$ {glue:text}`den_sigma_min` to {glue:text}`den_sigma_max`
#    (EDM preconditioning {cite}`karras2022edm`).
#    By Tweedie's formula the denoiser's residual is the score of the
#    source's noise-smoothed density, $\nabla \log p_\sigma(\mathbf{x}) =
#    (D(\mathbf{x}, \sigma) - \mathbf{x})/\sigma^2$: the gradient the sampler
#    needs at every level, without autograd and without fine-tuning one model
#    per level.
# 2. **The mix kept exact.** The sampler moves only along directions that
#    leave $\sum_k \alpha_k \mathbf{s}_k$ unchanged (`sepnb.constrained`), so
#    the sources always add up to the mix; there is no mix term to weigh
#    against the priors. It is checked on Gaussian priors whose constrained
#    posterior is known in closed form.
# 3. **A start that knows the frequencies.** From noise, each source's
#    frequency and phase must be found, and local Langevin moves do not find
#    them. Here a classic, unsupervised
#    estimate, *harmonic grouping* of the mix's spectral peaks
#    (`sepnb.harmonic`), proposes fundamentals; the **priors** choose among
#    the proposals and say which group is which source; the sampler then
#    refines the start under the priors.
#
# What this is and is not: every prior is trained on single sources only and
# the grouping never sees a true source. The grouping does assume that each
# source is periodic (true of every toy source, not of music), which is a
# modelling assumption outside the learned priors, and the chapter measures
# how much of the result it carries on its own. The method's knobs were
# chosen on validation mixes, never on the test mixes, by the protocol
# committed to `book/scorecard.yaml` before any result of this chapter.

# %%
import json
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from sepnb import data, runs, separation
from sepnb.analysis import scorecard, stats
from sepnb.book import plots
from sepnb.core import checks, paths, profiles
from sepnb.data import player
from sepnb.priors import StackedDenoisers

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
seed = 0  # seeds the priors' training, the samplers' noise and the bootstrap

# %%
checks.check_parameters("profile", "seed", seed=seed)  # a misspelt or bad parameter stops here
P = profiles.get(profile)
DEVICE = runs.device()
print(f"profile {P.name!r}, seed {seed}, device {DEVICE}")

# %% tags=["remove-cell", "nbval-ignore-output"]
# chapter 06's diagnosis, for the opening paragraph (read from its results file)
ch06 = paths.read_results("06_separation")
r05 = json.loads(ch06.read_text())["runs"].get(f"{P.name}/seed={seed}") if ch06.exists() else None
for f in ("flow", "wavenet"):
    card06 = r05["scorecard"] if r05 is not None else None
    if card06 is not None and "added_posterior_keeps_truth" in card06:
        pref = card06["added_posterior_prefers_truth"][f]["interval"]
        glue(f"ch06_prefers_{f}", f"{pref['value']:.2f} [{pref['low']:.2f}, {pref['high']:.2f}]", display=False)
        glue(f"ch06_keeps_{f}", float(card06["added_posterior_keeps_truth"][f]["interval"]["value"]), display=False)
        glue(f"ch06_diagnosis_{f}", card06["diagnosis"][f], display=False)
    else:
        print("chapter 06's results for this profile are missing: run notebooks/06_separation first")
        glue(f"ch06_prefers_{f}", "(not run)", display=False)
        glue(f"ch06_keeps_{f}", float("nan"), display=False)
        glue(f"ch06_diagnosis_{f}", "(not run)", display=False)

# %% [markdown]
# ## The priors: one denoiser per source
#
# Each denoiser ({glue:text}`den_params:,` weights: a non-causal stack of
# gated dilated convolutions that sees the whole window, told the noise level
# by a learned bias) is trained through the run store on windows of
# {glue:text}`window` samples of its own source, at noise levels drawn
# log-uniformly between {glue:text}`den_sigma_min` and
# {glue:text}`den_sigma_max`. The held-out loss is measured on windows of
# the toy *test* split at fixed levels and noise.

# %% tags=["nbval-ignore-output"]
trained = runs.toy_denoisers(P, seed=seed)
denoisers = [trained[s][0].to(DEVICE).eval() for s in data.SOURCES]
glue("den_params", sum(q.numel() for q in denoisers[0].parameters()), display=False)
glue("window", P.sep_length, display=False)
glue("den_sigma_min", denoisers[0].sigma_min, display=False)
glue("den_sigma_max", denoisers[0].sigma_max, display=False)
glue("den_minutes", sum(h["seconds"] for _, h in trained.values()) / 60, display=False)
glue("den_steps", P.denoiser_steps, display=False)

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Training of the four denoisers: the EDM-weighted denoising loss on held-out test-split windows (fixed levels and noise) against the step, log axes.", "name": "fig-06-training"}}
fig, ax = plt.subplots(figsize=(6, 3))
for s in data.SOURCES:
    h = trained[s][1]
    ax.plot(np.maximum(h["eval_step"], 1), h["eval"], "o-", ms=2, lw=1, color=plots.SOURCE_COLORS[s], label=s)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("training step")
ax.set_ylabel("held-out loss")
_ = ax.legend(fontsize=8, ncols=2)

# %% [markdown]
# The four were trained {glue:text}`den_steps` steps each, in
# {glue:text}`den_minutes:.0f` minutes together on this machine; their
# held-out losses were still falling at the last step, so longer training
# would sharpen them (how much that matters is measured below: started at the
# truth, they hold it). Are they
# good denoisers of their own source? Below, on {glue:text}`n_den_windows` held-out test-split
# windows per source, the mean squared error of each denoiser at three noise
# levels, beside two baselines: doing nothing (the identity, whose error is
# $\sigma^2$) and the best *per-sample* linear shrinkage
# $\mathbf{x}\,\sigma_d^2/(\sigma_d^2+\sigma^2)$, the best a denoiser can do
# without looking at neighbouring samples. A ratio below one means the
# denoiser uses the waveform's structure.

# %% tags=["nbval-ignore-output"]
rows = []
gen = torch.Generator().manual_seed(seed)
N_DEN = 32  # held-out windows per source
glue("n_den_windows", N_DEN, display=False)
for k, s in enumerate(data.SOURCES):
    x = data.ToyWindows("test", window=P.sep_length, source=s, n_items=N_DEN, seed=seed).batch(np.arange(N_DEN))
    sd2 = float(x.pow(2).mean())
    for sigma in (0.02, 0.1, 0.5):
        noisy = x + sigma * torch.randn(x.shape, generator=gen)
        with torch.no_grad():
            err = float((denoisers[k](noisy.to(DEVICE), sigma).cpu() - x).pow(2).mean())
        shrink = float((noisy * sd2 / (sd2 + sigma**2) - x).pow(2).mean())
        rows.append({"source": s, "sigma": f"sigma = {sigma:g}", "MSE / identity": err / sigma**2,
                     "MSE / shrinkage": err / shrink})
denoise = pd.DataFrame(rows).pivot(index="source", columns="sigma").loc[list(data.SOURCES)]
glue("den_worst_ratio", float(denoise["MSE / shrinkage"].to_numpy().max()), display=False)
denoise.style.format("{:.3f}")

# %% tags=["remove-cell"]
assert np.isfinite(denoise.to_numpy()).all()
if P.name != "smoke":  # trained priors must beat the per-sample shrinkage at every level (smoke ones are untrained)
    assert (denoise["MSE / shrinkage"].to_numpy() < 1).all(), denoise

# %% [markdown]
# Every ratio to the shrinkage is below one (the largest is
# {glue:text}`den_worst_ratio:.2f`): each denoiser removes noise using the
# shape of its source.
#
# ## The sampler, checked where the answer is known
#
# `sepnb.separation.constrained_langevin` runs annealed Langevin dynamics
# with the drift and the noise projected onto the directions that keep
# $\sum_k \alpha_k \mathbf{s}_k = \mathbf{m}$, and re-projects after every
# step to remove floating-point drift. With Gaussian priors
# $\mathcal{N}(\mu_k, v_k)$ (independent per sample) the posterior under the
# exact constraint is Gaussian with mean
# $\mu_k + v_k\alpha_k(m - \sum_j \alpha_j\mu_j)/S$ and covariance
# $v_k\delta_{kl} - v_k\alpha_k\alpha_l v_l/S$, $S = \sum_j \alpha_j^2 v_j$.
# The sampler, given these priors' exact scores, should reproduce both; the
# tests (`tests/test_constrained.py`) hold it to {glue:text}`tol_mean` on the
# mean and {glue:text}`tol_var_pct`% on the variance; here is one run, held to the same.

# %% tags=["nbval-ignore-output"]
class GaussianScore:
    """N(mu, v) per sample, smoothed by the level: the exact score of N(mu, v + sigma^2)."""

    def __init__(self, mu, v):
        self.mu, self.v = mu, v

    def score(self, x, sigma):
        return -(x - self.mu) / (self.v + sigma**2)


mus, vs = np.array([0.3, -0.2, 0.1, 0.0]), np.array([0.04, 0.06, 0.09, 0.05])
g_alphas = np.array([0.4, 0.3, 0.2, 0.1])  # any mixing weights: here unequal ones
m0 = 0.3
S = float((g_alphas**2 * vs).sum())
want_mean = mus + vs * g_alphas * (m0 - (g_alphas * mus).sum()) / S
want_var = vs - (vs * g_alphas) ** 2 / S
g_mix = torch.full((4, 2000), m0)
g_out = separation.constrained_langevin(
    g_mix, [GaussianScore(float(mu), float(v)) for mu, v in zip(mus, vs)], alphas=g_alphas.tolist(), sigmas=[1e-3],
    steps_per_sigma=300,
    step=0.02 * vs.min() / 1e-6, init=torch.as_tensor(want_mean, dtype=torch.float32)[None, :, None].expand(4, 4, 2000),
    seed=seed, denoise_last=False, progress=False)
got_mean = g_out.mean(dim=(0, 2)).numpy()
got_var = g_out.transpose(0, 1).reshape(4, -1).var(dim=1).numpy()
gauss = pd.DataFrame({"mean, closed form": want_mean, "mean, sampler": got_mean,
                      "variance, closed form": want_var, "variance, sampler": got_var},
                     index=pd.Index(data.SOURCES, name="prior k"))
TOL_MEAN, TOL_VAR = 0.03, 0.05  # the tolerances of tests/test_constrained.py
glue("tol_mean", TOL_MEAN, display=False)
glue("tol_var_pct", round(100 * TOL_VAR), display=False)
assert np.abs(got_mean - want_mean).max() < TOL_MEAN and (np.abs(got_var / want_var - 1) < TOL_VAR).all()
assert float(((torch.tensor(g_alphas, dtype=torch.float32)[:, None] * g_out).sum(1) - m0).abs().max()) < 1e-5
gauss.round(3)

# %% [markdown]
# ## Test and validation mixes
#
# The test mixes are chapter {ref}`sec-separation`'s:
# {glue:text}`n_mixes` toy test mixes of {glue:text}`mix_ms:.0f` ms. The
# knobs of the method were tuned on {glue:text}`n_val` **validation mixes**
# of the same length, drawn from toy *training*-split items that no prior
# was trained on (the priors saw the first {glue:text}`n_train` items).

# %%
test = data.ToyWindows("test", window=P.sep_length, n_items=P.sep_items, seed=seed)
truth = test.batch(np.arange(P.sep_items))  # [B, 4, T], the same mixes as chapter 06
mix = data.mix(truth)
val = data.ToyWindows("train", window=P.sep_length, n_items=P.n_train + P.val_items, seed=seed)
val_truth = val.batch(np.arange(P.n_train, P.n_train + P.val_items))
val_mix = data.mix(val_truth)
glue("n_mixes", P.sep_items, display=False)
glue("n_val", P.val_items, display=False)
glue("n_train", P.n_train, display=False)
glue("mix_ms", 1000 * P.sep_length / P.sample_rate, display=False)
stack = StackedDenoisers(denoisers)  # the sampler scores the four priors with one call per step
print(f"{P.sep_items} test mixes, {P.val_items} validation mixes, {P.sep_length} samples each")


def refine_sigmas(first):
    """The refinement's levels: geometric from `first` down to the floor."""
    return np.geomspace(first, P.refine_floor, P.refine_levels)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# %% [markdown]
# ## Tuning on the validation mixes
#
# The harmonic grouping (fundamentals from the least-squares fit of
# {glue:text}`n_candidates` candidate peaks, up to {glue:text}`max_harmonics`
# harmonics each, groups assigned to sources by the priors) is run on the
# validation mixes, then the constrained sampler refines it from each first
# noise level of the grid, {glue:text}`refine_steps` steps per level over
# {glue:text}`refine_levels` geometric levels down to
# {glue:text}`refine_floor`. The first level with the best mean validation
# SI-SDR is the one the profile fixes for the test mixes.

# %% tags=["nbval-ignore-output"]
glue("n_candidates", P.harmonic["n_candidates"], display=False)
glue("max_harmonics", P.harmonic["max_harmonics"], display=False)
glue("refine_steps", P.refine_steps, display=False)
glue("refine_levels", P.refine_levels, display=False)
glue("refine_floor", P.refine_floor, display=False)
val_start, _ = separation.harmonic_start(val_mix, denoisers, **P.harmonic)
val_rows = {"harmonic grouping alone": separation.si_sdr(val_truth, val_start).mean(1).numpy()}
for first in P.refine_grid:
    est = separation.constrained_langevin(val_mix, stack, sigmas=refine_sigmas(first), steps_per_sigma=P.refine_steps,
                                           step=P.refine_step, init=val_start, seed=seed)
    val_rows[f"refined from sigma = {first:g}"] = separation.si_sdr(val_truth, est).mean(1).numpy()
val_iv = {k: stats.cluster_bootstrap(v, seed=seed) for k, v in val_rows.items()}
chosen = max(P.refine_grid, key=lambda first: val_rows[f"refined from sigma = {first:g}"].mean())
glue("val_chosen", chosen, display=False)
glue("val_best", val_iv[f"refined from sigma = {chosen:g}"].value, display=False)
pd.DataFrame({"validation SI-SDR, fixed order (dB; mean over mixes [95% interval])": [f"{v:.1f}" for v in val_iv.values()],
              "median over mixes": [f"{np.median(v):.1f}" for v in val_rows.values()]},
             index=pd.Index(list(val_rows), name="configuration"))

# %% tags=["remove-cell"]
# the profile's fixed first level is the validation optimum (a profile whose choice the validation
# mixes no longer support stops the build instead of reporting a tuned-elsewhere number)
if P.name != "smoke":
    assert chosen == P.refine_sigma, (chosen, P.refine_sigma)

# %% [markdown]
# The best first level on the validation mixes is $\sigma =$
# {glue:text}`val_chosen:g` (mean {glue:text}`val_best:.1f` dB); the
# profile fixes it, and the test mixes are separated once with it.
#
# ## Separating the test mixes
#
# Four runs of the same sampler with the same priors, on the same mixes:
#
# - **from noise**: annealed from $\sigma =$ {glue:text}`noise_sigma_max:g`
#   (Song and Ermon's rule {cite}`song2020improved` for these windows) down to the floor,
#   {glue:text}`noise_levels` levels of {glue:text}`noise_steps` steps,
#   started at noise projected onto the mix: chapter 06's set-up with these
#   priors and an exact mix;
# - **from the truth**: the refinement's schedule started at the true
#   sources plus noise of its first level: do the priors and the sampler hold
#   the truth?
# - **harmonic grouping** alone, and **refined** by the sampler.

# %% tags=["nbval-ignore-output"]
glue("noise_sigma_max", P.noise_sigma_max, display=False)
glue("noise_levels", P.noise_levels, display=False)
glue("noise_steps", P.noise_steps, display=False)
estimates, seconds = {}, {}
estimates["denoiser: constrained Langevin from noise"], seconds["denoiser: constrained Langevin from noise"] = timed(
    lambda: separation.constrained_langevin(
        mix, stack, sigmas=np.geomspace(P.noise_sigma_max, P.refine_floor, P.noise_levels),
        steps_per_sigma=P.noise_steps, step=P.refine_step, init="noise", seed=seed))
estimates["denoiser: constrained Langevin from truth"], seconds["denoiser: constrained Langevin from truth"] = timed(
    lambda: separation.constrained_langevin(mix, stack, sigmas=refine_sigmas(P.refine_sigma),
                                             steps_per_sigma=P.refine_steps, step=P.refine_step, init=truth,
                                             seed=seed))
(start, groupings), t_group = timed(lambda: separation.harmonic_start(mix, denoisers, **P.harmonic))
estimates["denoiser: harmonic grouping"], seconds["denoiser: harmonic grouping"] = start, t_group
refined, t_refine = timed(lambda: separation.constrained_langevin(
    mix, stack, sigmas=refine_sigmas(P.refine_sigma), steps_per_sigma=P.refine_steps, step=P.refine_step,
    init=start, seed=seed))
estimates["denoiser: harmonic grouping + constrained Langevin"] = refined
seconds["denoiser: harmonic grouping + constrained Langevin"] = t_group + t_refine
per_mix_seconds = {k: v / P.sep_items for k, v in seconds.items()}

# %% [markdown]
# ## How well did it separate?
#
# SI-SDR in the fixed order (output $k$ against source $k$: each prior names
# its output) and with the best permutation, mean over the four sources of a
# mix, with 95% bootstrap intervals over mixes (2000 resamples of whole
# mixes). Chapter 06's runs on the same mixes are read from its results file
# and set beside them, with the time per mix on this CPU.

# %% tags=["nbval-ignore-output"]
si_fixed = {n: separation.si_sdr(truth, est).numpy() for n, est in estimates.items()}  # [B, 4]
si_perm = {n: separation.si_sdr(truth, est, permute=True).numpy() for n, est in estimates.items()}
ref = {}
if r05 is not None and r05["n_mixes"] == P.sep_items:
    for name in ("flow: annealed from noise", "wavenet: annealed from noise", "supervised: Conv-TasNet",
                 "oracle: ideal ratio mask", "reference: mix as estimate"):
        ref[f"chapter 06, {name}"] = np.asarray(r05["si_sdr_per_mix"][name]["fixed_order"])
    for f in ("flow", "wavenet"):
        per_mix_seconds[f"chapter 06, {f}: annealed from noise"] = r05["annealed_seconds"][f] / P.sep_items
if not ref:
    print("chapter 06's results for this profile are missing: run notebooks/06_separation first for the references")
order = list(estimates) + list(ref)
values = {**si_fixed, **ref}
iv = {n: stats.cluster_bootstrap(values[n], seed=seed) for n in order}
iv_perm = {n: stats.cluster_bootstrap(si_perm[n], seed=seed) for n in estimates}
table = pd.DataFrame({
    "SI-SDR, fixed order": [f"{iv[n]:.1f}" for n in order],
    "median over mixes": [f"{np.median(values[n].mean(1)):.1f}" for n in order],
    "best permutation": [f"{iv_perm[n]:.1f}" if n in iv_perm else "" for n in order],
    "seconds per mix": [f"{per_mix_seconds[n]:.1f}" if n in per_mix_seconds else "" for n in order],
}, index=pd.Index(order, name="method (dB; mean over mixes [95% interval] of the mean over sources)"))
SHORT = {n: n.split(": ", 1)[1].replace("constrained Langevin", "cl").replace(" + ", "_").replace(" ", "_")
         for n in estimates}
for n in estimates:
    glue(f"si_{SHORT[n]}", iv[n].value, display=False)
    glue(f"si_{SHORT[n]}_lo", iv[n].low, display=False)
    glue(f"si_{SHORT[n]}_hi", iv[n].high, display=False)
    glue(f"siperm_{SHORT[n]}", iv_perm[n].value, display=False)
    glue(f"sec_{SHORT[n]}", per_mix_seconds[n], display=False)
table

# %% tags=["remove-cell"]
# the scores above come from training and sampling, whose last digits differ between CPUs; what must hold:
for n, est in estimates.items():
    assert torch.isfinite(est).all() and est.shape == truth.shape, n
    if n != "denoiser: harmonic grouping":  # the sampler keeps the mix exact
        assert float((data.mix(est) - mix).abs().max()) < 1e-4, n
    assert (si_perm[n].sum(1) >= si_fixed[n].sum(1) - 1e-6).all(), n
assert float((data.mix(estimates["denoiser: harmonic grouping"]) - mix).abs().max()) < 1e-4  # so does the grouping

# %% [markdown]
# ## Why it works where it does, and where it does not
#
# Three pieces of evidence, each from the runs above:
#
# - **The priors and the sampler hold the truth.** Started at the true
#   sources plus noise of $\sigma =$ {glue:text}`refine_sigma:g`, the sampler
#   ends at {glue:text}`si_cl_from_truth:.1f` dB
#   [{glue:text}`si_cl_from_truth_lo:.1f`,
#   {glue:text}`si_cl_from_truth_hi:.1f`] (chapter 06's flows:
#   {glue:text}`ch06_flow_truth:.1f` dB from their truth start).
# - **From noise the same sampler fails**:
#   {glue:text}`si_cl_from_noise:.1f` dB in the fixed order,
#   {glue:text}`siperm_cl_from_noise:.1f` dB with the best permutation. What
#   is missing is the search for each source's frequency and phase, not the
#   priors' accuracy.
# - **The harmonic start supplies that search, and fails where the window
#   cannot tell two fundamentals apart.** A window of {glue:text}`mix_ms:.0f`
#   ms resolves frequencies about {glue:text}`bin_hz:.1f` Hz apart (one
#   bin, $f_s/T$). Below, every test mix's final SI-SDR against the gap
#   between its two closest fundamentals, in bins (computed from the mixes'
#   true frequencies, for this analysis only). On the validation mixes the
#   failures were mixes with two fundamentals within about
#   {glue:text}`gap_split:g` bins; the table splits the test mixes there.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Each test mix's SI-SDR (fixed order, mean over its four sources) after the harmonic start and its refinement, against the gap between the two closest fundamentals in the mix, in frequency bins of the window. The dashed line is the split used in the table below.", "name": "fig-06-gap"}}
GAP_SPLIT = 2.0  # bins: where the validation mixes' failures began (fixed before the test mixes were run)
glue("gap_split", GAP_SPLIT, display=False)
params = data.toy_params(np.arange(P.sep_items), seed=seed, split="test")
bin_hz = P.sample_rate / P.sep_length
f = params.freq
gap = np.array([min(abs(f[b, i] - f[b, j]) for i in range(4) for j in range(i + 1, 4)) for b in range(len(f))]) / bin_hz
final = si_fixed["denoiser: harmonic grouping + constrained Langevin"].mean(1)
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.scatter(gap, final, s=12, color="k", label="grouping + refinement")
ax.scatter(gap, si_fixed["denoiser: harmonic grouping"].mean(1), s=10, marker="x", color="0.5", label="grouping alone")
ax.axvline(GAP_SPLIT, ls="--", color="0.5", lw=1)
ax.set_xscale("log")
ax.set_xlabel("gap between the two closest fundamentals (bins)")
ax.set_ylabel("SI-SDR (dB)")
_ = ax.legend(fontsize=8)
glue("bin_hz", bin_hz, display=False)
glue("refine_sigma", P.refine_sigma, display=False)

# %% tags=["nbval-ignore-output"]
close = gap < GAP_SPLIT
split_rows = {}
for label, sel in ((f"closest fundamentals < {GAP_SPLIT:g} bins apart", close),
                   (f"all fundamentals >= {GAP_SPLIT:g} bins apart", ~close)):
    if sel.sum() >= 2:
        split_rows[label] = {"mixes": int(sel.sum()),
                             "SI-SDR, fixed order": f"{stats.cluster_bootstrap(final[sel, None], seed=seed):.1f}",
                             "best permutation": f"{stats.cluster_bootstrap(si_perm['denoiser: harmonic grouping + constrained Langevin'][sel], seed=seed):.1f}"}
    else:
        split_rows[label] = {"mixes": int(sel.sum()), "SI-SDR, fixed order": "", "best permutation": ""}
PERM_GAIN = 1.0  # dB by which the best permutation must beat the fixed order to count a mix as misassigned
glue("perm_gain", PERM_GAIN, display=False)
wrong_assignment = (si_perm["denoiser: harmonic grouping + constrained Langevin"].mean(1) - final) > PERM_GAIN
glue("n_wrong_far", int((wrong_assignment & ~close).sum()), display=False)
glue("n_far", int((~close).sum()), display=False)
glue("refine_gain", float(final.mean() - si_fixed["denoiser: harmonic grouping"].mean(1).mean()), display=False)
glue("n_close", int(close.sum()), display=False)
glue("si_far", float(final[~close].mean()) if (~close).any() else float("nan"), display=False)
glue("si_close", float(final[close].mean()) if close.any() else float("nan"), display=False)
glue("n_wrong_assignment", int(wrong_assignment.sum()), display=False)
ch06_truth = np.asarray(r05["si_sdr_per_mix"]["flow: annealed from truth"]["fixed_order"]).mean() if ref else float("nan")
glue("ch06_flow_truth", float(ch06_truth), display=False)
pd.DataFrame(split_rows).T.rename_axis("test mixes (grouping + refinement)")

# %% [markdown]
# On the {glue:text}`n_close` test mixes whose two closest fundamentals
# lie within {glue:text}`gap_split:g` bins the refined separation averages
# {glue:text}`si_close:.1f` dB; on the others {glue:text}`si_far:.1f` dB.
# On {glue:text}`n_wrong_assignment` mixes the best permutation beats the
# fixed order by more than {glue:text}`perm_gain:g` dB: the priors gave a group to the wrong source,
# or the groups themselves mix two sources. Among the
# {glue:text}`n_far` mixes whose fundamentals are at least {glue:text}`gap_split:g` bins apart
# that happened {glue:text}`n_wrong_far` times.
#
# ## Listening: test mix 0

# %% tags=["nbval-ignore-output"]
display(Markdown("**the mix**"), player(mix[0], P.sample_rate))
for k, s in enumerate(data.SOURCES):
    display(Markdown(f"{s}, separated (grouping + refinement), then the truth:"),
            player(refined[0, k].clamp(-1, 1), P.sample_rate), player(truth[0, k], P.sample_rate))

# %% [markdown]
# ## Results file and the scorecard

# %%
out = {
    "profile": P.name,
    "seed": seed,
    "n_mixes": P.sep_items,
    "n_validation_mixes": P.val_items,
    "mix_length": P.sep_length,
    "sources": list(data.SOURCES),
    "denoiser": dict(P.denoiser),
    "harmonic": {k: list(v) if isinstance(v, tuple) else v for k, v in P.harmonic.items()},
    "refine": {"first_sigma": P.refine_sigma, "floor": P.refine_floor, "levels": P.refine_levels,
               "steps_per_level": P.refine_steps, "step": P.refine_step},
    "noise_start": {"sigma_max": P.noise_sigma_max, "levels": P.noise_levels, "steps_per_level": P.noise_steps},
    "validation_si_sdr": {k: v.to_json() for k, v in val_iv.items()},
    "methods": list(estimates),
    "si_sdr_per_mix": {n: {"fixed_order": np.round(si_fixed[n], 3).tolist(),
                           "best_permutation": np.round(si_perm[n], 3).tolist()} for n in estimates},
    "si_sdr": {n: {"fixed_order": iv[n].to_json(), "best_permutation": iv_perm[n].to_json()} for n in estimates},
    "seconds_per_mix": {n: round(v, 2) for n, v in per_mix_seconds.items()},
    "closest_fundamentals_bins": np.round(gap, 3).tolist(),
}
card = scorecard.beyond_rows(out)
out["scorecard"] = card
results_path = paths.update_results("07_priors_that_separate", f"{P.name}/seed={seed}", out)
print(f"wrote {results_path.name}")
for n, v in card["added_toy_separation_success"].items():
    glue(f"verdict_{SHORT[n]}", v["verdict"], display=False)
glue("verdict_holds_truth", card["added_sampler_holds_truth"]["denoiser"]["verdict"], display=False)
bar = scorecard.rule("added_toy_separation_success")
glue("bar", float(bar["threshold"]), display=False)
glue("stretch", float(bar["stretch_threshold"]), display=False)
final_iv = iv["denoiser: harmonic grouping + constrained Langevin"]
glue("stretch_reading", "met: the whole interval lies above it" if final_iv.low > bar["stretch_threshold"]
     else "not met: the whole interval lies below it" if final_iv.high < bar["stretch_threshold"]
     else "undecided: the interval contains it", display=False)

# %% [markdown]
# Scorecard row `added_toy_separation_success` ("can per-source priors
# separate the toy mixes?": the 95% interval of the mean fixed-order SI-SDR
# over the {glue:text}`n_mixes` test mixes above {glue:text}`bar:.0f` dB),
# judged for each configuration on its own:
#
# | configuration | SI-SDR (dB) | verdict | seconds per mix |
# |---|---|---|---|
# | from noise | {glue:text}`si_cl_from_noise:.1f` [{glue:text}`si_cl_from_noise_lo:.1f`, {glue:text}`si_cl_from_noise_hi:.1f`] | {glue:text}`verdict_cl_from_noise` | {glue:text}`sec_cl_from_noise:.1f` |
# | harmonic grouping | {glue:text}`si_harmonic_grouping:.1f` [{glue:text}`si_harmonic_grouping_lo:.1f`, {glue:text}`si_harmonic_grouping_hi:.1f`] | {glue:text}`verdict_harmonic_grouping` | {glue:text}`sec_harmonic_grouping:.1f` |
# | grouping + refinement | {glue:text}`si_harmonic_grouping_cl:.1f` [{glue:text}`si_harmonic_grouping_cl_lo:.1f`, {glue:text}`si_harmonic_grouping_cl_hi:.1f`] | {glue:text}`verdict_harmonic_grouping_cl` | {glue:text}`sec_harmonic_grouping_cl:.1f` |
#
# Started from the truth (row `added_sampler_holds_truth`):
# **{glue:text}`verdict_holds_truth`**.
#
# ## Summary
#
# - Denoising priors trained on single sources, a sampler that keeps the
#   mix exact, and a harmonic start chosen and assigned by the priors
#   separate the {glue:text}`n_mixes` test mixes at
#   **{glue:text}`si_harmonic_grouping_cl:.1f` dB**
#   [{glue:text}`si_harmonic_grouping_cl_lo:.1f`,
#   {glue:text}`si_harmonic_grouping_cl_hi:.1f`] (fixed order; best
#   permutation {glue:text}`siperm_harmonic_grouping_cl:.1f` dB), in
#   {glue:text}`sec_harmonic_grouping_cl:.1f` s per mix on this CPU.
#   Against the bar of {glue:text}`bar:.0f` dB:
#   **{glue:text}`verdict_harmonic_grouping_cl`** (the target of 10 dB is not
#   established on these {glue:text}`n_mixes` mixes; the stretch goal of
#   {glue:text}`stretch:.0f` dB: {glue:text}`stretch_reading`). The grouping alone scores
#   {glue:text}`si_harmonic_grouping:.1f` dB; the priors' refinement adds
#   {glue:text}`refine_gain:.1f` dB to it on average.
# - The priors are not what limits it: from the truth the sampler holds
#   {glue:text}`si_cl_from_truth:.1f` dB. From noise it fails
#   ({glue:text}`si_cl_from_noise:.1f` dB) as chapter 06's did: the search
#   over frequency and phase is the problem, and the harmonic start solves
#   it except where two fundamentals are closer than the window resolves
#   ({glue:text}`n_close` mixes, {glue:text}`si_close:.1f` dB against
#   {glue:text}`si_far:.1f` dB for the rest) and where a group goes to the
#   wrong source ({glue:text}`n_wrong_assignment` mixes; best permutation
#   {glue:text}`siperm_harmonic_grouping_cl:.1f` dB). What falls short is the
#   start, the search, on mixes the window cannot resolve; the next levers are
#   longer windows or a search over pairs of close fundamentals judged by the
#   priors, each to be tuned on validation mixes first.
# - What this leans on beyond the learned priors: that every source is
#   periodic. That holds for the toy sources and not for music; the
#   chapter's result is a statement about these mixes.
