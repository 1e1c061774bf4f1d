"""A start for the sampler: harmonic grouping of the mix's spectral peaks, judged by the priors (chapter 07).

Chapter 06's samplers, started from noise, must find every source's
frequency and phase by local moves, and they do not. This module finds them
by a classic route and lets the per-source priors decide between the
candidates:

1. **Peaks.** The strongest ``n_candidates`` peaks of the mix's spectrum
   (Hann window, zero-padded, parabolic interpolation) are candidate
   fundamentals.
2. **Harmonic groups.** For every choice of ``K`` candidates, the mix is
   fitted by least squares with one *harmonic comb* per candidate: cosines
   and sines at ``h f0`` for ``h = 1, ..., max_harmonics`` (folded at the
   Nyquist frequency, since the naive toy waveforms alias). The choice that
   leaves the least residual wins; its fundamentals are refined
   (golden-section search on the same residual). Each comb's part of the fit
   is one group; the part no comb explains is shared between the sources as
   :func:`sepnb.separation.project_mix` does, so the decomposition adds up
   to the mix exactly.
3. **The priors say which group is which source.** Every group, scaled to
   a source (``/ alpha_k``), is scored by every source's denoising prior:
   the mean squared denoising residual ``||D_k(x + sigma eps, sigma) -
   x||^2 / sigma^2`` at a few levels (the integrand of the diffusion
   likelihood bound, see :meth:`sepnb.priors.Denoiser.log_prob`; lower is
   more likely). The assignment of groups to sources with the lowest total
   is kept.

Nothing here sees the true sources. The harmonic model knows only that the
sources are periodic; which waveform is which comes from the priors alone.
The result is a start that :func:`sepnb.separation.constrained_langevin`
refines under the same priors.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import lapack, solve_triangular

from sepnb.core.checks import check_int
from sepnb.separation.langevin import prior_device

__all__ = [
    "spectral_peaks",
    "harmonic_frequencies",
    "harmonic_fit",
    "CombFit",
    "refine_f0",
    "fit_f0s_jointly",
    "f0_proposals",
    "AMPLITUDE_TEMPLATES",
    "harmonic_amplitudes",
    "assign_by_amplitudes",
    "prior_cost",
    "groups_as_sources",
    "Grouping",
    "group",
    "harmonic_start",
]


def spectral_peaks(x: np.ndarray, n: int, sample_rate: int, fmin: float = 20.0, pad: int = 16) -> np.ndarray:
    """The ``n`` strongest local maxima of ``|FFT(hann * x)|`` above ``fmin`` Hz, in Hz (interpolated)."""
    T = len(x)
    N = T * pad
    X = np.abs(np.fft.rfft(x * np.hanning(T), N))
    f = np.fft.rfftfreq(N, 1 / sample_rate)
    is_peak = (X[1:-1] > X[:-2]) & (X[1:-1] >= X[2:]) & (f[1:-1] > fmin)
    idx = np.where(is_peak)[0] + 1
    idx = idx[np.argsort(X[idx])[::-1][:n]]
    a, b, c = (np.log(X[idx + d] + 1e-12) for d in (-1, 0, 1))
    den = a - 2 * b + c
    shift = np.where(den != 0, 0.5 * (a - c) / np.where(den != 0, den, 1), 0.0)
    return f[idx] + shift * (f[1] - f[0])


def _comb_harmonics(f0: float, sample_rate: int, max_harmonics: int, fold: float = 2.0):
    """``(h, fr, sign)`` of the comb of ``f0``: the harmonic numbers kept, their frequencies folded into
    (0, fs/2), and ``-1`` where folding mirrored one (``sin(2 pi fr n / fs) = sign sin(2 pi h f0 n / fs)``
    at integer ``n``)."""
    H = int(max(1, min(max_harmonics, math.floor(fold * sample_rate / f0))))
    h = np.arange(1, H + 1)
    fr = np.mod(h * f0, sample_rate)
    sign = np.where(fr > sample_rate / 2, -1.0, 1.0)
    fr = np.where(fr > sample_rate / 2, sample_rate - fr, fr)
    keep = (fr > 1.0) & (fr < sample_rate / 2 - 1.0)
    return h[keep], fr[keep], sign[keep]


def harmonic_frequencies(f0: float, sample_rate: int, max_harmonics: int = 64, fold: float = 2.0) -> np.ndarray:
    """The comb of ``f0``: ``h f0`` for ``h <= max_harmonics`` and ``h f0 <= fold * sample_rate``, folded into (0, fs/2)."""
    return _comb_harmonics(f0, sample_rate, max_harmonics, fold)[1]


def harmonic_fit(x: np.ndarray, f0s, sample_rate: int, max_harmonics: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of ``x [T]`` by one harmonic comb per ``f0``: ``(parts [J, T], residual [T])``."""
    t = np.arange(len(x)) / sample_rate
    cols, owner = [], []
    for j, f0 in enumerate(f0s):
        ph = 2 * np.pi * np.outer(t, harmonic_frequencies(f0, sample_rate, max_harmonics))
        cols += [np.cos(ph), np.sin(ph)]
        owner += [j] * (2 * ph.shape[1])
    A, owner = np.concatenate(cols, axis=1), np.asarray(owner)
    coef = np.linalg.lstsq(A, x, rcond=1e-6)[0]
    parts = np.stack([A[:, owner == j] @ coef[owner == j] for j in range(len(f0s))])
    return parts, x - parts.sum(axis=0)


