"""Out-of-distribution analysis: every source under every prior (chapters 03 and 04).

The paper's central measurement (its Figures 3 and 4) is the *cross-likelihood*:
the mean log-likelihood per sample of the test data of source ``j`` under the
prior trained on source ``i``. A prior that is useful for separation gives its
own source a high likelihood and the others a low one. Here it is computed
batched and without autograd, with the spread over examples kept, and
summarised by a per-prior ROC-AUC (own class against the other classes,
scored by log-likelihood) and by whether each class's own prior ranks first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from sepnb.analysis.stats import Interval

__all__ = [
    "CrossLikelihood",
    "NoiseGrid",
    "cross_likelihood",
    "noise_grid",
    "add_test_noise",
    "auc",
    "check_sigma",
    "fig3_windows",
]


def fig3_windows(profile, seed: int = 0) -> torch.Tensor:
    """Figure 3's clean test windows ``[fig3_items, 4, ood_length]``: one window of every source from each of
    the first ``fig3_items`` test items (chapters 04 and 05; Figure 4 and Table 1 use the first ``ood_items``)."""
    from sepnb.core import profiles
    from sepnb.data import toy

    p = profiles.get(profile)
    test = toy.ToyWindows("test", window=p.ood_length, n_items=max(p.fig3_items, p.ood_items), seed=seed)
    return test.batch(np.arange(p.fig3_items))


def check_sigma(sigma, allow_zero: bool = False) -> float:
    """A noise level as a float, or a ValueError that says what is expected (chapter 03)."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise ValueError(f"sigma must be a number such as 0.359, got {sigma!r} ({type(sigma).__name__})")
    sigma = float(sigma)
    if not math.isfinite(sigma):
        raise ValueError(f"sigma must be finite, got {sigma}")
    if sigma < 0 or (sigma == 0 and not allow_zero):
        raise ValueError(
            f"sigma must be {'>= 0' if allow_zero else '> 0'}, got {sigma}; "
            "the paper's levels are 0.01, 0.027, 0.077, 0.129, 0.359"
        )
    return sigma


@dataclass
class CrossLikelihood:
    """Per-example log-likelihoods per sample ``values[prior, data, example]`` with labels."""

    values: np.ndarray
    priors: list
    data: list

    @property
    def mean(self) -> np.ndarray:
        """``[n_priors, n_data]`` mean log-likelihood per sample (the paper's matrix)."""
        return self.values.mean(axis=-1)

    @property
    def std(self) -> np.ndarray:
        """``[n_priors, n_data]`` spread over examples."""
        return self.values.std(axis=-1)

    def aucs(self) -> np.ndarray:
        """Per prior ``i`` (trained on ``data[i]``): ROC-AUC of own-class vs other-class examples."""
        out = []
        for i, name in enumerate(self.priors):
            j = self.data.index(name)
            own = self.values[i, j]
            other = np.concatenate([self.values[i, k] for k in range(len(self.data)) if k != j])
            out.append(auc(own, other))
        return np.array(out)

    def auc_draws(self, idx: np.ndarray) -> np.ndarray:
        """Bootstrap draws ``[R, n_priors]`` of :meth:`aucs` for resampled examples ``idx [R, n]``.

        Example ``e`` of every data set must come from the same test item (as in
        chapters 03 and 04, where the four sources of one toy item are windows of
        one item): an item is a cluster and is resampled with all its windows.
        Ties count one half, as in :func:`auc`.
        """
        from scipy.stats import rankdata

        idx = np.asarray(idx)
        n = idx.shape[1]
        out = np.empty((idx.shape[0], len(self.priors)))
        for i, name in enumerate(self.priors):
            j = self.data.index(name)
            own = self.values[i, j][idx]  # [R, n]
            other = np.concatenate([self.values[i, k][idx] for k in range(len(self.data)) if k != j], axis=1)
            ranks = rankdata(np.concatenate([own, other], axis=1), axis=1)
            u = ranks[:, :n].sum(1) - n * (n + 1) / 2
            out[:, i] = u / (n * other.shape[1])
        return out

    def auc_intervals(self, resamples: int = 2000, seed: int = 0) -> tuple[list, Interval]:
        """95% cluster-bootstrap intervals of each prior's AUC and of their mean (clusters: test items)."""
        from sepnb.analysis.stats import from_draws, resample_indices

        n = self.values.shape[-1]
        draws = self.auc_draws(resample_indices(n, resamples, seed))
        a = self.aucs()
        return (
            [from_draws(a[i], draws[:, i], n) for i in range(len(a))],
            from_draws(float(a.mean()), draws.mean(1), n),
        )

    def own_prior_ranks_first(self) -> np.ndarray:
        """Per data class with a prior of its own: does that prior give it the highest mean likelihood?"""
        m = self.mean
        return np.array(
            [self.priors[int(np.argmax(m[:, j]))] == name for j, name in enumerate(self.data) if name in self.priors]
        )

    def to_json(self) -> dict:
        """Matrices with their labels, for ``book/results/*.json``."""
        return {
            "rows_prior": list(self.priors),
            "cols_data": list(self.data),
            "mean_loglik_per_sample": self.mean.round(6).tolist(),
            "std_over_examples": self.std.round(6).tolist(),
            "auc_own_vs_other": self.aucs().round(6).tolist(),
            "own_prior_ranks_first": self.own_prior_ranks_first().tolist(),
            "n_examples": int(self.values.shape[-1]),
        }


