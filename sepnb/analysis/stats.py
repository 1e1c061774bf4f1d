"""Intervals for the book's summaries: the cluster bootstrap (chapters 04-06, the scorecard).

Numbers measured on parts of one test item (the four sources of one mix,
windows cut from one item) are correlated, so an interval that resamples
them one by one is too narrow. :func:`cluster_bootstrap` resamples whole
clusters (one row of ``values`` per cluster: a test mix, a test item) with
replacement and recomputes the statistic on each resample; the interval is
the 2.5th and 97.5th percentiles (the percentile bootstrap, 2000 resamples,
as ``book/scorecard.yaml`` fixes for every verdict). Where the statistic is a
proportion, a percentile bootstrap of 0/n or n/n collapses to a point;
:func:`clopper_pearson` gives the exact binomial interval and
:func:`exact_proportion` the hull of both (the rules file's deviation
``exact_proportions``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sepnb.core.checks import check_int

__all__ = ["Interval", "cluster_bootstrap", "resample_indices", "from_draws", "clopper_pearson", "exact_proportion"]


@dataclass(frozen=True)
class Interval:
    """A statistic and its bootstrap interval."""

    value: float
    low: float
    high: float
    n_clusters: int

    def to_json(self, decimals: int = 4) -> dict:
        return {
            "value": round(self.value, decimals),
            "low": round(self.low, decimals),
            "high": round(self.high, decimals),
            "n_clusters": self.n_clusters,
        }

    def __format__(self, spec: str) -> str:
        spec = spec or ".2f"
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


def resample_indices(n_clusters: int, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """``[resamples, n_clusters]`` cluster indices drawn with replacement (the same for every
    statistic given the same seed, so paired differences use the same resamples)."""
    n_clusters = check_int(n_clusters, "n_clusters", 1)
    resamples = check_int(resamples, "resamples", 1)
    return np.random.default_rng(seed).integers(0, n_clusters, size=(resamples, n_clusters))


def cluster_bootstrap(values, statistic=None, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """The statistic of ``values`` (``[n_clusters, ...]``, one row per cluster) and its
    percentile-bootstrap interval over clusters.

    ``statistic`` maps an array of rows to a number (default: the mean of
    everything). NaN rows are an error: say what to drop before calling.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or len(v) == 0:
        raise ValueError("cluster_bootstrap needs at least one cluster (one row per cluster)")
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or Inf; drop or fix those clusters first")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    stat = statistic or (lambda a: float(np.mean(a)))
    idx = resample_indices(len(v), resamples, seed)
    draws = np.array([stat(v[i]) for i in idx], dtype=float)
    return from_draws(float(stat(v)), draws, len(v), level)


def from_draws(value: float, draws, n_clusters: int, level: float = 0.95) -> Interval:
    """The percentile interval of bootstrap ``draws`` of a statistic whose value is ``value``
    (for statistics resampled elsewhere, e.g. paired differences on the same resamples)."""
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 1 or len(draws) == 0 or not np.isfinite(draws).all():
        raise ValueError("draws must be a non-empty 1-D array of finite numbers")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high), int(n_clusters))


def clopper_pearson(successes: float, trials: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a binomial proportion ``successes / trials``.

    ``[Beta(level/2; k, n - k + 1), Beta(1 - level/2; k + 1, n - k)]`` with the
    lower end 0 at ``k = 0`` and the upper end 1 at ``k = n``; ``successes``
    may be a non-integer (a proportion times a number of clusters), for which
    the same beta quantiles are taken.
    """
    from scipy.stats import beta

    n = check_int(trials, "trials", 1)
    k = float(successes)
    if not 0 <= k <= n:
        raise ValueError(f"successes must lie in [0, trials={n}], got {successes!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    tail = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def exact_proportion(iv: Interval, trials: int | None = None, level: float = 0.95) -> Interval:
    """The hull of the bootstrap interval ``iv`` of a proportion and its exact interval over
    ``trials`` independent units (default ``iv.n_clusters``), at ``k = iv.value * trials``."""
    n = iv.n_clusters if trials is None else check_int(trials, "trials", 1)
    if not 0 <= iv.value <= 1:
        raise ValueError(f"a proportion lies in [0, 1], got {iv.value!r}")
    low, high = clopper_pearson(iv.value * n, n, level)
    return Interval(iv.value, min(iv.low, low), max(iv.high, high), iv.n_clusters)
