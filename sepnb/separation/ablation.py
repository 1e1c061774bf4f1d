"""Issue 23's ablation: every part of the method alone on the same test mixes, the references, the truth.

The rows, in the order the rules file names them (``book/scorecard.yaml``,
``added_toy_separation_strong``), each a separation of the same test mixes:

* ``grouping alone``: chapter 07's harmonic grouping with its groups given to
  the sources in order of fundamental, no assignment (its best-permutation
  score is what the groups alone reach);
* ``grouping + hand-written assignment``: the same groups assigned by the
  waveforms' Fourier-series amplitude patterns
  (:func:`sepnb.separation.assign_by_amplitudes`; knowledge of the waveforms,
  no learned prior);
* ``grouping + priors' assignment``: chapter 07's harmonic start (the priors
  say which group is which source);
* ``refinement``: chapter 07's method, that start refined by constrained
  Langevin dynamics under the priors with chapter 07's schedule;
* ``model-judged search``: :func:`sepnb.separation.search_mix` with the tuned
  configuration.

Beside them: the references on the same mixes (the oracle ideal ratio mask of
chapter 06's settings, and chapter 06's Conv-TasNet where the store has it),
and the start from the truth as the rule ``added_sampler_holds_truth`` writes
it (the schedule of the run from noise, from the truth plus noise of its first
level) with the easier start (the truth plus noise of the refinement's first
level, the refinement's schedule), labelled. Nothing but the scoring reads the
true sources; the true fundamentals only label mixes and failures
(:mod:`sepnb.analysis.failures`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from sepnb.analysis import failures
from sepnb.core.checks import check_int
from sepnb.separation.constrained import constrained_langevin
from sepnb.separation.harmonic import CombFit, assign_by_amplitudes, group, groups_as_sources
from sepnb.separation.metrics import si_sdr
from sepnb.separation.search import SearchConfig, search_mix

__all__ = ["ROWS", "FULL_METHOD", "TestSet", "test_set", "run"]

ROWS = (
    "grouping alone",
    "grouping + hand-written assignment",
    "grouping + priors' assignment",
    "refinement",
    "model-judged search",
)
FULL_METHOD = "model-judged search"
TRUTH_RULE = "from the truth (the rule's schedule)"
TRUTH_EASY = "from the truth, the easier start"


@dataclass
class TestSet:
    """The search's test mixes: ``mixes [N, T]``, ``truth [N, 4, T]``, the true fundamentals
    ``freq [N, 4]`` (Hz, labels only), the toy test-split ``items`` and each mix's group."""

    mixes: torch.Tensor
    truth: torch.Tensor
    freq: np.ndarray
    items: list
    groups: list


def test_set(P, seed: int = 0) -> TestSet:
    """Profile ``P``'s test mixes for the search: toy test-split items ``0 ... P.search_test_items - 1``
    at chapter 06's window and seed (its ``sep_items`` mixes first), with their groups."""
    from sepnb import data

    n = check_int(P.search_test_items, "search_test_items", 1)
    items = list(range(n))
    truth = data.ToyWindows("test", window=P.sep_length, n_items=n, seed=seed).batch(np.asarray(items))
    freq = data.toy_params(items, seed=seed, split="test").freq
    return TestSet(data.mix(truth), truth, freq, items, failures.mix_groups(freq, data.SAMPLE_RATE / P.sep_length))


def _refine_sigmas(P, first=None):
    return np.geomspace(P.refine_sigma if first is None else first, P.refine_floor, P.refine_levels)


def _grouping_rows(ts: TestSet, denoisers, P, sources, seed: int, progress: bool):
    from sepnb.core.progress import bar as progress_bar
    from sepnb.data import SAMPLE_RATE

    K, sr = len(denoisers), SAMPLE_RATE
    alphas = np.full(K, 1.0 / K)
    rows = {name: [] for name in ROWS[:3]}
    f0 = {name: [] for name in ROWS[:3]}
    seconds = {name: 0.0 for name in ROWS[:3]}
    bar = progress_bar(total=len(ts.items), desc="harmonic grouping", unit="mix", disable=not progress)
    for m in ts.mixes.double().numpy():
        t0 = time.perf_counter()
        g = group(m, denoisers, alphas, sr, seed=seed, **P.harmonic)
        t_group = time.perf_counter() - t0
        parts, res = CombFit(m, sr, P.harmonic.get("max_harmonics", 64)).fit(g.f0)
        as_source = groups_as_sources(parts, res, alphas)  # [group j, source k, T], groups in g.f0's order
        order = np.argsort(g.f0, kind="stable")  # no assignment: by fundamental
        rows[ROWS[0]].append(as_source[order, np.arange(K)])
        f0[ROWS[0]].append(g.f0[order])
        t1 = time.perf_counter()
        perm = assign_by_amplitudes(parts, g.f0, sources, sr)
        rows[ROWS[1]].append(as_source[perm, np.arange(K)])
        f0[ROWS[1]].append(g.f0[perm])
        seconds[ROWS[1]] += t_group + time.perf_counter() - t1
        rows[ROWS[2]].append(torch.as_tensor(g.sources, dtype=torch.float32))
        f0[ROWS[2]].append(g.f0)
        seconds[ROWS[0]] += t_group
        seconds[ROWS[2]] += t_group
        bar.update()
    bar.close()
    return {n: torch.stack(v) for n, v in rows.items()}, {n: np.stack(v) for n, v in f0.items()}, seconds


