"""The scorecard's decision rules (``book/scorecard.yaml``), applied to intervals.

Each row of ``book/scorecard.yaml`` names a quantity, a threshold and a
direction; :func:`verdict` turns a 95% interval into the row's verdict exactly
as the file's header says:

* ``holds``: the whole interval lies strictly on the claim's side of the threshold;
* ``does not hold``: the whole interval lies strictly on the other side;
* ``inconclusive``: the interval contains (or touches) the threshold;
* ``not tested``: fewer clusters than the row's ``min_clusters``, the ``smoke``
  profile, or data that is not what the row requires.

Rows judged per family combine with :func:`combine`. The file's recorded
``deviations`` (rules changed after their results were seen) are applied by
:func:`judge_with_deviations`, which also gives the verdict under the old
rule; whether each rule came before its result is read from git
(:func:`provenance`, :mod:`sepnb.analysis.provenance`), not from the file.
"""

from __future__ import annotations

import functools
from functools import lru_cache
from pathlib import Path

import numpy as np

from sepnb.core.paths import BOOK

__all__ = [
    "RULES_PATH",
    "VERDICTS",
    "rules",
    "rule",
    "verdict",
    "combine",
    "judge",
    "deviations",
    "REMEDY_ROWS",
    "remedy_rows",
    "judge_with_deviations",
    "old_rule_label",
    "provenance",
    "toy_rows",
    "compute",
]

RULES_PATH = BOOK / "scorecard.yaml"
VERDICTS = ("holds", "does not hold", "inconclusive", "not tested")


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"the scorecard's rules file {path} is not there: it is part of the book, in the repository's book/; "
            "run sepnb from a checkout (pip install -e .), or pass path= to a copy of book/scorecard.yaml"
        )
    with open(path) as f:
        return yaml.safe_load(f)


def rules(path: Path | str = RULES_PATH) -> dict:
    """The whole rules file (``meta``, ``defaults``, ``rows``)."""
    return _load(str(path))


def rule(row_id: str, path: Path | str = RULES_PATH) -> dict:
    """One row of the rules file by its ``id`` (a clear error naming the known ids otherwise)."""
    rows = {r["id"]: r for r in rules(path)["rows"]}
    if row_id not in rows:
        raise KeyError(f"no scorecard row {row_id!r}; known: {sorted(rows)}")
    return rows[row_id]


def verdict(
    low: float, high: float, threshold: float | None = None, direction: str = "above", band: tuple | None = None
) -> str:
    """The verdict of a 95% interval ``[low, high]`` under a row's rule."""
    if not low <= high:
        raise ValueError(f"interval must have low <= high, got [{low}, {high}]")
    if direction == "above":
        return "holds" if low > threshold else "does not hold" if high < threshold else "inconclusive"
    if direction == "below":
        return "holds" if high < threshold else "does not hold" if low > threshold else "inconclusive"
    if direction == "outside":
        lo, hi = band
        if high < lo or low > hi:
            return "holds"
        if lo < low and high < hi:
            return "does not hold"
        return "inconclusive"
    raise ValueError(f"unknown direction {direction!r}: use 'above', 'below' or 'outside'")


def combine(verdicts) -> str:
    """Per-family verdicts combined (the file's ``family: both`` rule)."""
    verdicts = list(verdicts)
    if "not tested" in verdicts:
        return "not tested"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if "does not hold" in verdicts:
        return "does not hold"
    return "inconclusive"


def judge(
    row_id: str,
    low: float,
    high: float,
    n_clusters: int,
    profile: str,
    data: str = "toy",
    path: Path | str = RULES_PATH,
    threshold: float | None = None,
    min_clusters: int | None = None,
) -> str:
    """The verdict of one row (one family) from its interval, with the ``not tested`` cases
    (``threshold`` replaces the row's own, for the old verdict of a recorded deviation;
    ``min_clusters`` the row's minimum, where a deviation sets its own)."""
    r = rule(row_id, path)
    d = rules(path)["defaults"]
    if profile in d.get("exclude_profiles", []) or data != r.get("requires_data", data):
        return "not tested"
    kind = "separation" if r.get("interval_unit") == "test mixes" else data
    need = r.get("min_clusters", d["min_clusters"].get(kind, 1)) if min_clusters is None else min_clusters
    if n_clusters < need:
        return "not tested"
    t = r.get("threshold") if threshold is None else threshold
    return verdict(low, high, t, r.get("direction", "above"), r.get("band"))


def old_rule_label(old: dict) -> str:
    """A short label of the rule an ``old`` entry of :func:`judge_with_deviations` was judged under
    (``"at 0.9"`` for an old threshold, ``"bootstrap alone"`` for the interval before exact bounds,
    otherwise the entry's own ``label``)."""
    rule = old["rule"]
    if "label" in old:
        return old["label"]
    return f"at {rule.removeprefix('threshold ')}" if rule.startswith("threshold ") else "bootstrap alone"


def planned() -> list[dict]:
    """The rules file's rows marked ``status: planned``: pre-registered for an experiment whose
    chapter does not exist yet, so :func:`compute` does not judge them."""
    return [r for r in rules()["rows"] if r.get("status") == "planned"]


def deviation(dev_id: str) -> dict:
    """The rules file's recorded deviation ``dev_id``."""
    for d in rules().get("deviations", []):
        if d["id"] == dev_id:
            return d
    raise KeyError(f"no deviation {dev_id!r} in {RULES_PATH}")


def deviations(row_id: str) -> list[dict]:
    """The rules file's recorded deviations that change row ``row_id``."""
    return [d for d in rules().get("deviations", []) if row_id in d.get("rows", ())]


