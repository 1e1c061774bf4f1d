"""Source separation by Langevin dynamics under the source priors (chapter 06).

The posterior of the sources ``s = (s_1, ..., s_K)`` given a mix ``m`` is

    log p(s | m) = sum_k log p_k(s_k) - ||m - g(s)||^2 / (2 gamma^2) + const,

with the mixing function ``g(s) = sum_k alpha_k s_k`` (the paper's eq. 8:
``alpha_k = 1 / K``, the mean). The paper's eq. (3) prints a plus before the
mix term; it must be a minus, or the sampler is pushed *away* from the mix.
Stochastic gradient Langevin dynamics (SGLD) samples from it by

    s <- s + eta * grad_s log p(s | m) + sqrt(2 eta) * eps,   eps ~ N(0, I).

The annealed variant of Jayaram & Thickstun (BASIS) runs this at a
decreasing list of noise levels ``sigma_1 > ... > sigma_L``: at level ``i``
each source is scored by its prior fine-tuned at ``sigma_i`` (chapter 03),
``gamma = sigma_i``, the step size is ``eta_i = delta * sigma_i^2 / sigma_L^2``,
and ``T`` steps are taken per level. Plain SGLD is the special case of one
level with the noise-free priors.

The authors' own code had the mix term's weight set to 0 (ORIGINAL_CODE.md):
here it is always on; ``gamma`` only sets its strength.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sepnb.core.checks import check_int

__all__ = [
    "NoiseConditionedPrior",
    "Trace",
    "LangevinDiverged",
    "annealed_sigmas",
    "step_sizes",
    "differentiable_log_prob",
    "prior_device",
    "check_mix",
    "separate",
]


class LangevinDiverged(FloatingPointError):
    """The Langevin iterate stopped being finite (raised with the step and noise level)."""


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def annealed_sigmas(sigma_max: float = 1.0, sigma_min: float = 0.01, n_levels: int = 10) -> np.ndarray:
    """The geometric noise schedule ``sigma_max = sigma_1 > ... > sigma_L = sigma_min`` (BASIS)."""
    sigma_max, sigma_min = _check_positive(sigma_max, "sigma_max"), _check_positive(sigma_min, "sigma_min")
    n_levels = check_int(n_levels, "n_levels", 1)
    if n_levels == 1:
        return np.array([sigma_min])
    if sigma_min >= sigma_max:
        raise ValueError(f"sigma_min ({sigma_min}) must be below sigma_max ({sigma_max})")
    return np.geomspace(sigma_max, sigma_min, n_levels)


def step_sizes(sigmas, delta: float = 3e-5) -> np.ndarray:
    """Step size per level, ``eta_i = delta * sigma_i^2 / sigma_L^2`` (BASIS): the last level gets ``delta``."""
    sigmas = np.asarray(sigmas, dtype=float)
    delta = _check_positive(delta, "delta")
    if sigmas.ndim != 1 or len(sigmas) == 0 or not np.isfinite(sigmas).all() or (sigmas <= 0).any():
        raise ValueError(f"sigmas must be a non-empty list of positive numbers, got {sigmas!r}")
    return delta * sigmas**2 / sigmas[-1] ** 2


def differentiable_log_prob(model):
    """The log density of ``model`` whose gradient Langevin dynamics follows.

    A WaveNet's exact density is piecewise constant (zero gradient), so its
    ``smooth_log_prob`` is used; a flow's ``log_prob`` is smooth already.
    """
    return getattr(model, "smooth_log_prob", None) or model.log_prob


class NoiseConditionedPrior:
    """One source's priors by noise level, with ``log_prob(x, sigma=None) -> [B]`` (chapter 06).

    ``models`` maps a noise level to a model (``0`` = the noise-free prior).
    ``log_prob(x, sigma)`` scores ``x`` with the model of the nearest level
    (in log scale; ``sigma=None`` or ``0`` asks for the noise-free one). A
    level further than a factor ``tolerance`` from every available one is an
    error, not a silent substitute.
    """

    def __init__(self, models: dict, tolerance: float = 1.5):
        if not models:
            raise ValueError("NoiseConditionedPrior needs at least one model")
        self.models = {float(k): v for k, v in models.items()}
        if any(k < 0 or not math.isfinite(k) for k in self.models):
            raise ValueError(f"noise levels must be >= 0, got {sorted(self.models)}")
        self.tolerance = float(tolerance)

    def level(self, sigma=None) -> float:
        if not sigma:
            if 0.0 not in self.models:
                raise KeyError(f"no noise-free model (levels {sorted(self.models)})")
            return 0.0
        noisy = [k for k in self.models if k > 0]
        if not noisy:
            raise KeyError(f"no model fine-tuned for noise level {sigma:g} (levels {sorted(self.models)})")
        best = min(noisy, key=lambda k: abs(math.log(k / sigma)))
        if max(best / sigma, sigma / best) > self.tolerance:
            raise KeyError(f"no model near noise level {sigma:g} (levels {sorted(self.models)})")
        return best

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        return differentiable_log_prob(self.models[self.level(sigma)])(x)

    def modules(self):
        return [m for m in self.models.values() if isinstance(m, torch.nn.Module)]


def check_mix(mix) -> tuple[torch.Tensor, bool]:
    """``(mix as [B, T], whether it was one mix [T])``; a clear ValueError for anything else."""
    if not isinstance(mix, torch.Tensor) or not mix.is_floating_point():
        raise ValueError(f"mix must be a floating-point torch.Tensor, got {type(mix).__name__}")
    single = mix.dim() == 1
    m = mix[None] if single else mix
    if m.dim() != 2 or m.shape[1] < 1:
        raise ValueError(f"mix must have shape [T] or [batch, T], got {tuple(mix.shape)}")
    if not torch.isfinite(m).all():
        raise ValueError("mix contains NaN or Inf; clean the input first")
    return m, single


def _takes_sigma(prior) -> bool:
    try:
        return "sigma" in inspect.signature(prior.log_prob).parameters
    except (TypeError, ValueError):
        return False


def _score(prior, x: torch.Tensor, sigma: float) -> torch.Tensor:
    if _takes_sigma(prior):
        return prior.log_prob(x, sigma=sigma)
    return differentiable_log_prob(prior)(x)


def _modules(priors) -> list:
    """The torch modules behind ``priors`` (models, or the models of a :class:`NoiseConditionedPrior`)."""
    out = []
    for p in priors:
        if isinstance(p, torch.nn.Module):
            out.append(p)
        elif hasattr(p, "modules") and callable(p.modules):
            out.extend(m for m in p.modules() if isinstance(m, torch.nn.Module))
    return out


def prior_device(priors, default: torch.device | str = "cpu") -> torch.device:
    """The device the priors' parameters live on (``default`` for parameter-free priors).

    Priors on different devices are an error that says so: the sampler moves
    the mix to the priors, it does not move the priors.
    """
    devices = {q.device for m in _modules(priors) for q in m.parameters()}
    if len(devices) > 1:
        raise ValueError(
            f"the priors live on different devices {sorted(map(str, devices))}; "
            "move them to one (e.g. model.to(sepnb.runs.device()))"
        )
    return devices.pop() if devices else torch.device(default)


@contextlib.contextmanager
def _frozen(priors):
    """Evaluation mode, no parameter gradients (only the input's); restored afterwards."""
    modules = _modules(priors)
    state = [(m, m.training, [q.requires_grad for q in m.parameters()]) for m in modules]
    try:
        for m in modules:
            m.eval()
            m.requires_grad_(False)
        yield
    finally:
        for m, training, flags in state:
            m.train(training)
            for q, f in zip(m.parameters(), flags):
                q.requires_grad_(f)


@dataclass
class Trace:
    """Per Langevin step: the noise level, the prior and mix terms (chapter 06's trajectory plot).

    ``log_prior[step, b, k]``: log p_k(s_k) per sample of source ``k`` of mix
    ``b`` under the prior of the current level; ``mix_error[step, b]``: mean
    squared residual ``(m - g(s))^2`` per sample.
    """

    sigma: np.ndarray
    log_prior: np.ndarray
    mix_error: np.ndarray
    seconds: float
    #: the iterate at the end of every noise level, ``[n_levels, B, K, T]`` on the CPU (SI-SDR per level)
    levels: torch.Tensor | None = None
    #: the first iterate (the start, after its projection), ``[B, K, T]`` on the CPU
    start: torch.Tensor | None = None

    def to_json(self) -> dict:
        return {
            "sigma": self.sigma.tolist(),
            "log_prior_per_sample": self.log_prior.round(6).tolist(),
            "mix_error": self.mix_error.tolist(),
            "seconds": round(self.seconds, 2),
        }


def separate(
    mix: torch.Tensor,
    priors: Sequence,
    alphas=None,
    sigmas=(0.1,),
    steps_per_sigma: int = 100,
    delta: float = 3e-5,
    gamma: float | None = None,
    seed: int = 0,
    init="noise",
    clip: tuple | None = None,
    progress: bool = True,
    return_trace: bool = False,
    chunk: int | None = 16,
):
    """Separate ``mix [B, T]`` (or ``[T]``) into ``[B, len(priors), T]`` by (annealed) Langevin dynamics.

    ``priors``: one per source, either a model (``log_prob(x) -> [B]``, a
    WaveNet's ``smooth_log_prob`` is used) or anything with
    ``log_prob(x, sigma=None)`` such as :class:`NoiseConditionedPrior`.
    ``alphas``: mixing weights (default ``1 / K`` each, the mean). ``sigmas``:
    the noise levels, visited in the given order (use a decreasing list, e.g.
    :func:`annealed_sigmas`; one level = plain SGLD). ``gamma``: the mix
    term's noise; ``None`` ties it to the level (``gamma = sigma_i``, BASIS).
    ``init``: ``"noise"`` (``sigma_1 * N(0, I)``), ``"mix"`` (every source
    starts at the mix) or a tensor of sources ``[B, K, T]`` to start from, plus
    ``sigma_1 * N(0, I)`` (chapter 06 starts from the true sources this way, to
    ask whether the sampler holds them; the same code as every other start).
    ``clip=(lo, hi)`` projects every iterate onto ``[lo, hi]`` (projected Langevin dynamics): a WaveNet's density is zero
    outside [-1, 1], and without it the sources can drift apart without
    bound along the directions the mix does not see. Deterministic given ``seed`` (the noise
    is drawn on the CPU, so the same seed gives the same draws on any device). The
    computation runs on the priors' device (:func:`prior_device`; the mix is moved there)
    and the sources are returned on the mix's device. With ``return_trace``
    also returns a :class:`Trace`. ``chunk``: the priors score at most this many
    mixes per call (the sum is the same; a WaveNet step on 32 mixes at once is
    slower than on two halves on a 2-core CPU). A non-finite iterate raises
    :class:`LangevinDiverged` naming the step and noise level.
    """
    import time

    from sepnb.core.progress import bar as progress_bar

    m, single = check_mix(mix)
    K = len(priors)
    if K < 1:
        raise ValueError("separate needs at least one prior")
    alphas = torch.full((K,), 1.0 / K) if alphas is None else torch.as_tensor(alphas, dtype=m.dtype)
    if alphas.shape != (K,) or not torch.isfinite(alphas).all():
        raise ValueError(f"alphas must be {K} finite numbers (one per prior), got {alphas.tolist()}")
    sigmas = np.asarray(sigmas, dtype=float).ravel()
    etas = step_sizes(sigmas, delta)
    steps_per_sigma = check_int(steps_per_sigma, "steps_per_sigma", 1)
    if gamma is not None:
        gamma = _check_positive(gamma, "gamma")
    start = None
    if isinstance(init, torch.Tensor):
        start = init[None] if single and init.dim() == 2 else init
        if tuple(start.shape) != (m.shape[0], K, m.shape[1]) or not torch.isfinite(start).all():
            raise ValueError(
                f"init sources must be finite with shape {(m.shape[0], K, m.shape[1])} "
                f"([batch, n_priors, T]), got {tuple(init.shape)}"
            )
    elif init not in ("noise", "mix"):
        raise ValueError(f"init must be 'noise', 'mix' or a tensor of sources [B, K, T], got {init!r}")
    chunk = None if chunk is None else check_int(chunk, "chunk", 1)
    if clip is not None:
        lo, hi = (float(v) for v in clip)
        if not lo < hi:
            raise ValueError(f"clip must be (lo, hi) with lo < hi, got {clip!r}")

    out_device = m.device
    dev = prior_device(priors, default=m.device)
    m = m.to(dev)  # the computation runs where the priors live; the result comes back to the mix's device
    a = alphas.to(dev, m.dtype)[None, :, None]  # [1, K, 1]
    gen = torch.Generator(device="cpu").manual_seed(int(seed))

    def randn(shape):
        return torch.randn(shape, generator=gen, dtype=m.dtype).to(dev)

    B, T = m.shape
    if start is not None:
        s = start.to(dev, m.dtype) + sigmas[0] * randn((B, K, T))
    elif init == "noise":
        s = sigmas[0] * randn((B, K, T))
    else:
        s = m[:, None].expand(B, K, T).clone()
    parts = [slice(i, i + (chunk or B)) for i in range(0, B, chunk or B)]
    if clip is not None:
        s = s.clamp(lo, hi)
    n_steps = len(sigmas) * steps_per_sigma
    trace_sigma = np.repeat(sigmas, steps_per_sigma)
    log_prior = np.empty((n_steps, B, K))
    mix_error = np.empty((n_steps, B))
    levels = torch.empty((len(sigmas), B, K, T), dtype=m.dtype)
    first = s.detach().cpu() if return_trace else None
    t0 = time.perf_counter()
    bar = progress_bar(total=n_steps, desc="Langevin", unit="step", disable=not progress)
    with _frozen(priors):
        step = 0
        for level, (sigma, eta) in enumerate(zip(sigmas, etas)):
            g2 = (gamma if gamma is not None else sigma) ** 2
            bar.set_postfix(sigma=f"{sigma:.3g}")
            for _ in range(steps_per_sigma):
                s = s.detach().requires_grad_(True)
                with torch.enable_grad():
                    lp = torch.stack(
                        [
                            torch.cat([_score(p, s[part, k], float(sigma)) for part in parts])
                            for k, p in enumerate(priors)
                        ],
                        dim=1,
                    )  # [B, K]
                    (grad,) = torch.autograd.grad(lp.sum(), s)
                with torch.no_grad():
                    resid = m - (a * s).sum(dim=1)  # [B, T]
                    drift = grad + a * resid[:, None] / g2
                    s = s + eta * drift + math.sqrt(2 * eta) * randn((B, K, T))
                    if clip is not None:
                        s = s.clamp(lo, hi)
                    log_prior[step] = (lp / T).double().cpu().numpy()
                    mix_error[step] = resid.pow(2).mean(dim=1).double().cpu().numpy()
                    if not (torch.isfinite(s).all() and np.isfinite(log_prior[step]).all()):
                        raise LangevinDiverged(
                            f"Langevin iterate not finite at step {step + 1} of {n_steps} (noise level "
                            f"{level + 1}/{len(sigmas)}, sigma={sigma:g}, eta={eta:.3g}); try a smaller "
                            "delta or a larger gamma"
                        )
                step += 1
                bar.update()
            levels[level] = s.detach().cpu()
    bar.close()
    out = s.detach().to(out_device)
    out = out[0] if single else out
    if return_trace:
        return out, Trace(
            trace_sigma,
            log_prior,
            mix_error,
            time.perf_counter() - t0,
            levels[:, 0] if single else levels,
            first[0] if single else first,
        )
    return out