def auc(pos, neg) -> float:
    """ROC-AUC: probability that a positive scores above a negative (ties count one half).

    Mann-Whitney U statistic from ranks; ``pos`` and ``neg`` are 1-D score arrays.
    """
    pos, neg = np.asarray(pos, dtype=float).ravel(), np.asarray(neg, dtype=float).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("auc needs at least one positive and one negative score")
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


@torch.inference_mode()
def cross_likelihood(priors: dict, data: dict, batch: int = 16, metric: str = "log_prob") -> CrossLikelihood:
    """Score every waveform set under every prior (chapters 03, 04).

    ``priors`` maps a name to a model with ``log_prob(x) -> [B]``; ``data``
    maps a name to waveforms ``[n, T]``. Returns per-example log-likelihoods
    per sample. ``metric="latent_log_prob"`` scores the flows with the
    authors' metric (no log-determinant) instead.
    """
    names_p, names_d = list(priors), list(data)
    n = {len(v) for v in data.values()}
    if len(n) != 1:
        raise ValueError(f"every data set needs the same number of examples, got {sorted(n)}")
    values = np.empty((len(names_p), len(names_d), n.pop()))
    for i, p in enumerate(names_p):
        model = priors[p]
        score = getattr(model, metric)
        dev = next(model.parameters()).device
        for j, d in enumerate(names_d):
            x = data[d]
            out = [score(x[k : k + batch].to(dev)).double().cpu() / x.shape[1] for k in range(0, len(x), batch)]
            values[i, j] = torch.cat(out).numpy()
    return CrossLikelihood(values, names_p, names_d)


