"""A search the model judges (issue 23): many candidate separations of a mix, the priors choose.

Chapter 07's harmonic start commits to one set of fundamentals (the least
least-squares residual) and one assignment of groups to sources before the
priors refine it; where two fundamentals lie closer than the window resolves,
or one comb's harmonics coincide with another's, that one start is wrong and
the refinement cannot leave it. Here the start is a *search*:

1. **Sets of fundamentals.** Every ``K``-subset of the mix's ``n_candidates``
   spectral peaks, ranked by the joint comb fit's residual; for the best
   ``n_sets`` of them, their alternatives: one member replaced by its
   integer-ratio alternative ``f r`` (``r`` in ``ratios``: two combs whose
   fundamentals beat against each other can leave only a harmonic among the
   peaks), and one member, or its alternative, split into a pair ``f +- d``
   (``d`` in ``splits`` FFT bins: two fundamentals closer than one bin show as
   one peak) in place of another member. The
   ``n_sets`` best sets of the pool, by residual, go on; with ``joint_fit``
   each is refined by :func:`sepnb.separation.fit_f0s_jointly` (all
   fundamentals at once, below the FFT's resolution), else one fundamental at
   a time (:func:`sepnb.separation.refine_f0`, chapter 07's).
2. **Every assignment.** Each set's groups, scaled to sources (the part no
   comb explains shared as :func:`sepnb.separation.project_mix` shares it, so
   every candidate adds up to the mix exactly), in every one of the ``K!``
   assignments to the sources. The ``n_screen`` assignments per set with the
   lowest :func:`criterion` (additive over sources, so the ``K x K`` costs of
   group ``j`` as source ``k`` rank all ``K!`` at once) go on.
3. **The priors judge.** Every remaining candidate is refined briefly
   (constrained Langevin at the refinement's first level, ``brief_steps``
   steps), ranked by :func:`criterion`, the best ``top_m`` refined with the
   full schedule, and the one with the lowest criterion is the answer.

:func:`criterion` is the summed denoising loss of the priors on the
candidate's sources, ``sum_k sum_{sigma in S} ||D_k(s_k + sigma eps_k, sigma)
- s_k||^2 / (T sigma^2)``, with one fixed seeded ``eps_k`` per source shared by
every candidate (a paired comparison), lower is better: the integrand of the
diffusion likelihood bound at the levels ``S`` (see
:meth:`sepnb.priors.Denoiser.log_prob`). Nothing here sees the true sources.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sepnb.core.checks import check_int
from sepnb.separation.constrained import constrained_langevin
from sepnb.separation.harmonic import CombFit, fit_f0s_jointly, groups_as_sources, refine_f0, spectral_peaks
from sepnb.separation.langevin import prior_device

__all__ = ["SearchConfig", "SearchResult", "criterion", "f0_sets", "candidates", "search_mix", "search_mixes"]


@dataclass(frozen=True)
class SearchConfig:
    """The search's knobs. The grids of the tuned ones are fixed in ``book/scorecard.yaml``
    (issue 23): ``n_candidates``, ``joint_fit``, ``ratios``, ``n_sets``, ``criterion_sigmas``,
    ``brief_steps``, ``top_m`` (:data:`sepnb.separation.tuning.GRID`, in the order the protocol
    visits them); the others are fixed there too, not tuned."""

    n_candidates: int = 8
    joint_fit: bool = True
    ratios: tuple = (0.5, 2.0)
    splits: tuple = (0.25, 0.5)
    n_sets: int = 3
    n_screen: int = 4
    criterion_sigmas: tuple = (0.02, 0.05)
    brief_steps: int = 20
    top_m: int = 3
    max_harmonics: int = 32
    joint_iters: int = 10
    refine_width: float = 0.5

    def __post_init__(self):
        check_int(self.n_candidates, "n_candidates", 1)
        for name in ("n_sets", "n_screen", "brief_steps", "top_m", "max_harmonics", "joint_iters"):
            check_int(getattr(self, name), name, 1)
        for name in ("ratios", "splits", "criterion_sigmas"):
            v = np.asarray(getattr(self, name), dtype=float).ravel()
            if not np.isfinite(v).all() or (v <= 0).any() or (name == "criterion_sigmas" and len(v) == 0):
                raise ValueError(f"{name} must be positive numbers, got {getattr(self, name)!r}")

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@torch.no_grad()
def criterion(denoisers, sources: torch.Tensor, sigmas=(0.02, 0.05), seed: int = 0) -> torch.Tensor:
    """``[C]``: the summed denoising loss of ``sources [C, K, T]`` under ``denoisers`` (one per
    source), ``sum_k sum_sigma ||D_k(s_k + sigma eps_k, sigma) - s_k||^2 / (T sigma^2)``; lower
    is better. The noise ``eps_k [T]`` is drawn once from ``seed`` per level and source and
    shared by every candidate."""
    if sources.dim() != 3 or sources.shape[1] != len(denoisers):
        raise ValueError(
            f"sources must be [candidates, {len(denoisers)}, time] (one column per prior), got {tuple(sources.shape)}"
        )
    C, K, T = sources.shape
    gen = torch.Generator().manual_seed(int(seed))
    dev = prior_device(denoisers)
    x = sources.to(dev, torch.float32)
    out = torch.zeros(C, device=dev)
    for s in sigmas:
        eps = torch.randn((K, T), generator=gen).to(dev)
        for k, d in enumerate(denoisers):
            out += (d(x[:, k] + s * eps[k], float(s)) - x[:, k]).pow(2).sum(dim=1) / (T * s**2)
    return out.cpu()


def f0_sets(mix: np.ndarray, K: int, sample_rate: int, cfg: SearchConfig) -> list[np.ndarray]:
    """Step 1 of the module's search: the ``cfg.n_sets`` sets of ``K`` fundamentals (Hz) with the
    least residual, from the peaks' subsets and their split and integer-ratio alternatives,
    each refined (joint fit, or one at a time); best first."""
    peaks = spectral_peaks(mix, cfg.n_candidates, sample_rate)
    if len(peaks) < K:
        raise ValueError(f"the mix has {len(peaks)} spectral peaks, fewer than the {K} sources; is it silent?")
    bin_hz = sample_rate / len(mix)
    nyq = sample_rate / 2 - 1.0

    combs = CombFit(mix, sample_rate, cfg.max_harmonics, cache=True)  # one pool of combs: a set costs one small solve

    def score(sets):
        return sorted(((combs.residual_energy(f), tuple(float(v) for v in f)) for f in sets), key=lambda t: t[0])

    base = score(np.sort(peaks[list(sub)]) for sub in itertools.combinations(range(len(peaks)), K))
    pool = {f: r for r, f in base}
    for _, f in base[: cfg.n_sets]:
        f = np.asarray(f)
        alt = []
        for j in range(K):
            for v in [f[j], *(f[j] * float(r) for r in cfg.ratios)]:
                if v != f[j]:  # member j by its integer-ratio alternative
                    alt.append(np.concatenate([np.delete(f, j), [v]]))
                for i in set(range(K)) - {j}:  # member j (or its alternative) split into a pair, member i dropped
                    rest = np.delete(f, [i, j])
                    alt += [np.concatenate([rest, [v - d * bin_hz, v + d * bin_hz]]) for d in cfg.splits]
        alt = [np.sort(g) for g in alt if min(g) >= 1.0 and max(g) < nyq and np.min(np.diff(np.sort(g))) > 1e-3]
        for r, g in score(alt):
            pool.setdefault(g, r)
    best = sorted(pool.items(), key=lambda t: t[1])[: cfg.n_sets]
    out = []
    for f, _ in best:
        if cfg.joint_fit:
            g, _ = fit_f0s_jointly(mix, f, sample_rate, cfg.max_harmonics, iters=cfg.joint_iters)
        else:
            g = list(f)
            for j in range(K):
                g = refine_f0(mix, g, j, cfg.refine_width, sample_rate, cfg.max_harmonics)
        out.append(np.asarray(g, dtype=float))
    return out


def candidates(mix: np.ndarray, denoisers, alphas, sample_rate: int, cfg: SearchConfig, seed: int = 0):
    """Steps 1 and 2 of the module's search: ``(sources [C, K, T] float32, f0 [C, K], cost [C])``,
    the ``n_screen`` best assignments of each set of fundamentals (each candidate's sources add
    up to the mix exactly), ``cost`` the :func:`criterion` before any refinement."""
    K = len(denoisers)
    a = np.asarray(alphas, dtype=float)
    srcs, f0s, costs = [], [], []
    perms = np.array(list(itertools.permutations(range(K))))  # perms[p, k]: the group given to source k
    for f in f0_sets(mix, K, sample_rate, cfg):
        parts, res = CombFit(mix, sample_rate, cfg.max_harmonics).fit(f)
        as_source = groups_as_sources(parts, res, a)
        # cost[j, k]: group j as source k (the criterion is a sum over sources)
        cost = torch.stack(
            [criterion([denoisers[k]], as_source[:, k : k + 1], cfg.criterion_sigmas, seed) for k in range(K)], dim=1
        ).numpy()
        totals = cost[perms, np.arange(K)].sum(axis=1)
        for p in np.argsort(totals, kind="stable")[: cfg.n_screen]:
            srcs.append(as_source[perms[p], np.arange(K)])
            f0s.append(f[perms[p]])
            costs.append(totals[p])
    return torch.stack(srcs), np.stack(f0s), np.asarray(costs)


@dataclass
class SearchResult:
    """One mix's search: the chosen sources ``[K, T]``, their fundamentals, and what was compared."""

    sources: torch.Tensor
    f0: np.ndarray
    criterion: float
    #: every candidate's fundamentals ``[C, K]`` and criterion before refinement, after the brief one
    candidate_f0: np.ndarray
    candidate_cost: np.ndarray
    brief_cost: np.ndarray
    #: the indices of the candidates refined with the full schedule, and their final criterion
    finalists: np.ndarray
    final_cost: np.ndarray
    seconds: dict = field(default_factory=dict)


