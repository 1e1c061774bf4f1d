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
# (sec-ood)=
# # Out-of-distribution: every source under every prior
#
# To separate a mix, each prior must give its own source a high likelihood
# and the other sources a low one. Following {cite}`nalisnick2019know`, the
# paper tests this by the mean log-likelihood of the test data of each source
# under each prior (its Figure 3), and by the likelihood of inputs that are no
# source at all: a constant and Gaussian noise (its Table 1). This chapter
# computes both with correct likelihoods for both families, puts the authors'
# own metric beside ours, and the paper's Figure 4: the same over the grid of
# noise levels of the data and of the fine-tuned priors ({ref}`sec-noise`
# fine-tunes them). It ends with each of the paper's claims and whether it
# holds here.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from sepnb import data, runs
from sepnb.analysis import ood, stats
from sepnb.book import plots, prose
from sepnb.core import checks, paths, profiles

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
sigma_wide = 0.359  # the widest noise-conditioned prior (Table 1)
seed = 0
music = "auto"  # music data: auto (musdb18 if MUSDB_PATH is set, else the stand-in) | musdb | standin

# %%
checks.check_parameters("profile", "sigma_wide", "seed", "music", seed=seed)  # a misspelt or bad parameter stops here
sigma_wide = ood.check_sigma(sigma_wide)
data.check_music_choice(music)
P = profiles.get(profile)
FAMILIES = ("wavenet", "flow")
print(f"profile {P.name!r}, seed {seed}, device {runs.device()}")

# %% tags=["nbval-ignore-output"]
def load(sigma=0.0):
    return {k: model for k, (model, _) in runs.toy_priors(P, seed=seed, sigma=sigma).items()}


clean = load()
tuned = {s: load(s) for s in P.sigmas}  # fine-tuned from the clean priors, one set per noise level
wide = tuned[sigma_wide] if sigma_wide in tuned else load(sigma_wide)

# %% [markdown]
# ## Figure 3: the cross-likelihood on clean test data
#
# Test windows of each source (held out, never seen in training), one per
# source from each of {glue:text}`fig3_items` test items, scored by the
# noise-free prior of every source. Rows are priors, columns the source of
# the data; entries are the mean log-likelihood per sample, with the
# standard deviation over examples in the table below.

# %%
windows3 = ood.fig3_windows(P, seed)  # Figure 3: one window per source from each of fig3_items test items
windows = windows3[: P.ood_items]  # Figure 4 and Table 1: the first ood_items of the same items
clean_data = {s: windows3[:, j] for j, s in enumerate(data.SOURCES)}
glue("fig3_items", P.fig3_items, display=False)
fig3 = {f: ood.cross_likelihood({s: clean[(f, s)] for s in data.SOURCES}, clean_data) for f in FAMILIES}
authors = ood.cross_likelihood({s: clean[("flow", s)] for s in data.SOURCES}, clean_data, metric="latent_log_prob")

# %% mystnb={"figure": {"caption": "The paper's Figure 3 on the toy data, with correct likelihoods: mean log-likelihood per sample of the test data of each source (columns) under the noise-free prior of each source (rows), for both families.", "name": "fig-04-cross"}}
fig = plots.plot_heatmaps({f: fig3[f].mean for f in FAMILIES}, data.SOURCES, data.SOURCES)

# %%
spread = pd.concat(
    {f: pd.DataFrame(fig3[f].mean.round(2).astype(str), index=data.SOURCES, columns=data.SOURCES)
        + " ± " + pd.DataFrame(fig3[f].std.round(2).astype(str), index=data.SOURCES, columns=data.SOURCES)
     for f in FAMILIES},
    names=["family", "prior"],
)
spread

# %% [markdown]
# ### How sure are these means?
#
# A mean over a few hundred windows can be dominated by a handful of
# outliers (the standard deviations above reach thousands of nats per
# sample). Below: each mean with its 95% bootstrap interval (resampling test
# items, 2000 resamples), the median, and the authors' *floored* mean, which
# sets every example below -1000 to -1000 before averaging; that is how the
# published tables were computed, so it is the variant to compare with the
# paper's numbers.

# %% tags=["nbval-ignore-output"]
idx3 = stats.resample_indices(P.fig3_items, 2000, seed)
fig3_iv = {}
for f in FAMILIES:
    r = fig3[f]
    lo, hi = np.percentile(r.values[..., idx3].mean(-1), [2.5, 97.5], axis=-1)  # [prior, data]
    fig3_iv[f] = {"mean": r.mean, "low": lo, "high": hi, "median": np.median(r.values, -1),
                  "floored_mean": np.maximum(r.values, -1000.0).mean(-1)}


def cells(f, text):
    v = fig3_iv[f]
    return pd.DataFrame([[text(v, i, j) for j in range(len(data.SOURCES))] for i in range(len(data.SOURCES))],
                        index=data.SOURCES, columns=data.SOURCES)


pd.concat({f: cells(f, lambda v, i, j: f"{v['mean'][i, j]:.3g} [{v['low'][i, j]:.3g}, {v['high'][i, j]:.3g}]")
           for f in FAMILIES}, names=["family: mean [95% interval]", "prior"])

# %% tags=["nbval-ignore-output"]
pd.concat({f: cells(f, lambda v, i, j: f"{v['median'][i, j]:.3g} / {v['floored_mean'][i, j]:.3g}")
           for f in FAMILIES}, names=["family: median / floored mean", "prior"])

# %% tags=["remove-cell"]
# The two tables above print trained models' log-likelihoods to three significant digits, which can land on
# a rounding boundary and print differently on another CPU (or run); the tests check instead:
for f in FAMILIES:
    v = fig3_iv[f]
    assert np.isfinite(v["mean"]).all() and (v["low"] <= v["high"]).all()
    assert (v["floored_mean"] >= v["mean"] - 1e-9).all() and (v["floored_mean"] >= -1000).all()

# %% [markdown]
# ### Discrimination
#
# Per prior: the ROC-AUC of its own source's test examples against the other
# sources' examples, scored by its log-likelihood, and whether each source's
# own prior gives it the highest mean likelihood among the four priors.

