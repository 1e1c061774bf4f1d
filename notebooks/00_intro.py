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
# (sec-intro)=
# # Deep generative priors for audio source separation
#
# This book reproduces, in code you can run, Frank & Ilse,
# *Problems using deep generative models for probabilistic audio source
# separation* {cite}`frank2020problems`.
#
# ## Scorecard
#
# Each claim the paper makes, judged by the rules in `book/scorecard.yaml`
# (its header gives them): a claim **holds** when the whole 95% interval of
# its quantity lies on the claim's side of the threshold, **does not hold**
# when it lies wholly on the other side, is **inconclusive** when the interval
# contains the threshold, and is **not tested** when the data are not the
# paper's (the music stand-in is not musdb18), the sample is too small, or the
# experiment has not been run. The table is computed when the book is built,
# from that file and the chapters' results (`book/results/*.json`); the last
# column links to the chapter with the evidence. Rows marked "added" are
# experiments this book adds, not claims of the paper.
#
# **Which came first, the rule or the result**, is read from git when the book
# is built, not from the rules file's own account: *rule first* when the commit
# that added a row's rule precedes the first commit holding the result it
# judges, *rule after the result* otherwise (the short commit ids are under
# it). {glue:text}`n_after` of the {glue:text}`n_rows` rows had their result
# in the repository before their rule: the rules file was written after
# chapter 04 had run. Its author says it was written without looking at those
# numbers; git cannot confirm that, so those verdicts carry less weight than
# the {glue:text}`n_first` whose rules came first. Rules changed after their
# results were seen are recorded in the file as *deviations*; under each
# verdict they change, the verdict under the old rule is shown ("at
# {glue:text}`old_bar`" for the discrimination bar the chapter-04 claims table
# used before the rules file, "bootstrap alone" for the proportions that now
# have exact intervals).
#
# {glue:text}`n_planned` further rows are pre-registered for experiments
# that have not been run yet ({glue:text}`planned_issues`): their rules are
# in git before any code that computes their numbers, and they enter this
# table when their chapter does ({glue:text}`planned_ids`).

# %% tags=["remove-input"]
import html
import os

import pandas as pd
from IPython.display import HTML, display
from myst_nb import glue

from sepnb.analysis import scorecard
from sepnb.core import paths, profiles

# %% tags=["parameters", "remove-cell"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper

# %% tags=["remove-input"]
P = profiles.get(profile)
card = scorecard.compute(profile=P.name)


def quantity(e):
    if e["low"] is None:
        return "" if e["value"] is None else f"{e['value']:.3g}"
    return f"{e['value']:.3g} [{e['low']:.3g}, {e['high']:.3g}]"


SHORT = {"rule first": "rule first", "rule after the result": "rule after the result",
         "rule and result in one commit": "rule and result in one commit", "unknown": "unknown (no git history)"}


# the parts of the rules added later, and whether each came before the result it changes
LATER = {"deviation discrimination_bar": "bar 0.9 to 0.8", "deviation exact_proportions": "exact intervals",
         "deviation diagnosis_at_last_level": "diagnosis at sigma_L", "deviation basis_schedule": "BASIS schedule",
         "training-seed rule": "seed rule"}
WHEN = {"rule first": "before the result", "rule after the result": "after the result",
        "rule and result in one commit": "with the result", "unknown": "unknown"}


def provenance(e):
    p = e["provenance"]
    ids = " / ".join(c or "not committed" for c in (p["rule_commit"], p["result_commit"]))
    later = "".join(f'<span class="reason">{LATER.get(x["what"], x["what"])}: {WHEN[x["order"]]}</span>'
                    for x in p["later"])
    return f"{SHORT[p['order']]}<span class=\"reason\">{ids}</span>{later}"


def old_verdicts(e):
    return "".join(f'<span class="reason">{scorecard.old_rule_label(o)}: {o["verdict"]}</span>' for o in e["old"])


prov = {r["id"]: scorecard.provenance(r["id"]) for r in scorecard.rules()["rows"] if r.get("status") != "planned"}
planned = scorecard.planned()
for e in card:
    e["provenance"] = prov[e["id"]]
# the reasons go under their verdict in a smaller font, so the table fits the text column
WIDTHS = (6, 29, 9, 14, 22, 13, 7)  # per cent of the column, in the table's column order
STYLE = ("<style>table.scorecard{font-size:0.8em;width:100%;table-layout:fixed;display:table}"
         "table.scorecard td,table.scorecard th{vertical-align:top;overflow-wrap:anywhere}"
         + "".join(f"table.scorecard th:nth-child({i + 1}){{width:{w}%}}" for i, w in enumerate(WIDTHS))
         + "table.scorecard .reason{display:block;font-size:0.9em;opacity:0.8}</style>")
rows = []
for e in card:
    claim = e["claim"] + (f" ({e['config']})" if e["config"] else "")
    note = f'<span class="reason">{html.escape(e["reason"])}</span>' if e["reason"] else ""
    rows.append({"": "added" if e["kind"].startswith("added") else "paper", "claim": html.escape(claim),
                 "family": e["family"], "quantity [95% interval]": quantity(e),
                 "verdict": f"<b>{e['verdict']}</b>{old_verdicts(e)}{note}",
                 "rule vs result": provenance(e),
                 "ch.": f'<a href="{e["chapter"]}.html">{e["chapter"][:2]}</a>'})