def judge_with_deviations(row_id: str, iv, profile: str, data: str = "toy", min_clusters: int | None = None):
    """Row ``row_id`` judged on interval ``iv`` under the rules as they stand, with its recorded
    deviations applied: ``(interval, verdict, old)``.

    ``exact_proportions`` widens the interval of a proportion to its hull with
    the exact (Clopper-Pearson) interval; ``discrimination_bar`` keeps the rule
    but also judges at the old bar. ``old`` lists, per deviation, the verdict
    the row had under the rule before it (``{"deviation", "rule", "verdict"}``).
    """
    from sepnb.analysis.stats import exact_proportion

    devs = deviations(row_id)
    before = judge(row_id, iv.low, iv.high, iv.n_clusters, profile, data, min_clusters=min_clusters)
    old = []
    for d in devs:
        if "interval" in d.get("old", {}):
            iv = exact_proportion(iv)
    now = judge(row_id, iv.low, iv.high, iv.n_clusters, profile, data, min_clusters=min_clusters)
    if now == "not tested":
        return iv, now, old
    for d in devs:
        if "interval" in d["old"]:
            old.append({"deviation": d["id"], "rule": "percentile bootstrap alone", "verdict": before})
        if "threshold" in d["old"]:
            t = d["old"]["threshold"]
            old.append(
                {
                    "deviation": d["id"],
                    "rule": f"threshold {t}",
                    "verdict": judge(
                        row_id, iv.low, iv.high, iv.n_clusters, profile, data, threshold=t, min_clusters=min_clusters
                    ),
                }
            )
    return iv, now, old


def diagnose(v_holds: str, v_prefers: str) -> str:
    """Chapter 06's diagnosis of one family from its two verdicts (the rule of row
    ``added_posterior_prefers_truth``): ``sampler``, ``priors``, ``both``, ``unclear`` or ``not tested``."""
    if "not tested" in (v_holds, v_prefers):
        return "not tested"
    sampler = v_prefers == "holds"
    priors = v_holds == "does not hold" or v_prefers == "does not hold"
    return "both" if sampler and priors else "sampler" if sampler else "priors" if priors else "unclear"


def _mix_interval(values):
    """The cluster-bootstrap interval over mixes (rows of ``values``) with the rules file's resamples and seed."""
    from sepnb.analysis.stats import cluster_bootstrap

    boot = rules()["defaults"]["bootstrap"]
    return cluster_bootstrap(np.asarray(values, dtype=float), resamples=boot["resamples"], seed=boot["seed"])


def _verdict_of(row_id: str, iv, profile: str, min_clusters: int | None = None) -> dict:
    """``{"interval": ..., "verdict": ..., "old": [...]}`` of row ``row_id`` for the interval ``iv``
    (deviations applied, :func:`judge_with_deviations`)."""
    iv, v, old = judge_with_deviations(row_id, iv, profile, min_clusters=min_clusters)
    return {"interval": iv.to_json(), "verdict": v, **({"old": old} if old else {})}


def separation_rows(result: dict, seed: int = 0) -> dict:
    """The scorecard rows judged by chapter 06, recomputed from its results entry alone.

    ``result`` is one entry of ``book/results/06_separation.json`` (per-mix
    SI-SDR of every method, the BASIS schedule's run on its first mixes and
    the per-mix posterior check). Returns ``{row_id: {config: {"interval":
    {...}, "verdict": ...}}}`` plus ``"diagnosis": {family: ...}`` and
    ``"diagnosis_old"`` (the diagnosis under the rule before the recorded
    deviation ``diagnosis_at_last_level``). Every interval is the cluster
    bootstrap over mixes with the rules file's resamples and seed.
    """
    profile = result["profile"]
    per_mix = result["si_sdr_per_mix"]
    interval = _mix_interval

    def judged(row_id, iv, min_clusters=None):
        return _verdict_of(row_id, iv, profile, min_clusters)

    out: dict = {
        "langevin_separation_fails": {},
        "added_toy_separation_success": {},
        "added_sampler_holds_truth": {},
        "added_posterior_prefers_truth": {},
        "added_posterior_keeps_truth": {},
        "diagnosis": {},
        "diagnosis_old": {},
    }
    mix = np.asarray(per_mix["reference: mix as estimate"]["fixed_order"])
    for name in result["methods"]:
        family, _, method = name.partition(": ")
        if family not in ("flow", "wavenet") or "from truth" in method:
            continue
        fixed = np.asarray(per_mix[name]["fixed_order"])
        out["added_toy_separation_success"][name] = judged("added_toy_separation_success", interval(fixed))
        if family == "flow":
            out["langevin_separation_fails"][name] = judged("langevin_separation_fails", interval(fixed - mix))
    five_level = [v["verdict"] for v in out["langevin_separation_fails"].values()]
    basis = result.get("basis")
    if basis is not None:  # the BASIS schedule on the first mixes (deviation basis_schedule)
        n = len(basis["si_sdr_per_mix"])
        improvement = np.asarray(basis["si_sdr_per_mix"]) - mix[:n]
        need = int(deviation("basis_schedule")["items"])
        out["langevin_separation_fails"]["flow: BASIS schedule"] = judged(
            "langevin_separation_fails", interval(improvement), min_clusters=need
        )
    checks = result["posterior_check"]["per_mix"]
    for family in ("wavenet", "flow"):
        holds = judged("added_sampler_holds_truth", interval(per_mix[f"{family}: annealed from truth"]["fixed_order"]))
        prefers = judged(
            "added_posterior_prefers_truth",
            interval([float(r["target prefers truth"]) for r in checks if r["family"] == family]),
        )
        last = per_mix.get(f"{family}: last level from truth")
        keeps = (
            judged("added_posterior_keeps_truth", interval(last["fixed_order"]))
            if last is not None
            else {"interval": None, "verdict": "not tested"}
        )
        out["added_sampler_holds_truth"][family] = holds
        out["added_posterior_prefers_truth"][family] = prefers
        out["added_posterior_keeps_truth"][family] = keeps
        out["diagnosis"][family] = diagnose(keeps["verdict"], prefers["verdict"])
        out["diagnosis_old"][family] = diagnose(holds["verdict"], prefers["verdict"])
    if not out["added_posterior_keeps_truth"] or any(
        v["interval"] is None for v in out["added_posterior_keeps_truth"].values()
    ):
        out.pop("added_posterior_keeps_truth")
    fails = [v["verdict"] for v in out["langevin_separation_fails"].values()]
    out["langevin_separation_fails"]["row"] = combine(fails) if fails else "not tested"
    if basis is not None and five_level:
        out["langevin_separation_fails"]["row_old"] = combine(five_level)
    return out