def run(
    P,
    denoisers,
    cfg: SearchConfig,
    seed: int = 0,
    separator=None,
    ts: TestSet | None = None,
    progress: bool = True,
) -> tuple[dict, dict]:
    """The ablation on profile ``P``'s test mixes: ``(entry, estimates)``.

    ``entry`` is the JSON-able results entry :func:`sepnb.analysis.scorecard.search_rows` reads
    (without its ``validation`` part, which comes from the validation record): per row and
    reference the fixed-order and best-permutation SI-SDR ``[mix][source]``, seconds per mix, the
    groups and true fundamentals, each row's chosen fundamentals, the search's candidates, and
    the failure taxonomy before (``refinement``) and after (the search), by the rule and by its
    sub-multiple reading (``taxonomy_submultiples``, added after the results). ``estimates`` maps every
    row to its sources ``[N, 4, T]``. ``separator``: chapter 06's Conv-TasNet, if the store has it.
    """
    from sepnb.data import SAMPLE_RATE, SOURCES
    from sepnb.separation.oracle import oracle_mask
    from sepnb.separation.search import _stacked
    from sepnb.separation.tuning import refine_options

    ts = test_set(P, seed) if ts is None else ts
    N = len(ts.items)
    stack = _stacked(denoisers)
    est, chosen_f0, seconds = _grouping_rows(ts, denoisers, P, SOURCES, seed, progress)

    t0 = time.perf_counter()
    est[ROWS[3]] = constrained_langevin(
        ts.mixes,
        stack,
        sigmas=_refine_sigmas(P),
        steps_per_sigma=P.refine_steps,
        step=P.refine_step,
        init=est[ROWS[2]],
        seed=seed,
        progress=progress,
    )
    seconds[ROWS[3]] = seconds[ROWS[2]] + time.perf_counter() - t0
    chosen_f0[ROWS[3]] = chosen_f0[ROWS[2]]

    from sepnb.core.progress import bar as progress_bar

    results = []
    bar = progress_bar(total=N, desc="model-judged search", unit="mix", disable=not progress)
    for m in ts.mixes:
        results.append(search_mix(m, denoisers, cfg, seed=seed, **refine_options(P)))
        bar.update()
    bar.close()
    est[ROWS[4]] = torch.stack([r.sources for r in results])
    chosen_f0[ROWS[4]] = np.stack([r.f0 for r in results])
    seconds[ROWS[4]] = sum(sum(r.seconds.values()) for r in results)

    refs = {}
    n_fft = min(512, P.sep_length // 4)  # chapter 06's oracle settings
    refs["oracle: ideal ratio mask"] = oracle_mask(ts.truth, kind="irm", n_fft=n_fft, hop=n_fft // 4)
    if separator is not None:
        with torch.no_grad():
            refs["supervised: Conv-TasNet"] = separator.eval()(ts.mixes.to(next(separator.parameters()).device)).cpu()

    truth_rows = {}
    schedules = {  # the rule's: the run from noise's levels and steps; the easier: the refinement's
        TRUTH_RULE: (np.geomspace(P.noise_sigma_max, P.refine_floor, P.noise_levels), P.noise_steps),
        TRUTH_EASY: (_refine_sigmas(P), P.refine_steps),
    }
    for name, (sigmas, steps) in schedules.items():
        t0 = time.perf_counter()
        truth_rows[name] = constrained_langevin(
            ts.mixes,
            stack,
            sigmas=sigmas,
            steps_per_sigma=steps,
            step=P.refine_step,
            init=ts.truth,
            seed=seed,
            progress=progress,
        )
        seconds[name] = time.perf_counter() - t0

    def scores(e):
        return {
            "fixed": np.round(si_sdr(ts.truth, e).numpy(), 4).tolist(),
            "perm": np.round(si_sdr(ts.truth, e, permute=True).numpy(), 4).tolist(),
        }

    bin_hz = SAMPLE_RATE / P.sep_length
    entry = {
        "profile": P.name,
        "seed": seed,
        "n_mixes": N,
        "items": ts.items,
        "groups": ts.groups,
        "freq": np.round(ts.freq, 4).tolist(),
        "full_method": FULL_METHOD,
        "search_config": cfg.to_json(),
        "rows": {n: {**scores(est[n]), "f0": np.round(chosen_f0[n], 4).tolist()} for n in ROWS},
        "references": {n: scores(e) for n, e in refs.items()},
        "truth_rows": {n: scores(e) for n, e in truth_rows.items()},
        "seconds_per_mix": {n: float(v) / N for n, v in seconds.items()},
        "search": [
            {
                "candidate_f0": np.round(r.candidate_f0, 4).tolist(),
                "criterion": r.criterion,
                "seconds": {k: round(float(v), 3) for k, v in r.seconds.items()},
            }
            for r in results
        ],
    }
    # the rule's taxonomy, and beside it the sub-multiple reading (added to the rules after the results)
    for key, multiples in (("taxonomy", (1,)), ("taxonomy_submultiples", failures.SUB_MULTIPLES)):
        taxonomy = {}
        for when, name, cands in (
            ("before", ROWS[3], [f[None] for f in chosen_f0[ROWS[3]]]),
            ("after", ROWS[4], [r.candidate_f0 for r in results]),
        ):
            fixed = np.asarray(entry["rows"][name]["fixed"]).mean(axis=1)
            perm = np.asarray(entry["rows"][name]["perm"]).mean(axis=1)
            taxonomy[when] = [
                failures.failure_reason(
                    fixed[i], perm[i], cands[i], chosen_f0[name][i], ts.freq[i], bin_hz, multiples=multiples
                )
                for i in range(N)
            ]
        entry[key] = taxonomy
    return entry, {**est, **refs, **truth_rows}