# %%
disc = pd.DataFrame(
    {
        (f, q): v
        for f in FAMILIES
        for q, v in (("AUC own vs other", fig3[f].aucs()), ("own prior ranks first", fig3[f].own_prior_ranks_first()))
    },
    index=list(data.SOURCES),
)
auc_iv = {f: fig3[f].auc_intervals(resamples=2000, seed=seed) for f in FAMILIES}
for f in FAMILIES:
    prose.glue_number(f"auc_{f}", float(fig3[f].aucs().mean()), decimals=2)
    glue(f"auc_{f}_iv", f"{auc_iv[f][1]:.2f}", display=False)
    glue(f"first_{f}", int(fig3[f].own_prior_ranks_first().sum()), display=False)
    disc[(f, "AUC [95% interval]")] = [f"{iv:.2f}" for iv in auc_iv[f][0]]
disc = disc[[(f, q) for f in FAMILIES for q in ("AUC own vs other", "AUC [95% interval]", "own prior ranks first")]]
disc.round(3)

# %% [markdown]
# The paper reports that on the toy data only the flows behave as hoped:
# high likelihood in-class, low out of class. Here the noise-free flows reach
# a mean AUC of {glue:text}`auc_flow_iv` (95% interval over test items) and
# rank the own prior first for {glue:text}`first_flow` of 4 sources; the
# WaveNets reach {glue:text}`auc_wavenet_iv` and {glue:text}`first_wavenet`
# of 4.
#
# ### Other training seeds
#
# Every interval above is over test items: it says how much the numbers
# would move with other test windows, not with another training run of the
# same priors. The rules file fixes, before these runs existed
# (`defaults.training_seeds` in `book/scorecard.yaml`), that Figure 3's rows
# are judged over {glue:text}`n_train_seeds` training seeds: every noise-free
# toy prior of both families trained again with seeds
# {glue:text}`train_seeds` (initialisation and training draws; the test
# windows stay the same), and a two-level bootstrap that resamples seeds and
# items. Below, each seed's mean AUC with its item interval, its weakest and
# strongest prior, and how many sources its own prior ranks first.

# %% tags=["nbval-ignore-output"]
seed_priors = {k: clean if k == seed else {m: model for m, (model, _) in runs.toy_priors(P, seed=k).items()}
               for k in P.train_seeds}
fig3_seeds = {k: fig3 if k == seed else
              {f: ood.cross_likelihood({s: seed_priors[k][(f, s)] for s in data.SOURCES}, clean_data) for f in FAMILIES}
              for k in P.train_seeds}
glue("n_train_seeds", len(P.train_seeds), display=False)
glue("train_seeds", ", ".join(str(k) for k in P.train_seeds), display=False)
seed_rows = []
for f in FAMILIES:
    for k, r in fig3_seeds.items():
        a = r[f].aucs()
        seed_rows.append({"family": f, "training seed": k,
                          "mean AUC [95% interval over items]": f"{r[f].auc_intervals(2000, seed)[1]:.2f}",
                          "weakest prior": f"{data.SOURCES[int(a.argmin())]} {a.min():.2f}",
                          "strongest prior": f"{data.SOURCES[int(a.argmax())]} {a.max():.2f}",
                          "own prior first": f"{int(r[f].own_prior_ranks_first().sum())}/4"})
for f in FAMILIES:
    means = [float(r[f].aucs().mean()) for r in fig3_seeds.values()]
    prose.glue_number(f"seed_auc_min_{f}", min(means), decimals=2)
    prose.glue_number(f"seed_auc_max_{f}", max(means), decimals=2)
pd.DataFrame(seed_rows).set_index(["family", "training seed"])

# %% mystnb={"figure": {"caption": "Each noise-free prior's AUC (its own source against the other three, clean test windows) for every training seed, both families: one marker per seed. 0.5 is chance; the dashed line is the scorecard's discrimination bar.", "name": "fig-04-seeds"}}
from sepnb.analysis import scorecard  # noqa: E402  (the bar is the rules file's, not typed here)

fig, axes = plt.subplots(1, len(FAMILIES), figsize=(9, 2.8), sharey=True, squeeze=False)
for ax, f in zip(axes[0], FAMILIES):
    for n, (k, r) in enumerate(fig3_seeds.items()):
        x = np.arange(len(data.SOURCES)) + (n - (len(fig3_seeds) - 1) / 2) * 0.12
        ax.plot(x, r[f].aucs(), "o", ms=4, label=f"seed {k}")
    ax.axhline(scorecard.rules()["defaults"]["bars"]["discrimination_auc"], color="0.5", ls="--", lw=0.8)
    ax.set_xticks(range(len(data.SOURCES)), data.SOURCES)
    ax.set_title(f)
axes[0, 0].set_ylabel("AUC own vs other")
_ = axes[0, 0].legend(fontsize=8)

# %% [markdown]
# Across the seeds the flows' mean AUC lies between
# {glue:text}`seed_auc_min_flow:.2f` and {glue:text}`seed_auc_max_flow:.2f`,
# the WaveNets' between {glue:text}`seed_auc_min_wavenet:.2f` and
# {glue:text}`seed_auc_max_wavenet:.2f`; the scorecard at the end of this
# chapter judges the rows over all seeds.
#
# ### Where does discrimination come from?
#
# For each test window: does its own prior give it the highest score of the
# four priors? Below, the fraction of windows for which it does, against the
# frequency of the window's source (six log-spaced bins over the book's
# range). The dashed line marks the highest frequency of the authors' runs
# (piano key 65, about 1.1 kHz, `ORIGINAL_CODE.md`); the book's data reach
# {glue:text}`f_max:.0f` Hz, where a period is {glue:text}`period_min:.1f`
# samples long.

