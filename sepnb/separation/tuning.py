"""Issue 23's validation record: the search's knobs tuned on validation mixes only.

The protocol is written in ``book/scorecard.yaml`` (issue 23) before any of
its numbers: the default :class:`~sepnb.separation.search.SearchConfig` is the
start; the knobs of :data:`GRID` are visited once each, in that order; every
value of a knob's grid is run on all validation mixes with the other knobs at
their current values, and the value with the highest mean fixed-order SI-SDR
(mean over sources, then over mixes) is kept, among the values whose mean time
per mix is within the budget (:data:`BUDGET_S`). Ties keep the earlier value.
The validation mixes are toy *training*-split items ``n_train ... n_train +
search_val_items - 1`` of the profile (no prior saw them; 5000-5063 at the
book's sizes), at chapter 06's window and seed. The true
sources score a finished separation and never enter the method.

``python -m sepnb.separation.tuning`` runs it, resumably: the record (JSON) is
written after every mix, and a run that is stopped continues where it
stopped. The record names the four denoisers by a hash of their weights; a
record made with other denoisers is refused, never overwritten.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sepnb.analysis.scorecard import SEARCH_BUDGET_S
from sepnb.core import atomic, paths, profiles
from sepnb.separation.metrics import si_sdr
from sepnb.separation.search import SearchConfig, criterion, search_mix

__all__ = [
    "GRID",
    "BUDGET_S",
    "refine_options",
    "validation_set",
    "weights_sha",
    "evaluate",
    "tune",
    "validation_entry",
    "main",
]

#: The knobs the protocol tunes and their grids, in the order it visits them (book/scorecard.yaml).
GRID = (
    ("ratios", ((), (0.5, 2.0), (1 / 3, 0.5, 2.0, 3.0))),
    ("n_candidates", (8, 12)),
    ("n_sets", (3, 6)),
    ("joint_fit", (True, False)),
    ("criterion_sigmas", ((0.02, 0.05), (0.05, 0.1))),
    ("brief_steps", (20, 40)),
    ("top_m", (1, 3)),
)

#: Seconds per mix of the whole method on the 2-core CPU that a chosen value may not exceed.
BUDGET_S = SEARCH_BUDGET_S

SCHEMA = "sepnb.search-validation/1"


def refine_options(P) -> dict:
    """The full refinement of the finalists: chapter 07's schedule at profile ``P`` (its first level,
    geometric levels down to its floor, its steps per level and step size)."""
    return {
        "refine_sigmas": tuple(float(s) for s in np.geomspace(P.refine_sigma, P.refine_floor, P.refine_levels)),
        "refine_steps": int(P.refine_steps),
        "refine_step": float(P.refine_step),
    }


def validation_set(P, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``(mixes [N, T], truth [N, 4, T], items)``: the validation mixes of profile ``P``, toy training-split
    items ``P.n_train ... P.n_train + P.search_val_items - 1`` at chapter 06's window and seed."""
    from sepnb import data

    items = list(range(P.n_train, P.n_train + P.search_val_items))
    windows = data.ToyWindows("train", window=P.sep_length, n_items=P.n_train + P.search_val_items, seed=seed)
    truth = windows.batch(np.asarray(items))
    return data.mix(truth), truth, items


def weights_sha(model: torch.nn.Module) -> str:
    """SHA-256 of a model's weights (names, shapes and float32 bytes), independent of how it was saved."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def config_key(cfg: SearchConfig) -> str:
    return json.dumps(cfg.to_json(), sort_keys=True)


def _mix_record(result, truth: torch.Tensor) -> dict:
    est = result.sources[None].float()
    fixed = si_sdr(truth[None], est)[0]
    perm = si_sdr(truth[None], est, permute=True)[0]
    return {
        "fixed": [round(float(v), 4) for v in fixed],
        "perm": [round(float(v), 4) for v in perm],
        "criterion": float(result.criterion),
        "f0": [round(float(v), 4) for v in result.f0],
        "seconds": {k: round(float(v), 3) for k, v in result.seconds.items()},
    }


def evaluate(cfg, mixes, truth, denoisers, record: dict, save, refine: dict, seed: int = 0, bar=None) -> dict:
    """Run the search with ``cfg`` on every validation mix not yet in ``record["configs"]``, saving after
    each mix; returns the configuration's entry ``{"config", "per_mix"}``."""
    entry = record["configs"].setdefault(config_key(cfg), {"config": cfg.to_json(), "per_mix": {}})
    for i in range(mixes.shape[0]):
        if str(i) in entry["per_mix"]:
            if bar is not None:
                bar.update()
            continue
        t0 = time.perf_counter()
        r = search_mix(mixes[i], denoisers, cfg, seed=seed, **refine)
        rec = _mix_record(r, truth[i])
        rec["seconds"]["total"] = round(time.perf_counter() - t0, 3)
        entry["per_mix"][str(i)] = rec
        save()
        if bar is not None:
            bar.update()
    return entry