def _sum_cos_sin(w: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sum_n cos(w n), sum_n sin(w n))`` over ``n = 0, ..., T - 1`` in closed form (the Dirichlet
    kernel), for ``w`` in ``(-2 pi, 2 pi)``; exact at ``w = 0``."""
    half = 0.5 * w
    s = np.sin(half)
    tiny = np.abs(s) < 1e-12
    ratio = np.where(tiny, float(T), np.sin(T * half) / np.where(tiny, 1.0, s))
    phase = (T - 1) * half
    return ratio * np.cos(phase), ratio * np.sin(phase)


class CombFit:
    """Least-squares fits of one signal ``x [T]`` by harmonic combs, the same fits as
    :func:`harmonic_fit` (tested) at a fraction of the cost: issue 23's search fits thousands of sets
    of fundamentals per mix.

    * A comb's columns ``cos(w_h n)``, ``sin(w_h n)`` come from the powers of one complex exponential
      (sampled harmonics alias exactly: ``e^{i 2 pi h f0 n / fs} = (e^{i 2 pi f0 n / fs})^h`` at integer
      ``n``), not from one cosine and one sine per sample and harmonic.
    * The Gram matrix ``A^T A`` is written in closed form (sums of cosines and sines over the window are
      Dirichlet kernels), ``O(m^2)`` for ``m`` columns instead of ``O(T m^2)``; only ``A^T x`` and the
      fitted parts touch the samples.
    * The parts (:meth:`fit`) are the pseudo-inverse's (eigenvalues of the Gram matrix below
      ``1e-12`` of the largest are dropped, as ``lstsq(rcond=1e-6)`` drops singular values of ``A``),
      so combs whose harmonics coincide (fundamentals at integer ratios) share them as
      :func:`harmonic_fit` shares them. The residual alone (:meth:`residual`,
      :meth:`residual_energy`) does not depend on how they are shared, and is found by a pivoted
      Cholesky factorisation, eight times faster than the eigendecomposition.

    With ``cache=True`` every comb's columns and ``A^T x``, and every pair of combs' Gram block, are
    kept: the residual energy of many sets drawn from one pool of fundamentals then costs one small
    solve per set (:meth:`residual_energy`).
    """

    def __init__(self, x: np.ndarray, sample_rate: int, max_harmonics: int = 64, cache: bool = False):
        self.x = np.asarray(x, dtype=float)
        if self.x.ndim != 1:
            raise ValueError(f"CombFit fits one signal [time], got shape {self.x.shape}")
        self.sr, self.H, self.cache = int(sample_rate), int(max_harmonics), bool(cache)
        self.T = len(self.x)
        self.xx = float(self.x @ self.x)
        self._combs, self._grams, self._w = {}, {}, {}

    def _omegas(self, f0: float) -> np.ndarray:
        """The folded frequencies of the comb of ``f0``, in radians per sample (always kept: cheap)."""
        if f0 not in self._w:
            self._w[f0] = 2 * np.pi * _comb_harmonics(f0, self.sr, self.H)[1] / self.sr
        return self._w[f0]

    def comb(self, f0: float):
        """``(w [p], columns [T, 2p], A^T x [2p])`` of the comb of ``f0``: its folded frequencies in
        radians per sample, its cosine then sine columns, and their inner products with ``x``."""
        f0 = float(f0)
        if f0 in self._combs:
            return self._combs[f0]
        h, _, sign = _comb_harmonics(f0, self.sr, self.H)
        z = np.exp(1j * (2 * np.pi * f0 / self.sr) * np.arange(self.T))
        Z = np.cumprod(np.broadcast_to(z[:, None], (self.T, int(h.max()) if len(h) else 0)), axis=1)[:, h - 1]
        cols = np.concatenate([Z.real, Z.imag * sign], axis=1)
        out = (self._omegas(f0), cols, cols.T @ self.x)
        if self.cache:
            self._combs[f0] = out
        return out

    def gram(self, fa: float, fb: float) -> np.ndarray:
        """The block ``A_a^T A_b`` of two combs' columns, in closed form (no sample is touched)."""
        key = (float(fa), float(fb))
        if key in self._grams:
            return self._grams[key]
        wa, wb = self._omegas(key[0]), self._omegas(key[1])
        cm, sm = _sum_cos_sin(wa[:, None] - wb[None], self.T)
        cp, sp = _sum_cos_sin(wa[:, None] + wb[None], self.T)
        G = 0.5 * np.block([[cm + cp, sp - sm], [sp + sm, cm - cp]])
        if self.cache:
            self._grams[key] = G
            self._grams[key[::-1]] = G.T
        return G

    def _system(self, f0s):
        f0s = [float(f) for f in f0s]
        combs = {f: self.comb(f) for f in f0s}  # each comb's columns once per fit
        G = np.block([[self.gram(f, g) for g in f0s] for f in f0s])
        return combs, f0s, G, np.concatenate([combs[f][2] for f in f0s])

    def _basic(self, G: np.ndarray, b: np.ndarray):
        """A basic least-squares solution by pivoted Cholesky (columns whose part orthogonal to those
        already taken is below ``1e-12`` of the largest column energy are left out): ``(coef, ||A coef||^2)``.
        Its fit, so its residual, is the pseudo-inverse's; only how coinciding columns share the
        coefficients differs, which :meth:`fit` leaves to the pseudo-inverse."""
        c, piv, rank, _ = lapack.dpstrf(G, lower=1, tol=1e-12 * float(np.max(np.diag(G), initial=1e-300)))
        take = piv[:rank] - 1  # LAPACK counts from 1
        L = np.tril(c[:rank, :rank])
        y = solve_triangular(L, b[take], lower=True, check_finite=False)
        coef = np.zeros_like(b)
        coef[take] = solve_triangular(L.T, y, lower=False, check_finite=False)
        return coef, float(y @ y)

    def residual_energy(self, f0s) -> float:
        """``||x - A (A^T A)^+ A^T x||^2`` of the joint fit by the combs of ``f0s``."""
        _, _, G, b = self._system(f0s)
        return max(self.xx - self._basic(G, b)[1], 0.0)

    def residual(self, f0s) -> np.ndarray:
        """``x - A (A^T A)^+ A^T x [T]``, the residual of the joint fit (what :func:`fit_f0s_jointly` moves)."""
        combs, f0s, G, b = self._system(f0s)
        coef, _ = self._basic(G, b)
        r, i = self.x.copy(), 0
        for f in f0s:
            cols = combs[f][1]
            r -= cols @ coef[i : i + cols.shape[1]]
            i += cols.shape[1]
        return r

    def fit(self, f0s) -> tuple[np.ndarray, np.ndarray]:
        """``(parts [J, T], residual [T])`` as :func:`harmonic_fit` returns them."""
        combs, f0s, G, b = self._system(f0s)
        w, V = np.linalg.eigh(G)
        keep = w > max(w.max(), 1e-300) * 1e-12  # the pseudo-inverse: coinciding harmonics repeat columns
        coef = V[:, keep] @ ((V[:, keep].T @ b) / w[keep])  # the minimum-norm split of coinciding harmonics
        parts, i = [], 0
        for f in f0s:
            cols = combs[f][1]
            parts.append(cols @ coef[i : i + cols.shape[1]])
            i += cols.shape[1]
        parts = np.stack(parts)
        return parts, self.x - parts.sum(axis=0)