def beyond_rows(result: dict) -> dict:
    """The scorecard rows judged by chapter 07 (denoising priors), from its results entry alone.

    Every configuration of ``result["methods"]`` except the start from the
    truth is judged by ``added_toy_separation_success``; the start from the
    truth by ``added_sampler_holds_truth`` (family ``"denoiser"``).
    """
    out: dict = {"added_toy_separation_success": {}, "added_sampler_holds_truth": {}}
    for name in result["methods"]:
        iv = _mix_interval(result["si_sdr_per_mix"][name]["fixed_order"])
        truth = "from truth" in name
        rid = "added_sampler_holds_truth" if truth else "added_toy_separation_success"
        out[rid]["denoiser" if truth else name] = _verdict_of(rid, iv, result["profile"])
    return out


def _two_condition(row_id: str, iv, profile: str, min_clusters: int | None = None) -> str:
    """A row with ``value_at_least``: holds when the value is at least it and the interval's lower end at
    least the threshold; does not hold when the whole interval lies below ``value_at_least``."""
    r = rule(row_id)
    v = judge(row_id, iv.low, iv.high, iv.n_clusters, profile, min_clusters=min_clusters)
    if v == "not tested":
        return v
    if iv.value >= r["value_at_least"] and iv.low >= r["threshold"]:
        return "holds"
    return "does not hold" if iv.high < r["value_at_least"] else "inconclusive"


#: Issue 23's time budget for the whole search, seconds per mix on the 2-core CPU (book/scorecard.yaml,
#: "Cost"); :data:`sepnb.separation.tuning.BUDGET_S` is this number.
SEARCH_BUDGET_S = 30.0


def search_rows(result: dict, budget_s: float = SEARCH_BUDGET_S) -> dict:
    """Issue 23's rows judged from the search chapter's results entry alone.

    ``result``: ``profile``; ``full_method`` (the name of the method judged); ``rows`` and
    ``references`` (``{name: {"fixed": [mixes][sources]}}``, fixed-order SI-SDR on the same test
    mixes); ``groups`` (one label per test mix, :func:`sepnb.analysis.failures.mix_groups`);
    ``seconds_per_mix`` (``{name: seconds}``); ``validation`` (per validation mix at the chosen
    configuration: ``fixed`` [mixes][sources], ``criterion`` and ``truth_criterion``). A full
    method slower than ``budget_s`` per mix is "not tested" (the rules' time budget).
    """
    from sepnb.analysis.stats import Interval, exact_proportion

    profile, full = result["profile"], result["full_method"]
    fixed = {n: np.asarray(v["fixed"], dtype=float) for n, v in {**result["rows"], **result["references"]}.items()}
    over = result["seconds_per_mix"][full] > budget_s
    slow = f"over the time budget ({result['seconds_per_mix'][full]:.1f} s per mix > {budget_s:g} s)"

    def entry(iv, verdict):
        return {
            "interval": iv.to_json(),
            "verdict": "not tested" if over else verdict,
            **({"reason": slow} if over else {}),
        }

    out: dict = {}
    iv = _mix_interval(fixed[full])
    out["added_toy_separation_strong"] = {
        "denoiser": entry(iv, _two_condition("added_toy_separation_strong", iv, profile))
    }
    groups = np.asarray(result["groups"])
    out["added_toy_separation_strong_by_group"] = {}
    for g in dict.fromkeys(result["groups"]):
        iv = _mix_interval(fixed[full][groups == g])
        out["added_toy_separation_strong_by_group"][g] = entry(
            iv, _two_condition("added_toy_separation_strong_by_group", iv, profile)
        )
    out["added_beats_references"] = {}
    for ref in result["references"]:
        diff = fixed[full].mean(axis=1) - fixed[ref].mean(axis=1)  # paired: one resample draws both
        iv = _mix_interval(diff[:, None])
        v = judge("added_beats_references", iv.low, iv.high, iv.n_clusters, profile)
        out["added_beats_references"][ref] = entry(iv, v)
    val = result["validation"]
    failing = np.asarray(val["fixed"], dtype=float).mean(axis=1) < 15.0
    prefers = (np.asarray(val["truth_criterion"]) < np.asarray(val["criterion"]))[failing].astype(float)
    if prefers.size:
        iv = exact_proportion(_mix_interval(prefers[:, None]))
    else:
        iv = Interval(float("nan"), float("nan"), float("nan"), 0)
    v = (
        "not tested"
        if not prefers.size
        else judge("added_criterion_prefers_truth", iv.low, iv.high, iv.n_clusters, profile)
    )
    every = (np.asarray(val["truth_criterion"]) < np.asarray(val["criterion"])).astype(float)
    out["added_criterion_prefers_truth"] = {
        "denoiser": {
            "interval": iv.to_json() if prefers.size else None,
            "verdict": v,
            "failing_mixes": int(failing.sum()),
            "all_mixes": {"fraction": float(every.mean()), "n": int(every.size)},
        }
    }
    return out


# --------------------------------------------------------------------------- the whole scorecard
#: Issue 24's rows judged per family and score from the study's entry (chapter 09), with the entry's key.
REMEDY_ROWS = {
    "remedy_noisefree_discriminates": "noisefree_auc",
    "remedy_conditioned_discriminates": "conditioned_min_auc",
    "remedy_probes_rejected": "probes_accepted_max",
}