def add_test_noise(windows: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Test windows ``[n, n_sources, T]`` plus ``sigma * N(0, I)``, clipped to [-1, 1] (chapters 03, 04).

    The same noise draw (seeded by ``seed``) for every ``sigma``, so that a
    grid over noise levels compares like with like; clipping keeps the data in
    the WaveNet's domain.
    """
    sigma = check_sigma(sigma, allow_zero=True)
    if sigma == 0:
        return windows
    gen = torch.Generator().manual_seed(seed + 1000)
    return (windows + sigma * torch.randn(windows.shape, generator=gen, dtype=windows.dtype)).clamp(-1, 1)


@dataclass
class NoiseGrid:
    """The paper's Figure 4: a cross-likelihood per (prior noise level, test noise level).

    ``values[a, b, prior, data, example]``: log-likelihood per sample under the
    priors fine-tuned at ``prior_sigmas[a]`` (0 = noise-free) of the test data
    noised at ``test_sigmas[b]``.
    """

    values: np.ndarray
    prior_sigmas: list
    test_sigmas: list
    priors: list
    data: list

    def cell(self, a: int, b: int) -> CrossLikelihood:
        return CrossLikelihood(self.values[a, b], self.priors, self.data)

    @property
    def mean(self) -> np.ndarray:
        """``[n_prior_sigmas, n_test_sigmas, n_priors, n_data]``."""
        return self.values.mean(axis=-1)

    def _per_cell(self, fn) -> np.ndarray:
        return np.array(
            [[fn(self.cell(a, b)) for b in range(len(self.test_sigmas))] for a in range(len(self.prior_sigmas))]
        )

    def aucs(self) -> np.ndarray:
        """``[n_prior_sigmas, n_test_sigmas, n_priors]`` ROC-AUC of own vs other class."""
        return self._per_cell(CrossLikelihood.aucs)

    def own_prior_ranks_first(self) -> np.ndarray:
        """``[n_prior_sigmas, n_test_sigmas, n_data]``."""
        return self._per_cell(CrossLikelihood.own_prior_ranks_first)

    def to_json(self) -> dict:
        return {
            "axes": ["prior_sigma", "test_sigma", "prior", "data"],
            "prior_sigmas": [float(s) for s in self.prior_sigmas],
            "test_sigmas": [float(s) for s in self.test_sigmas],
            "rows_prior": list(self.priors),
            "cols_data": list(self.data),
            "mean_loglik_per_sample": self.mean.round(6).tolist(),
            "auc_own_vs_other": self.aucs().round(6).tolist(),
            "own_prior_ranks_first": self.own_prior_ranks_first().tolist(),
            "n_examples": int(self.values.shape[-1]),
        }


def noise_grid(
    prior_sets: dict, windows: torch.Tensor, sources, test_sigmas, seed: int = 0, batch: int = 16, progress: bool = True
) -> NoiseGrid:
    """Evaluate the whole Figure 4 grid (chapter 04), batched and without autograd.

    ``prior_sets`` maps a prior noise level (0 = noise-free) to ``{source:
    model}``; ``windows`` are clean test windows ``[n, len(sources), T]``,
    noised at each of ``test_sigmas`` by :func:`add_test_noise` (one draw,
    scaled). Every prior scores all test levels and sources in one pass.
    """
    from sepnb.core.progress import bar as progress_bar

    sources, test_sigmas = list(sources), [check_sigma(s, allow_zero=True) for s in test_sigmas]
    prior_sigmas = [check_sigma(s, allow_zero=True) for s in prior_sets]
    if windows.ndim != 3 or windows.shape[1] != len(sources):
        raise ValueError(f"windows must be [n, {len(sources)}, T], got {tuple(windows.shape)}")
    test_data = {}
    for b, ts in enumerate(test_sigmas):
        noisy = add_test_noise(windows, ts, seed)
        for j, s in enumerate(sources):
            test_data[(b, s)] = noisy[:, j]
    n = windows.shape[0]
    values = np.empty((len(prior_sigmas), len(test_sigmas), len(sources), len(sources), n))
    bar = progress_bar(total=len(prior_sigmas) * len(sources), desc="Figure 4 grid", unit="prior", disable=not progress)
    for a, ps in enumerate(prior_sets):
        for i, p in enumerate(sources):
            r = cross_likelihood({p: prior_sets[ps][p]}, test_data, batch=batch)
            values[a, :, i] = r.values[0].reshape(len(test_sigmas), len(sources), n)
            bar.update()
    bar.close()
    return NoiseGrid(values, prior_sigmas, test_sigmas, sources, sources)


#: The paper's published flow cross-likelihoods on the toy data (thesis tables, read in
#: ORIGINAL_CODE.md): rows = prior, columns = data, both (sine, square, saw, triangle).
#: They are the authors' metric: mean log N(z) per sample, without the log-determinant.
PAPER_FIG3_FLOW = [
    [4.8, -890.0, -750.0, -47.0],
    [-410.0, -1.8, -690.0, -680.0],
    [-680.0, -820.0, 4.1, -670.0],
    [-46.0, -1000.0, -1000.0, 4.0],
]

#: The paper's Table 1 (FloWaveNet, authors' metric): (input, sigma of the prior) ->
#: values under the (sine, square, saw, triangle) priors.
PAPER_TABLE1_FLOW = {
    ("zeros", 0.0): [4.8, -7.0e2, 4.4, 1.8],
    ("zeros", 0.359): [-5.0e-1, -3.1, 5.1, -2.0e11],
    ("N(0, 0.5)", 0.0): [-2.7e13, -3.4e9, -1.4e5, -1.1e11],
    ("N(0, 0.5)", 0.359): [4.4, -5.8e1, 5.1, -3.8e5],
}
