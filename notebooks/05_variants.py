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
# (sec-variants)=
# # The authors' variants and the training budget
#
# Chapter {ref}`sec-ood` judges the paper's claims with priors trained by
# maximum likelihood, fine-tuned with our noise scheme, scored with exact
# likelihoods, after a small training budget. The authors' code differed on
# each point ({ref}`sec-deviations`). Could one of these differences be what
# produced the published numbers, or move a verdict? This chapter runs each
# variant and judges it by a rule of `book/scorecard.yaml` that was committed
# before any variant was trained:
#
# - `added_authors_objective_metric`: flows trained with the authors'
#   objective (log-determinant weighted by {glue:text}`logdet_weight`) and
#   scored with the authors'
#   metric (the latents' log-density without the log-determinant). Is the
#   own-source diagonal positive, as published?
# - `added_authors_noise_scheme`: flows fine-tuned with the authors' noise
#   scheme (a per-example noise level drawn uniformly below $\sigma$), scored
#   on the matched diagonal of Figure 4. Does the verdict of
#   `flow_noise_conditioned_nondiscriminative` change?
# - `added_training_budget`: WaveNets trained for several times the book's
#   steps. Does their mean AUC differ from the 1x priors' by more than the
#   rule's band, {glue:text}`budget_band`?
#
# - `added_authors_data_fig3`: flows trained and tested on the authors' toy
#   data as their runs drew them (14.7 kHz, piano keys 1 to 65, so
#   fundamentals up to about 1.1 kHz, quantised to whole-sample periods).
#   Do they still pass the discrimination rule of `flow_toy_discriminates`?

# %%
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from sepnb import data, runs
from sepnb.analysis import ood, scorecard, stats
from sepnb.book import plots
from sepnb.core import checks, paths, profiles

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
seed = 0

# %%
checks.check_parameters("profile", "seed", seed=seed)  # a misspelt or bad parameter stops here
P = profiles.get(profile)
S = list(data.SOURCES)
print(f"profile {P.name!r}, seed {seed}, device {runs.device()}")

# %% [markdown]
# ## The runs
#
# Every variant is a run of the store (`sepnb train --all` lists them with
# their commands), keyed by its full configuration like the book's own
# priors: the 1x priors are chapter 02's, the fixed-scheme fine-tunes
# chapter 03's. Where each variant was trained is read from its run folder.

# %% tags=["nbval-ignore-output"]
get = runs.get_prior  # trains what the store lacks, loads the rest
clean_cfg = {s: runs.prior_config(P, "flow", s, seed=seed) for s in S}
clean = {s: get(c)[0] for s, c in clean_cfg.items()}
ours_ft = {sig: {s: get(runs.finetune_config(clean_cfg[s], sig, P))[0] for s in S} for sig in P.sigmas}
authors_ft_cfg = {sig: {s: runs.finetune_config(clean_cfg[s], sig, P, noise_mode="authors") for s in S}
                  for sig in P.sigmas}
authors_ft = {sig: {s: get(c)[0] for s, c in v.items()} for sig, v in authors_ft_cfg.items()}
objective_cfg = {s: runs.variant_config(P, "flow", s, "authors-objective", seed=seed) for s in S}
objective = {s: get(c)[0] for s, c in objective_cfg.items()}
wn1_cfg = {s: runs.prior_config(P, "wavenet", s, seed=seed) for s in S}
wn4_cfg = {s: runs.variant_config(P, "wavenet", s, "budget", seed=seed) for s in S}
wn1 = {s: get(c) for s, c in wn1_cfg.items()}
wn4 = {s: get(c) for s, c in wn4_cfg.items()}
theirs_cfg = {s: runs.variant_config(P, "flow", s, "authors-data", seed=seed) for s in S}
theirs = {s: get(c)[0] for s, c in theirs_cfg.items()}