def remedy_rows(result: dict) -> dict:
    """Issue 24's rows judged from the remedy study's results entry alone:
    ``{row: {family: {score: {"interval", "verdict"}}}}`` (the rules judge these per family and score;
    ``remedy_speech_rejected`` per family, on that family's best remedy).

    ``result``: ``profile``; per family in ``families``: for each key of :data:`REMEDY_ROWS` a
    ``{score: interval}`` (:meth:`~sepnb.analysis.stats.Interval.to_json`), ``best_remedy``, and
    ``outside_accepted`` (``{score: interval}``, or ``None`` with ``outside_missing`` naming the absent
    tools, when espeak-ng or sox is not installed).
    """
    from sepnb.analysis.stats import Interval

    profile = result["profile"]
    out: dict = {rid: {} for rid in (*REMEDY_ROWS, "remedy_speech_rejected")}
    for family, r in result["families"].items():
        for rid, key in REMEDY_ROWS.items():
            out[rid][family] = {}
            for score, ivj in r[key].items():
                iv = Interval(**ivj)
                out[rid][family][score] = {
                    "interval": iv.to_json(),
                    "verdict": judge(rid, iv.low, iv.high, iv.n_clusters, profile),
                }
        best = r["best_remedy"]
        if r.get("outside_accepted") is None:
            missing = ", ".join(r.get("outside_missing", ())) or "espeak-ng / sox"
            out["remedy_speech_rejected"][family] = {
                best: {"interval": None, "verdict": "not tested", "reason": f"not tested: {missing} missing"}
            }
        else:
            iv = Interval(**r["outside_accepted"][best])
            out["remedy_speech_rejected"][family] = {
                best: {
                    "interval": iv.to_json(),
                    "verdict": judge("remedy_speech_rejected", iv.low, iv.high, iv.n_clusters, profile),
                }
            }
    return out


def _boot():
    b = rules()["defaults"]["bootstrap"]
    return int(b["resamples"]), int(b["seed"])


def _interval(value, draws, n):
    from sepnb.analysis.stats import from_draws

    return from_draws(float(value), np.asarray(draws, dtype=float), n)


def _entry(row, family, iv=None, verdict=None, reason="", value=None, config=None, old=()):
    return {
        "id": row["id"],
        "kind": row.get("kind", ""),
        "family": family,
        "config": config,
        "claim": " ".join(str(row.get("claim") or row.get("question", "")).split()),
        "value": None if iv is None and value is None else round(float(iv.value if iv is not None else value), 4),
        "low": None if iv is None else round(iv.low, 4),
        "high": None if iv is None else round(iv.high, 4),
        "n_clusters": None if iv is None else iv.n_clusters,
        "verdict": verdict or "not tested",
        "reason": reason,
        "old": list(old),
        "chapter": row.get("chapter", ""),
    }


def _not_tested(row, reason, family=None):
    return _entry(row, family or row.get("family", ""), reason=reason)


def _judged(row, family, iv, profile, config=None, reason=""):
    iv, v, old = judge_with_deviations(row["id"], iv, profile)
    return _entry(row, family, iv, v, config=config, old=old, reason=reason)


def _rank_below(reference, value):
    """Percentile rank of ``value`` among ``reference`` [..., n]: fraction at or below it, ties one half."""
    reference = np.asarray(reference)
    return (reference < value).mean(-1) + 0.5 * (reference == value).mean(-1)


class _Toy:
    """What chapter 04's rows are judged from: its per-item results and one set of resamples, read once."""

    #: the widest level of the paper's Table 1, as the rules file names it
    WIDE = "sigma=0.359"

    def __init__(self, r04: dict, profile: str):
        from sepnb.analysis.stats import resample_indices
        from sepnb.data.toy import SOURCES

        self.profile, self.S = profile, list(SOURCES)
        self.R, self.seed = _boot()
        self.fig3 = {f: np.asarray(v) for f, v in r04["figure3_per_item"].items()}
        self.grid = {f: np.asarray(v) for f, v in r04["figure4_per_item"].items()}
        self.sig = [float(s) for s in r04["figure4"]["flow"]["test_sigmas"]]
        self.probes = {k: np.asarray(v) for k, v in r04["table1_per_probe"].items()}
        # Figure 3 of the priors of other training seeds (the same windows), by seed; seed 0 is fig3
        self.fig3_seeds = {0: self.fig3} | {
            int(k): {f: np.asarray(v) for f, v in d.items()} for k, d in r04.get("figure3_per_item_seeds", {}).items()
        }
        self.n3, self.n4 = self.fig3["flow"].shape[-1], self.grid["flow"].shape[-1]
        self.idx3 = resample_indices(self.n3, self.R, self.seed)
        self.idx4 = resample_indices(self.n4, self.R, self.seed)

    def has_paper_levels(self) -> bool:
        return f"zeros | flow | {self.WIDE}" in self.probes and max(self.sig) == 0.359

    def probe(self, kind: str, level: str) -> np.ndarray:
        return self.probes[f"{kind} | flow | {level}"]

    @functools.cached_property
    def idxp(self) -> np.ndarray:
        """Probes resampled independently of the test items."""
        from sepnb.analysis.stats import resample_indices

        return resample_indices(self.probe("N(0, 0.5)", "noise-free").shape[-1], self.R, self.seed + 1)


