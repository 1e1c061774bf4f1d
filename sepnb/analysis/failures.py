"""Which toy mixes a separation fails, and why (issue 23's groups and failure taxonomy).

Both are fixed in ``book/scorecard.yaml`` before any test number of the model-judged
search. The true fundamentals only *label* a mix or a failure here; nothing in a
separation method reads them.

* :func:`mix_groups`: ``"close"`` when the two closest fundamentals of a mix lie
  within 2 FFT bins of the window, else ``"integer ratio"`` when some pair has
  ``|f_hi - r f_lo| < 2`` bins for ``r`` in 2 or 3 (harmonics coincide), else
  ``"rest"``.
* :func:`failure_reason`: a mix fails below 15 dB fixed-order SI-SDR (mean over
  sources); the reason is the first that applies of ``"assignment"`` (best
  permutation at least 15 dB), ``"candidates"`` (no set of fundamentals the method
  considered has every true fundamental within half a bin), ``"choice"`` (one did,
  the chosen one does not) and ``"refinement"`` (the chosen one does).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROUPS", "REASONS", "FAIL_BELOW_DB", "mix_groups", "has_fundamentals", "failure_reason"]

GROUPS = ("close", "integer ratio", "rest")
REASONS = ("assignment", "candidates", "choice", "refinement")
#: A mix whose fixed-order SI-SDR (mean over its sources) is below this fails (the issue's 15 dB target).
FAIL_BELOW_DB = 15.0


def mix_groups(freq, bin_hz: float, within_bins: float = 2.0, ratios=(2, 3)) -> list[str]:
    """The group of each mix from its true fundamentals ``freq [n, K]`` (Hz), ``bin_hz`` the FFT bin."""
    f = np.sort(np.asarray(freq, dtype=float), axis=1)
    if f.ndim != 2 or f.shape[1] < 2 or not np.isfinite(f).all() or bin_hz <= 0:
        raise ValueError(f"freq must be finite fundamentals [mixes, sources >= 2] and bin_hz > 0, got {f.shape}")
    out = []
    for row in f:
        if np.diff(row).min() < within_bins * bin_hz:
            out.append("close")
            continue
        lo, hi = np.triu_indices(len(row), k=1)  # row is sorted: row[hi] >= row[lo]
        near = [np.abs(row[hi] - r * row[lo]) < within_bins * bin_hz for r in ratios]
        out.append("integer ratio" if np.any(near) else "rest")
    return out


def has_fundamentals(candidates, truth, bin_hz: float, tol_bins: float = 0.5) -> np.ndarray:
    """``[C]``: whether each candidate set of fundamentals ``[C, K]`` has every true fundamental ``[K]``
    within ``tol_bins`` bins, matched in sorted order (for numbers on a line, the matching with the
    smallest largest error)."""
    c = np.sort(np.atleast_2d(np.asarray(candidates, dtype=float)), axis=1)
    t = np.sort(np.asarray(truth, dtype=float))
    if c.shape[1] != t.shape[0]:
        raise ValueError(f"candidates have {c.shape[1]} fundamentals, the truth {t.shape[0]}")
    return np.abs(c - t[None]).max(axis=1) <= tol_bins * bin_hz


def failure_reason(fixed_db: float, perm_db: float, candidates, chosen, truth, bin_hz: float) -> str | None:
    """``None`` when the mix does not fail, else its reason (see the module)."""
    if fixed_db >= FAIL_BELOW_DB:
        return None
    if perm_db >= FAIL_BELOW_DB:
        return "assignment"
    if not has_fundamentals(candidates, truth, bin_hz).any():
        return "candidates"
    if not has_fundamentals(chosen, truth, bin_hz)[0]:
        return "choice"
    return "refinement"