def trained_on(cfgs):
    """The devices that trained these runs, from their run folders' metadata."""
    names = set()
    for c in cfgs:
        meta = json.loads((runs.run_dir(c) / "meta.json").read_text())
        names |= {f"{m['device_name']} ({m['device']})" for m in meta["sessions"] if m["to_step"] > m["from_step"]}
    return ", ".join(sorted(names)) or "(loaded)"


groups = {
    "flows, authors' objective": list(objective_cfg.values()),
    "flows, authors' noise scheme": [c for v in authors_ft_cfg.values() for c in v.values()],
    f"WaveNets, {P.budget_factor}x steps": list(wn4_cfg.values()),
    "WaveNets, 1x (chapter 02)": list(wn1_cfg.values()),
    "flows, authors' data": list(theirs_cfg.values()),
}
devices = {k: trained_on(v) for k, v in groups.items()}
glue("devices_reading", f"every group was trained on the same device, {next(iter(devices.values()))}, so no "
     "comparison in this chapter mixes devices" if len(set(devices.values())) == 1 else
     "the groups were trained on different devices (" + "; ".join(f"{k}: {v}" for k, v in devices.items())
     + "), so the comparisons between them mix devices; the device control below measures what that does",
     display=False)
pd.DataFrame({"runs": [len(v) for v in groups.values()],
              "steps each": [v[0].steps for v in groups.values()],
              "trained on": list(devices.values())}, index=list(groups))

# %% [markdown]
# Read from the run folders' metadata: {glue:text}`devices_reading`.
# Another processor computes in another floating-point order, so a rebuild
# elsewhere gives other weights; the device control near the end of the
# chapter measures how far that moves an AUC.
#
# All scores use the test windows of chapter 04: one window of
# {glue:text}`input_length` samples of every source from each of
# {glue:text}`n_items3` test items (Figure 3), and the first
# {glue:text}`n_items4` of them for the noise grid (Figure 4). An item is
# the unit of resampling for every interval ({glue:text}`resamples`
# resamples).

# %%
windows3 = ood.fig3_windows(P, seed)  # chapter 04's Figure 3 windows
windows4 = windows3[: P.ood_items]
clean_data = {s: windows3[:, j] for j, s in enumerate(S)}
glue("input_length", P.ood_length, display=False)
glue("n_items3", P.fig3_items, display=False)
glue("n_items4", P.ood_items, display=False)
RESAMPLES = 2000
glue("resamples", RESAMPLES, display=False)
glue("logdet_weight", P.authors_logdet_weight, display=False)
RULES = {r: scorecard.rule(r) for r in ("added_authors_objective_metric", "added_authors_noise_scheme",
                                        "added_training_budget", "flow_noise_conditioned_nondiscriminative")}

# %% [markdown]
# ## The authors' objective and metric
#
# The published diagonal of Figure 3 (the own prior on its own source) is
# positive for {glue:text}`paper_n_positive` of four sources. A flow's latent is standard normal
# at best, whose log-density can never exceed $-\tfrac12 \log 2\pi \approx
# -0.92$ nats per sample, so a positive value needs latents squeezed below
# unit scale. Chapter 04 showed that our maximum-likelihood flows, scored
# with the authors' metric, do not give it. The authors' objective weights
# the log-determinant (the price of squeezing) by
# {glue:text}`logdet_weight`: does that give it?

# %% tags=["nbval-ignore-output"]
def diag_per_item(priors, metric):
    """Own prior on own clean windows: [source, item] per sample."""
    r = ood.cross_likelihood(priors, clean_data, metric=metric)
    return r, np.stack([r.values[i, i] for i in range(len(S))])


scores = {}
for name, priors in (("maximum likelihood", clean), ("authors' objective", objective)):
    for metric in ("latent_log_prob", "log_prob"):
        scores[(name, metric)] = diag_per_item(priors, metric)
idx3 = stats.resample_indices(P.fig3_items, RESAMPLES, seed)


