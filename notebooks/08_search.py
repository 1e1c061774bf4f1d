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
# (sec-search)=
# # Beyond the paper: does a search the priors judge separate every toy mix?
#
# **In short:** on {glue:text}`n_test` test mixes the model-judged search
# reaches **{glue:text}`si_search` dB** (fixed-order SI-SDR, mean [95%
# interval]) in {glue:text}`sec_search:.1f` s per mix; against the target of
# {glue:text}`target:.0f` dB with the interval's lower end at
# {glue:text}`target_low:.0f` dB the verdict is **{glue:text}`verdict_strong`**.
# Against the references: {glue:text}`verdict_refs`. Failures
# ({glue:text}`n_fail_after` of {glue:text}`n_test` below
# {glue:text}`target:.0f` dB) are mostly of the reason
# **{glue:text}`main_reason`**, and on failing validation mixes the
# criterion prefers the truth ({glue:text}`verdict_prefers`).
#
# Chapter {ref}`sec-beyond` separated most toy mixes with per-source
# denoising priors, a sampler that keeps the mix exact and a harmonic start,
# but not the hard ones: its grouping commits to one set of fundamentals and
# one assignment before the priors see anything, and where two fundamentals
# lie closer than the window resolves, or one comb's harmonics coincide with
# another's, that one start is wrong and the refinement cannot leave it. Its
# verdict on {glue:text}`ch07_n` test mixes was
# **{glue:text}`ch07_verdict`** ({glue:text}`ch07_si` dB).
#
# This chapter replaces the one start by a **search the model judges**
# (`sepnb.separation.search_mix`): many sets of fundamentals (every subset of
# the mix's strongest peaks, their integer-ratio alternatives, pairs split
# below one bin, all refined jointly below the FFT's resolution), every
# assignment of their groups to the four sources, each candidate refined
# briefly under the priors, and the one the **priors' summed denoising loss**
# ranks best kept. Nothing in the method reads a true source; the true
# fundamentals only name groups of mixes and reasons for failures.
#
# Everything that judges it was committed to `book/scorecard.yaml` before the
# number it judges (issue 23): the test and validation mixes, the grids of the
# tuned knobs and the protocol that tunes them, the failure taxonomy, and four
# rows: `added_toy_separation_strong` (mean fixed-order SI-SDR of at least
# {glue:text}`target:.0f` dB with the lower end of its 95% interval at least
# {glue:text}`target_low:.0f` dB), the same per group of mixes,
# `added_beats_references` (above the oracle mask and the supervised
# Conv-TasNet, paired on the same mixes) and `added_criterion_prefers_truth`
# (does the criterion rank the truth above what it chose, where the method
# fails?). The whole method must stay within {glue:text}`budget_s:.0f` s per
# mix on this 2-core CPU.

# %%
import json
import os
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from sepnb import data, runs, separation
from sepnb.analysis import failures, provenance, scorecard, stats
from sepnb.book import plots
from sepnb.core import checks, paths, profiles
from sepnb.data import player
from sepnb.runs import store
from sepnb.separation import ablation, tuning

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
seed = 0  # the priors' training seed, the search's and the samplers' noise, the bootstrap

# %%
checks.check_parameters("profile", "seed", seed=seed)  # a misspelt or bad parameter stops here
P = profiles.get(profile)
DEVICE = runs.device()
print(f"profile {P.name!r}, seed {seed}, device {DEVICE}")
if P.search is None:
    raise SystemExit(
        f"profile {P.name!r} has no search configuration (Profile.search): its validation record is not "
        "complete; run python -m sepnb.separation.tuning --profile " + P.name
    )
strong = scorecard.rule("added_toy_separation_strong")
glue("target", float(strong["value_at_least"]), display=False)
glue("target_low", float(strong["threshold"]), display=False)
glue("budget_s", tuning.BUDGET_S, display=False)