def _over_seeds(row, c: _Toy, family: str, stat, stat_draws, also=None) -> list[dict]:
    """A Figure 3 row judged over the training seeds of the rules file (``defaults.training_seeds``).

    ``stat(values)`` is the row's statistic on Figure 3's per-item values of one
    seed, ``stat_draws(values, idx)`` its draws on item resamples ``idx``. The
    interval is the two-level bootstrap: per draw, seeds with replacement and
    (independently) items, the statistic averaged over the drawn seeds.
    ``also = (label, f)``: ``f(values)`` is a seed's ``also_report`` number, reported per seed.
    """
    ts = rules()["defaults"]["training_seeds"]
    want = [int(x) for x in ts["seeds"]]
    if row["id"] not in ts["rows"]:  # judged on training seed 0 alone (the caller says so)
        return [
            _judged(row, family, _interval(stat(c.fig3[family]), stat_draws(c.fig3[family], c.idx3), c.n3), c.profile)
        ]
    have = sorted(s for s in c.fig3_seeds if s in want)
    if have != want:
        return [_not_tested(row, f"chapter 04's results hold training seeds {have}; the rule asks for {want}", family)]
    vals = [c.fig3_seeds[s][family] for s in have]
    per_value = np.array([stat(v) for v in vals])
    per_draws = np.stack([stat_draws(v, c.idx3) for v in vals])  # [seed, R]
    pick = np.random.default_rng(c.seed + 2).integers(0, len(have), size=(c.R, len(have)))
    draws = per_draws[pick, np.arange(c.R)[:, None]].mean(1)
    each = []  # each seed's own verdict, on its item bootstrap
    for v, d in zip(per_value, per_draws):
        iv = _interval(v, d, c.n3)
        each.append(judge(row["id"], iv.low, iv.high, iv.n_clusters, c.profile))
    reason = f"seeds {', '.join(map(str, have))}: {', '.join(f'{v:.3g}' for v in per_value)} ({', '.join(each)})"
    if also:
        reason += f"; {also[0]} per seed: {', '.join(f'{also[1](v):.2f}' for v in vals)}"
    e = _judged(row, family, _interval(per_value.mean(), draws, c.n3), c.profile, reason=reason)
    e["seeds"] = have
    return [e]


def _cross(values):
    """Figure 3's per-item values ``[prior, data, item]`` as a CrossLikelihood over the toy sources."""
    from sepnb.analysis.ood import CrossLikelihood
    from sepnb.data.toy import SOURCES

    return CrossLikelihood(np.asarray(values), list(SOURCES), list(SOURCES))


#: Figure 3's AUC rows report their weakest prior (the rules file's also_report: "for all prior models").
_AUC_ALSO = ("weakest prior's AUC", lambda values: float(_cross(values).aucs().min()))


# One small function per row of chapter 04 (Figure 3's rows use all fig3_items clean test items; the
# grid's cell (prior 0, test 0) holds the first ood_items of the same items, scored by the same priors).
def _row_fig3_auc(row, c: _Toy):
    f = "flow" if row["id"].startswith("flow") else "wavenet"
    return _over_seeds(
        row, c, f, lambda v: float(_cross(v).aucs().mean()), lambda v, idx: _mean_auc(v, idx)[1], also=_AUC_ALSO
    )


def _row_fig3_diagonal(row, c: _Toy):
    def frac(vals):
        return float(_cross(vals).own_prior_ranks_first().mean())

    return _over_seeds(row, c, "flow", frac, lambda v, idx: np.array([frac(v[..., i]) for i in idx]))


def _row_noisefree_peaked(row, c: _Toy):
    g = c.grid["flow"]
    b1 = c.sig.index(min(s for s in c.sig if s > 0))

    def rate(items):
        clean = np.stack([g[0, 0, i, i][items] for i in range(len(c.S))])  # [prior, n]
        noisy = np.stack([g[0, b1, i, i][items] for i in range(len(c.S))])
        t = np.percentile(clean, 5, axis=-1, keepdims=True)
        return float((noisy > t).mean(-1).max())

    d = [rate(i) for i in c.idx4]
    return [_judged(row, "flow", _interval(rate(np.arange(c.n4)), d, c.n4), c.profile)]


def _row_small_sigma_drop(row, c: _Toy):
    g = c.grid["flow"]
    v0, d0 = _mean_auc(g[0, 0], c.idx4)
    v1, d1 = _mean_auc(g[1, 1], c.idx4)
    return [_judged(row, "flow", _interval(v0 - v1, d0 - d1, c.n4), c.profile)]


def _row_conditioned_nondiscriminative(row, c: _Toy):
    g = c.grid["flow"]
    v, d = _max_level_auc(np.stack([g[a, a] for a in range(1, len(c.sig))]), c.idx4)
    return [_judged(row, "flow", _interval(v, d, c.n4), c.profile)]


def _row_zero_input_rank(row, c: _Toy):
    own, zero0 = c.fig3["flow"], c.probe("zeros", "noise-free")[:, 0]  # own: [prior, data, item]
    names = ("sine", "saw", "triangle") if row["id"].endswith("noisefree") else ("square",)
    which = [c.S.index(s) for s in names]

    def stat(items):
        return float(min(_rank_below(own[i, i][items], zero0[i]) for i in which))

    d = [stat(i) for i in c.idx3]
    return [_judged(row, "flow", _interval(stat(np.arange(c.n3)), d, c.n3), c.profile)]


def _row_zero_shift_after_noise(row, c: _Toy):
    zero0, zerow = c.probe("zeros", "noise-free")[:, 0], c.probe("zeros", c.WIDE)[:, 0]
    expect = np.array([+1 if s in ("saw", "square") else -1 for s in c.S])
    matches = int((np.sign(zerow - zero0) == expect).sum())
    t = row["threshold"]
    if c.profile in rules()["defaults"].get("exclude_profiles", []):
        verdict = "not tested"
    elif matches >= t["holds"]:
        verdict = "holds"
    elif matches <= t["does_not_hold_at_most"]:
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    reason = f"{matches} of {len(c.S)} priors move with the paper's sign (no interval: one value each)"
    return [_entry(row, "flow", value=matches, verdict=verdict, reason=reason)]