def mean_iv(v):
    """Per source and overall: mean over items with the 95% interval."""
    per = [stats.from_draws(v[i].mean(), v[i][idx3].mean(-1), v.shape[-1]) for i in range(len(v))]
    return per, stats.from_draws(v.mean(), v[:, idx3].mean(-1).mean(0), v.shape[-1])


table = {}
for (name, metric), (r, v) in scores.items():
    per, overall = mean_iv(v)
    label = "authors' metric" if metric == "latent_log_prob" else "exact log-likelihood"
    table[(name, label)] = [f"{iv:.2f}" for iv in per] + [f"{overall:.2f}"]
    table[(name, f"AUC, {label}")] = [f"{a:.2f}" for a in r.aucs()] + [f"{r.aucs().mean():.2f}"]
pd.DataFrame(table, index=S + ["mean"]).T

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "The own-source diagonal of Figure 3 under the authors' metric (mean latent log-density per sample, no log-determinant), with 95% intervals over test items, for flows trained by maximum likelihood and with the authors' objective, beside the published values. The dashed line is the ceiling of a standard-normal latent.", "name": "fig-07-objective"}}
fig, ax = plt.subplots(figsize=(7, 3))
x = np.arange(len(S))
for k, name in enumerate(("maximum likelihood", "authors' objective")):
    per, _ = mean_iv(scores[(name, "latent_log_prob")][1])
    ax.errorbar(x + (k - 0.5) * 0.25, [iv.value for iv in per],
                yerr=[[iv.value - iv.low for iv in per], [iv.high - iv.value for iv in per]],
                fmt="o", capsize=3, label=name)
ax.plot(x + 0.3, np.diag(ood.PAPER_FIG3_FLOW), "k*", ms=9, label="published")
ax.axhline(-0.5 * np.log(2 * np.pi), color="0.5", ls="--", lw=1)
ax.set_xticks(x, S)
ax.set_ylabel("nats per sample (authors' metric)")
_ = ax.legend(fontsize=8)

# %% tags=["remove-cell", "nbval-ignore-output"]
obj_lat = scores[("authors' objective", "latent_log_prob")][1]
ml_lat = scores[("maximum likelihood", "latent_log_prob")][1]
_, obj_iv = mean_iv(obj_lat)
_, ml_iv = mean_iv(ml_lat)
glue("obj_latent_iv", f"{obj_iv:.2f}", display=False)
glue("ml_latent_iv", f"{ml_iv:.2f}", display=False)
glue("paper_diag_mean", float(np.mean(np.diag(ood.PAPER_FIG3_FLOW))), display=False)
glue("paper_n_positive", int((np.diag(ood.PAPER_FIG3_FLOW) > 0).sum()), display=False)
glue("obj_threshold", float(RULES["added_authors_objective_metric"]["threshold"]), display=False)
obj_exact = scores[("authors' objective", "log_prob")][0].aucs().mean()
ml_exact = scores[("maximum likelihood", "log_prob")][0].aucs().mean()
glue("obj_auc_exact", float(obj_exact), display=False)
glue("ml_auc_exact", float(ml_exact), display=False)
glue("obj_auc_latent", float(scores[("authors' objective", "latent_log_prob")][0].aucs().mean()), display=False)
n_positive = int(sum(iv.low > 0 for iv in mean_iv(obj_lat)[0]))
glue("obj_n_positive", n_positive, display=False)
# the rule asks for a positive mean only; the published pattern is more: its per-source signs and sizes
published = np.diag(np.array(ood.PAPER_FIG3_FLOW))
ours_per = [iv.value for iv in mean_iv(obj_lat)[0]]
same_signs = [s for s, a, b in zip(S, ours_per, published) if np.sign(a) == np.sign(b)]
glue("obj_pattern", "the published pattern of signs is reproduced on every source" if len(same_signs) == len(S) else
     "the published pattern is not reproduced: " + "; ".join(f"{s} {a:+.2f} (published {b:+.1f})"
                                                              for s, a, b in zip(S, ours_per, published)),
     display=False)