# %% tags=["remove-cell", "nbval-ignore-output"]
# chapter 07's verdict, for the opening paragraph (read from its results file)
ch07 = paths.read_results("07_priors_that_separate")
r07 = json.loads(ch07.read_text())["runs"].get(f"{P.name}/seed={seed}") if ch07.exists() else None
if r07 is not None:
    best07 = "denoiser: harmonic grouping + constrained Langevin"
    glue("ch07_n", r07["n_mixes"], display=False)
    glue("ch07_verdict", r07["scorecard"]["added_toy_separation_success"][best07]["verdict"], display=False)
    glue("ch07_si", f"{stats.Interval(**r07['si_sdr'][best07]['fixed_order']):.1f}", display=False)
else:
    print("chapter 07's results for this profile are missing: run notebooks/07_priors_that_separate first")
    for k in ("ch07_n", "ch07_verdict", "ch07_si"):
        glue(k, "(not run)", display=False)

# %% [markdown]
# ## The priors
#
# The four denoisers of chapter {ref}`sec-beyond`, from the run store (one per
# source, trained on that source's windows alone).

# %% tags=["nbval-ignore-output"]
trained = runs.toy_denoisers(P, seed=seed)
denoisers = [trained[s][0].to(DEVICE).eval() for s in data.SOURCES]
shas = [tuning.weights_sha(d) for d in denoisers]
print("denoisers:", ", ".join(f"{s} {h[:12]}" for s, h in zip(data.SOURCES, shas)))

# %% [markdown]
# ## The knobs, tuned on validation mixes only
#
# The protocol (`sepnb.separation.tuning`): from the default configuration,
# each knob in turn over its grid with the others at their current values,
# on {glue:text}`n_val` validation mixes (toy *training*-split items no prior
# was trained on); kept is the value with the highest mean fixed-order
# SI-SDR among those within {glue:text}`budget_s:.0f` s per mix. The record
# below is the one the profile's configuration was read from.

# %% tags=["nbval-ignore-output"]
record_path = paths.read_results("07_search_validation")
record = json.loads(record_path.read_text()) if record_path.exists() else None
own_record = record is not None and record.get("profile") == P.name
glue("n_val", P.search_val_items, display=False)


def knob_value(knob, value):
    """A grid value as a reader writes it: ratios as fractions, "none" for the empty tuple."""
    v = json.loads(value) if isinstance(value, str) and value[:1] in "[tf0123456789" else value
    if isinstance(v, list):
        fmt = (lambda x: str(Fraction(x).limit_denominator(10))) if knob == "ratios" else (lambda x: f"{x:g}")
        return ", ".join(map(fmt, v)) or "none"
    return str(v)


if own_record:
    knob_rows = []
    for step in record["steps"]:
        for value, r in step["results"].items():
            knob_rows.append({
                "knob": step["knob"], "value": knob_value(step["knob"], value),
                "mean SI-SDR (dB)": r["mean"], "median (dB)": r["median"],
                "mixes >= 15 dB": r["above_15"], "mixes < 0 dB": r["below_0"],
                "seconds per mix": r["seconds_per_mix"],
                "kept": "kept" if value == step["chosen"] else
                        ("over the time budget" if r["seconds_per_mix"] > record["budget_s"] else ""),
            })
    knobs = pd.DataFrame(knob_rows).set_index(["knob", "value"])
    same_weights = record["denoisers"] == shas
    glue("record_weights", "the same weights as the denoisers above" if same_weights else
         "other weights than the denoisers above (another machine's training): the configuration is the "
         "profile's, tuned with those", display=False)
    over = [f"{step['knob']} = {v} ({r['mean']:.1f} dB, {r['seconds_per_mix']:.1f} s per mix)"
            for step in record["steps"] for v, r in step["results"].items()
            if r["seconds_per_mix"] > record["budget_s"] and r["mean"] > step["results"][step["chosen"]]["mean"]]
    glue("over_budget", "; ".join(over) or "none", display=False)
    display(knobs.style.format({"mean SI-SDR (dB)": "{:.2f}", "median (dB)": "{:.2f}", "seconds per mix": "{:.1f}"}))
    if record.get("notes"):
        display(Markdown("The record's notes on its timing:\n\n" + "\n".join(f"- {n}" for n in record["notes"])))