def _row_noise_unlikely_noisefree(row, c: _Toy):
    own, noise0 = c.fig3["flow"], c.probe("N(0, 0.5)", "noise-free")  # [prior, probe]
    npr = noise0.shape[-1]

    def acc(items, pr):
        t = np.percentile(np.stack([own[i, i][items] for i in range(len(c.S))]), 5, axis=-1)
        return float((noise0[:, pr] > t[:, None]).mean(-1).max())

    d = [acc(i, p) for i, p in zip(c.idx3, c.idxp)]
    return [_judged(row, "flow", _interval(acc(np.arange(c.n3), np.arange(npr)), d, min(c.n3, npr)), c.profile)]


def _row_noise_more_likely_after_noise(row, c: _Toy):
    diff = c.probe("N(0, 0.5)", c.WIDE) - c.probe("N(0, 0.5)", "noise-free")  # paired per probe
    d = diff[:, c.idxp].mean(-1).min(0)
    return [_judged(row, "flow", _interval(diff.mean(-1).min(), d, diff.shape[-1]), c.profile)]


def _row_noise_as_likely_as_inclass(row, c: _Toy):
    from sepnb.analysis.ood import auc

    g, noisew = c.grid["flow"], c.probe("N(0, 0.5)", c.WIDE)
    npr, a = noisew.shape[-1], len(c.sig) - 1

    def stat(items, pr):
        return max(auc(g[a, a, i, i][items], noisew[i][pr]) for i in (c.S.index("sine"), c.S.index("saw")))

    d = [stat(i, p) for i, p in zip(c.idx4, c.idxp)]
    return [_judged(row, "flow", _interval(stat(np.arange(c.n4), np.arange(npr)), d, min(c.n4, npr)), c.profile)]


#: How each row of chapter 04 is judged (its id in book/scorecard.yaml -> a function of the row and the results).
TOY_ROWS = {
    "flow_toy_discriminates": _row_fig3_auc,
    "wavenet_toy_not_discriminative": _row_fig3_auc,
    "flow_toy_diagonal": _row_fig3_diagonal,
    "flow_noisefree_peaked": _row_noisefree_peaked,
    "flow_noise_small_sigma_drop": _row_small_sigma_drop,
    "flow_noise_conditioned_nondiscriminative": _row_conditioned_nondiscriminative,
    "zero_input_likely_noisefree": _row_zero_input_rank,
    "zero_input_unlikely_square": _row_zero_input_rank,
    "zero_input_shift_after_noise": _row_zero_shift_after_noise,
    "noise_input_unlikely_noisefree": _row_noise_unlikely_noisefree,
    "noise_input_more_likely_after_noise": _row_noise_more_likely_after_noise,
    "noise_input_as_likely_as_inclass": _row_noise_as_likely_as_inclass,
}


def _toy_rows(row, r04, profile):
    """Chapter 04's row ``row`` judged from its results ``r04`` by its function in :data:`TOY_ROWS`."""
    c = _Toy(r04, profile)
    if not c.has_paper_levels():
        return [_not_tested(row, "chapter 04 was run with another widest level than the paper's 0.359")]
    return TOY_ROWS[row["id"]](row, c)


def _chapter04_row(row, r04, profile: str, key: str = "") -> list[dict]:
    """Chapter 04's row ``row`` (toy or music) judged from its results entry ``r04`` alone."""
    rid = row["id"]
    if row.get("requires_data") == "musdb18" or rid.startswith("musdb"):
        label = (r04 or {}).get("music_data", "")
        return [
            _not_tested(
                row,
                "needs musdb18; the music here is a stand-in"
                if "stand-in" in label
                else "needs musdb18; no music results"
                if not label
                else "chapter 04 stores no per-song values yet, which the interval needs",
            )
        ]
    if r04 is None or "figure4_per_item" not in r04:
        return [_not_tested(row, f"no per-item results for {key or profile} (chapter 04)")]
    entries = _toy_rows(row, r04, profile)
    if rid not in rules()["defaults"].get("training_seeds", {}).get("rows", ()):
        for e in entries:  # the rules file: rows not judged over seeds say so
            if e["verdict"] != "not tested":
                e["reason"] = "; ".join(x for x in ("one training seed", e["reason"]) if x)
    return entries


def toy_rows(r04: dict, profile: str) -> list[dict]:
    """The scorecard rows of chapter 04 judged from its results entry alone (what the chapter shows;
    :func:`compute` gives the same entries, with the notes of chapter 05's variants added)."""
    return [
        e
        for row in rules()["rows"]
        if row.get("kind") != "paper_claim_composite"
        and row.get("status") != "planned"
        and not row["id"].startswith(("added_", "langevin_"))
        for e in _chapter04_row(row, r04, profile)
    ]


def _max_level_auc(diag, idx):
    """Max over noise levels of the mean AUC of ``diag [level, prior, data, item]``, and its draws over ``idx``."""
    from sepnb.analysis.ood import CrossLikelihood
    from sepnb.data.toy import SOURCES

    per = [CrossLikelihood(g, list(SOURCES), list(SOURCES)) for g in np.asarray(diag)]
    return max(c.aucs().mean() for c in per), np.max(np.stack([c.auc_draws(idx).mean(1) for c in per]), axis=0)


def _mean_auc(values, idx):
    c = _cross(values)
    return c.aucs().mean(), c.auc_draws(idx).mean(1)


def _change(a: str, b: str) -> str:
    """The rules file's change_rule between two verdicts of the same quantity."""
    if "inconclusive" in (a, b) or "not tested" in (a, b):
        return "unclear"
    return "unchanged" if a == b else "changed"