assert np.isfinite(obj_lat).all() and np.isfinite(ml_lat).all()

# %% [markdown]
# With the authors' objective the diagonal under their metric averages
# {glue:text}`obj_latent_iv` nats per sample (mean over the four sources,
# 95% interval over test items; the rule's threshold is
# {glue:text}`obj_threshold:.0f`), against {glue:text}`ml_latent_iv` for
# our maximum-likelihood flows and {glue:text}`paper_diag_mean:.2f`
# published; {glue:text}`obj_n_positive` of the four sources lie wholly
# above zero, against {glue:text}`paper_n_positive` published. The rule
# judges only the sign of the mean, so it can hold while
# {glue:text}`obj_pattern`. The verdict is in the table at the end. Scored with exact
# likelihoods, the authors'-objective flows reach a mean AUC of
# {glue:text}`obj_auc_exact:.2f` (maximum likelihood:
# {glue:text}`ml_auc_exact:.2f`); with their metric
# {glue:text}`obj_auc_latent:.2f`.
#
# ## The authors' noise scheme
#
# Chapter 03 fine-tunes each prior on $x + \sigma\,\mathcal{N}(0, I)$. The
# authors fine-tuned on $x + \sigma u\,\mathcal{N}(0, I)$ with $u \sim U(0,
# 1)$ per example, clamped to $[-1, 1]$: a prior that has seen every level
# below $\sigma$. Both sets of priors score the same noised test windows
# (the same draws as Figure 4's), on the matched diagonal (prior level =
# test level). The claim judged is the paper's: at every level the
# noise-conditioned flows stop discriminating (mean AUC below
# {glue:text}`ncd_threshold`); the quantity is the best level's mean AUC.

# %% tags=["nbval-ignore-output"]
def matched_diag(prior_sets):
    """[level, prior, data, item]: each level's priors on windows noised at that level."""
    out = []
    for sig in P.sigmas:
        noisy = ood.add_test_noise(windows4, sig, seed)
        r = ood.cross_likelihood(prior_sets[sig], {s: noisy[:, j] for j, s in enumerate(S)})
        out.append(r.values)
    return np.stack(out)


diag = {"ours": matched_diag(ours_ft), "authors'": matched_diag(authors_ft)}
noisefree = ood.cross_likelihood(clean, {s: windows4[:, j] for j, s in enumerate(S)}).values
idx4 = stats.resample_indices(P.ood_items, RESAMPLES, seed)
curve = {}
for name, g in diag.items():
    for a, sig in enumerate(P.sigmas):
        c = ood.CrossLikelihood(g[a], S, S)
        d = c.auc_draws(idx4).mean(1)
        curve[(name, sig)] = stats.from_draws(c.aucs().mean(), d, P.ood_items)
pd.DataFrame({name: [f"{curve[(name, sig)]:.2f}" for sig in P.sigmas] for name in diag},
             index=pd.Index(P.sigmas, name="sigma (prior = test)"))

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Mean AUC on the matched diagonal of Figure 4 (priors fine-tuned at sigma, test windows noised at sigma) for our noise scheme and the authors', with 95% intervals over test items; the dashed line is the rule's threshold.", "name": "fig-07-noise"}}
fig, ax = plt.subplots(figsize=(6, 3))
for k, name in enumerate(diag):
    ivs = [curve[(name, sig)] for sig in P.sigmas]
    xs = np.asarray(P.sigmas) * (1 + 0.04 * (2 * k - 1))
    ax.errorbar(xs, [iv.value for iv in ivs], yerr=[[iv.value - iv.low for iv in ivs], [iv.high - iv.value for iv in ivs]],
                fmt="o-", capsize=3, label={"ours": "our noise scheme"}.get(name, f"{name} noise scheme"))