def summary(entry: dict, n: int) -> dict:
    """Mean fixed-order SI-SDR over the mixes (mean over sources first), median, counts, seconds per mix."""
    rows = [entry["per_mix"][str(i)] for i in range(n)]
    per_mix = np.array([np.mean(r["fixed"]) for r in rows])
    return {
        "mean": float(per_mix.mean()),
        "median": float(np.median(per_mix)),
        "above_15": int((per_mix >= 15).sum()),
        "below_0": int((per_mix < 0).sum()),
        "seconds_per_mix": float(np.mean([r["seconds"]["total"] for r in rows])),
    }


def truth_criterion(mix, truth, denoisers, cfg: SearchConfig, refine: dict, seed: int = 0) -> float:
    """The criterion of the true sources refined the way a candidate is (the brief refinement, then the
    full one): what the model thinks of the truth, for ``added_criterion_prefers_truth``."""
    from sepnb.separation.search import _refine, _stacked

    K = len(denoisers)
    alphas = np.full(K, 1.0 / K)
    stacked = _stacked(denoisers)
    sig = refine["refine_sigmas"]
    m = torch.as_tensor(mix, dtype=torch.float64).numpy()
    brief = _refine(m, stacked, truth[None].float(), alphas, sig[:1], cfg.brief_steps, refine["refine_step"], seed)
    final = _refine(m, stacked, brief, alphas, sig, refine["refine_steps"], refine["refine_step"], seed)
    return float(criterion(denoisers, final, cfg.criterion_sigmas, seed)[0])


def _made_with(record: dict, shas: list[str], items: list[int], refine: dict) -> bool:
    """Whether ``record`` was made with these denoisers (weight hashes), validation items and refinement."""
    return (record.get("denoisers"), record.get("items"), record.get("refine")) == (
        shas,
        items,
        json.loads(json.dumps(refine)),  # as the record stores it (tuples become lists)
    )


def tune(P, denoisers, out: Path, seed: int = 0, progress: bool = True, budget_s: float = BUDGET_S) -> dict:
    """The protocol of the module on profile ``P``'s validation mixes; returns the record (also at ``out``)."""
    from sepnb.core.progress import bar as progress_bar

    mixes, truth, items = validation_set(P, seed)
    shas = [weights_sha(d) for d in denoisers]
    refine = refine_options(P)
    if out.exists():
        record = json.loads(out.read_text())
        if not _made_with(record, shas, items, refine):
            raise SystemExit(
                f"{out} holds a validation record made with other denoisers, mixes or refinement "
                f"(denoisers {record.get('denoisers')}); move it away or give another --out: it is never overwritten"
            )
    else:
        record = {
            "schema": SCHEMA,
            "profile": P.name,
            "seed": seed,
            "items": items,
            "split": "train",
            "denoisers": shas,
            "refine": refine,
            "budget_s": budget_s,
            "grid": [[k, list(v)] for k, v in GRID],
            "configs": {},
            "steps": [],
        }

    def save():
        atomic.write_json(out, record)

    current = SearchConfig()
    record["steps"] = []
    for knob, values in GRID:
        results = {}
        for v in values:
            cfg = dataclasses.replace(current, **{knob: v})
            bar = progress_bar(total=len(items), desc=f"validation: {knob}={v}", unit="mix", disable=not progress)
            entry = evaluate(cfg, mixes, truth, denoisers, record, save, refine, seed=seed, bar=bar)
            bar.close()
            results[json.dumps(v)] = summary(entry, len(items))
            print(f"  {knob}={v}: " + ", ".join(f"{k} {x:.2f}" for k, x in results[json.dumps(v)].items()), flush=True)
        eligible = [v for v in values if results[json.dumps(v)]["seconds_per_mix"] <= budget_s] or list(values)
        best = max(eligible, key=lambda v: (results[json.dumps(v)]["mean"], -values.index(v)))
        current = dataclasses.replace(current, **{knob: best})
        record["steps"].append({"knob": knob, "results": results, "chosen": json.dumps(best)})
        save()
    record["chosen"] = current.to_json()
    # what the criterion thinks of the truth, at the chosen configuration (added_criterion_prefers_truth)
    chosen = record["configs"][config_key(current)]["per_mix"]
    bar = progress_bar(total=len(items), desc="validation: criterion of the truth", unit="mix", disable=not progress)
    for i in range(len(items)):
        if "truth_criterion" not in chosen[str(i)]:
            chosen[str(i)]["truth_criterion"] = truth_criterion(mixes[i], truth[i], denoisers, current, refine, seed)
            save()
        bar.update()
    bar.close()
    save()
    return record