def variant_rows(r07: dict, profile: str) -> list[dict]:
    """Chapter 05's rows (the authors' variants and the training budget) judged from its results alone."""
    from sepnb.analysis.stats import resample_indices

    R, seed = _boot()
    by_id = {r["id"]: r for r in rules()["rows"]}
    out = []
    # the authors' objective, scored with their metric: mean of the own-source diagonal, items resampled
    lat = np.asarray(r07["authors_objective"]["latent_own_per_item"])  # [source, item]
    n = lat.shape[-1]
    idx = resample_indices(n, R, seed)
    iv = _interval(lat.mean(), lat[:, idx].mean(-1).mean(0), n)
    out.append(_judged(by_id["added_authors_objective_metric"], "flow", iv, profile))
    # the authors' noise scheme: max over levels of the matched-diagonal mean AUC, beside ours (paired)
    ns = r07["authors_noise"]
    ours, theirs = np.asarray(ns["ours_diag_per_item"]), np.asarray(ns["authors_diag_per_item"])
    n4 = ours.shape[-1]
    idx4 = resample_indices(n4, R, seed)
    v_a, d_a = _max_level_auc(theirs, idx4)
    v_o, d_o = _max_level_auc(ours, idx4)
    row = by_id["added_authors_noise_scheme"]
    e = _judged(row, "flow", _interval(v_a, d_a, n4), profile)
    ours_iv = _interval(v_o, d_o, n4)
    ours_verdict = judge(row["compare_with"], ours_iv.low, ours_iv.high, n4, profile)
    diff = _interval(v_a - v_o, d_a - d_o, n4)
    change = _change(e["verdict"], ours_verdict)
    e["reason"] = f"{change} vs our scheme ({ours_verdict}); difference {diff:.2f}"
    e["note_for"] = {"row": row["compare_with"], "text": f"authors' noise scheme: {change} (chapter 05)"}
    out.append(e)
    # the training budget: 4x minus 1x mean AUC of the WaveNets (paired), and the claim's verdict at each
    b = r07["budget"]
    one, four = np.asarray(b["fig3_1x_per_item"]), np.asarray(b["fig3_4x_per_item"])
    n3 = one.shape[-1]
    idx3 = resample_indices(n3, R, seed)
    (v1, d1), (v4, d4) = _mean_auc(one, idx3), _mean_auc(four, idx3)
    e = _judged(by_id["added_training_budget"], "wavenet", _interval(v4 - v1, d4 - d1, n3), profile)
    ivs = (_interval(v1, d1, n3), _interval(v4, d4, n3))
    claim = [judge("wavenet_toy_not_discriminative", iv.low, iv.high, n3, profile) for iv in ivs]
    e["reason"] = f"wavenet_toy_not_discriminative: {claim[0]} at 1x, {claim[1]} at {b['factor']}x"
    for d in deviations("wavenet_toy_not_discriminative"):
        if "threshold" in d.get("old", {}) and "not tested" not in claim:
            t = d["old"]["threshold"]
            at = [judge("wavenet_toy_not_discriminative", iv.low, iv.high, n3, profile, threshold=t) for iv in ivs]
            e["reason"] += f" (at the old bar {t}: {at[0]} at 1x, {at[1]} at {b['factor']}x)"
    e["note_for"] = {
        "row": "wavenet_toy_not_discriminative",
        "text": f"chapter 05: {claim[0]} at 1x, {claim[1]} at {b['factor']}x the steps",
    }
    out.append(e)
    # the authors' data: the flows' mean AUC on it, beside ours on ours (items differ: unpaired)
    row = by_id["added_authors_data_fig3"]
    if "authors_data" not in r07:
        out.append(_not_tested(row, "not run"))
        return out
    theirs, ours = (np.asarray(r07["authors_data"][k]) for k in ("fig3_per_item", "ours_fig3_per_item"))
    iv_t = _interval(*_mean_auc(theirs, resample_indices(theirs.shape[-1], R, seed)), theirs.shape[-1])
    iv_o = _interval(*_mean_auc(ours, resample_indices(ours.shape[-1], R, seed)), ours.shape[-1])
    iv_t, v_t, old = judge_with_deviations(row["id"], iv_t, profile, data="toy_authors")
    e = _entry(row, "flow", iv_t, v_t, old=old)
    ours_verdict = judge(row["compare_with"], iv_o.low, iv_o.high, iv_o.n_clusters, profile)
    change = _change(e["verdict"], ours_verdict)
    e["reason"] = f"{change} vs our data ({ours_verdict})"
    e["note_for"] = {"row": row["compare_with"], "text": f"authors' data: {change} (chapter 05)"}
    out.append(e)
    return out