ax.axhline(RULES["flow_noise_conditioned_nondiscriminative"]["threshold"], color="0.5", ls="--", lw=1)
ax.set_xscale("log")
ax.set_xlabel("sigma")
ax.set_ylabel("mean AUC")
_ = ax.legend(fontsize=8)

# %% tags=["remove-cell", "nbval-ignore-output"]
glue("ncd_threshold", float(RULES["flow_noise_conditioned_nondiscriminative"]["threshold"]), display=False)
# also reported by the rule: flow_noise_small_sigma_drop's quantity (noise-free priors on clean windows minus
# the smallest level's matched diagonal, paired over items) under each scheme, judged by that row's rule
nf = ood.CrossLikelihood(noisefree, S, S)
for name, key in (("ours", "ours"), ("authors'", "authors")):
    c = ood.CrossLikelihood(diag[name][0], S, S)
    drop = stats.from_draws(nf.aucs().mean() - c.aucs().mean(),
                            nf.auc_draws(idx4).mean(1) - c.auc_draws(idx4).mean(1), P.ood_items)
    glue(f"drop_{key}", f"{drop:.3f}", display=False)
    glue(f"drop_{key}_verdict", scorecard.judge("flow_noise_small_sigma_drop", drop.low, drop.high, P.ood_items,
                                                P.name), display=False)
glue("sigma_small", min(P.sigmas), display=False)
# the fixed-scheme diagonal recomputed here is chapter 04's, where its results are at hand
r04_path = paths.read_results("04_ood")
r04 = json.loads(r04_path.read_text())["runs"].get(f"{P.name}/seed={seed}") if r04_path.exists() else None
if r04 is not None and "figure4_per_item" in r04:
    g04 = np.asarray(r04["figure4_per_item"]["flow"])
    for a in range(len(P.sigmas)):
        np.testing.assert_allclose(g04[a + 1, a + 1], diag["ours"][a], rtol=1e-4, atol=1e-3)

# %% [markdown]
# The paper's second claim about small levels (`flow_noise_small_sigma_drop`:
# discrimination already drops at $\sigma =$ {glue:text}`sigma_small`, the
# noise-free priors' mean AUC on clean windows minus the matched diagonal's
# there) reads {glue:text}`drop_ours` with our scheme
# ({glue:text}`drop_ours_verdict`) and {glue:text}`drop_authors` with the
# authors' ({glue:text}`drop_authors_verdict`).
#
# ## The training budget
#
# The book's priors train {glue:text}`steps_1x` steps of
# {glue:text}`batch` windows; the `paper` profile, which holds the authors'
# sizes, trains {glue:text}`paper_steps`. The WaveNets'
# verdict (`wavenet_toy_not_discriminative`: they do not discriminate) is the
# one most exposed to a small budget, since an under-trained model looks
# non-discriminative. Here the same WaveNets (same seed, data, learning rate
# and schedule shape) train {glue:text}`budget_factor` times longer.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Held-out loss of the WaveNet priors (nats per sample, as in chapter 02; lower is better) against the training step on a log axis, at the book's budget (thin) and at the longer one (thick).", "name": "fig-07-budget"}}
fig, ax = plt.subplots(figsize=(7, 3))
for j, s in enumerate(S):
    for h, lw, label in ((wn1[s][1], 1, None), (wn4[s][1], 2, s)):
        steps = np.asarray(h["eval_step"])
        keep = steps > 0
        ax.plot(steps[keep], np.asarray(h["eval"])[keep], color=f"C{j}", lw=lw, label=label)
ax.set_xscale("log")
ax.set_xlabel("training step")
ax.set_ylabel("held-out loss (nats/sample)")
_ = ax.legend(fontsize=8, ncols=4)