# %% mystnb={"figure": {"caption": "Fraction of test windows whose own noise-free prior scores them highest of the four priors, against the frequency of the source (log-spaced bins; points at the bins' geometric centres), per source and family. Dashed: the authors' highest frequency.", "name": "fig-04-frequency"}}
AUTHORS_F_MAX = 1101.0  # piano key 65 at A4 = 440 Hz: the highest frequency of the authors' runs
freq = data.toy_params(np.arange(P.fig3_items), seed=seed, split="test").freq  # [items, sources], Hz
edges = np.geomspace(data.F_MIN, data.F_MAX, 7)
centres = np.sqrt(edges[:-1] * edges[1:])
fig, axes = plt.subplots(1, len(FAMILIES), figsize=(9, 3), sharey=True, squeeze=False)
for ax, f in zip(axes[0], FAMILIES):
    first = fig3[f].values.argmax(axis=0) == np.arange(len(data.SOURCES))[:, None]  # [data, item]
    for j, s in enumerate(data.SOURCES):
        b = np.digitize(freq[:, j], edges[1:-1])
        rate = [first[j, b == k].mean() if (b == k).any() else np.nan for k in range(len(centres))]
        ax.plot(centres, rate, "o-", color=plots.SOURCE_COLORS[s], ms=3, lw=1, label=s)
    low = freq <= AUTHORS_F_MAX
    prose.glue_number(f"first_rate_low_{f}", float(first.T[low].mean()), decimals=2)
    prose.glue_number(f"first_rate_high_{f}", float(first.T[~low].mean()), decimals=2)
    hi_rate, lo_rate = prose.rounded(first.T[~low].mean(), 2), prose.rounded(first.T[low].mean(), 2)
    glue(f"high_vs_low_{f}", "higher than" if hi_rate > lo_rate else "lower than" if hi_rate < lo_rate
         else "the same as", display=False)
    ax.axvline(AUTHORS_F_MAX, color="0.5", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_title(f)
    ax.set_xlabel("frequency of the source (Hz)")
axes[0, 0].set_ylabel("own prior scores highest")
glue("share_above_authors", float((freq > AUTHORS_F_MAX).mean()), display=False)
glue("f_max", data.F_MAX, display=False)
glue("period_min", P.sample_rate / data.F_MAX, display=False)
_ = axes[0, 0].legend(fontsize=8, ncols=2)

# %% [markdown]
# Over all sources, the own prior scores a window highest for a fraction
# {glue:text}`first_rate_low_flow:.2f` of the windows at or below 1.1 kHz
# and {glue:text}`first_rate_high_flow:.2f` above it with the flows;
# {glue:text}`first_rate_low_wavenet:.2f` and
# {glue:text}`first_rate_high_wavenet:.2f` with the WaveNets: above
# 1.1 kHz, at the frequencies the authors did not use, the flows' rate is
# {glue:text}`high_vs_low_flow` at or below it, the WaveNets'
# {glue:text}`high_vs_low_wavenet` at or below it. A share
# of {glue:text}`share_above_authors:.2f` of the book's test windows lies
# above the authors' highest frequency.
#
# ### The authors' metric
#
# The values the paper published for the flows (the thesis tables; the last
# block of the table below) are the mean of $\log \mathcal{N}(\mathbf{z})$ in
# latent space per sample, *without* the log-determinant of eq. (6). The same metric computed by our code on our
# flows (`FloWaveNet.latent_log_prob`) shows how much of the difference comes
# from the metric rather than from the models:

# %%
paper_flow = pd.DataFrame(ood.PAPER_FIG3_FLOW, index=data.SOURCES, columns=data.SOURCES)
compare = pd.concat(
    {
        "ours: log-likelihood": pd.DataFrame(fig3["flow"].mean, index=data.SOURCES, columns=data.SOURCES),
        "ours: authors' metric (no log-det)": pd.DataFrame(authors.mean, index=data.SOURCES, columns=data.SOURCES),
        "paper (authors' metric)": paper_flow,
    },
    names=["flow values", "prior"],
)
prose.glue_number("authors_auc", float(authors.aucs().mean()), decimals=2)
compare.round(2)

# %% [markdown]
# Without the log-determinant, a flow is rewarded for contracting its input
# toward zero in latent space. On our flows, trained with the exact
# likelihood, the authors' metric puts the diagonal at a mean of
# {glue:text}`authors_diag:.2f` nats per sample, {glue:text}`authors_diag_sign`
# (the paper: {glue:text}`paper_diag:.2f`), and gives a mean AUC of
# {glue:text}`authors_auc:.2f`. The authors also *trained* with the
# log-determinant weighted by 1/4, see {ref}`sec-deviations`); chapter
# {ref}`sec-variants` trains flows with that objective and asks whether it
# gives the published positive diagonal.
#
# ## Figure 4: what noise-conditioning does to the cross-likelihood
#
# Annealed Langevin separation uses a prior fine-tuned at each noise level
# $\sigma$ on data noised at the same level ({ref}`sec-noise`). The paper's
# Figure 4 asks whether these smoother priors still tell the sources apart.
# Here every prior set (noise-free, and fine-tuned at each $\sigma$) scores
# the test windows noised at every level (one noise draw, scaled, clipped to
# $[-1, 1]$), the same windows as in Figure 3.

# %% tags=["nbval-ignore-output"]
test_sigmas = [0.0, *P.sigmas]
prior_sets = {
    f: {0.0: {s: clean[(f, s)] for s in data.SOURCES}, **{ps: {s: tuned[ps][(f, s)] for s in data.SOURCES} for ps in P.sigmas}}
    for f in FAMILIES
}
t0 = time.perf_counter()
grid = {f: ood.noise_grid(prior_sets[f], windows, data.SOURCES, test_sigmas, seed=seed) for f in FAMILIES}
grid_seconds = time.perf_counter() - t0
n_scored = sum(g.values.size for g in grid.values())
glue("grid_minutes", grid_seconds / 60, display=False)
glue("grid_windows", n_scored, display=False)
glue("grid_items", P.ood_items, display=False)
glue("grid_priors", sum(len(ps) * len(data.SOURCES) for ps in prior_sets.values()), display=False)

# %% [markdown]
# The whole grid, {glue:text}`grid_priors` priors scoring
# {glue:text}`grid_windows:,` windows of {glue:text}`input_length` samples,
# took {glue:text}`grid_minutes:.1f` minutes on this machine (batched, no
# autograd). Each small panel below is one 4 x 4 cross-likelihood matrix as
# in Figure 3 (rows: prior, columns: test data); all panels of a family
# share one colour scale, read off its colour bar; a white square marks a test source whose own prior gives it
# the highest mean likelihood, and the title gives the panel's mean AUC.

# %% mystnb={"figure": {"caption": "Figure 4, FloWaveNet: cross-likelihood of the toy test data noised at the level of the row, under the priors fine-tuned at the level of the column (left: noise-free). One colour scale for all panels (colour bar, right). White squares: the own prior ranks first; titles: mean AUC.", "name": "fig-04-grid-flow"}}
fig = plots.plot_noise_grid(grid["flow"].mean, grid["flow"].prior_sigmas, test_sigmas, data.SOURCES, aucs=grid["flow"].aucs())

# %% mystnb={"figure": {"caption": "Figure 4, WaveNet: as the figure above.", "name": "fig-04-grid-wavenet"}}
fig = plots.plot_noise_grid(grid["wavenet"].mean, grid["wavenet"].prior_sigmas, test_sigmas, data.SOURCES, aucs=grid["wavenet"].aucs())

# %% [markdown]
# The discrimination of each panel in one picture: the mean AUC (own source
# against the others, averaged over the four priors) for each test noise
# level (rows) and prior (columns). The diagonal is the case that matters for
# annealed Langevin dynamics: data and prior at the same noise level.

# %% mystnb={"figure": {"caption": "Mean ROC-AUC over the four priors for each test noise level (rows) and prior noise level (columns, 0 = noise-free), both families. 0.5 is chance, 1 perfect discrimination.", "name": "fig-04-grid-auc"}}
sigma_labels = ["0" if v == 0 else f"{v:g}" for v in test_sigmas]
fig = plots.plot_heatmaps(
    {f: grid[f].aucs().mean(-1).T for f in FAMILIES}, sigma_labels, sigma_labels, fmt="{:.2f}",
    xlabel="prior noise level", ylabel="test noise level", cbar_label="mean AUC",
)

# %%
matched = pd.DataFrame(
    {(f, q): v for f in FAMILIES for q, v in (
        ("mean AUC", [grid[f].aucs()[a, a].mean() for a in range(len(test_sigmas))]),
        ("own prior first", [int(grid[f].own_prior_ranks_first()[a, a].sum()) for a in range(len(test_sigmas))]),
        ("own-source log-lik.", [np.diag(grid[f].mean[a, a]).mean() for a in range(len(test_sigmas))]),
    )},
    index=pd.Index(sigma_labels, name="sigma (data = prior)"),
)
# intervals over test items (2000 resamples); the change from clean data is a paired difference on the
# same resampled items, and counts only when its interval excludes zero
idx4 = stats.resample_indices(P.ood_items, 2000, seed)
for f in FAMILIES:
    draws = [grid[f].cell(a, a).auc_draws(idx4).mean(1) for a in range(len(test_sigmas))]
    values = [grid[f].cell(a, a).aucs().mean() for a in range(len(test_sigmas))]
    matched[(f, "mean AUC [95% interval]")] = [f"{stats.from_draws(v, d, P.ood_items):.2f}"
                                               for v, d in zip(values, draws)]
    changes = [stats.from_draws(v - values[0], d - draws[0], P.ood_items) for v, d in zip(values, draws)]
    matched[(f, "change from clean [95%]")] = ["" if a == 0 else f"{c:+.2f}" for a, c in enumerate(changes)]
    smallest = changes[1]
    glue(f"small_sigma_change_{f}", f"{smallest:+.2f}", display=False)
    glue(f"small_sigma_reading_{f}", "a decay" if smallest.high < 0 else "a rise" if smallest.low > 0
         else "no measurable change", display=False)
matched = matched[[(f, q) for f in FAMILIES for q in ("mean AUC", "mean AUC [95% interval]", "change from clean [95%]",
                                                       "own prior first", "own-source log-lik.")]]
for f in FAMILIES:
    diag = np.array([grid[f].aucs()[a, a].mean() for a in range(len(test_sigmas))])
    for a, v in enumerate(test_sigmas):
        prose.glue_number(f"matched_auc_{f}_{v:g}", float(diag[a]), decimals=2)
    decayed = [v for v, d in zip(test_sigmas[1:], diag[1:]) if diag[0] - d > 0.05]
    glue(f"decay_onset_{f}", f"sigma = {decayed[0]:g}" if decayed else "no level of the grid", display=False)
    # the noise-free priors on noisy data, and the widest priors on clean data
    prose.glue_number(f"clean_prior_on_wide_{f}", float(grid[f].aucs()[0, -1].mean()), decimals=2)
    prose.glue_number(f"wide_prior_on_clean_{f}", float(grid[f].aucs()[-1, 0].mean()), decimals=2)
# how loud the widest noise is next to a source: its standard deviation over each test window's RMS
noise_to_rms = (max(P.sigmas) / windows.double().pow(2).mean(-1).sqrt()).numpy()  # [items, sources]
prose.glue_number("noise_rms_pct_lo", float(100 * noise_to_rms.min()), decimals=0)
prose.glue_number("noise_rms_pct_hi", float(100 * noise_to_rms.max()), decimals=0)
matched.round(3)

# %% [markdown]
# Along the diagonal (the table above), the flows' mean AUC goes from
# {glue:text}`matched_auc_flow_0:.2f` on clean data to
# {glue:text}`matched_auc_flow_0.01:.2f` at $\sigma = 0.01$,
# {glue:text}`matched_auc_flow_0.129:.2f` at 0.129 and
# {glue:text}`matched_auc_flow_0.359:.2f` at 0.359; the WaveNets' from
# {glue:text}`matched_auc_wavenet_0:.2f` to
# {glue:text}`matched_auc_wavenet_0.01:.2f`,
# {glue:text}`matched_auc_wavenet_0.129:.2f` and
# {glue:text}`matched_auc_wavenet_0.359:.2f`. Taking a drop of the mean AUC
# by more than 0.05 from clean data as the onset of the decay, it sets in at
# {glue:text}`decay_onset_flow` for the flows and at
# {glue:text}`decay_onset_wavenet` for the WaveNets: here the decay is
# gradual and grows with the noise level, rather than immediate at the
# smallest level as the paper puts it. At the smallest level,
# $\sigma = 0.01$, the paired change from clean data is
# {glue:text}`small_sigma_change_flow` for the flows
# ({glue:text}`small_sigma_reading_flow`) and
# {glue:text}`small_sigma_change_wavenet` for the WaveNets
# ({glue:text}`small_sigma_reading_wavenet`), with 95% intervals over the
# {glue:text}`grid_items` test items of the grid. The last column of the table shows the
# price of smoothing: a prior fine-tuned at a wide noise level spreads its mass
# over everything within that noise of a training example, and at
# $\sigma = 0.359$ the noise's standard deviation is
# {glue:text}`noise_rms_pct_lo:.0f`% to {glue:text}`noise_rms_pct_hi:.0f`%
# of a test window's RMS.
#
# Off the diagonal, the noise-free flows score data noised at 0.359 with a
# mean AUC of {glue:text}`clean_prior_on_wide_flow:.2f` (WaveNets
# {glue:text}`clean_prior_on_wide_wavenet:.2f`), and the flows fine-tuned at
# 0.359 score clean data with {glue:text}`wide_prior_on_clean_flow:.2f`
# (WaveNets {glue:text}`wide_prior_on_clean_wavenet:.2f`).
#
# Every cell of the grid has its intervals too: the 95% bootstrap interval
# (2000 resamples of the {glue:text}`grid_items` test items) of every mean
# log-likelihood and every per-prior AUC of Figure 4 is in the results file
# (`figure4_intervals`). Their widths, over all
# {glue:text}`grid_cells` panels:

# %% tags=["nbval-ignore-output"]
fig4_iv, widths = {}, []
for f in FAMILIES:
    g = grid[f]
    # mean log-likelihood per sample: every (prior level, data level, prior, data) over resampled items
    mean_draws = g.values[..., idx4].mean(-1)  # [a, b, prior, data, resamples]
    m_lo, m_hi = np.percentile(mean_draws, [2.5, 97.5], axis=-1)
    auc_draws = np.array([[g.cell(a, b).auc_draws(idx4) for b in range(len(test_sigmas))]
                          for a in range(len(test_sigmas))])  # [a, b, resamples, prior]
    a_lo, a_hi = np.percentile(auc_draws, [2.5, 97.5], axis=2)
    fig4_iv[f] = {"axes": ["prior_sigma", "test_sigma", "prior", "data"], "mean_low": m_lo.round(4).tolist(),
                  "mean_high": m_hi.round(4).tolist(), "auc_axes": ["prior_sigma", "test_sigma", "prior"],
                  "auc_low": a_lo.round(4).tolist(), "auc_high": a_hi.round(4).tolist()}
    mean_width, auc_width = (m_hi - m_lo).ravel(), (a_hi - a_lo).ravel()
    widths.append({"family": f, "AUC: median width": np.median(auc_width), "AUC: widest": auc_width.max(),
                   "mean log-lik.: median width": np.median(mean_width), "mean log-lik.: widest": mean_width.max()})
glue("grid_cells", len(test_sigmas) ** 2, display=False)
pd.DataFrame(widths).set_index("family").map("{:.3g}".format)

# %% [markdown]
# ## Table 1: constant and noise inputs
#
# Constant zero and Gaussian noise $\mathcal{N}(0, 0.5)$ (standard deviation
# 0.5, clipped to $[-1, 1]$) of the same length as the test windows, scored by
# the noise-free priors and by the priors fine-tuned at the widest noise level.

# %%
gen = torch.Generator().manual_seed(seed + 7)
odd_inputs = {
    "zeros": torch.zeros(P.ood_items, P.ood_length),
    "N(0, 0.5)": (0.5 * torch.randn(P.ood_items, P.ood_length, generator=gen)).clamp(-1, 1),
}
table1, table1_per_probe = {}, {}
for f in FAMILIES:
    for label, models_ in (("noise-free", clean), (f"sigma={sigma_wide:g}", wide)):
        r = ood.cross_likelihood({s: models_[(f, s)] for s in data.SOURCES}, odd_inputs)
        for k, inp in enumerate(odd_inputs):
            table1[(inp, f, label)] = r.mean[:, k]
            table1_per_probe[f"{inp} | {f} | {label}"] = r.values[:, k].round(4).tolist()  # [prior, probe]
for label, models_ in (("noise-free", clean), (f"sigma={sigma_wide:g}", wide)):  # the paper's metric, for comparison
    r = ood.cross_likelihood({s: models_[("flow", s)] for s in data.SOURCES}, odd_inputs, metric="latent_log_prob")
    for k, inp in enumerate(odd_inputs):
        table1[(inp, "flow, authors' metric", label)] = r.mean[:, k]
table1 = pd.DataFrame(table1, index=list(data.SOURCES)).T.sort_index(level=0, sort_remaining=False)
table1.index.names = ["input", "family", "prior"]
glue("input_length", P.ood_length, display=False)
table1.round(1)

# %% [markdown]
# The same entries with 95% bootstrap intervals over the
# {glue:text}`n_probes` probes of each input (2000 resamples; zeros are one
# input repeated, so their interval has no width):

# %% tags=["nbval-ignore-output"]
t1_iv = {}
for key, vals in table1_per_probe.items():
    inp, f, label = key.split(" | ")
    v = np.asarray(vals)  # [prior, probe]
    t1_iv[(inp, f, label)] = [f"{stats.cluster_bootstrap(v[k], seed=seed):.1f}" for k in range(len(data.SOURCES))]
glue("n_probes", P.ood_items, display=False)
t1_iv = pd.DataFrame(t1_iv, index=list(data.SOURCES)).T
t1_iv.index.names = ["input", "family", "prior"]
t1_iv

# %% [markdown]
# Inputs are {glue:text}`input_length` samples long; entries are mean
# log-likelihoods per sample (the rows "flow, authors' metric" leave out the
# log-determinant, as the paper's numbers do). The paper's Table 1 (flows,
# authors' metric):

# %%
pd.DataFrame(ood.PAPER_TABLE1_FLOW, index=data.SOURCES).T.rename_axis(["input", "sigma"]).map("{:.2g}".format)

# %% [markdown]
# ### The WaveNets' scores, taken apart
#
# A WaveNet's density is the categorical probability of each sample's mu-law
# bin divided by the bin's width: $\log p(x_t) = \log P(c_t) - \log
# w(c_t)$. The bins are narrowest next to zero, so $-\log w$ is largest
# there: a waveform that sits near zero collects a large positive term from
# the bin widths alone, whatever the network predicts. The table splits the
# noise-free WaveNets' mean score per sample into the two parts and gives
# the categorical part in bits per sample; a uniform guess over the 256
# classes scores $-8$ bits.

# %%
from sepnb.priors import mu_law_encode, mu_law_log_bin_width


def bin_term(x, n_classes):
    """-mean_t log w(c_t) per window (nats per sample): the bin widths' part of the density."""
    return (-mu_law_log_bin_width(mu_law_encode(x.clamp(-1, 1), n_classes), n_classes).mean(-1)).numpy()


parts = []
for j, s in enumerate(data.SOURCES):
    n_cls = clean[("wavenet", s)].n_classes
    for inp, x, density in (
        ("own test windows", windows3[:, j], fig3["wavenet"].values[j, j].mean()),
        *((name, odd_inputs[name], table1.loc[(name, "wavenet", "noise-free"), s]) for name in odd_inputs),
    ):
        width = float(bin_term(x, n_cls).mean())
        parts.append({"prior": s, "input": inp, "density (nats/sample)": float(density),
                      "bin-width term (nats/sample)": width,
                      "categorical (bits/sample)": (float(density) - width) / np.log(2)})
parts = pd.DataFrame(parts).set_index(["prior", "input"])
z = parts.loc[("sine", "zeros")]
prose.glue_number("wn_zero_density_sine", float(z["density (nats/sample)"]), decimals=2)
prose.glue_number("wn_zero_width_sine", float(z["bin-width term (nats/sample)"]), decimals=2)
prose.glue_number("wn_zero_bits_sine", float(z["categorical (bits/sample)"]), decimals=1)
glue("wn_zero_bits_vs_uniform", "better" if z["categorical (bits/sample)"] > -8 else "worse", display=False)
glue("wn_zero_reading", "Part of the WaveNet's \"zeros are likely\" is the unit (a density on [-1, 1] with its "
     "finest bins at zero); the network's own prediction of zeros is also better than a uniform guess."
     if z["categorical (bits/sample)"] > -8 else "A WaveNet's \"zeros are likely\" is therefore a statement about "
     "the unit (a density on [-1, 1] with its finest bins at zero), not about what the network predicts.",
     display=False)
parts.round(2)

# %% [markdown]
# Zeros under the noise-free sine WaveNet score
# {glue:text}`wn_zero_density_sine:.2f` nats per sample as a density, of
# which {glue:text}`wn_zero_width_sine:.2f` is the bin-width term: as a
# categorical prediction that is {glue:text}`wn_zero_bits_sine:.1f` bits per
# sample, {glue:text}`wn_zero_bits_vs_uniform` than a uniform guess over 256
# classes. {glue:text}`wn_zero_reading` The flows' densities have no such
# term.

# %% [markdown]
# ### The whole sweep
#
# Constant inputs at every level in $[-1, 1]$ and Gaussian noise of growing
# standard deviation, under the noise-free priors.

# %%
levels = np.linspace(-1, 1, 21)
stds = np.array([0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
const_inputs = {f"{v:+.1f}": torch.full((1, P.ood_length), float(v)) for v in levels}
noise_inputs = {f"{s:g}": (s * torch.randn(1, P.ood_length, generator=gen)).clamp(-1, 1) for s in stds}
sweeps = {}
for f in FAMILIES:
    priors_f = {s: clean[(f, s)] for s in data.SOURCES}
    sweeps[(f, "const")] = ood.cross_likelihood(priors_f, const_inputs).mean
    sweeps[(f, "noise")] = ood.cross_likelihood(priors_f, noise_inputs).mean

# %% mystnb={"figure": {"caption": "Mean log-likelihood per sample of constant inputs (left column) and of Gaussian noise (right column) under the noise-free priors; one line per prior.", "name": "fig-04-sweep"}}
fig, axes = plt.subplots(2, 2, figsize=(8, 5), sharex="col")
for row, f in enumerate(FAMILIES):
    for k, s in enumerate(data.SOURCES):
        color = plots.SOURCE_COLORS[s]
        axes[row, 0].plot(levels, sweeps[(f, "const")][k], color=color, label=s)
        axes[row, 1].plot(stds, sweeps[(f, "noise")][k], "o-", color=color, label=s, ms=3)
    axes[row, 0].set_ylabel(f"{f}\nlog-lik. / sample")
    axes[row, 0].set_yscale("symlog", linthresh=1.0)
    axes[row, 1].set_yscale("symlog", linthresh=1.0)
axes[1, 0].set_xlabel("constant level")
axes[1, 1].set_xlabel("noise standard deviation")
axes[1, 1].set_xscale("log")
_ = axes[0, 1].legend()

# %% [markdown]
# ## The music data: Figure 3, right
#
# The same measurement on the music data of chapter {ref}`sec-data-music`:
# test windows of each stem, scored by the noise-free music prior of every
# stem (chapter {ref}`sec-models` trains them), and Table 1's two inputs under
# the music priors. The paper reports that on musdb18 neither family tells
# the stems apart.

# %% tags=["nbval-ignore-output"]
music_root, music_label = data.music_source(P, music)
music_priors = {k: m for k, (m, _) in runs.music_priors(P, seed=seed, music=music).items()}
music_test = data.music_windows(P, "test", music, window=P.music_ood_length, n_items=P.ood_items, seed=seed)
music_windows = music_test.batch(np.arange(len(music_test)))  # [n, 4, T]
print(f"music data: {music_label}")

# %%
STEMS = data.MUSIC_SOURCES
music_data = {s: music_windows[:, j] for j, s in enumerate(STEMS)}
fig3_music = {f: ood.cross_likelihood({s: music_priors[(f, s)] for s in STEMS}, music_data) for f in FAMILIES}
music_odd = {
    "zeros": torch.zeros(P.ood_items, P.music_ood_length),
    "N(0, 0.5)": (0.5 * torch.randn(P.ood_items, P.music_ood_length, generator=gen)).clamp(-1, 1),
}
table1_music = pd.DataFrame(
    {(inp, f): ood.cross_likelihood({s: music_priors[(f, s)] for s in STEMS}, music_odd).mean[:, k]
     for f in FAMILIES for k, inp in enumerate(music_odd)},
    index=list(STEMS),
).T
table1_music.index.names = ["input", "family"]
for f in FAMILIES:
    prose.glue_number(f"music_auc_{f}", float(fig3_music[f].aucs().mean()), decimals=2)
    glue(f"music_first_{f}", int(fig3_music[f].own_prior_ranks_first().sum()), display=False)
glue("music_label_04", music_label, display=False)
glue("music_items", len(music_test), display=False)
glue("music_length", P.music_ood_length, display=False)

# %% mystnb={"figure": {"caption": "Figure 3, right: mean log-likelihood per sample of the music test windows of each stem (columns) under the noise-free music prior of each stem (rows), both families. The data set is named in the text above the figure (musdb18, or its procedural stand-in when no musdb18 is given).", "name": "fig-04-cross-music"}}
fig = plots.plot_heatmaps({f"{f} ({'stand-in' if 'stand-in' in music_label else 'musdb18'})": fig3_music[f].mean
                           for f in FAMILIES}, STEMS, STEMS)

# %%
pd.DataFrame(
    {(f, q): v for f in FAMILIES for q, v in (("AUC own vs other", fig3_music[f].aucs()),
                                              ("own prior ranks first", fig3_music[f].own_prior_ranks_first()))},
    index=list(STEMS),
).round(3)

# %% [markdown]
# Data: {glue:text}`music_label_04`; {glue:text}`music_items` test windows of
# {glue:text}`music_length` samples per stem. The music flows reach a mean AUC
# of {glue:text}`music_auc_flow:.2f` and rank the own prior first for
# {glue:text}`music_first_flow` of 4 stems; the WaveNets
# {glue:text}`music_auc_wavenet:.2f` and {glue:text}`music_first_wavenet` of 4.
# Table 1's inputs under the music priors (mean log-likelihood per sample):

# %% tags=["nbval-ignore-output"]
# The music priors train on resampled audio whose last digits depend on the CPU's kernels, and
# training amplifies that: this table is not compared by the tests (a value at -4.85 printed -4.8 on
# one machine and -4.9 on another); what must hold everywhere is checked here.
assert table1_music.shape == (len(music_odd) * len(FAMILIES), len(STEMS)) and np.isfinite(table1_music.to_numpy()).all()
table1_music.round(1)

# %%
out = {
    "profile": P.name,
    "seed": seed,
    "test_items_per_source": P.ood_items,
    "input_length": P.ood_length,
    "figure3": {f: fig3[f].to_json() for f in FAMILIES},
    "figure3_items": P.fig3_items,
    "figure3_intervals": {f: {"mean_low": fig3_iv[f]["low"].round(4).tolist(),
                              "mean_high": fig3_iv[f]["high"].round(4).tolist(),
                              "median": fig3_iv[f]["median"].round(4).tolist(),
                              "floored_mean": fig3_iv[f]["floored_mean"].round(4).tolist(),
                              "auc": [iv.to_json() for iv in auc_iv[f][0]],
                              "mean_auc": auc_iv[f][1].to_json()} for f in FAMILIES},
    # per test item, for the scorecard: values[prior][data][item], log-likelihood per sample
    "figure3_per_item": {f: fig3[f].values.round(4).tolist() for f in FAMILIES},
    # per test item, for the scorecard: values[prior_sigma][test_sigma][prior][data][item]
    "figure4_per_item": {f: grid[f].values.round(4).tolist() for f in FAMILIES},
    "figure4_intervals": fig4_iv,
    # per probe, for the scorecard: "input | family | prior set" -> [prior][probe]
    "table1_per_probe": table1_per_probe,
    "figure3_flow_authors_metric": authors.to_json(),
    "figure4": {f: grid[f].to_json() for f in FAMILIES},
    "figure4_seconds": round(grid_seconds, 1),
    "table1": {
        "rows": [list(ix) for ix in table1.index],
        "cols_prior": list(data.SOURCES),
        "mean_loglik_per_sample": table1.values.round(6).tolist(),
    },
    "music_data": music_label,
    "figure3_music": {f: fig3_music[f].to_json() for f in FAMILIES},
    "table1_music": {
        "rows": [list(ix) for ix in table1_music.index],
        "cols_prior": list(STEMS),
        "mean_loglik_per_sample": table1_music.values.round(6).tolist(),
    },
    # Figure 3 of the priors of the other training seeds (the same windows), for the scorecard
    "figure3_per_item_seeds": {str(k): {f: r[f].values.round(4).tolist() for f in FAMILIES}
                               for k, r in fig3_seeds.items() if k != seed},
}
results_path = paths.update_results("04_ood", f"{P.name}/seed={seed}", out)
print(f"wrote {results_path.name}")

# %% [markdown]
# ## The paper's claims, judged
#
# The claims of the paper's sections 3.2 to 3.4 that this chapter measures,
# judged by the rules of `book/scorecard.yaml` on the results just written,
# exactly as on the opening page (one adjudication: this table is computed by
# the same code from the same numbers). Each row's quantity and threshold are
# in the rules file; the interval is the cluster bootstrap over test items (or
# probes), hulled with the exact binomial interval where the quantity is a
# proportion, and over training seeds for Figure 3's rows. Under a verdict
# changed by a rule recorded after the results (a *deviation*) stands the
# verdict under the old rule. Music rows are *not tested* on the stand-in. The
# paper's Table 1 is for the flows only: the WaveNet values above are
# measurements without a rule.

# %%
card04 = scorecard.toy_rows(out, P.name)
OLD = {"discrimination_bar": "at 0.9", "exact_proportions": "bootstrap alone"}


def shown(e):
    iv = "" if e["low"] is None else f"{e['value']:.3g} [{e['low']:.3g}, {e['high']:.3g}]"
    return {"claim": e["claim"], "family": e["family"], "quantity [95% interval]": iv or
            ("" if e["value"] is None else f"{e['value']:.3g}"), "verdict": e["verdict"],
            "under the old rule": "; ".join(f"{OLD.get(o['deviation'], o['deviation'])}: {o['verdict']}"
                                            for o in e["old"]), "note": e["reason"]}


verdict_table = pd.DataFrame([shown(e) for e in card04])
counts = verdict_table["verdict"].value_counts()
for v in scorecard.VERDICTS:
    glue(f"n04_{v.replace(' ', '_')}", int(counts.get(v, 0)), display=False)
glue("n04_rows", len(verdict_table), display=False)
by_id = {e["id"]: e for e in card04}
for rid in ("zero_input_likely_noisefree", "noise_input_more_likely_after_noise", "noise_input_unlikely_noisefree",
            "flow_toy_discriminates", "wavenet_toy_not_discriminative"):
    glue(f"verdict_{rid}", by_id[rid]["verdict"], display=False)
e = by_id["noise_input_unlikely_noisefree"]
glue("noise_bar", scorecard.rule(e["id"])["threshold"], display=False)
if e["low"] is not None:
    prose.glue_number("noise_accept", e["value"], decimals=2)
    prose.glue_number("noise_accept_high", e["high"], decimals=2)
    glue("noise_probes", int(e["n_clusters"]), display=False)
else:  # not tested (the smoke profile): the sentence still reads
    for k in ("noise_accept", "noise_accept_high"):
        glue(k, float("nan"), display=False)
    glue("noise_probes", 0, display=False)
verdict_table.style.set_uuid("verdicts04").hide(axis="index")

# %% [markdown]
# Of these {glue:text}`n04_rows` rows, {glue:text}`n04_holds` hold,
# {glue:text}`n04_does_not_hold` do not hold, {glue:text}`n04_inconclusive`
# are inconclusive and {glue:text}`n04_not_tested` are not tested.
#
# Two things to keep in mind when reading the verdicts against the paper. The
# paper's Table 1 and Figure 3 values are the authors' metric (no
# log-determinant), which rewards a flow for contracting its input; the
# Table 1 rows "flow, authors' metric" above show what that metric says about
# our flows. And our priors are smaller and trained for far fewer steps than
# the authors' (the *book* profile, chapter {ref}`sec-models`); the *paper*
# profile holds their sizes.

# %%
prose.glue_number("authors_diag", float(np.diag(authors.mean).mean()), decimals=2)
prose.glue_number("paper_diag", float(np.diag(np.array(ood.PAPER_FIG3_FLOW)).mean()), decimals=2)
prose.glue_number("ours_diag", float(np.diag(fig3["flow"].mean).mean()), decimals=2)
glue("authors_diag_sign", "positive like the paper's" if np.diag(authors.mean).mean() > 0
     else "negative, unlike the paper's positive values", display=False)

# %% [markdown]
# ## Summary
#
# - **Figure 3, toy data.** The noise-free flows single out their own source
#   (mean AUC {glue:text}`auc_flow:.2f`, own prior first for
#   {glue:text}`first_flow` of 4), as the paper found: over
#   {glue:text}`n_train_seeds` training seeds the scorecard's verdict is
#   *{glue:text}`verdict_flow_toy_discriminates`*. The WaveNets rank the own
#   prior first for {glue:text}`first_wavenet` of 4 but separate the classes
#   far less cleanly (mean AUC {glue:text}`auc_wavenet:.2f`; between
#   {glue:text}`seed_auc_min_wavenet:.2f` and
#   {glue:text}`seed_auc_max_wavenet:.2f` over the seeds) at this training
#   budget: "they do not discriminate" is
#   *{glue:text}`verdict_wavenet_toy_not_discriminative`*; chapter
#   {ref}`sec-variants` trains them longer and shows how much of that is the
#   budget.
# - **The authors' metric.** Without the log-determinant our flows' diagonal
#   averages {glue:text}`authors_diag:.2f` nats per sample, against
#   {glue:text}`ours_diag:.2f` with it and the paper's
#   {glue:text}`paper_diag:.2f`: the metric alone does not give the
#   published sign here. Whether the authors' training objective
#   (log-determinant weighted by 1/4) does is chapter {ref}`sec-variants`'s
#   question.
# - **Figure 4.** Discrimination decays as the priors are smoothed, from
#   {glue:text}`decay_onset_flow` on for the flows (mean AUC
#   {glue:text}`matched_auc_flow_0.359:.2f` when data and prior are at 0.359)
#   and from {glue:text}`decay_onset_wavenet` on for the WaveNets
#   ({glue:text}`matched_auc_wavenet_0.359:.2f`).
# - **Table 1** (flows). "Zeros are highly likely under the noise-free
#   priors, except square": *{glue:text}`verdict_zero_input_likely_noisefree`*
#   (for sine, saw and triangle). "N(0, 0.5) is highly unlikely under the
#   noise-free priors": *{glue:text}`verdict_noise_input_unlikely_noisefree`*
#   (the most any prior accepts is a share {glue:text}`noise_accept:.2f` of
#   the {glue:text}`noise_probes` probes, and the exact 95% interval of that
#   share reaches {glue:text}`noise_accept_high:.2f`, against the rule's bar
#   of {glue:text}`noise_bar`).
#   "It becomes more likely at the widest level":
#   *{glue:text}`verdict_noise_input_more_likely_after_noise`*.
# - **Music** ({glue:text}`music_label_04`): mean AUC
#   {glue:text}`music_auc_flow:.2f` (flows) and
#   {glue:text}`music_auc_wavenet:.2f` (WaveNets).
# - **The verdicts.** Every claim of this chapter is judged once, by the
#   rules file, in the table above and on the opening page:
#   {glue:text}`n04_holds` hold, {glue:text}`n04_does_not_hold` do not,
#   {glue:text}`n04_inconclusive` are inconclusive, {glue:text}`n04_not_tested`
#   not tested. The rules were committed after this chapter's first results
#   (the opening page reads that from git); the book says so rather than
#   claim otherwise.