else:
    glue("over_budget", "(no record)", display=False)
    glue("record_weights", "(no record at this profile: its configuration is fixed, untuned)", display=False)
    print(f"no validation record for profile {P.name!r}: its search configuration is fixed, untuned")

# %% tags=["remove-cell"]
# the profile's configuration is the record's choice (a profile the record no longer supports stops the build)
if own_record:
    chosen_cfg = separation.SearchConfig(**{k: tuple(v) if isinstance(v, list) else v
                                            for k, v in record["chosen"].items()})
    assert separation.SearchConfig(**P.search) == chosen_cfg, (P.search, record["chosen"])

# %% [markdown]
# The record was made with {glue:text}`record_weights`. Kept out by the
# time budget though scoring higher than the value kept:
# {glue:text}`over_budget`. A value's seconds are its mean over the
# validation mixes, one at a time on this 2-core virtual machine; what the
# record's notes say of how they were timed is printed below it. The record
# was timed before the denoisers' inference was made faster (the rules'
# block "the time budget, a third run"): a value kept out by the budget then
# might fit under it now. The tuning is not run again; its choices stand as
# recorded, and this is one of the things a longer session could redo.
#
# ## The test mixes and their groups
#
# {glue:text}`n_test` toy test mixes of {glue:text}`mix_ms:.0f` ms (test-split
# items 0 to {glue:text}`last_item`, chapter {ref}`sec-separation`'s mixes
# first), in three groups fixed by the rules from their true fundamentals:
# **close** (two fundamentals within 2 FFT bins of the window, one bin being
# {glue:text}`bin_hz:.1f` Hz), **integer ratio** (harmonics of two sources
# coincide: $|f_{hi} - r f_{lo}| < 2$ bins for $r$ = 2 or 3) and **rest**.

# %% tags=["nbval-ignore-output"]
ts = ablation.test_set(P, seed=seed)
bin_hz = P.sample_rate / P.sep_length
glue("n_test", len(ts.items), display=False)
glue("last_item", ts.items[-1], display=False)
glue("mix_ms", 1000 * P.sep_length / P.sample_rate, display=False)
glue("bin_hz", bin_hz, display=False)
group_counts = pd.Series(ts.groups).value_counts().reindex(failures.GROUPS, fill_value=0)
for g, n in group_counts.items():
    glue(f"n_group_{g.replace(' ', '_')}", int(n), display=False)
group_counts.rename("test mixes").to_frame()

# %% [markdown]
# ## The ablation: every part alone, on the same mixes
#
# Each row separates the same test mixes: the grouping alone (groups given to
# the sources in order of fundamental); the same groups with a
# **hand-written assignment** (by each group's harmonic amplitude pattern:
# knowledge of the four waveforms, no learned prior); with the **priors'
# assignment** (chapter {ref}`sec-beyond`'s start); chapter
# {ref}`sec-beyond`'s **refinement** of that start; and the **model-judged
# search**. Beside them the references on the same mixes, the oracle ideal
# ratio mask (it reads the true sources) and the supervised Conv-TasNet of
# chapter {ref}`sec-separation` (trained on mixes: a reference, not a
# generative-prior result), and the sampler started at the truth, once with
# the schedule the rule `added_sampler_holds_truth` writes (the run from
# noise's levels, from the truth plus noise of its first level) and once
# from the easier start (the truth plus noise of the refinement's first
# level, the refinement's schedule), labelled. SI-SDR is the mean over a
# mix's four sources, fixed order (output $k$ against source $k$) unless
# said; intervals are 95% bootstraps over mixes.

# %% tags=["nbval-ignore-output"]
loaded = store.load(runs.separator_config(P, seed=seed))  # chapter 06 trains it; this chapter never does
separator = loaded[0].to(DEVICE) if loaded is not None else None
if separator is None:
    print("the run store has no Conv-TasNet for this profile: run notebooks/06_separation first for that reference")
cfg = separation.SearchConfig(**P.search)
# this chapter's previous run at this profile, if its results are here: its time is named beside this one's
own_results = paths.results_dir() / "08_search.json"
previous = (json.loads(own_results.read_text()).get("runs", {}).get(f"{P.name}/seed={seed}")
            if own_results.exists() else None)