# %% tags=["nbval-ignore-output"]
fig3 = {k: ood.cross_likelihood({s: m[s][0] for s in S}, clean_data) for k, m in (("1x", wn1), ("4x", wn4))}
auc_iv = {k: r.auc_intervals(resamples=RESAMPLES, seed=seed) for k, r in fig3.items()}
pd.DataFrame({f"AUC, {k.replace('4x', f'{P.budget_factor}x')}": [f"{iv:.2f}" for iv in per] + [f"{mean:.2f}"]
              for k, (per, mean) in auc_iv.items()}, index=S + ["mean"])

# %% tags=["remove-cell", "nbval-ignore-output"]
glue("steps_1x", P.steps, display=False)
glue("batch", P.batch, display=False)
glue("paper_steps", profiles.get("paper").steps, display=False)
glue("budget_factor", P.budget_factor, display=False)
glue("steps_4x", P.steps * P.budget_factor, display=False)
glue("wn_auc_1x", f"{auc_iv['1x'][1]:.2f}", display=False)
glue("wn_auc_4x", f"{auc_iv['4x'][1]:.2f}", display=False)
final = {k: np.mean([m[s][1]["eval"][-1] for s in S]) for k, m in (("1x", wn1), ("4x", wn4))}
glue("wn_loss_1x", float(final["1x"]), display=False)
glue("wn_loss_4x", float(final["4x"]), display=False)
claims = {k: scorecard.judge("wavenet_toy_not_discriminative", auc_iv[k][1].low, auc_iv[k][1].high, P.fig3_items,
                             P.name) for k in ("1x", "4x")}
for k, v in claims.items():
    glue(f"wn_claim_{k}", v, display=False)
glue("wn_budget_reading", "the verdict moves with the budget, so it describes WaveNets trained this briefly, not "
     "WaveNets as such" if claims["1x"] != claims["4x"] else "the verdict does not move with the budget",
     display=False)
band = RULES["added_training_budget"]["band"]
glue("budget_band", f"[{band[0]:+.2f}, {band[1]:+.2f}]", display=False)

# %% [markdown]
# Which devices trained the 1x and the longer runs is in the table at the
# top. Could the device alone move the AUC? A control answers it: the 1x
# configurations retrained on another device (`python -m sepnb.control`, run
# once and stored in `book/results/05_device_control.json`; `make book` does
# not rerun it) and scored in the same way.

# %% tags=["nbval-ignore-output"]
control_path = paths.RESULTS / "05_device_control.json"
ctrl = json.loads(control_path.read_text()) if control_path.exists() else None
if ctrl is not None and ctrl["profile"] == P.name and ctrl["seed"] == seed:
    rows_c = {f"1x, {ctrl['device_name']} (control)": [stats.Interval(**d) for d in ctrl["auc_per_prior"]]
              + [stats.Interval(**ctrl["auc_mean"])],
              f"1x, {trained_on(wn1_cfg.values())}": [*auc_iv["1x"][0], auc_iv["1x"][1]]}
    display_c = pd.DataFrame({k: [f"{iv:.2f}" for iv in v] for k, v in rows_c.items()}, index=S + ["mean"])
    c, one, four = stats.Interval(**ctrl["auc_mean"]), auc_iv["1x"][1], auc_iv["4x"][1]
    # read by interval overlap: the control should overlap the book's 1x and lie wholly below the 4x
    same_as_1x = c.low <= one.high and one.low <= c.high
    below_4x = c.high < four.low
    verdict_c = ("so the device does not account for the difference: the budget does" if same_as_1x and below_4x
                 else "so part of the difference may come from the device")
    glue("control_reading", f"retrained on {ctrl['device_name']}, the 1x WaveNets reach a mean AUC of {c:.2f}, "
         f"against {one:.2f} for the book's 1x priors and {four:.2f} at {P.budget_factor}x; {verdict_c}",
         display=False)
else:
    display_c = pd.DataFrame()
    glue("control_reading", f"no device control is stored for the {P.name} profile", display=False)
display_c