def compute(results_dir=None, profile: str = "book", seed: int = 0) -> list[dict]:
    """Every row of the rules file judged from ``<results_dir>/*.json`` (default ``book/results``).

    Returns one entry per row and family (rows judged per family or per
    configuration give several), each with its value, 95% interval, verdict
    and, where it is ``not tested``, the reason. Nothing here reads a
    notebook: the verdicts follow from the rules file and the results alone.
    """
    import json

    from sepnb.core import paths

    folder = paths.results_dir() if results_dir is None else Path(results_dir)
    key = f"{profile}/seed={seed}"

    def load(stem):
        p = folder / f"{stem}.json"
        paths.note_read(p)
        return json.loads(p.read_text())["runs"].get(key) if p.exists() else None

    if profile in rules()["defaults"].get("exclude_profiles", []):
        return _with_chapters(
            [
                _not_tested(r, f"the {profile} profile's sizes exist for the tests, never for verdicts")
                for r in rules()["rows"]
                if r.get("status") != "planned"
            ]
        )
    r04, r05, r06, r07 = (load("04_ood"), load("06_separation"), load("07_priors_that_separate"), load("05_variants"))
    r08 = load("08_search")
    search = search_rows(r08) if r08 is not None and "rows" in r08 and "validation" in r08 else None
    variants = {e["id"]: e for e in variant_rows(r07, profile)} if r07 and "authors_noise" in r07 else {}
    # where a variant moves (or keeps) a claim's verdict, the claim's row says so
    notes = {e["note_for"]["row"]: e["note_for"]["text"] for e in variants.values() if e.get("note_for")}
    sep = separation_rows(r05) if r05 and "si_sdr_per_mix" in r05 else None
    if r06 is not None and "si_sdr_per_mix" in r06:
        sep = sep or {"added_toy_separation_success": {}, "added_sampler_holds_truth": {}}
        for rid, configs in beyond_rows(r06).items():
            sep.setdefault(rid, {}).update(configs)
    out = []
    for row in rules()["rows"]:
        rid = row["id"]
        if row.get("kind") == "paper_claim_composite" or row.get("status") == "planned":
            continue
        if rid in _SEPARATION_ROWS:
            if sep is None or rid not in sep:
                out.append(_not_tested(row, f"no separation results for {key} (chapter 06)"))
                continue
            from sepnb.analysis.stats import Interval

            if rid == "langevin_separation_fails":  # one claim, judged on its configurations together
                parts = {c: v for c, v in sep[rid].items() if not c.startswith("row")}
                old = sep[rid].get("row_old")
                out.append(
                    _entry(
                        row,
                        "flow",
                        verdict=sep[rid]["row"],
                        reason="SI-SDR improvement "
                        + ", ".join(
                            f"{c.split(': ', 1)[-1]} {Interval(**v['interval']):.1f} dB" for c, v in parts.items()
                        ),
                        old=[]
                        if old is None
                        else [
                            {
                                "deviation": "basis_schedule",
                                "rule": "the five-level run alone",
                                "label": "five-level run alone",
                                "verdict": old,
                            }
                        ],
                    )
                )
                continue
            for config, v in sep[rid].items():
                out.append(
                    _entry(
                        row,
                        config.split(":")[0],
                        Interval(**v["interval"]),
                        v["verdict"],
                        config=config if ":" in config else None,
                        old=v.get("old", ()),
                    )
                )
            continue
        if rid in _SEARCH_ROWS:
            if search is None:
                out.append(_not_tested(row, f"no search results for {key} (chapter 08)"))
                continue
            from sepnb.analysis.stats import Interval

            for part, v in search[rid].items():
                iv = Interval(**v["interval"]) if v.get("interval") else None
                out.append(
                    _entry(
                        row,
                        "denoiser",
                        iv,
                        v["verdict"],
                        reason=v.get("reason", ""),
                        config=None if part == "denoiser" else part,
                    )
                )
            continue
        if rid in variants:
            out.append(variants[rid])
            continue
        if rid.startswith("added_"):
            out.append(_not_tested(row, f"no results for {key} (chapter 05)"))
            continue
        for e in _chapter04_row(row, r04, profile, key):
            if rid in notes and e["verdict"] != "not tested":
                e["reason"] = "; ".join(x for x in (e["reason"], notes[rid]) if x)
            out.append(e)
    by_id = {}
    for e in out:
        by_id.setdefault(e["id"], []).append(e["verdict"])
    for row in rules()["rows"]:
        if row.get("kind") == "paper_claim_composite":
            parts = [combine(by_id.get(p, ["not tested"])) for p in row["composite_of"]]
            verdict = (
                "not tested"
                if "not tested" in parts
                else "holds"
                if all(p == "holds" for p in parts)
                else "does not hold"
                if "does not hold" in parts
                else "inconclusive"
            )
            n_hold = sum(p == "holds" for p in parts)
            out.append(
                _entry(row, row.get("family", ""), verdict=verdict, reason=f"{n_hold} of its {len(parts)} parts hold")
            )
    return _with_chapters(out)


_SEPARATION_ROWS = (
    "langevin_separation_fails",
    "added_toy_separation_success",
    "added_sampler_holds_truth",
    "added_posterior_prefers_truth",
    "added_posterior_keeps_truth",
)
_VARIANT_ROWS = (
    "added_authors_noise_scheme",
    "added_authors_objective_metric",
    "added_authors_data_fig3",
    "added_training_budget",
)


#: Issue 23's rows, judged from chapter 08's results (:func:`search_rows`).
_SEARCH_ROWS = (
    "added_toy_separation_strong",
    "added_toy_separation_strong_by_group",
    "added_beats_references",
    "added_criterion_prefers_truth",
)


def _with_chapters(entries: list[dict]) -> list[dict]:
    """Each entry with the chapter that holds its evidence."""
    separation = _SEPARATION_ROWS
    for e in entries:
        e["chapter"] = (
            "08_search"
            if e["id"] in _SEARCH_ROWS
            else "07_priors_that_separate"
            if e["id"] in separation and e.get("family") == "denoiser"
            else "06_separation"
            if e["id"] in separation
            else "05_variants"
            if e["id"] in _VARIANT_ROWS
            else "04_ood"
        )
    return entries


def provenance(row_id: str) -> dict:
    """When row ``row_id``'s rule entered git against its result (:mod:`sepnb.analysis.provenance`),
    with the parts of the rules added later: ``{"order", "rule_commit", "result_commit", "later": [...]}``.

    ``later`` lists the recorded deviations that change the row (each made
    after the results, as the rules file says) and, for the rows judged over
    training seeds, the seed rule against the first results of the other seeds.
    """
    from sepnb.analysis import provenance as prov

    r = rule(row_id)
    parts = tuple(r.get("composite_of", ())) if r.get("kind") == "paper_claim_composite" else ()
    out = dict(prov.row_provenance(row_id, parts))
    later = []
    for d in deviations(row_id):
        later.append({"what": f"deviation {d['id']}", **prov.part_provenance(f"- id: {d['id']}", row_id)})
    if row_id in rules()["defaults"].get("training_seeds", {}).get("rows", ()):
        p = prov.amendment_provenance("training_seeds:", "04_ood", '"figure3_per_item_seeds"')
        later.append({"what": "training-seed rule", **p})
    out["later"] = later
    return out