display(HTML(STYLE + pd.DataFrame(rows).to_html(index=False, escape=False, classes="scorecard")))
orders = [p["order"] for p in prov.values()]
glue("n_rows", len(orders), display=False)
glue("n_after", orders.count("rule after the result"), display=False)
glue("n_first", orders.count("rule first"), display=False)
glue("n_planned", len(planned), display=False)
issues = sorted({int(r["issue"]) for r in planned})
glue("planned_issues", ("issues " if len(issues) > 1 else "issue ") + " and ".join(map(str, issues)), display=False)
glue("planned_ids", ", ".join(f"`{r['id']}`" for r in planned) or "none", display=False)
glue("old_bar", next(d["old"]["threshold"] for d in scorecard.rules()["deviations"] if "threshold" in d["old"]),
     display=False)
_ = paths.update_results("scorecard", f"{P.name}/seed=0", {"profile": P.name, "rows": card})

# %% [markdown]
# ## What the paper claims
# The paper set out to separate audio mixes by sampling the posterior
# $p(\mathbf{s} \mid \mathbf{m})$ of the sources given the mix with Langevin
# dynamics {cite}`welling2011sgld,neal2012mcmc`, following Jayaram & Thickstun
# {cite}`jayaram2020basis`, with one deep generative prior per source: a WaveNet
# {cite}`oord2016wavenet` or a FloWaveNet {cite}`kim2019flowavenet`. The
# separation failed, and the paper explains why: the learned priors are either
# *discriminative and extremely peaked* or *smooth and non-discriminative*. It
# supports this with
#
# - the likelihood of every source under every prior, on a toy set of periodic
#   waveforms and on musdb18 {cite}`rafii2017musdb18` (its Figure 3);
# - the same after fine-tuning the priors on noisy inputs, the smoothing that
#   Langevin sampling needs (its Figure 4);
# - the likelihood of constant and random inputs (its Table 1), in the line of
#   {cite}`nalisnick2019know`.
#
# ## What this book adds
#
# The authors' code is public, and reading it shows that several published
# numbers measure something other than what the text says: the flow's
# "likelihood" leaves out the log-determinant, the WaveNet sees its own target,
# and the mix term of the Langevin update had weight zero. This book computes
# the quantities the paper describes, correctly, keeps the authors' variants
# where they change a conclusion, labelled as such, and says plainly where its
# results agree with the paper and where they do not. Every number in the prose
# is computed by the chapter that states it.
#
# ## How to read it
#
# The chapters build on each other:
#
# 1. {ref}`sec-data`: the toy data set (four waveforms, how they are drawn,
#    what they look and sound like) and the music data: musdb18 when a copy is
#    given, otherwise a procedurally composed stand-in in its format, named as
#    a stand-in wherever it is used.
# 2. {ref}`sec-models`: the two families of priors, WaveNet and FloWaveNet,
#    with their equations and sizes; one prior per family and source (toy and
#    music), trained and cached in the run store; what each has learned, with
#    samples to hear.
# 3. {ref}`sec-noise`: the priors fine-tuned on noisy inputs at one noise level
#    (a parameter), and whether the smoothed priors still tell the sources
#    apart.
# 4. {ref}`sec-ood`: the cross-likelihood of every source under every prior
#    (the paper's Figure 3, toy and music), the authors' flow metric beside the correct one,
#    the same over the grid of noise levels of data and priors (its Figure 4),
#    constant and noise inputs (its Table 1), and each of the paper's claims
#    checked against our numbers.
# 5. {ref}`sec-variants`: the authors' variants, run and judged by rules
#    fixed before they ran: their flow objective scored with their metric,
#    their noise scheme for fine-tuning, their toy data, and the WaveNets
#    trained longer; which of chapter 04's verdicts move.
# 6. {ref}`sec-separation`: separation of toy mixes by Langevin dynamics, plain
#    and annealed over the noise-conditioned priors, from noise and from the
#    true sources, measured in SI-SDR (fixed order and best permutation, with
#    intervals, after every noise level) next to the mix itself, a supervised
#    separator (with its training curve) and oracle masks; with audio, the
#    sampler's trajectory and a diagnosis of what fails, the sampler or the
#    priors.
# 7. {ref}`sec-beyond`, beyond the paper: per-source denoising (score)
#    priors, trained on single sources only, a sampler that keeps the mix
#    exact, and a harmonic start chosen by the priors; what separates the toy
#    mixes, what does not, and why.
# 8. {ref}`sec-search`, beyond the paper: a search among candidate
#    separations (sets of fundamentals, their assignments to the sources)
#    that the priors judge, tuned on validation mixes only, with every part
#    of it alone beside it on the same 64 test mixes, the references, and
#    where and why it still fails.
#
# Each chapter is a Jupyter notebook, executed top to bottom at the *book*
# profile (sizes that fit a 2-core CPU) before this site was built. Figures are
# numbered; audio can be played in place.
#
# ## How to re-run it
#
# From a clone of the repository (see its README):
#
# - `make book` sets up a virtual environment, executes every chapter with
#   papermill and builds this site into `_build/html`;
# - `make test` runs the unit tests and every chapter at the tiny *smoke*
#   profile (`pytest --nbval`);
# - one chapter with other parameters:
#   `papermill notebooks/03_noise.ipynb out.ipynb -p sigma 0.359` or
#   `papermill notebooks/01_data.ipynb out.ipynb -p profile smoke -p seed 1`.
#
# The sizes behind the profiles `smoke`, `book` and `paper` live in one place,
# `sepnb/core/profiles.py`.