# %% [markdown]
# With the control: {glue:text}`control_reading`.
#
# At {glue:text}`steps_4x` steps the WaveNets' mean held-out loss is
# {glue:text}`wn_loss_4x:.3f` nats per sample against
# {glue:text}`wn_loss_1x:.3f` at {glue:text}`steps_1x`, and their mean AUC
# is {glue:text}`wn_auc_4x` against {glue:text}`wn_auc_1x` (95% intervals
# over test items). The rule asks whether the paired difference lies
# outside {glue:text}`budget_band`.
#
# ## The authors' data
#
# The book's toy data follow the paper's text: 16 kHz, fundamentals drawn
# log-uniformly up to 4186 Hz. The authors' runs used 14.7 kHz and piano
# keys 1 to 65 (the rules file's row `added_authors_data_fig3`); near a
# quarter of the sample rate a sine and a triangle give nearly the same
# samples, and {glue:text}`frac_above:.0%` of our test windows' fundamentals
# lie above the authors' top key.
# Flows of the book's size and budget, trained on their data and tested on
# {glue:text}`n_items3` test items of it, beside ours on our data:

# %% tags=["nbval-ignore-output"]
theirs_test = data.ToyWindows("test", window=P.ood_length, n_items=P.fig3_items, seed=seed, variant="authors")
w_theirs = theirs_test.batch(np.arange(P.fig3_items))
fig3_theirs = ood.cross_likelihood(theirs, {s: w_theirs[:, j] for j, s in enumerate(S)})
fig3_ours = scores[("maximum likelihood", "log_prob")][0]
data_iv = {"ours (16 kHz, up to 4186 Hz)": fig3_ours.auc_intervals(resamples=RESAMPLES, seed=seed),
           "authors' (14.7 kHz, keys 1-65)": fig3_theirs.auc_intervals(resamples=RESAMPLES, seed=seed)}
pd.DataFrame({f"flow AUC, {k}": [f"{iv:.2f}" for iv in per] + [f"{mean:.2f}"] for k, (per, mean) in data_iv.items()},
             index=S + ["mean"])

# %% tags=["remove-cell", "nbval-ignore-output"]
ours_mean, theirs_mean = (v[1] for v in data_iv.values())
glue("data_auc_ours", f"{ours_mean:.2f}", display=False)
glue("data_auc_theirs", f"{theirs_mean:.2f}", display=False)
glue("data_threshold", float(scorecard.rule("added_authors_data_fig3")["threshold"]), display=False)
top = 440.0 * 2.0 ** ((data.AUTHORS_KEYS[1] - 49) / 12)
glue("frac_above", float((data.toy_params(np.arange(P.fig3_items), seed=seed, split="test").freq > top).mean()),
     display=False)

# %% [markdown]
# On the authors' data the flows' mean AUC is {glue:text}`data_auc_theirs`,
# against {glue:text}`data_auc_ours` on ours (95% intervals over test
# items; the rule's threshold is {glue:text}`data_threshold`).
#
# ## Verdicts
#
# Computed by `sepnb.analysis.scorecard.variant_rows` from this chapter's results
# file alone, as the opening page's scorecard is.

