"""Separation by annealed Langevin dynamics with the mix constraint kept exact.

:func:`sepnb.separation.separate` scores the mix with a Gaussian term
``||m - g(s)||^2 / (2 gamma^2)``, so its sources only approximately add up to
the mix. Here the constraint ``g(s) = sum_k a_k s_k = m`` is exact: the
posterior is the product of the priors ``prod_k p_k(s_k)`` restricted to the
affine subspace ``{s : sum_k a_k s_k = m}`` (per time sample), and nothing else.

The directions that leave the mix unchanged are the vectors ``v`` with
``sum_k a_k v_k = 0``; :func:`project_null` is the orthogonal projector onto
them, ``P v = v - a (sum_k a_k v_k) / ||a||^2``. Langevin dynamics whose drift
and noise are both projected,

    s <- s + eta * P grad log prod_k p_k(s_k) + sqrt(2 eta) * P eps,   eps ~ N(0, I),

never leaves the subspace, and it is ordinary Langevin dynamics in
coordinates of the subspace (``P`` is orthogonal, so ``P eps`` is standard
noise there and ``P grad`` is the gradient of the restricted log density):
started on the subspace, it samples the restricted density. The start is put
on it by :func:`project_mix` (the nearest point with the exact mix), and after
every step it is applied again, which only removes floating-point drift.

Annealing follows BASIS: at level ``sigma_i`` the priors score at that noise
level (one call per prior, or one batched ``score_all(x [B, K, T], sigma)``
call for all of them) and the step is ``eta_i = step * sigma_i^2``. After the
last level an optional Tweedie step ``s + sigma_L^2 * P score`` (Tweedie's
posterior-mean denoise, projected) removes the last level's noise, still
exact in the mix.

A check with a known answer: for Gaussian priors ``N(mu_k, v_k)`` iid per
sample the restricted posterior is Gaussian with, per time sample,

    mean_k  = mu_k + v_k a_k (m - sum_j a_j mu_j) / S,
    cov_kl  = v_k delta_kl - v_k a_k a_l v_l / S,      S = sum_j a_j^2 v_j.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from sepnb.core.checks import check_int
from sepnb.separation.langevin import LangevinDiverged, _check_positive, _frozen, _score, check_mix, prior_device

__all__ = ["project_null", "project_mix", "prior_score", "ConstrainedTrace", "constrained_langevin"]


def _a(alphas: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(alphas).to(like.device, like.dtype)[None, :, None]  # [1, K, 1]


def project_null(v: torch.Tensor, alphas) -> torch.Tensor:
    """Orthogonal projection of ``v [B, K, T]`` onto the directions that leave the mix unchanged."""
    a = _a(alphas, v)
    return v - a * (a * v).sum(dim=1, keepdim=True) / a.pow(2).sum()


def project_mix(s: torch.Tensor, mix: torch.Tensor, alphas) -> torch.Tensor:
    """The nearest point (Euclidean) to ``s [B, K, T]`` whose mix ``sum_k a_k s_k`` is ``mix [B, T]``."""
    a = _a(alphas, s)
    return s + a * (mix - (a * s).sum(dim=1))[:, None] / a.pow(2).sum()


def prior_score(prior, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``grad_x log p(x)`` at noise level ``sigma`` for ``x [B, T]`` -> ``[B, T]``.

    ``prior.score(x, sigma)`` if the prior has one (a denoising model gives the
    score directly; no autograd graph is built), else the autograd gradient of
    its log density (``log_prob(x)`` or ``log_prob(x, sigma=None)``, as in
    :func:`sepnb.separation.separate`) summed over the batch.
    """
    if callable(getattr(prior, "score", None)):
        with torch.no_grad():
            return prior.score(x, sigma)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(_score(prior, x, float(sigma)).sum(), x)
    return grad


@dataclass
class ConstrainedTrace:
    """What :func:`constrained_langevin` saw: the levels, the iterate per level, the constraint's worst error."""

    sigma: np.ndarray
    #: the iterate at the end of every level (before the Tweedie step), ``[n_levels, B, K, T]`` on the CPU
    #: (``[n_levels, K, T]`` for a 1-D mix)
    levels: torch.Tensor
    #: the largest ``|mix - sum_k a_k s_k|`` over the start and all steps, after the re-projection
    max_violation: float
    seconds: float