def refine_f0(
    x: np.ndarray, f0s, j: int, width: float, sample_rate: int, max_harmonics: int = 64, iters: int = 8
) -> list:
    """``f0s`` with ``f0s[j]`` moved, within ``+-width`` Hz, to where the joint fit's residual is least (golden section)."""
    g = (math.sqrt(5) - 1) / 2

    def cost(f):
        trial = list(f0s)
        trial[j] = f
        return float(np.sum(harmonic_fit(x, trial, sample_rate, max_harmonics)[1] ** 2))

    a, b = f0s[j] - width, f0s[j] + width
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = cost(c), cost(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = cost(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = cost(d)
    out = list(f0s)
    out[j] = (a + b) / 2
    return out


def fit_f0s_jointly(
    x: np.ndarray,
    f0s,
    sample_rate: int,
    max_harmonics: int = 64,
    iters: int = 30,
    max_step: float | None = None,
) -> tuple[np.ndarray, float]:
    """All fundamentals of ``f0s`` moved together to a least-squares optimum of the joint comb fit:
    ``(f0s, residual energy)``.

    Variable projection: the combs' amplitudes are solved in closed form
    (:class:`CombFit`, the fit of :func:`harmonic_fit`) for every trial of the fundamentals, and the
    fundamentals follow Levenberg-Marquardt steps on that residual (its
    Jacobian by central differences). Unlike one fundamental at a time
    (:func:`refine_f0`), two combs closer than the FFT's resolution move apart
    or together as the residual asks, so fundamentals below one bin of each
    other can be resolved. ``max_step`` (Hz, default a quarter of a bin) bounds
    each step; the fundamentals stay within ``[1 Hz, fs / 2)``.
    """
    f = np.asarray(f0s, dtype=float).copy()
    if f.ndim != 1 or len(f) < 1 or not np.isfinite(f).all() or (f <= 0).any():
        raise ValueError(f"f0s must be positive finite frequencies, got {f0s!r}")
    iters = check_int(iters, "iters", 1)
    max_step = 0.25 * sample_rate / len(x) if max_step is None else float(max_step)

    def residual(g):
        return combs.residual(g)

    combs = CombFit(x, sample_rate, max_harmonics, cache=True)
    r = residual(f)
    cost, lam, h = float(r @ r), 1e-3, 1e-3
    for _ in range(iters):
        # a cache per step: a central difference moves one fundamental, so the other combs' columns and
        # Gram blocks are reused within the step; nothing is kept across steps (memory stays bounded).
        # A cached comb is the same array as a recomputed one, so the caching changes no number.
        combs = CombFit(x, sample_rate, max_harmonics, cache=True)
        J = np.stack([(residual(f + h * e) - residual(f - h * e)) / (2 * h) for e in np.eye(len(f))], axis=1)
        JtJ, g = J.T @ J, J.T @ r
        improved = False
        for _ in range(8):  # raise the damping until a step lowers the residual
            step = -np.linalg.solve(JtJ + lam * np.diag(np.diag(JtJ) + 1e-12), g)
            step = np.clip(step, -max_step, max_step)
            trial = np.clip(f + step, 1.0, sample_rate / 2 - 1.0)
            rt = residual(trial)
            ct = float(rt @ rt)
            if ct < cost:
                f, r, cost, lam, improved = trial, rt, ct, lam / 3, True
                break
            lam *= 10
        if not improved or np.abs(step).max() < 1e-4:
            break
    return f, cost


def f0_proposals(peaks, sample_rate: int, length: int, splits=(0.25, 0.5), ratios=()) -> np.ndarray:
    """Candidate fundamentals beyond the spectrum's peaks (issue 23): each peak, each peak split into
    a pair ``f +- d`` for ``d`` in ``splits`` FFT bins (two fundamentals closer than the FFT's
    resolution show as one peak), and each peak times each of ``ratios`` (the octave and other
    integer-ratio alternatives, where one comb's harmonics coincide with another's). Sorted, with
    duplicates within a hundredth of a bin removed, within ``[1 Hz, fs / 2)``."""
    peaks = np.asarray(peaks, dtype=float)
    if peaks.ndim != 1 or not np.isfinite(peaks).all() or (peaks <= 0).any():
        raise ValueError(f"peaks must be positive finite frequencies, got {peaks!r}")
    bin_hz = sample_rate / int(length)
    out = [peaks]
    out += [peaks + sign * d * bin_hz for d in splits for sign in (-1, 1)]
    out += [peaks * float(r) for r in ratios]
    f = np.concatenate(out)
    f = np.sort(f[(f >= 1.0) & (f < sample_rate / 2)])
    keep = np.concatenate([[True], np.diff(f) > 0.01 * bin_hz]) if len(f) else np.zeros(0, bool)
    return f[keep]


#: Relative harmonic amplitudes ``|c_h| / |c_1|`` of the four toy waveforms (their Fourier series):
#: the hand-written baseline's templates (issue 23), knowledge of the waveforms, not a learned prior.
AMPLITUDE_TEMPLATES = {
    "sine": lambda h: np.where(h == 1, 1.0, 0.0),
    "square": lambda h: np.where(h % 2 == 1, 1.0 / h, 0.0),
    "saw": lambda h: 1.0 / h,
    "triangle": lambda h: np.where(h % 2 == 1, 1.0 / h**2, 0.0),
}


def harmonic_amplitudes(x: np.ndarray, f0: float, sample_rate: int, n_harmonics: int = 8) -> np.ndarray:
    """The amplitude of each of the first ``n_harmonics`` harmonics of ``f0`` in ``x [T]`` (least
    squares on cosines and sines; harmonics above the Nyquist frequency are folded, as the toy
    waveforms alias), ``[n_harmonics]``."""
    t = np.arange(len(x)) / sample_rate
    fr = np.mod(np.arange(1, n_harmonics + 1) * f0, sample_rate)
    fr = np.where(fr > sample_rate / 2, sample_rate - fr, fr)
    ph = 2 * np.pi * np.outer(t, fr)
    coef = np.linalg.lstsq(np.concatenate([np.cos(ph), np.sin(ph)], axis=1), x, rcond=1e-6)[0]
    return np.hypot(coef[:n_harmonics], coef[n_harmonics:])


def assign_by_amplitudes(parts: np.ndarray, f0s, sources, sample_rate: int, n_harmonics: int = 8) -> np.ndarray:
    """The hand-written assignment of harmonic groups to sources (issue 23's baseline, no learned
    prior): each group's harmonic amplitudes, normalised, against each source's Fourier-series
    template (:data:`AMPLITUDE_TEMPLATES`, cosine similarity), and the permutation with the highest
    total. Returns ``perm`` with ``perm[k]`` the group given to source ``k``."""
    h = np.arange(1, n_harmonics + 1)
    amps = np.stack([harmonic_amplitudes(p, f, sample_rate, n_harmonics) for p, f in zip(parts, f0s)])
    amps /= np.linalg.norm(amps, axis=1, keepdims=True) + 1e-12
    temps = np.stack([AMPLITUDE_TEMPLATES[s](h) for s in sources])
    temps /= np.linalg.norm(temps, axis=1, keepdims=True)
    sim = amps @ temps.T  # [group, source]
    perms = np.array(list(itertools.permutations(range(len(sources)))))
    return perms[int(np.argmax(sim[perms, np.arange(len(sources))].sum(axis=1)))]


def groups_as_sources(parts: np.ndarray, residual: np.ndarray, alphas) -> torch.Tensor:
    """``[J, K, T]`` float32: group ``j`` of a comb fit (``parts [J, T]``) scaled to be source ``k``
    (``/ alpha_k``), plus source ``k``'s share of the part no comb explains (``residual [T]``, shared
    as :func:`sepnb.separation.project_mix` shares it), so that any assignment of the groups to the
    sources adds up to the mix exactly."""
    a = np.asarray(alphas, dtype=float)
    share = a[:, None] * residual / np.sum(a**2)
    return torch.as_tensor(parts[:, None, :] / a[None, :, None] + share[None], dtype=torch.float32)


@torch.no_grad()
def prior_cost(denoisers, x: torch.Tensor, sigmas=(0.05, 0.2), seed: int = 0) -> torch.Tensor:
    """``[N, K]``: mean over ``sigmas`` of ``||D_k(x + sigma eps, sigma) - x||^2 / (T sigma^2)`` for ``x [N, T]``.

    The same noise for every prior (a paired comparison); lower means more
    likely under prior ``k``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    dev = prior_device(denoisers)
    x = x.to(dev, torch.float32)
    out = torch.zeros(x.shape[0], len(denoisers), device=dev)
    for s in sigmas:
        noisy = x + s * torch.randn(x.shape, generator=gen).to(dev)
        for k, d in enumerate(denoisers):
            out[:, k] += (d(noisy, s) - x).pow(2).mean(dim=1) / s**2
    return (out / len(sigmas)).cpu()


@dataclass
class Grouping:
    """One mix's grouping: the sources ``[K, T]`` (exact mix), their fundamentals (Hz), the priors' cost."""

    sources: np.ndarray
    f0: np.ndarray
    cost: float
    candidates: np.ndarray


def group(
    mix: np.ndarray,
    denoisers,
    alphas,
    sample_rate: int,
    n_candidates: int = 8,
    max_harmonics: int = 32,
    sigmas=(0.05, 0.2),
    refine_width: float = 0.5,
    seed: int = 0,
) -> Grouping:
    """Group ``mix [T]`` into ``K = len(denoisers)`` harmonic sources, assigned to the sources by the priors.

    The ``K`` candidates whose combs leave the least least-squares residual
    are the fundamentals; after refining them, every group (scaled to a
    source, the unexplained part shared as in ``project_mix``) is scored by
    every prior and the assignment with the lowest total cost is kept.
    """
    K = len(denoisers)
    a = np.asarray(alphas, dtype=float)
    cands = spectral_peaks(mix, n_candidates, sample_rate)
    if len(cands) < K:
        raise ValueError(f"the mix has {len(cands)} spectral peaks, fewer than the {K} sources; is it silent?")
    subsets = list(itertools.combinations(range(len(cands)), K))
    residual = [
        float(np.sum(harmonic_fit(mix, cands[list(sub)], sample_rate, max_harmonics)[1] ** 2)) for sub in subsets
    ]
    f0s = list(cands[list(subsets[int(np.argmin(residual))])])
    for j in range(K):
        f0s = refine_f0(mix, f0s, j, refine_width, sample_rate, max_harmonics)
    parts, res = harmonic_fit(mix, f0s, sample_rate, max_harmonics)
    as_source = groups_as_sources(parts, res, a)
    cost = torch.stack([prior_cost([denoisers[k]], as_source[:, k], sigmas, seed)[:, 0] for k in range(K)], dim=1)
    perms = np.array(list(itertools.permutations(range(K))))  # perms[p, k]: the group given to source k
    totals = cost.numpy()[perms, np.arange(K)].sum(axis=1)
    perm = perms[int(np.argmin(totals))]
    est = as_source[perm, np.arange(K)].double().numpy()
    return Grouping(sources=est, f0=np.asarray(f0s)[perm], cost=float(totals.min()), candidates=cands)


def harmonic_start(
    mixes: torch.Tensor, denoisers, alphas=None, sample_rate: int = 16_000, progress: bool = True, **options
) -> tuple[torch.Tensor, list]:
    """:func:`group` for every mix of ``mixes [B, T]``: the starts ``[B, K, T]`` (float32) and the groupings."""
    from sepnb.core.progress import bar as progress_bar

    if not isinstance(mixes, torch.Tensor) or mixes.dim() != 2:
        raise ValueError(f"mixes must be a tensor [batch, time], got {getattr(mixes, 'shape', type(mixes))}")
    K = len(denoisers)
    alphas = np.full(K, 1.0 / K) if alphas is None else np.asarray(alphas, dtype=float)
    check_int(options.get("n_candidates", 8), "n_candidates", K)
    out = []
    bar = progress_bar(total=mixes.shape[0], desc="harmonic grouping", unit="mix", disable=not progress)
    for m in mixes.double().cpu().numpy():
        out.append(group(m, denoisers, alphas, sample_rate, **options))
        bar.update()
    bar.close()
    return torch.as_tensor(np.stack([g.sources for g in out]), dtype=torch.float32), out