entry, estimates = ablation.run(P, denoisers, cfg, seed=seed, separator=separator, ts=ts)
if previous is not None:
    entry["previous_run"] = {
        "seconds_per_mix": previous["seconds_per_mix"][ablation.FULL_METHOD],
        "mean_fixed_si_sdr": float(np.mean(previous["rows"][ablation.FULL_METHOD]["fixed"])),
    }
entry["run_terms"] = "A FIFTH RUN"  # the rules block this run was executed under (book/scorecard.yaml)
entry["validation"] = tuning.validation_entry(P, denoisers, cfg, record_path if own_record else None, seed=seed)
glue("has_tasnet", "" if separator is not None else
     " (the Conv-TasNet was not in the run store: not compared)", display=False)

# %% tags=["remove-cell"]
# what must hold on any CPU: shapes, finite values, the mix kept exactly by every method that keeps it
for name in ablation.ROWS:
    est = estimates[name]
    assert est.shape == ts.truth.shape and torch.isfinite(est).all(), name
    assert float((data.mix(est) - ts.mixes).abs().max()) < 1e-4, name
    fx, pm = np.asarray(entry["rows"][name]["fixed"]), np.asarray(entry["rows"][name]["perm"])
    assert (pm.sum(1) >= fx.sum(1) - 1e-6).all(), name

# %% tags=["nbval-ignore-output"]
def mean_iv(per_source):
    return stats.cluster_bootstrap(np.asarray(per_source, dtype=float), seed=seed)


def ablation_row(scores, seconds=None):
    per_mix = np.asarray(scores["fixed"], dtype=float).mean(1)
    return {
        "SI-SDR, fixed order": f"{mean_iv(scores['fixed']):.1f}",
        "median": f"{np.median(per_mix):.1f}",
        "mixes >= 15 dB": int((per_mix >= 15).sum()),
        "mixes < 0 dB": int((per_mix < 0).sum()),
        "best permutation": f"{mean_iv(scores['perm']):.1f}",
        "seconds per mix": "" if seconds is None else f"{seconds:.1f}",
    }


table = {n: ablation_row(entry["rows"][n], entry["seconds_per_mix"][n]) for n in ablation.ROWS}
table.update({n: ablation_row(v) for n, v in entry["references"].items()})
table.update({n: ablation_row(v, entry["seconds_per_mix"][n]) for n, v in entry["truth_rows"].items()})
glue("truth_rule_si", table[ablation.TRUTH_RULE]["SI-SDR, fixed order"], display=False)
glue("truth_easy_si", table[ablation.TRUTH_EASY]["SI-SDR, fixed order"], display=False)
glue("truth_rule_sigma", float(P.noise_sigma_max), display=False)
glue("truth_easy_sigma", float(P.refine_sigma), display=False)
rule_mean, easy_mean = (float(np.asarray(entry["truth_rows"][n]["fixed"]).mean())
                        for n in (ablation.TRUTH_RULE, ablation.TRUTH_EASY))
glue("truth_reading", (
    "the start from the truth that the rule writes ends far below the easier one: at its first level the "
    "truth is drowned, so that row tests a run from noise, not whether the priors hold the truth"
    if rule_mean < easy_mean - 3 else
    "the two starts from the truth end within 3 dB of each other: the priors hold the truth under either"
), display=False)
pd.DataFrame(table).T.rename_axis("method (dB; mean over mixes [95% interval])")

# %% [markdown]
# The two starts from the truth answer different questions. The rule's
# schedule first adds noise of its first level, sigma =
# {glue:text}`truth_rule_sigma:.2f` (the sources peak at 1), and ends at
# {glue:text}`truth_rule_si` dB; from the easier start (noise of sigma =
# {glue:text}`truth_easy_sigma:.2f`, the refinement's first level, and the
# refinement's schedule) it ends at {glue:text}`truth_easy_si` dB. Read
# together: {glue:text}`truth_reading`. Both are shown, labelled, and
# neither enters the method.