# %% tags=["nbval-ignore-output"]
out = {
    "profile": P.name,
    "seed": seed,
    "n_items_fig3": P.fig3_items,
    "n_items_grid": P.ood_items,
    "trained_on": {k: trained_on(v) for k, v in groups.items()},
    "authors_objective": {
        "logdet_weight": P.authors_logdet_weight,
        "latent_own_per_item": obj_lat.round(5).tolist(),
        "ml_latent_own_per_item": ml_lat.round(5).tolist(),
        "auc_exact": scores[("authors' objective", "log_prob")][0].aucs().round(4).tolist(),
        "auc_latent": scores[("authors' objective", "latent_log_prob")][0].aucs().round(4).tolist(),
    },
    "authors_noise": {
        "sigmas": list(P.sigmas),
        "ours_diag_per_item": diag["ours"].round(5).tolist(),
        "authors_diag_per_item": diag["authors'"].round(5).tolist(),
        "noisefree_clean_per_item": noisefree.round(5).tolist(),
    },
    "budget": {
        "factor": P.budget_factor,
        "steps": [P.steps, P.steps * P.budget_factor],
        "fig3_1x_per_item": fig3["1x"].values.round(5).tolist(),
        "fig3_4x_per_item": fig3["4x"].values.round(5).tolist(),
        "heldout_final": {k: round(float(v), 5) for k, v in final.items()},
    },
    "authors_data": {
        "sample_rate": data.AUTHORS_SAMPLE_RATE,
        "keys": list(data.AUTHORS_KEYS),
        "fig3_per_item": fig3_theirs.values.round(5).tolist(),
        "ours_fig3_per_item": fig3_ours.values.round(5).tolist(),
    },
}
results_path = paths.update_results("05_variants", f"{P.name}/seed={seed}", out)
print(f"wrote {results_path.name}")
rows = scorecard.variant_rows(json.loads(results_path.read_text())["runs"][f"{P.name}/seed={seed}"], P.name)
verdicts = pd.DataFrame([{"row": e["id"], "family": e["family"],
                          "quantity [95% interval]": "" if e["low"] is None else
                          f"{e['value']:.3g} [{e['low']:.3g}, {e['high']:.3g}]",
                          "verdict": e["verdict"], "note": e["reason"]} for e in rows])
for e in rows:
    glue(f"verdict_{e['id']}", e["verdict"], display=False)
    glue(f"reason_{e['id']}", e["reason"] or "-", display=False)
# what is stable across CPUs, checked here (the table's digits are not compared by the tests)
assert [e["id"] for e in rows] == ["added_authors_objective_metric", "added_authors_noise_scheme",
                                   "added_training_budget", "added_authors_data_fig3"]
assert {e["verdict"] for e in rows} <= set(scorecard.VERDICTS)
assert P.name not in scorecard.rules()["defaults"]["exclude_profiles"] or {e["verdict"] for e in rows} == {"not tested"}
verdicts

# %% [markdown]
# ## Summary
#
# - **The authors' objective** (`added_authors_objective_metric`):
#   **{glue:text}`verdict_added_authors_objective_metric`**, on the sign
#   the rule asks for. Its flows' own-source diagonal under the authors'
#   metric is {glue:text}`obj_latent_iv` nats per sample, against
#   {glue:text}`ml_latent_iv` with maximum likelihood and
#   {glue:text}`paper_diag_mean:.2f` published; {glue:text}`obj_pattern`.
# - **The authors' noise scheme** (`added_authors_noise_scheme`):
#   **{glue:text}`verdict_added_authors_noise_scheme`**;
#   {glue:text}`reason_added_authors_noise_scheme`.
# - **The training budget** (`added_training_budget`):
#   **{glue:text}`verdict_added_training_budget`**. The paper's claim that
#   the toy WaveNets do not discriminate (`wavenet_toy_not_discriminative`)
#   is **{glue:text}`wn_claim_1x`** at the book's budget and
#   **{glue:text}`wn_claim_4x`** at {glue:text}`budget_factor` times it
#   (mean AUC {glue:text}`wn_auc_1x` and {glue:text}`wn_auc_4x`):
#   {glue:text}`wn_budget_reading`. The device control:
#   {glue:text}`control_reading`.
# - **The authors' data** (`added_authors_data_fig3`):
#   **{glue:text}`verdict_added_authors_data_fig3`**; mean AUC
#   {glue:text}`data_auc_theirs` on their data against
#   {glue:text}`data_auc_ours` on ours
#   ({glue:text}`reason_added_authors_data_fig3`).
#
# The variants were trained where the table at the top says
# ({glue:text}`devices_reading`); the rules, thresholds and the quantities
# were fixed in `book/scorecard.yaml` before any of them ran (the opening
# page reads that order from git).