def _stacked(denoisers):
    """One batched call for the book's denoisers; any other priors with ``score(x, sigma)`` one by one."""
    from sepnb.priors import Denoiser, StackedDenoisers

    return StackedDenoisers(denoisers) if all(isinstance(d, Denoiser) for d in denoisers) else list(denoisers)


def _refine(mix, stacked, starts, alphas, sigmas, steps, step, seed):
    m = torch.as_tensor(mix, dtype=torch.float32)[None].expand(starts.shape[0], -1).contiguous()
    return constrained_langevin(
        m,
        stacked,
        alphas=alphas,
        sigmas=sigmas,
        steps_per_sigma=steps,
        step=step,
        init=starts,
        seed=seed,
        progress=False,
    )


def search_mix(
    mix,
    denoisers,
    cfg: SearchConfig = SearchConfig(),
    refine_sigmas=(0.05, 0.005),
    refine_steps: int = 20,
    refine_step: float = 0.5,
    alphas=None,
    sample_rate: int = 16_000,
    seed: int = 0,
) -> SearchResult:
    """The model-judged search on one mix ``[T]`` (see the module): the candidates, the brief
    refinement at ``refine_sigmas[0]``, the ``top_m`` best refined with the full schedule
    (``refine_sigmas``, ``refine_steps`` steps a level, step size ``refine_step``), the lowest
    :func:`criterion` kept. ``denoisers``: one per source, each ``D(x, sigma)`` with
    ``score(x, sigma)`` (``sepnb.priors.Denoiser``)."""
    mix = np.asarray(torch.as_tensor(mix).double().cpu(), dtype=float)
    if mix.ndim != 1 or not np.isfinite(mix).all():
        raise ValueError(f"search_mix separates one finite mix [time], got shape {mix.shape}")
    K = len(denoisers)
    alphas = np.full(K, 1.0 / K) if alphas is None else np.asarray(alphas, dtype=float)
    stacked = _stacked(denoisers)
    t0 = time.perf_counter()
    cand, f0, cost = candidates(mix, denoisers, alphas, sample_rate, cfg, seed)
    t1 = time.perf_counter()
    brief = _refine(mix, stacked, cand, alphas, refine_sigmas[:1], cfg.brief_steps, refine_step, seed)
    brief_cost = criterion(denoisers, brief, cfg.criterion_sigmas, seed).numpy()
    t2 = time.perf_counter()
    top = np.argsort(brief_cost, kind="stable")[: cfg.top_m]
    final = _refine(mix, stacked, brief[top], alphas, refine_sigmas, refine_steps, refine_step, seed)
    final_cost = criterion(denoisers, final, cfg.criterion_sigmas, seed).numpy()
    t3 = time.perf_counter()
    best = int(np.argmin(final_cost))
    return SearchResult(
        sources=final[best],
        f0=f0[top[best]],
        criterion=float(final_cost[best]),
        candidate_f0=f0,
        candidate_cost=cost,
        brief_cost=brief_cost,
        finalists=top,
        final_cost=final_cost,
        seconds={"candidates": t1 - t0, "brief": t2 - t1, "final": t3 - t2},
    )


def search_mixes(mixes: torch.Tensor, denoisers, cfg: SearchConfig = SearchConfig(), progress: bool = True, **options):
    """:func:`search_mix` for every mix of ``mixes [B, T]``: ``(sources [B, K, T] float32, results)``."""
    from sepnb.core.progress import bar as progress_bar

    if not isinstance(mixes, torch.Tensor) or mixes.dim() != 2:
        raise ValueError(f"mixes must be a tensor [batch, time], got {getattr(mixes, 'shape', type(mixes))}")
    out = []
    bar = progress_bar(total=mixes.shape[0], desc="model-judged search", unit="mix", disable=not progress)
    for m in mixes:
        out.append(search_mix(m, denoisers, cfg, **options))
        bar.update()
    bar.close()
    return torch.stack([r.sources for r in out]), out