# ## The verdicts
#
# The rows of `book/scorecard.yaml`, judged from the numbers above alone
# (`sepnb.analysis.scorecard.search_rows`). The method's time per mix is
# {glue:text}`sec_search:.1f` s (the budget: {glue:text}`budget_s:.0f` s).
# {glue:text}`previous_run`

# %% tags=["nbval-ignore-output"]
card = scorecard.search_rows(entry, budget_s=tuning.BUDGET_S)
entry["scorecard"] = card
verdict_rows = []
for rid, parts in card.items():
    for part, v in parts.items():
        iv = v.get("interval")
        verdict_rows.append({
            "row": rid, "part": part,
            "value [95% interval]": "" if iv is None else f"{stats.Interval(**iv):.2f}",
            "verdict": v["verdict"],
        })
full = card["added_toy_separation_strong"]["denoiser"]
glue("verdict_strong", full["verdict"], display=False)
glue("si_search", f"{stats.Interval(**full['interval']):.1f}", display=False)
glue("sec_search", entry["seconds_per_mix"][ablation.FULL_METHOD], display=False)
prev = entry.get("previous_run")
glue("previous_run", "" if prev is None else (
    f"The run of this chapter before this one took {prev['seconds_per_mix']:.1f} s per mix (mean fixed-order "
    f"SI-SDR {prev['mean_fixed_si_sdr']:.1f} dB). The rules file's blocks \"the time budget, a third run\", "
    "\"a fourth run\" and \"a fifth run\" say what changed since the book's second run, which was over the "
    "budget: the denoisers' inference was made faster without changing what they compute or any knob, and "
    "the test mixes were run again; the time judged is this run's."), display=False)
pref = card["added_criterion_prefers_truth"]["denoiser"]
glue("verdict_prefers", pref["verdict"], display=False)
glue("n_val_failing", pref["failing_mixes"], display=False)
glue("prefers_all", f"{pref['all_mixes']['fraction']:.2f}", display=False)
glue("prefers_failing", "" if pref["interval"] is None else f"{stats.Interval(**pref['interval']):.2f}",
     display=False)
refs = card["added_beats_references"]
glue("verdict_refs", "; ".join(f"{n.split(': ', 1)[-1]}: {v['verdict']} ({stats.Interval(**v['interval']):.1f} dB)"
                               for n, v in refs.items()), display=False)
glue("verdict_groups", "; ".join(f"{g}: {v['verdict']} ({stats.Interval(**v['interval']):.1f} dB)"
                                 for g, v in card["added_toy_separation_strong_by_group"].items()), display=False)
pd.DataFrame(verdict_rows).set_index(["row", "part"])

# %% [markdown]
# The method reaches **{glue:text}`si_search` dB**: against the target,
# **{glue:text}`verdict_strong`**. Per group: {glue:text}`verdict_groups`.
# Against the references (paired differences, method minus reference):
# {glue:text}`verdict_refs`{glue:text}`has_tasnet`.
#
# ## Where it fails, and why
#
# A test mix **fails** below {glue:text}`target:.0f` dB. Its reason is the
# first of these that applies, read from the method's own output (the rules
# fix the order): **assignment** (the best permutation reaches the target:
# the right groups went to the wrong sources), **candidates** (no set of
# fundamentals the method considered has every true fundamental within half a
# bin), **choice** (one had them; the criterion chose another) and
# **refinement** (the chosen set had them; the priors' refinement still ends
# below the target). "Before" is chapter {ref}`sec-beyond`'s method (its one
# set), "after" the search.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Each test mix's SI-SDR (fixed order, mean over its four sources) before (chapter 07's grouping and refinement) and after (the model-judged search), by group of mixes. Dashed: the 15 dB line of a failure; dotted: no change.", "name": "fig-08-before-after"}}
before = np.asarray(entry["rows"]["refinement"]["fixed"]).mean(1)
after = np.asarray(entry["rows"][ablation.FULL_METHOD]["fixed"]).mean(1)
groups = np.asarray(ts.groups)
fig, ax = plt.subplots(figsize=(5, 4))
lo, hi = min(before.min(), after.min()) - 2, max(before.max(), after.max()) + 2
ax.plot([lo, hi], [lo, hi], ":", color="0.6", lw=1)
ax.axhline(failures.FAIL_BELOW_DB, ls="--", color="0.6", lw=1)
ax.axvline(failures.FAIL_BELOW_DB, ls="--", color="0.6", lw=1)
for g, marker in zip(failures.GROUPS, "os^"):
    sel = groups == g
    ax.scatter(before[sel], after[sel], s=16, marker=marker, label=f"{g} ({int(sel.sum())})")