def validation_entry(P, denoisers, cfg: SearchConfig, record_path: Path | None, seed: int = 0, progress: bool = True):
    """Per validation mix at configuration ``cfg``: ``{"fixed" [N][K], "perm", "criterion" [N],
    "truth_criterion" [N], "seconds" [N], "source"}``, what :func:`sepnb.analysis.scorecard.search_rows`
    reads for ``added_criterion_prefers_truth``.

    Read from the record at ``record_path`` where it was made at this profile, with these denoisers
    (the same weights), at ``cfg`` and with the truth's criterion present (``source: "record"``);
    otherwise computed here on the profile's validation mixes (``source: "computed"``: another
    machine's training gives other weights; the smoke profile has no record). The record is only read.
    """
    from sepnb.core.progress import bar as progress_bar

    mixes, truth, items = validation_set(P, seed)
    refine = refine_options(P)
    rec = json.loads(record_path.read_text()) if record_path is not None and record_path.exists() else None
    entry = None
    if (
        rec is not None
        and rec.get("profile") == P.name
        and _made_with(rec, [weights_sha(d) for d in denoisers], items, refine)
    ):
        entry = rec["configs"].get(config_key(cfg))
        if entry is not None and not all(
            "truth_criterion" in entry["per_mix"].get(str(i), {}) for i in range(len(items))
        ):
            entry = None
    source = "record" if entry is not None else "computed"
    if entry is None:
        scratch = {"configs": {}}
        bar = progress_bar(
            total=len(items), desc="validation at the chosen configuration", unit="mix", disable=not progress
        )
        entry = evaluate(cfg, mixes, truth, denoisers, scratch, lambda: None, refine, seed=seed, bar=bar)
        bar.close()
        for i in range(len(items)):
            entry["per_mix"][str(i)]["truth_criterion"] = truth_criterion(
                mixes[i], truth[i], denoisers, cfg, refine, seed
            )
    rows = [entry["per_mix"][str(i)] for i in range(len(items))]
    return {
        "source": source,
        "items": items,
        "fixed": [r["fixed"] for r in rows],
        "perm": [r["perm"] for r in rows],
        "criterion": [r["criterion"] for r in rows],
        "truth_criterion": [r["truth_criterion"] for r in rows],
        "seconds": [r["seconds"]["total"] for r in rows],
    }


def main(argv=None) -> int:
    """``python -m sepnb.separation.tuning``: the validation record of issue 23's search."""
    ap = argparse.ArgumentParser(
        prog="python -m sepnb.separation.tuning",
        description="Tune the model-judged search's knobs on the validation mixes (issue 23's protocol, "
        "book/scorecard.yaml), resumably; the record is written after every mix.",
    )
    ap.add_argument("--profile", default=profiles.default_name(), choices=sorted(profiles.PROFILES))
    ap.add_argument("--seed", type=int, default=0, help="the priors' training seed and the sampler's seed")
    ap.add_argument(
        "--out",
        metavar="PATH",
        help="the record (default: 07_search_validation.json under $SEPNB_RESULTS, else results/)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    from sepnb import data, runs

    P = profiles.get(args.profile)
    trained = runs.toy_denoisers(P, seed=args.seed, progress=not args.quiet)
    dev = runs.device()
    denoisers = [trained[s][0].to(dev).eval() for s in data.SOURCES]
    out = Path(args.out) if args.out else paths.results_dir() / "07_search_validation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = tune(P, denoisers, out, seed=args.seed, progress=not args.quiet)
    print(f"chosen: {record['chosen']}\nrecord: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
