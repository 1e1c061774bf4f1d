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
# (sec-separation)=
# # Separation by Langevin dynamics
#
# The paper's goal: recover the four sources $\mathbf{s}_1, \dots,
# \mathbf{s}_4$ of a mix $\mathbf{m} = \frac{1}{4}\sum_k \mathbf{s}_k$ (its
# eq. 8) by sampling the posterior under the source priors,
#
# $$ \log p(\mathbf{s} \mid \mathbf{m}) = \sum_k \log p_k(\mathbf{s}_k)
#    - \frac{1}{2\gamma^2} \Big\lVert \mathbf{m} - \sum_k \alpha_k \mathbf{s}_k \Big\rVert^2
#    + \text{const}, $$
#
# with stochastic gradient Langevin dynamics (SGLD, the paper's eq. 3):
# $\mathbf{s} \leftarrow \mathbf{s} + \eta\, \nabla_{\mathbf{s}} \log p(\mathbf{s} \mid \mathbf{m}) +
# \sqrt{2\eta}\,\boldsymbol{\epsilon}$. Two corrections to the paper: the
# mix term enters with a *minus* (eq. 3 prints a plus, which would push the
# sources away from the mix), and it is switched on; in the authors' code its
# weight was 0, so their sampler never saw the mix (see `ORIGINAL_CODE.md`).
# The paper reports that separation "failed", without a number. This chapter
# measures it, for both families, and asks *why*:
#
# - **plain SGLD** with the noise-free priors at one noise level (the
#   authors' set-up: $\sigma = 0.1$, $\gamma = \sigma$);
# - **annealed Langevin dynamics** as in BASIS {cite}`jayaram2020basis`: the
#   noise levels of chapter {ref}`sec-noise` from the widest down, at each
#   level the priors fine-tuned at that level, $\gamma = \sigma_i$ and step
#   size $\eta_i = \delta\, \sigma_i^2 / \sigma_L^2$, started from noise;
# - the same annealed sampler **started from the true sources** plus noise
#   of the first level: does the whole schedule hold the truth?
# - Langevin dynamics at the **last level alone, started from the true
#   sources** plus that level's noise: does the posterior at $\sigma_L$ keep
#   the truth? Only this start can tell a failure of the priors from a
#   sampler that forgets its start, as an annealed sampler is meant to;
# - the **BASIS schedule as BASIS ran it** (more levels, from a wider first
#   level, more steps per level) on the first test mixes, beside the book's
#   shorter schedule.
#
# Three reference points put the numbers in context, none of them part of the
# paper's method: the mix itself as the estimate of every source (what doing
# nothing scores); a *supervised* separator (Conv-TasNet
# {cite}`luo2019convtasnet`, trained on toy mixes with the true sources as
# targets, with its training curve); and *oracle* masks,
# computed from the true sources, which show how far filtering the mix's
# spectrogram can go on these mixes.

# %%
import os

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
from sepnb.separation import oracle_mask

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
seed = 0  # seeds the test mixes' choice of noise, the Langevin noise and the baseline's training

# %%
checks.check_parameters("profile", "seed", seed=seed)  # a misspelt or bad parameter stops here
P = profiles.get(profile)
FAMILIES = ("wavenet", "flow")
SIGMAS = sorted(P.sigmas, reverse=True)  # the annealing schedule: widest level first
last = SIGMAS[-1]  # sigma_L, the last level
BASIS = P.basis  # BASIS's own schedule (book/scorecard.yaml, deviation basis_schedule)
DEVICE = runs.device()  # where the priors live ($SEPNB_DEVICE, else CUDA if available, else the CPU)
print(f"profile {P.name!r}, seed {seed}, device {DEVICE}; annealing over sigma = {SIGMAS}")

# %% [markdown]
# ## Priors, references and test mixes
#
# The noise-free priors of chapter {ref}`sec-models` and the priors
# fine-tuned at every noise level (chapter {ref}`sec-noise`) come from the
# run store (trained if missing), and so do the flows fine-tuned, the same
# way, at the five levels of the BASIS schedule the paper does not use. The
# Conv-TasNet reference is trained through the same store, on windows of
# the toy training mixes.

# %% tags=["nbval-ignore-output"]
def load(sigma=0.0):
    return {k: model for k, (model, _) in runs.toy_priors(P, seed=seed, sigma=sigma).items()}


clean = load()
tuned = {s: load(s) for s in SIGMAS}
basis_flows = {sg: {k: model for k, (model, _) in runs.toy_priors(P, seed=seed, sigma=sg, families=("flow",)).items()}
               for sg in runs.basis_extra_sigmas(P)} | {sg: tuned[sg] for sg in SIGMAS}

# %%
test = data.ToyWindows("test", window=P.sep_length, n_items=P.sep_items, seed=seed)
truth = test.batch(np.arange(P.sep_items))  # [B, 4, T]
mix = data.mix(truth)  # the mean of the four sources (eq. 8)
glue("n_mixes", P.sep_items, display=False)
glue("mix_ms", 1000 * P.sep_length / P.sample_rate, display=False)
print(f"{P.sep_items} test mixes of {P.sep_length} samples ({1000 * P.sep_length / P.sample_rate:.0f} ms)")

# %% [markdown]
# ## Running the samplers
#
# Each run separates all {glue:text}`n_mixes` test mixes at once (a batch),
# each of {glue:text}`mix_ms:.0f` ms; every method below sees the same
# mixes. The four priors of a family are scored in turn at every step, and
# autograd gives the gradient with respect to the sources only (the weights
# are frozen). The trace records, at every step, each prior's
# log-likelihood per sample of its current source estimate and the mean
# squared mix residual, and keeps the estimates at the end of every noise
# level.
#
# **What the WaveNets' gradient is.** A WaveNet's density is a categorical
# over 256 mu-law bins, uniform inside each bin: as a function of the
# waveform it is piecewise constant, so its gradient is zero almost
# everywhere and Langevin dynamics could not move. The sampler therefore
# follows the WaveNets' `smooth_log_prob`: each sample's position between
# its two nearest bin centres (in mu-law space) is a weight $w \in [0, 1]$;
# the network's input embedding is interpolated between the two classes'
# embeddings with that weight, and the log density between the two classes'
# log densities. At a bin centre it equals the exact log-likelihood; between
# centres it is the linear interpolation, so its gradient exists and points
# towards the likelier neighbouring bin. It is a surrogate: the trajectory
# plot and the posterior check below score the WaveNets' iterates with it,
# the posterior check with the exact likelihood as well. The flows' exact
# log-likelihood is differentiable and is used as it is.