ax.set_xlabel("before: grouping + refinement (dB)")
ax.set_ylabel("after: model-judged search (dB)")
_ = ax.legend(fontsize=8)

# %% tags=["nbval-ignore-output"]
tax_rows = []
SUB = "sub-multiple reading (after the results)"
for key, reading in (("taxonomy", "the rule"), ("taxonomy_submultiples", SUB)):
    for when in ("before", "after"):
        reasons = np.asarray([r or "passes" for r in entry[key][when]])
        for g in (*failures.GROUPS, "all"):
            sel = groups == g if g != "all" else np.ones(len(groups), bool)
            tax_rows.append({"reading": reading, "": when, "group": g, "mixes": int(sel.sum()),
                             **{r: int((reasons[sel] == r).sum()) for r in ("passes", *failures.REASONS)}})
taxonomy = pd.DataFrame(tax_rows).set_index(["reading", "", "group"])
moved = [(ts.items[i], a, b) for i, (a, b) in enumerate(zip(entry["taxonomy"]["after"],
                                                            entry["taxonomy_submultiples"]["after"])) if a != b]
glue("n_moved", len(moved), display=False)
glue("moved", "; ".join(f"test item {it}: {a} to {b}" for it, a, b in moved) or "none", display=False)
worse = [i for i in range(len(groups)) if after[i] < before[i] - 3]
glue("n_worse", len(worse), display=False)
glue("worse", "; ".join(
    f"test item {ts.items[i]} ({ts.groups[i]}), {before[i]:.1f} to {after[i]:.1f} dB, "
    f"reason {entry['taxonomy']['after'][i] or 'none (passes)'}" for i in worse) or "none", display=False)
after_reasons = pd.Series([r for r in entry["taxonomy"]["after"] if r]).value_counts()
glue("n_fail_before", int(sum(r is not None for r in entry["taxonomy"]["before"])), display=False)
glue("n_fail_after", int(sum(r is not None for r in entry["taxonomy"]["after"])), display=False)
glue("main_reason", after_reasons.index[0] if len(after_reasons) else "(none fails)", display=False)
glue("main_reason_n", int(after_reasons.iloc[0]) if len(after_reasons) else 0, display=False)
taxonomy

# %% [markdown]
# Failures: {glue:text}`n_fail_before` before, {glue:text}`n_fail_after`
# after; the commonest reason after the search is **{glue:text}`main_reason`**
# ({glue:text}`main_reason_n` mixes).
#
# The lower half of the table is a reading added to the rules **after** these
# numbers were read, and changes no count above it: some mixes were chosen
# with a fundamental at exactly half the true one and still separate (a comb
# at f/2 holds every harmonic of f), which "within half a bin of every true
# fundamental" counts as an error. Read with a candidate c standing for f
# where f is within half a bin of 1, 2 or 3 times c (one candidate per true
# fundamental), {glue:text}`n_moved` failures after the search change reason:
# {glue:text}`moved`.
#
# The search is not better on every mix: {glue:text}`n_worse` mixes end more
# than 3 dB below chapter {ref}`sec-beyond`'s method ({glue:text}`worse`).
# Where the reason is assignment, the right groups were found and the priors
# gave them to the wrong sources; the search's criterion ranked that
# assignment best.
#
# Each mix that fails before or after, with its evidence: its group, the gap
# between its two closest true fundamentals in bins, its SI-SDR before and
# after (fixed order and best permutation), how far the chosen fundamentals
# lie from the true ones (largest error, in bins; as the rule matches them,
# and with sub-multiples) and how close the best candidate came (the same
# two ways).