def constrained_langevin(
    mix: torch.Tensor,
    priors,
    alphas=None,
    sigmas=(0.1,),
    steps_per_sigma: int = 20,
    step: float = 0.5,
    init="noise",
    seed: int = 0,
    denoise_last: bool = True,
    progress: bool = True,
    return_trace: bool = False,
    chunk: int | None = None,
):
    """Separate ``mix [B, T]`` (or ``[T]``) into sources ``[B, K, T]`` with ``sum_k a_k s_k = mix`` exactly.

    ``priors``: a sequence of one prior per source (``score(x, sigma)``, else
    ``log_prob`` as in :func:`prior_score`), or one object with
    ``score_all(x [B, K, T], sigma) -> [B, K, T]`` that scores all sources in
    one batched call (then ``K`` is ``len(priors)`` if it has a length, else
    ``len(alphas)``). ``alphas``: mixing weights (default ``1 / K`` each).
    ``sigmas``: the levels, visited in the given order (a decreasing list, e.g.
    :func:`sepnb.separation.annealed_sigmas`); ``steps_per_sigma``
    steps each, with ``eta_i = step * sigma_i^2``. ``init``: ``"noise"``
    (``sigma_1 * N(0, I)``), ``"mix"`` (every source is the mix) or sources
    ``[B, K, T]`` plus ``sigma_1 * N(0, I)``; the start is always projected onto
    the constraint. ``denoise_last``: a final Tweedie step at ``sigma_L``.
    ``chunk``: score at most this many mixes per call. Deterministic given
    ``seed`` (noise drawn on the CPU); runs on the priors' device, returns on the
    mix's. With ``return_trace`` also returns a :class:`ConstrainedTrace`. A
    non-finite iterate raises :class:`LangevinDiverged`.
    """
    from sepnb.core.progress import bar as progress_bar

    m, single = check_mix(mix)
    batched = callable(getattr(priors, "score_all", None))
    priors = priors if batched else list(priors)
    K = len(priors) if hasattr(priors, "__len__") else (0 if alphas is None else len(alphas))
    if K < 1:
        raise ValueError(
            "constrained_langevin needs at least one prior (a score_all prior without len(): "
            "pass alphas, one per source)"
        )
    alphas = torch.full((K,), 1.0 / K) if alphas is None else torch.as_tensor(alphas, dtype=m.dtype).ravel()
    if alphas.shape != (K,) or not torch.isfinite(alphas).all() or not (alphas != 0).any():
        raise ValueError(f"alphas must be {K} finite numbers, not all zero (one per prior), got {alphas.tolist()}")
    sigmas = np.asarray(sigmas, dtype=float).ravel()
    if len(sigmas) == 0 or not np.isfinite(sigmas).all() or (sigmas <= 0).any():
        raise ValueError(f"sigmas must be a non-empty list of positive numbers, got {sigmas!r}")
    steps_per_sigma = check_int(steps_per_sigma, "steps_per_sigma", 1)
    step = _check_positive(step, "step")
    B, T = m.shape
    if isinstance(init, torch.Tensor):
        start = init[None] if single and init.dim() == 2 else init
        if tuple(start.shape) != (B, K, T) or not torch.isfinite(start).all():
            raise ValueError(
                f"init sources must be finite with shape {(B, K, T)} ([batch, n_priors, T]), got {tuple(init.shape)}"
            )
    elif isinstance(init, str) and init in ("noise", "mix"):
        start = None
    else:
        raise ValueError(f"init must be 'noise', 'mix' or a tensor of sources [B, K, T], got {init!r}")
    chunk = None if chunk is None else check_int(chunk, "chunk", 1)

    out_device = m.device
    modules = [priors] if batched else priors
    dev = prior_device(modules, default=m.device)
    m = m.to(dev)  # the computation runs where the priors live; the result comes back to the mix's device
    alphas = alphas.to(dev, m.dtype)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    parts = [slice(i, i + (chunk or B)) for i in range(0, B, chunk or B)]

    def randn():
        return torch.randn((B, K, T), generator=gen, dtype=m.dtype).to(dev)

    def score(s, sigma):
        if batched:
            g = torch.cat([priors.score_all(s[p], float(sigma)) for p in parts])
            if g.shape != s.shape:
                raise ValueError(f"score_all must return its input's shape {tuple(s.shape)}, got {tuple(g.shape)}")
            return g
        return torch.stack(
            [torch.cat([prior_score(q, s[p, k], float(sigma)) for p in parts]) for k, q in enumerate(priors)], dim=1
        )

    def violation(s):
        return (m - (alphas[None, :, None] * s).sum(dim=1)).abs().max()

    if start is not None:
        s = start.to(dev, m.dtype) + sigmas[0] * randn()
    elif init == "noise":
        s = sigmas[0] * randn()
    else:
        s = m[:, None].expand(B, K, T).clone()
    n_steps = len(sigmas) * steps_per_sigma
    levels = torch.empty((len(sigmas), B, K, T), dtype=m.dtype)
    t0 = time.perf_counter()
    bar = progress_bar(total=n_steps, desc="constrained Langevin", unit="step", disable=not progress)
    with _frozen(modules), torch.no_grad():
        s = project_mix(s, m, alphas)
        worst = violation(s)
        n = 0
        for level, sigma in enumerate(sigmas):
            eta = step * sigma**2
            bar.set_postfix(sigma=f"{sigma:.3g}")
            for _ in range(steps_per_sigma):
                drift = project_null(score(s, sigma), alphas)
                s = s + eta * drift + math.sqrt(2 * eta) * project_null(randn(), alphas)
                s = project_mix(s, m, alphas)  # removes floating-point drift off the constraint
                n += 1
                if not torch.isfinite(s).all():
                    raise LangevinDiverged(
                        f"constrained Langevin iterate not finite at step {n} of {n_steps} (noise level "
                        f"{level + 1}/{len(sigmas)}, sigma={sigma:g}, eta={eta:.3g}); try a smaller step"
                    )
                worst = torch.maximum(worst, violation(s))
                bar.update()
            levels[level] = s.cpu()
        if denoise_last:  # Tweedie: the posterior mean of the clean sources, still on the constraint
            s = project_mix(s + sigmas[-1] ** 2 * project_null(score(s, sigmas[-1]), alphas), m, alphas)
            if not torch.isfinite(s).all():
                raise LangevinDiverged(f"the final denoising step at sigma={sigmas[-1]:g} is not finite")
            worst = torch.maximum(worst, violation(s))
    bar.close()
    out = s.to(out_device)
    out = out[0] if single else out
    if return_trace:
        return out, ConstrainedTrace(sigmas, levels[:, 0] if single else levels, float(worst), time.perf_counter() - t0)
    return out