# %% tags=["nbval-ignore-output"]
plain_delta = P.sep_delta * (P.sgld_sigma / min(P.sigmas)) ** 2  # the authors' eta = 3e-5 (sigma / 0.01)^2
CLIP = (-1.0, 1.0)  # projected Langevin: sources live in [-1, 1], the WaveNet's whole domain
estimates, traces = {}, {}


def annealed_priors(f):
    return [separation.NoiseConditionedPrior({sg: tuned[sg][(f, s)] for sg in SIGMAS}) for s in data.SOURCES]


for f in FAMILIES:
    estimates[(f, "SGLD")], traces[(f, "SGLD")] = separation.separate(
        mix, [clean[(f, s)] for s in data.SOURCES], sigmas=[P.sgld_sigma], steps_per_sigma=P.sgld_steps,
        delta=plain_delta, clip=CLIP, seed=seed, return_trace=True,
    )
    for start, init in (("from noise", "noise"), ("from truth", truth)):
        estimates[(f, f"annealed {start}")], traces[(f, f"annealed {start}")] = separation.separate(
            mix, annealed_priors(f), sigmas=SIGMAS, steps_per_sigma=P.sep_steps, delta=P.sep_delta, clip=CLIP,
            seed=seed, init=init, return_trace=True,
        )
    # the posterior at sigma_L alone: the annealed run's last level (its priors, step size and steps),
    # started at the truth plus sigma_L noise (row added_posterior_keeps_truth)
    estimates[(f, "last level from truth")], traces[(f, "last level from truth")] = separation.separate(
        mix, annealed_priors(f), sigmas=SIGMAS[-1:], steps_per_sigma=P.sep_steps, delta=P.sep_delta, clip=CLIP,
        seed=seed, init=truth, return_trace=True,
    )
# BASIS's own schedule with the flows, on the first test mixes (deviation basis_schedule)
n_basis = min(BASIS["items"], P.sep_items)
basis_est, basis_trace = separation.separate(
    mix[:n_basis], [separation.NoiseConditionedPrior({sg: basis_flows[sg][("flow", s)] for sg in BASIS["sigmas"]})
                    for s in data.SOURCES],
    sigmas=list(BASIS["sigmas"]), steps_per_sigma=BASIS["steps"], delta=P.sep_delta, clip=CLIP, seed=seed,
    return_trace=True,
)
# the supervised reference, from the store: two stages (sepnb.runs.separator_config), a first schedule,
# then a continuation until the loss on held-out training-split mixes stops improving; the
# continuation's best weights are the reference
tasnet_cfg = runs.separator_config(P, seed=seed)
tasnet, tasnet_history = runs.get_prior(tasnet_cfg)
_, tasnet_first = runs.get_prior(tasnet_cfg.parent)
tasnet_plateau = tasnet_history["plateau"]
glue("tasnet_minutes", (tasnet_first["seconds"] + tasnet_history["seconds"]) / 60, display=False)
glue("tasnet_params", sum(p.numel() for p in tasnet.parameters()), display=False)
glue("tasnet_first_steps", P.tasnet_steps, display=False)
glue("tasnet_more_steps", len(tasnet_history["step"]), display=False)
glue("tasnet_steps", P.tasnet_steps + tasnet_plateau["best_step"], display=False)
with torch.no_grad():
    estimates[("supervised", "Conv-TasNet")] = tasnet.eval()(mix.to(DEVICE)).cpu()