# %% tags=["nbval-ignore-output"]
def worst_bins(f0, truth_f, multiples=(1,)):
    return float(failures.f0_error_bins(f0, truth_f, bin_hz, multiples).min())


fail_rows = []
perm_after = np.asarray(entry["rows"][ablation.FULL_METHOD]["perm"]).mean(1)
for i, reason in enumerate(entry["taxonomy"]["after"]):
    if reason is None and entry["taxonomy"]["before"][i] is None:
        continue
    f = np.sort(ts.freq[i])
    fail_rows.append({
        "test item": ts.items[i], "group": ts.groups[i],
        "closest gap (bins)": float(np.diff(f).min() / bin_hz),
        "before (dB)": before[i], "after (dB)": after[i], "after, best perm. (dB)": perm_after[i],
        "reason before": entry["taxonomy"]["before"][i] or "passes", "reason after": reason or "passes",
        "reason after, sub-multiples": entry["taxonomy_submultiples"]["after"][i] or "passes",
        **{f"{what} f0 error{how} (bins)": worst_bins(f0, ts.freq[i], m)
           for what, f0 in (("chosen", entry["rows"][ablation.FULL_METHOD]["f0"][i]),
                            ("best candidate", entry["search"][i]["candidate_f0"]))
           for how, m in (("", (1,)), (", sub-multiples", failures.SUB_MULTIPLES))},
    })
(pd.DataFrame(fail_rows).set_index("test item").style.format(precision=1)
 if fail_rows else Markdown("No test mix fails before or after."))

# %% [markdown]
# ## Is it the candidates or the criterion?
#
# On the validation mixes, the criterion of the true sources (refined the way
# a candidate is) against the criterion of the candidate the search chose.
# Where the method fails and the criterion still prefers the truth, a better
# candidate would have been chosen: the candidates limit the method. Where it
# prefers the chosen candidate, the criterion (the priors) does. Among the
# {glue:text}`n_val_failing` failing validation mixes the fraction preferring
# the truth is {glue:text}`prefers_failing` (exact and bootstrap intervals
# hulled; all validation mixes: {glue:text}`prefers_all`); the row
# `added_criterion_prefers_truth` reads **{glue:text}`verdict_prefers`**.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Validation mixes: the criterion of the refined truth against that of the chosen candidate (lower is better to the priors), coloured by whether the chosen separation fails (below 15 dB). Points below the diagonal: the priors prefer the truth.", "name": "fig-08-criterion"}}
val = entry["validation"]
v_fixed = np.asarray(val["fixed"]).mean(1)
crit, tcrit = np.asarray(val["criterion"]), np.asarray(val["truth_criterion"])
fig, ax = plt.subplots(figsize=(5, 4))
fails = v_fixed < failures.FAIL_BELOW_DB
ax.scatter(crit[~fails], tcrit[~fails], s=14, color="0.5", label="chosen separation passes")
ax.scatter(crit[fails], tcrit[fails], s=18, color="C3", marker="x", label="chosen separation fails")
lims = [min(crit.min(), tcrit.min()), max(crit.max(), tcrit.max())]
ax.plot(lims, lims, ":", color="0.6")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("criterion of the chosen candidate")
ax.set_ylabel("criterion of the refined truth")
_ = ax.legend(fontsize=8)

# %% [markdown]
# ## Listening: the best, the median and the worst test mix
#
# Under the search, ranked by fixed-order SI-SDR; each mix, then the four
# separated sources in the order of the priors (sine, square, saw, triangle).