N_FFT = min(512, P.sep_length // 4)  # 32 ms frames (shorter only for the tests' short mixes)
estimates[("oracle", "ideal ratio mask")] = oracle_mask(truth, kind="irm", n_fft=N_FFT, hop=N_FFT // 4)
estimates[("oracle", "Wiener filter")] = oracle_mask(truth, kind="wiener", n_fft=N_FFT, hop=N_FFT // 4)
estimates[("reference", "mix as estimate")] = mix[:, None].expand_as(truth)
for f in FAMILIES:
    glue(f"annealed_seconds_{f}", traces[(f, "annealed from noise")].seconds, display=False)
glue("annealed_steps", len(SIGMAS) * P.sep_steps, display=False)
glue("sgld_steps", P.sgld_steps, display=False)
glue("sgld_eta", plain_delta, display=False)

# %% [markdown]
# What one 1-second mix costs: a few annealed steps on one mix of
# {glue:text}`item_seconds:.0f` s with its four priors, timed per family; every
# step costs the same, so the whole schedule of the paper's sizes
# ({glue:text}`full_steps` steps: 100 per level) costs that many times more.

# %% tags=["nbval-ignore-output"]
one = data.mix(data.ToyWindows("test", window=P.item_length, n_items=1, seed=seed).batch([0]))
n_timed, step_seconds = 3, {}
for f in FAMILIES:
    _, tr = separation.separate(one, annealed_priors(f), sigmas=SIGMAS[:1], steps_per_sigma=n_timed,
                                delta=P.sep_delta, clip=CLIP, seed=seed, progress=False, return_trace=True)
    step_seconds[f] = tr.seconds / n_timed
    glue(f"step_seconds_{f}", tr.seconds / n_timed, display=False)
    glue(f"full_minutes_{f}", tr.seconds / n_timed * len(SIGMAS) * 100 / 60, display=False)
glue("item_seconds", P.item_length / P.sample_rate, display=False)
glue("full_steps", len(SIGMAS) * 100, display=False)
glue("threads", torch.get_num_threads(), display=False)

# %% [markdown]
# In this book the annealed schedule ({glue:text}`annealed_steps` steps over
# the batch of {glue:text}`n_mixes` mixes) took
# {glue:text}`annealed_seconds_flow:.0f` s with the flows and
# {glue:text}`annealed_seconds_wavenet:.0f` s with the WaveNets. One step on
# a 1-second mix with four priors takes {glue:text}`step_seconds_flow:.2f` s
# (flows) and {glue:text}`step_seconds_wavenet:.2f` s (WaveNets) on this
# CPU (torch threads: {glue:text}`threads`), so separating one 1-second mix over the full schedule of
# {glue:text}`full_steps` steps takes about
# {glue:text}`full_minutes_flow:.0f` minutes with the flows and
# {glue:text}`full_minutes_wavenet:.0f` with the WaveNets.
#
# Plain SGLD ran {glue:text}`sgld_steps` steps at the authors' step size
# $\eta =$ {glue:text}`sgld_eta:.1e`. Every iterate is projected onto
# $[-1, 1]$, the WaveNets' whole domain and the range of every toy source.
#
# ## How well did it separate?
#
# Scale-invariant SDR {cite}`leroux2019sdr` of each estimated source against
# the truth, in dB (higher is better). **Fixed order** scores output $k$
# against source $k$: the Langevin runs know which prior made which output,
# Conv-TasNet was trained to output the sources in this order, and the
# oracles are built per source. **Best permutation** matches outputs to
# sources by the permutation that maximises the summed SI-SDR of a mix
# (`fast_bss_eval` {cite}`scheibler2022fastbsseval`), which forgives a prior
# that captured another prior's source. SI-SDRi is the improvement over the
# mix as the estimate. The intervals are 95% bootstrap intervals that
# resample whole mixes (the four sources of a mix travel together; 2000
# resamples, `sepnb.analysis.stats.cluster_bootstrap`); BSS Eval SDR
# {cite}`vincent2006performance` is given as the mean alone.

# %% tags=["nbval-ignore-output"]
order = [f"{f}: {m}" for f in FAMILIES
         for m in ("SGLD", "annealed from noise", "annealed from truth", "last level from truth")] + [
    "supervised: Conv-TasNet", "oracle: ideal ratio mask", "oracle: Wiener filter", "reference: mix as estimate"]
est_of = {f"{family}: {method}": est for (family, method), est in estimates.items()}
si_fixed = {name: separation.si_sdr(truth, est_of[name]).numpy() for name in order}  # [B, 4] each
si_perm = {name: separation.si_sdr(truth, est_of[name], permute=True).numpy() for name in order}
sdr_fixed = {name: separation.bss_eval(truth, est_of[name])["sdr"].numpy() for name in order}
si_mix = si_fixed["reference: mix as estimate"]


def per_mix_values(a):
    """Per-mix SI-SDR as stored in the results file (3 decimals): the verdicts use exactly these."""
    return np.round(np.asarray(a, dtype=float), 3).tolist()


iv = {}  # (name, what) -> stats.Interval over mixes
for name in order:
    iv[(name, "fixed")] = stats.cluster_bootstrap(si_fixed[name], seed=seed)
    iv[(name, "perm")] = stats.cluster_bootstrap(si_perm[name], seed=seed)
    iv[(name, "improvement")] = stats.cluster_bootstrap(si_fixed[name] - si_mix, seed=seed)
table = pd.DataFrame({
    "SI-SDR, fixed order": [f"{iv[(n, 'fixed')]:.1f}" for n in order],
    "median over mixes": [f"{np.median(si_fixed[n].mean(1)):.1f}" for n in order],
    "SI-SDR, best permutation": [f"{iv[(n, 'perm')]:.1f}" for n in order],
    "SI-SDRi, fixed order": [f"{iv[(n, 'improvement')]:.1f}" for n in order],
    "BSS Eval SDR": [f"{sdr_fixed[n].mean():.1f}" for n in order],
}, index=pd.Index(order, name="method (dB; mean over mixes [95% interval] of the mean over sources)"))
SHORT = {name: name.replace(": ", "_").replace(" ", "_").replace("-", "").lower() for name in order}
for name in order:
    glue(f"si_{SHORT[name]}", iv[(name, "fixed")].value, display=False)
    glue(f"si_{SHORT[name]}_lo", iv[(name, "fixed")].low, display=False)
    glue(f"si_{SHORT[name]}_hi", iv[(name, "fixed")].high, display=False)
    glue(f"siperm_{SHORT[name]}", iv[(name, "perm")].value, display=False)
table

# %% [markdown]
# Per source (fixed order, mean [95% interval] over the same mixes):

# %% tags=["nbval-ignore-output"]
per_source = pd.DataFrame(
    {s: [f"{stats.cluster_bootstrap(si_fixed[n][:, k], seed=seed):.1f}" for n in order]
     for k, s in enumerate(data.SOURCES)}, index=pd.Index(order, name="method"))
per_source

# %% tags=["remove-cell"]
# The tables above come from Langevin runs and training, whose last digits differ between CPUs, so the
# tests do not compare them; they check here what must hold on every machine.
assert all(np.isfinite(est.numpy()).all() and est.shape == truth.shape for est in estimates.values())
assert all(np.isfinite(si_fixed[n]).all() and np.isfinite(si_perm[n]).all() for n in order)
for n in order:  # the best permutation can never lower a mix's summed SI-SDR
    assert (si_perm[n].sum(1) >= si_fixed[n].sum(1) - 1e-6).all(), n
# the mix-as-estimate row depends on the data only: recomputed here in float64 from the definition
t64, m64 = truth.double().numpy(), mix.double().numpy()[:, None, :]
proj = (m64 * t64).sum(-1, keepdims=True) / (t64 * t64).sum(-1, keepdims=True) * t64
assert np.allclose(si_mix, 10 * np.log10((proj**2).sum(-1) / ((m64 - proj) ** 2).sum(-1)), atol=1e-3)
# the oracle masks remix to the mix (their masks sum to one in every bin)
for n in ("oracle: ideal ratio mask", "oracle: Wiener filter"):
    assert torch.allclose(data.mix(est_of[n]), mix, atol=1e-4), n
# the mix term pulls the estimates towards the mix: every annealed run from noise ends with a smaller mean
# squared residual than it started from (a sign error in the mix term makes it grow)
for f in FAMILIES:
    assert traces[(f, "annealed from noise")].mix_error[-1].mean() < traces[(f, "annealed from noise")].mix_error[0].mean(), f

# %% mystnb={"figure": {"caption": "SI-SDR of every separated source in the fixed order (dots: one mix each; bars: means), per method and source. The grey band spans the scores of the mix itself.", "name": "fig-05-scores"}}
fig, ax = plt.subplots(figsize=(11, 3.8))
width = 0.8 / len(data.SOURCES)
for k, s in enumerate(data.SOURCES):
    for i, name in enumerate(order):
        v = si_fixed[name][:, k]
        x = i + (k - 1.5) * width
        ax.scatter(np.full(len(v), x), v, s=6, color=plots.SOURCE_COLORS[s], label=s if i == 0 else None)
        ax.hlines(v.mean(), x - width / 2, x + width / 2, color=plots.SOURCE_COLORS[s])
ax.axhspan(si_mix.min(), si_mix.max(), color="0.88", zorder=0)
ax.set_xticks(range(len(order)), [o.replace(": ", "\n").replace(" from", "\nfrom") for o in order], fontsize=7)
ax.set_ylabel("SI-SDR (dB)")
_ = ax.legend(ncols=4, loc="lower right", fontsize=8)

# %% [markdown]
# From noise, annealed Langevin reaches a mean SI-SDR of
# {glue:text}`si_flow_annealed_from_noise:.1f` dB with the flows and
# {glue:text}`si_wavenet_annealed_from_noise:.1f` dB with the WaveNets
# (fixed order), plain SGLD {glue:text}`si_flow_sgld:.1f` and
# {glue:text}`si_wavenet_sgld:.1f` dB; the mix itself scores
# {glue:text}`si_reference_mix_as_estimate:.1f` dB. Started from the truth,
# the same sampler ends at {glue:text}`si_flow_annealed_from_truth:.1f` dB
# (flows) and {glue:text}`si_wavenet_annealed_from_truth:.1f` dB
# (WaveNets). The oracle ideal ratio mask reaches
# {glue:text}`si_oracle_ideal_ratio_mask:.1f` dB and the supervised
# Conv-TasNet {glue:text}`si_supervised_convtasnet:.1f` dB.
#
# ## The references: how far can one get on these mixes?

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "The supervised Conv-TasNet's SI-SDR against the training step, over both stages. First stage: its training loss and a monitor on test windows (nothing was chosen by it). Continuation: its loss on held-out training-split mixes, which decides when the step size halves (dotted) and when training stops; the kept weights are those of the best evaluation (marked).", "name": "fig-05-tasnet"}}
def smoothed(h, offset=0):
    """Training SI-SDR (dB) averaged over blocks of steps, at the blocks' mean step."""
    y = -np.asarray(h["train"])
    k = max(1, len(y) // 100)
    n = len(y) // k * k
    return (np.asarray(h["step"])[:n].reshape(-1, k).mean(1) + offset, y[:n].reshape(-1, k).mean(1))


fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(*smoothed(tasnet_first), color="0.75", lw=1, label="training batches")
ax.plot(*smoothed(tasnet_history, P.tasnet_steps), color="0.75", lw=1)
ax.plot(tasnet_first["eval_step"], -np.asarray(tasnet_first["eval"]), "o--", color="C0", ms=2, lw=1,
        label="first stage: test windows (monitor)")
cont_steps = P.tasnet_steps + np.asarray(tasnet_history["eval_step"])
ax.plot(cont_steps, -np.asarray(tasnet_history["eval"]), "o-", color="k", ms=2, lw=1,
        label="continuation: held-out training mixes")
for h_step in tasnet_plateau["halved_at"]:
    ax.axvline(P.tasnet_steps + h_step, color="0.5", ls=":", lw=0.8)
ax.plot(P.tasnet_steps + tasnet_plateau["best_step"], -tasnet_plateau["best"], "*", color="C3", ms=10,
        label="kept weights")
ax.set_xlabel("training step")
ax.set_ylabel("SI-SDR (dB)")
_ = ax.legend(fontsize=7, loc="lower right")
ev = -np.asarray(tasnet_first["eval"])
first_steps = np.asarray(tasnet_first["eval_step"])
glue("tasnet_last_quarter_gain", float(ev[first_steps >= 0.75 * P.tasnet_steps].max()
                                       - ev[first_steps < 0.75 * P.tasnet_steps].max()), display=False)
# the reading, by the rule fixed with the profile before the continuation ran: converged when the
# continuation stopped by its plateau rule, not converged when it reached its step cap
tasnet_converged = tasnet_plateau["stopped_at"] is not None
cont = P.tasnet_continue
glue("tasnet_min_delta", cont["min_delta"], display=False)
glue("tasnet_stop_patience", cont["stop_patience"], display=False)
glue("tasnet_stop_steps", cont["stop_patience"] * P.tasnet_eval_every, display=False)
glue("tasnet_lr_patience", cont["lr_patience"], display=False)
glue("tasnet_val_items", cont["eval_items"], display=False)
glue("tasnet_cap", cont["steps"], display=False)
glue("tasnet_halvings", len(tasnet_plateau["halved_at"]), display=False)
glue("tasnet_val_best", -tasnet_plateau["best"], display=False)
glue("tasnet_val_start", -tasnet_history["eval"][0], display=False)
glue("tasnet_curve_reading",
     "it stopped by that rule: its held-out loss had stopped improving, so this is the converged reference "
     "at this size" if tasnet_converged
     else "it reached its step cap while still improving, so this reference is not converged and understates "
          "what supervision can do", display=False)
glue("tasnet_curve_short", "converged: stopped by the plateau rule" if tasnet_converged
     else "still improving at the cap: not converged", display=False)

# %% [markdown]
# Conv-TasNet ({glue:text}`tasnet_params:,` weights) trains in two stages,
# {glue:text}`tasnet_minutes:.0f` minutes in all. The first,
# {glue:text}`tasnet_first_steps` steps on a cosine schedule, still gained
# {glue:text}`tasnet_last_quarter_gain:+.2f` dB in its last quarter (on the
# test windows it was monitored on; nothing was chosen by them). The
# continuation starts from its weights with a fresh optimiser and follows the
# Conv-TasNet paper's recipe on {glue:text}`tasnet_val_items` held-out
# mixes of the *training* split (items no step trains on): the step size
# halves after {glue:text}`tasnet_lr_patience` evaluations without a gain of
# more than {glue:text}`tasnet_min_delta` dB, training stops after
# {glue:text}`tasnet_stop_patience` ({glue:text}`tasnet_stop_steps` steps),
# and the best weights are kept; it may run at most
# {glue:text}`tasnet_cap` steps. It ran {glue:text}`tasnet_more_steps`
# steps, halved its step size {glue:text}`tasnet_halvings` times and raised
# the held-out SI-SDR from {glue:text}`tasnet_val_start:.2f` to
# {glue:text}`tasnet_val_best:.2f` dB; {glue:text}`tasnet_curve_reading`. On
# the test mixes it scores {glue:text}`si_supervised_convtasnet:.1f` dB
# [{glue:text}`si_supervised_convtasnet_lo:.1f`,
# {glue:text}`si_supervised_convtasnet_hi:.1f`]. The oracle masks use the
# true sources, so they show how far *masking the mix's spectrogram* can go:
# the ideal ratio mask reaches {glue:text}`si_oracle_ideal_ratio_mask:.1f` dB
# [{glue:text}`si_oracle_ideal_ratio_mask_lo:.1f`,
# {glue:text}`si_oracle_ideal_ratio_mask_hi:.1f`], the Wiener filter
# {glue:text}`si_oracle_wiener_filter:.1f` dB. Sources whose harmonics
# share time-frequency bins cannot be split by any mask, so even the oracle
# stays short of perfect; a separator that models the waveforms (as the
# priors do) is not bound by it.
#
# ## The BASIS schedule as BASIS ran it
#
# The rule `langevin_separation_fails` names the BASIS schedule, but the
# annealed runs above use the paper's five levels with
# {glue:text}`sep_steps` steps each. BASIS itself (`ORIGINAL_CODE.md`) ran
# {glue:text}`basis_levels` geometric levels from
# {glue:text}`basis_sigma_max` to {glue:text}`basis_sigma_min` with
# {glue:text}`basis_steps` steps each ({glue:text}`basis_total` steps). That
# schedule runs here with the flows on the first {glue:text}`n_basis` of the
# test mixes (the paper's five levels are BASIS's, rounded; the flows of the
# other five are fine-tuned there as in chapter {ref}`sec-noise`). That the
# claim needs both runs below its bar is a deviation recorded after the
# five-level verdict was seen (`basis_schedule` in `book/scorecard.yaml`).
# The table compares the two schedules on the same {glue:text}`n_basis`
# mixes (mean over mixes of the mean over sources, 95% interval over those
# mixes).

# %% tags=["nbval-ignore-output"]
first = slice(0, n_basis)
si_basis = separation.si_sdr(truth[first], basis_est).numpy()  # [n_basis, 4]
basis_rows = {"flow: BASIS schedule": si_basis, "flow: annealed from noise": si_fixed["flow: annealed from noise"][first],
              "reference: mix as estimate": si_mix[first]}
basis_iv = {n: stats.cluster_bootstrap(v, seed=seed) for n, v in basis_rows.items()}
basis_imp = {n: stats.cluster_bootstrap(v - si_mix[first], seed=seed) for n, v in basis_rows.items()}
schedule_of = {"flow: BASIS schedule": f"{len(BASIS['sigmas'])} x {BASIS['steps']} from {max(BASIS['sigmas']):g}",
               "flow: annealed from noise": f"{len(SIGMAS)} x {P.sep_steps} from {max(SIGMAS):g}",
               "reference: mix as estimate": ""}
glue("n_basis", n_basis, display=False)
glue("basis_levels", len(BASIS["sigmas"]), display=False)
glue("basis_sigma_max", max(BASIS["sigmas"]), display=False)
glue("basis_sigma_min", min(BASIS["sigmas"]), display=False)
glue("basis_steps", BASIS["steps"], display=False)
glue("basis_total", len(BASIS["sigmas"]) * BASIS["steps"], display=False)
glue("sep_steps", P.sep_steps, display=False)
glue("basis_seconds", basis_trace.seconds, display=False)
glue("basis_seconds_per_mix", basis_trace.seconds / n_basis, display=False)
for key, n in (("basis", "flow: BASIS schedule"), ("five_first", "flow: annealed from noise")):
    glue(f"si_{key}", f"{basis_iv[n]:.1f}", display=False)
    glue(f"imp_{key}", f"{basis_imp[n]:.1f}", display=False)
pd.DataFrame({"schedule (levels x steps from sigma_1)": [schedule_of[n] for n in basis_rows],
              "SI-SDR, fixed order": [f"{basis_iv[n]:.1f}" for n in basis_rows],
              "SI-SDRi, fixed order": [f"{basis_imp[n]:.1f}" for n in basis_rows]},
             index=pd.Index(list(basis_rows), name=f"first {n_basis} test mixes (dB)"))

# %% [markdown]
# On these mixes BASIS's schedule reaches {glue:text}`si_basis` dB
# (SI-SDRi {glue:text}`imp_basis`), the five-level run
# {glue:text}`si_five_first` dB (SI-SDRi {glue:text}`imp_five_first`). Its
# {glue:text}`basis_total` steps took {glue:text}`basis_seconds:.0f` s for
# the {glue:text}`n_basis` mixes, {glue:text}`basis_seconds_per_mix:.0f` s a
# mix of {glue:text}`mix_ms:.0f` ms on this CPU (torch threads:
# {glue:text}`threads`).
#
# ## After every noise level
#
# SI-SDR (fixed order, mean over mixes of the mean over sources, with its
# 95% interval) of the annealed runs' estimates at the end of each noise
# level: from noise (solid) and from the truth (dashed) on all
# {glue:text}`n_mixes` mixes, and BASIS's schedule on the first
# {glue:text}`n_basis` (dotted).

# %% tags=["nbval-ignore-output"]
level_rows = []
for f in FAMILIES:
    for start in ("from noise", "from truth"):
        tr = traces[(f, f"annealed {start}")]
        for i, sg in enumerate(SIGMAS):
            v = stats.cluster_bootstrap(separation.si_sdr(truth, tr.levels[i]).numpy(), seed=seed)
            level_rows.append({"family": f, "start": start, "sigma": sg, "SI-SDR": v.value, "low": v.low, "high": v.high})
for i, sg in enumerate(BASIS["sigmas"]):
    v = stats.cluster_bootstrap(separation.si_sdr(truth[first], basis_trace.levels[i]).numpy(), seed=seed)
    level_rows.append({"family": "flow", "start": "BASIS schedule", "sigma": sg, "SI-SDR": v.value, "low": v.low,
                       "high": v.high})
levels = pd.DataFrame(level_rows)
levels.pivot_table(index="sigma", columns=["family", "start"], values="SI-SDR").sort_index(ascending=False).round(1)

# %% mystnb={"figure": {"caption": "SI-SDR after each noise level of the annealed sampler (fixed order; mean over mixes of the mean over sources, 95% interval shaded), started from noise (solid) and from the true sources plus noise (dashed), and BASIS's schedule with the flows on the first test mixes (dotted). The sampler runs from left to right.", "name": "fig-05-levels"}}
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for f, color in zip(FAMILIES, ("C0", "C3")):
    for start, ls in (("from noise", "-"), ("from truth", "--"), ("BASIS schedule", ":")):
        d = levels[(levels.family == f) & (levels.start == start)]
        if d.empty:
            continue
        ax.plot(d.sigma, d["SI-SDR"], ls, marker="o", ms=3, color=color, label=f"{f}, {start}")
        ax.fill_between(d.sigma, d.low, d.high, color=color, alpha=0.15, lw=0)
ax.axhline(si_mix.mean(), color="0.5", lw=0.8, ls=":", label="mix as estimate")
ax.set_xscale("log")
ax.invert_xaxis()
ax.set_xlabel(r"noise level $\sigma_i$ (end of level)")
ax.set_ylabel("SI-SDR (dB)")
_ = ax.legend(fontsize=7, ncols=2)

# %% [markdown]
# ## One mix, worked through
#
# The first test mix, its true sources and the estimates of the main
# methods: the first 10 ms, and the whole clip to listen to.

# %% mystnb={"figure": {"caption": "The first 10 ms of the first test mix (top), its true sources (second row) and the estimates of the main methods (one row per method), per source.", "name": "fig-05-example"}}
SHOWN = ["flow: annealed from noise", "wavenet: annealed from noise", "flow: annealed from truth",
         "supervised: Conv-TasNet", "oracle: ideal ratio mask"]
show = {("mix", s): mix[0] for s in data.SOURCES}
show.update({("truth", s): truth[0, k] for k, s in enumerate(data.SOURCES)})
for name in SHOWN:
    show.update({(name, s): est_of[name][0, k].clamp(-1.5, 1.5) for k, s in enumerate(data.SOURCES)})
row_names = list(dict.fromkeys(r for r, _ in show))
fig = plots.plot_waveform_grid(show, row_names, data.SOURCES, P.sample_rate, ms=10.0)

# %% tags=["nbval-ignore-output"]
display(Markdown("**the mix**"), player(mix[0], P.sample_rate))
for name in ["truth"] + SHOWN:
    display(Markdown(f"**{name}**"))
    for k, s in enumerate(data.SOURCES):
        wave = truth[0, k] if name == "truth" else show[(name, s)]
        display(Markdown(f"{s}:"), player(wave.clamp(-1, 1), P.sample_rate))

# %% [markdown]
# ## The trajectory of the sampler
#
# The two terms of the posterior along the annealed runs: each prior's
# log-likelihood per sample of its current estimate (under the prior of the
# current noise level; the WaveNets' surrogate `smooth_log_prob`), and the
# mean squared residual of the mix, from noise (solid) and from the truth
# (dashed). Vertical lines mark the changes of noise level.

# %% mystnb={"figure": {"caption": "Annealed Langevin dynamics, per family: log-likelihood per sample of each source's estimate under its prior at the current level (left; mean over mixes, symlog scale) and the mean squared mix residual (right, log scale); solid from noise, dashed from the truth.", "name": "fig-05-trace"}}
fig, axes = plt.subplots(len(FAMILIES), 2, figsize=(9, 2.8 * len(FAMILIES)), squeeze=False)
for row, f in enumerate(FAMILIES):
    for start, ls in (("from noise", "-"), ("from truth", "--")):
        tr = traces[(f, f"annealed {start}")]
        steps = np.arange(1, len(tr.sigma) + 1)
        for k, s in enumerate(data.SOURCES):
            axes[row, 0].plot(steps, tr.log_prior[:, :, k].mean(1), ls, color=plots.SOURCE_COLORS[s],
                              label=s if start == "from noise" else None, lw=1)
        axes[row, 1].semilogy(steps, tr.mix_error.mean(1), ls, color="k", lw=1, label=start)
    for ax in axes[row]:
        for b in np.flatnonzero(np.diff(tr.sigma)) + 1:
            ax.axvline(b + 0.5, color="0.7", lw=0.8)
    axes[row, 0].set_ylabel(f"{f}\nlog-lik. / sample")
    axes[row, 0].set_yscale("symlog", linthresh=1.0)
    axes[row, 1].set_ylabel("mix residual$^2$")
axes[-1, 0].set_xlabel("Langevin step")
axes[-1, 1].set_xlabel("Langevin step")
axes[0, 0].legend(ncols=2, fontsize=8)
_ = axes[0, 1].legend(fontsize=8)

# %% [markdown]
# ## Why it fails: sampler or priors?
#
# Three checks. The rules of the first and the third
# (`added_sampler_holds_truth`, `added_posterior_prefers_truth` in
# `book/scorecard.yaml`) were fixed before these runs were first made. The
# second (`added_posterior_keeps_truth`), and the deviation that puts it into
# the diagnosis in place of the first (`diagnosis_at_last_level`), were
# written after the first diagnosis had been seen; the opening page reads
# from git which came first.
#
# 1. **Does the whole schedule hold the truth?** Started at the true sources
#    plus noise of the *first* level, the annealed sampler ends above
#    {glue:text}`holds_bar:.0f` dB if it holds them. At $\sigma_1$ the target
#    is broad, and an annealed sampler is meant to forget its start there, so
#    leaving the truth does not by itself blame the priors.
# 2. **Does the posterior at $\sigma_L$ keep the truth?** Started at the true
#    sources plus noise of the *last* level, with that level's priors, step
#    size and {glue:text}`sep_steps` steps, the sampler should stay near them
#    (above {glue:text}`keeps_bar:.0f` dB; the start scores far higher) if the
#    target at $\sigma_L$ has its mass there. This can fail only if the
#    target leads away from the truth.
# 3. **Which does the target prefer?** At the last level the sampler
#    targets $\sum_k \log p_{k,\sigma_L}(\mathbf{s}_k) - \lVert \mathbf{m} -
#    g(\mathbf{s}) \rVert^2 / (2\sigma_L^2)$. If the true sources score
#    higher than what the sampler found from noise, the search fell short
#    (sampler); if not, the target's mode is elsewhere (priors). The check
#    uses the exact log-likelihoods per sample on every test mix; the true
#    sources' mix term is zero by construction.
#
# The diagnosis per family: "sampler" when the target prefers the truth
# (check 3); "priors" when the posterior at $\sigma_L$ does not keep the
# truth (check 2) or the target prefers the estimate; "both" when both
# apply. Before the deviation, check 1 stood where check 2 stands; that
# diagnosis is shown beside.

# %% tags=["nbval-ignore-output"]
glue("holds_bar", float(scorecard.rule("added_sampler_holds_truth")["threshold"]), display=False)
glue("keeps_bar", float(scorecard.rule("added_posterior_keeps_truth")["threshold"]), display=False)
glue("fails_bar", float(scorecard.rule("langevin_separation_fails")["threshold"]), display=False)


def log_posterior(f, sources, mixes=mix):
    """Per mix: the exact log prior (per sample, summed over sources) and the mix term at sigma_L."""
    with torch.no_grad():
        lp = sum(tuned[last][(f, s)].log_prob(sources[:, k].to(DEVICE)).cpu() for k, s in enumerate(data.SOURCES))
    mix_term = -(mixes - data.mix(sources)).pow(2).sum(1) / (2 * last**2)
    return (lp / P.sep_length).double().numpy(), (mix_term / P.sep_length).double().numpy()


rows = []
for f in FAMILIES:
    prior_t, mix_t = log_posterior(f, truth)
    prior_n, mix_n = log_posterior(f, estimates[(f, "annealed from noise")])
    prior_r, mix_r = log_posterior(f, estimates[(f, "annealed from truth")])
    prior_l, mix_l = log_posterior(f, estimates[(f, "last level from truth")])
    for b in range(P.sep_items):
        rows.append({"family": f, "mix": b, "log prior, truth": prior_t[b],
                     "log prior, from noise": prior_n[b], "mix term, from noise": mix_n[b],
                     "log prior, from truth": prior_r[b], "mix term, from truth": mix_r[b],
                     "log prior, last level from truth": prior_l[b], "mix term, last level from truth": mix_l[b],
                     "target prefers truth": bool(prior_t[b] + mix_t[b] > prior_n[b] + mix_n[b]),
                     "last level ends at least as high as truth": bool(prior_l[b] + mix_l[b] >= prior_t[b] + mix_t[b])})
post = pd.DataFrame(rows)
# the verdicts, by the rules file and from the per-mix numbers alone (the same function recomputes them
# from book/results/06_separation.json in the tests)
si_per_mix = {n: {"fixed_order": per_mix_values(si_fixed[n]), "best_permutation": per_mix_values(si_perm[n])}
              for n in order}
basis_out = {"sigmas": list(BASIS["sigmas"]), "steps_per_sigma": BASIS["steps"], "items": n_basis, "delta": P.sep_delta,
             "seconds": round(basis_trace.seconds, 1), "si_sdr_per_mix": per_mix_values(si_basis)}
card = scorecard.separation_rows({"n_mixes": P.sep_items, "profile": P.name, "methods": order,
                                  "si_sdr_per_mix": si_per_mix, "basis": basis_out,
                                  "posterior_check": {"per_mix": post.to_dict(orient="records")}})
post_iv = {}
for f in FAMILIES:
    prefers = card["added_posterior_prefers_truth"][f]
    post_iv[(f, "prefers")] = stats.Interval(**prefers["interval"])
    glue(f"prefers_{f}", int(post[post.family == f]["target prefers truth"].sum()), display=False)
    glue(f"prefers_{f}_iv", f"{post_iv[(f, 'prefers')]:.2f}", display=False)
    glue(f"ends_high_{f}", int(post[post.family == f]["last level ends at least as high as truth"].sum()),
         display=False)
    glue(f"diagnosis_{f}", card["diagnosis"][f], display=False)
    glue(f"diagnosis_old_{f}", card["diagnosis_old"][f], display=False)
    glue(f"verdict_holds_{f}", card["added_sampler_holds_truth"][f]["verdict"], display=False)
    glue(f"verdict_keeps_{f}", card["added_posterior_keeps_truth"][f]["verdict"], display=False)
    glue(f"verdict_prefers_{f}", prefers["verdict"], display=False)
    start_si = stats.cluster_bootstrap(separation.si_sdr(truth, traces[(f, "last level from truth")].start).numpy(),
                                       seed=seed)
    glue(f"keeps_start_{f}", f"{start_si:.1f}", display=False)
fails = card["langevin_separation_fails"]
glue("verdict_langevin_fails", fails["row"], display=False)
glue("verdict_langevin_fails_old", fails.get("row_old", fails["row"]), display=False)
glue("verdict_basis", fails["flow: BASIS schedule"]["verdict"], display=False)
glue("sigma_last", last, display=False)
summary = post.groupby("family")[[c for c in post.columns if c.startswith(("log prior", "mix term"))]].median()
summary["target prefers truth (fraction [95% interval])"] = [f"{post_iv[(f, 'prefers')]:.2f}" for f in summary.index]
summary.round(2).T

# %% [markdown]
# Medians over the {glue:text}`n_mixes` mixes, in nats per sample (the
# log prior summed over the four sources). Mix by mix:

# %% mystnb={"figure": {"caption": "The target's value (log prior + mix term, per sample, at the last noise level) of the true sources against that of the sampler's end points, per mix: the annealed run from noise (dots), the annealed run from the truth (crosses) and the last level alone from the truth (triangles). Above the diagonal the end point scores higher than the truth.", "name": "fig-05-posterior"}}
fig, axes = plt.subplots(1, len(FAMILIES), figsize=(9, 3.6), squeeze=False)
for ax, f in zip(axes[0], FAMILIES):
    d = post[post.family == f]
    x = d["log prior, truth"]
    ax.scatter(x, d["log prior, from noise"] + d["mix term, from noise"], s=10, label="annealed from noise")
    ax.scatter(x, d["log prior, from truth"] + d["mix term, from truth"], s=14, marker="x", label="annealed from truth")
    ax.scatter(x, d["log prior, last level from truth"] + d["mix term, last level from truth"], s=14, marker="^",
               facecolors="none", edgecolors="C2", label="last level from truth")
    lo, hi = np.nanmin(ax.get_xlim() + ax.get_ylim()), np.nanmax(ax.get_xlim() + ax.get_ylim())
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
    ax.set_title(f)
    ax.set_xlabel("target of the truth (nats / sample)")
axes[0, 0].set_ylabel("target of the end point")
_ = axes[0, 0].legend(fontsize=7)

# %% tags=["remove-cell"]
# not compared by the tests (it scores the Langevin outputs); checked instead:
assert len(post) == len(FAMILIES) * P.sep_items and np.isfinite(post.select_dtypes("number").to_numpy()).all()
assert (post[[c for c in post.columns if c.startswith("mix term")]] <= 0).all().all()

# %% [markdown]
# At $\sigma_L =$ {glue:text}`sigma_last`, the target ranks the true sources
# above the estimate found from noise for {glue:text}`prefers_flow` of
# {glue:text}`n_mixes` mixes with the flows (fraction and 95% interval
# {glue:text}`prefers_flow_iv`: {glue:text}`verdict_prefers_flow`) and for
# {glue:text}`prefers_wavenet` with the WaveNets
# ({glue:text}`prefers_wavenet_iv`: {glue:text}`verdict_prefers_wavenet`).
# Started at the truth at that level alone, the sampler ends at
# {glue:text}`si_flow_last_level_from_truth:.1f` dB
# [{glue:text}`si_flow_last_level_from_truth_lo:.1f`,
# {glue:text}`si_flow_last_level_from_truth_hi:.1f`] with the flows and
# {glue:text}`si_wavenet_last_level_from_truth:.1f` dB
# [{glue:text}`si_wavenet_last_level_from_truth_lo:.1f`,
# {glue:text}`si_wavenet_last_level_from_truth_hi:.1f`] with the WaveNets
# against the {glue:text}`keeps_bar:.0f` dB bar, from starts that scored
# {glue:text}`keeps_start_flow` and {glue:text}`keeps_start_wavenet` dB
# ("the posterior at $\sigma_L$ keeps the truth":
# {glue:text}`verdict_keeps_flow` and {glue:text}`verdict_keeps_wavenet`);
# its end point scores at least as
# high under the target as the truth itself on {glue:text}`ends_high_flow`
# (flows) and {glue:text}`ends_high_wavenet` (WaveNets) of the mixes. The
# whole schedule started from the truth ends at
# {glue:text}`si_flow_annealed_from_truth:.1f` dB (flows) and
# {glue:text}`si_wavenet_annealed_from_truth:.1f` dB (WaveNets)
# ({glue:text}`verdict_holds_flow` and {glue:text}`verdict_holds_wavenet`
# against {glue:text}`holds_bar:.0f` dB). By the rule above the diagnosis is
# **{glue:text}`diagnosis_flow`** for the flows and
# **{glue:text}`diagnosis_wavenet`** for the WaveNets (under the rule before
# the deviation: {glue:text}`diagnosis_old_flow` and
# {glue:text}`diagnosis_old_wavenet`).

# %% [markdown]
# ## Results file

# %%
out = {
    "profile": P.name,
    "seed": seed,
    "n_mixes": P.sep_items,
    "mix_length": P.sep_length,
    "sources": list(data.SOURCES),
    "sigmas": SIGMAS,
    "steps_per_sigma": P.sep_steps,
    "delta": P.sep_delta,
    "sgld": {"sigma": P.sgld_sigma, "steps": P.sgld_steps, "delta": plain_delta},
    "methods": order,
    "si_sdr": {n: {"fixed_order": iv[(n, "fixed")].to_json(), "best_permutation": iv[(n, "perm")].to_json(),
                   "improvement_fixed_order": iv[(n, "improvement")].to_json(),
                   "median_over_mixes_fixed_order": round(float(np.median(si_fixed[n].mean(1))), 4)}
               for n in order},
    "si_sdr_per_mix": si_per_mix,
    "bss_eval_sdr_mean": {n: round(float(sdr_fixed[n].mean()), 4) for n in order},
    "si_sdr_per_level": levels.round(4).to_dict(orient="records"),
    "supervised": {
        "first_stage": {"steps": P.tasnet_steps, "eval_on": "test windows (monitor)",
                        "eval_step": list(tasnet_first["eval_step"]),
                        "eval_si_sdr": [round(-v, 4) for v in tasnet_first["eval"]]},
        "continuation": {"rule": dict(P.tasnet_continue), "eval_on": "held-out training-split mixes",
                         "eval_step": list(tasnet_history["eval_step"]),
                         "eval_si_sdr": [round(-v, 4) for v in tasnet_history["eval"]],
                         "best_step": tasnet_plateau["best_step"], "stopped_at": tasnet_plateau["stopped_at"],
                         "halved_at": list(tasnet_plateau["halved_at"])},
        "converged": tasnet_converged,
        "steps": P.tasnet_steps + tasnet_plateau["best_step"],
        "seconds": round(tasnet_first["seconds"] + tasnet_history["seconds"], 1)},
    "basis": basis_out,
    "posterior_check": {"sigma": last, "per_mix": post.to_dict(orient="records")},
    "scorecard": card,
    "annealed_seconds": {f: round(traces[(f, "annealed from noise")].seconds, 1) for f in FAMILIES},
    "seconds_per_step_one_second_mix": {f: round(v, 4) for f, v in step_seconds.items()},
}
results_path = paths.update_results("06_separation", f"{P.name}/seed={seed}", out)
print(f"wrote {results_path.name}")

# %% [markdown]
# ## Summary
#
# - With the mix term switched on and the sign of eq. (3) corrected,
#   separation under these priors fails, now with numbers over
#   {glue:text}`n_mixes` mixes (means over mixes of the mean over sources,
#   95% intervals over mixes): from noise, annealed Langevin dynamics reaches
#   a mean SI-SDR of {glue:text}`si_flow_annealed_from_noise:.1f` dB
#   [{glue:text}`si_flow_annealed_from_noise_lo:.1f`,
#   {glue:text}`si_flow_annealed_from_noise_hi:.1f`] (flows) and
#   {glue:text}`si_wavenet_annealed_from_noise:.1f` dB
#   [{glue:text}`si_wavenet_annealed_from_noise_lo:.1f`,
#   {glue:text}`si_wavenet_annealed_from_noise_hi:.1f`] (WaveNets) in the
#   fixed order, and {glue:text}`siperm_flow_annealed_from_noise:.1f` and
#   {glue:text}`siperm_wavenet_annealed_from_noise:.1f` dB with the best
#   permutation, against {glue:text}`si_reference_mix_as_estimate:.1f` dB
#   for the mix itself. On the first {glue:text}`n_basis` mixes, BASIS's
#   own schedule ({glue:text}`basis_total` steps from
#   {glue:text}`basis_sigma_max`) reaches an SI-SDRi of
#   {glue:text}`imp_basis` dB, the five-level run
#   {glue:text}`imp_five_first` dB ({glue:text}`basis_seconds_per_mix:.0f` s
#   a mix for BASIS's).
#   The paper's claim that Langevin separation with these flow priors fails
#   (scorecard row `langevin_separation_fails`: the improvement over the mix
#   stays below {glue:text}`fails_bar:.0f` dB for SGLD, the five-level
#   annealed run and BASIS's schedule): **{glue:text}`verdict_langevin_fails`**
#   (on the five-level run alone, as first judged:
#   {glue:text}`verdict_langevin_fails_old`).
# - **Diagnosis** (rules of `book/scorecard.yaml`, with the deviation
#   `diagnosis_at_last_level`): flows **{glue:text}`diagnosis_flow`**,
#   WaveNets **{glue:text}`diagnosis_wavenet`**. The target prefers the truth
#   to the estimate from noise on a fraction {glue:text}`prefers_flow_iv` of
#   the mixes (flows) and {glue:text}`prefers_wavenet_iv` (WaveNets). At the
#   last level alone, started at the truth, the sampler ends at
#   {glue:text}`si_flow_last_level_from_truth:.1f` dB (flows) and
#   {glue:text}`si_wavenet_last_level_from_truth:.1f` dB (WaveNets)
#   against a bar of {glue:text}`keeps_bar:.0f` dB. The whole schedule
#   started from the truth ends at
#   {glue:text}`si_flow_annealed_from_truth:.1f` dB (flows) and
#   {glue:text}`si_wavenet_annealed_from_truth:.1f` dB (WaveNets), which by
#   the rule before the deviation gave {glue:text}`diagnosis_old_flow` and
#   {glue:text}`diagnosis_old_wavenet`.
# - The references, on the same mixes: the oracle ideal ratio mask reaches
#   {glue:text}`si_oracle_ideal_ratio_mask:.1f` dB and the supervised
#   Conv-TasNet {glue:text}`si_supervised_convtasnet:.1f` dB after
#   {glue:text}`tasnet_steps` training steps (the kept weights;
#   {glue:text}`tasnet_curve_short`). Both use what the paper's method may
#   not (the true sources, or training on mixes); they are references, not
#   bounds on the method.