# %% tags=["nbval-ignore-output"]
order = np.argsort(after, kind="stable")
picks = {"worst": order[0], "median": order[len(order) // 2], "best": order[-1]}
est = estimates[ablation.FULL_METHOD]
for label, i in picks.items():
    display(Markdown(f"**{label}**: test item {ts.items[i]} ({ts.groups[i]}), {after[i]:.1f} dB fixed order, "
                     f"{'a failure' if after[i] < failures.FAIL_BELOW_DB else 'a success'}"),
            player(ts.mixes[i], P.sample_rate))
    for k, s in enumerate(data.SOURCES):
        display(Markdown(f"{s}, separated"), player(est[i, k].clamp(-1, 1), P.sample_rate))

# %% [markdown]
# ## Using it on mixes of your own
#
# The method with this chapter's configuration and the book's denoisers is
# one call; it never trains (a missing denoiser is an error naming the
# `sepnb train` command that makes it):
#
# ```python
# import sepnb
# sources = sepnb.separate_toy_mixes(mixes)  # mixes [B, T] at 16 kHz; sources [B, 4, T]
# ```
#
# and from the command line, `sepnb separate mix.wav out/` writes
# `out/sine.wav` ... `out/triangle.wav` (a 16 kHz mono WAV; anything else is
# refused with the reason).
#
# ## Results file and what came first

# %% tags=["nbval-ignore-output"]
results_path = paths.update_results("08_search", f"{P.name}/seed={seed}", entry)
print(f"wrote {results_path.name}")
order_rows = {
    "the tuning protocol, then the validation record": provenance.amendment_provenance(
        "THE TUNING PROTOCOL", "07_search_validation", '"steps"'),
    "the failure taxonomy, then the test results": provenance.amendment_provenance(
        "THE FAILURE TAXONOMY", "08_search", '"rows"'),
    "the taxonomy's sub-multiple reading, then the test results": provenance.amendment_provenance(
        "THE SUB-MULTIPLE READING", "08_search", '"rows"'),
    "the third run's terms, then the third run": provenance.amendment_provenance(
        "THE TIME BUDGET, A THIRD RUN", "08_search", '"previous_run"'),
    "a fourth run's terms (display defects only), then the fourth run": provenance.amendment_provenance(
        "A FOURTH RUN", "08_search", '"previous_run"'),
    "a fifth run's terms (the thread-count defect only), then the fifth run": provenance.amendment_provenance(
        "A FIFTH RUN", "08_search", '"run_terms"'),
    **{f"row {rid}": provenance.row_provenance(rid) for rid in card},
}
pd.DataFrame(order_rows).T.fillna("").rename_axis("rule, then result")

# %% [markdown]
# Each rule's first commit against the first commit of the result it judges,
# read from git (a rule whose result is not committed yet reads "rule
# first"). Three parts of the rules came during the work and say so in the
# rules file: the `n_sets` lever was added with its grid before any
# validation number of it, the failure taxonomy while the validation record
# ran, unread, before any test number of the search, the taxonomy's
# sub-multiple reading after the test numbers were read (it changes no
# verdict and no count under the rule; the table above shows it apart), and
# the terms of a third run after the second was over the time budget (no
# knob changed; the inference was made faster), of a fourth after the
# third, for two defects of its display only, and of a fifth after the
# fourth, because its side-by-side priors set torch's thread count to 1 and
# back, which breaks torch's LU solves later in the process (this run; the
# one judged).
#
# ## Summary
#
# - On {glue:text}`n_test` test mixes the model-judged search separates at
#   **{glue:text}`si_search` dB** (fixed order) in
#   {glue:text}`sec_search:.1f` s per mix: against the target of
#   {glue:text}`target:.0f` dB with the interval's lower end at
#   {glue:text}`target_low:.0f` dB, **{glue:text}`verdict_strong`**. Per
#   group: {glue:text}`verdict_groups`.
# - Against the references: {glue:text}`verdict_refs`.
# - Failures go from {glue:text}`n_fail_before` (chapter
#   {ref}`sec-beyond`'s method, same mixes) to {glue:text}`n_fail_after`; the
#   commonest reason left is **{glue:text}`main_reason`**. Where the method
#   fails on validation mixes the criterion prefers the truth on a fraction
#   {glue:text}`prefers_failing` of them ({glue:text}`verdict_prefers`).
# - What the method leans on beyond the learned priors: that every source is
#   periodic (the candidates are sets of fundamentals). The priors choose
#   among them and assign them; they never see a true source.
