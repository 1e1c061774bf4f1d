"""Denoising (score) priors for one source each, with EDM preconditioning (chapter 07).

A denoiser ``D(x, sigma)`` is trained on one source's windows only, noised at
levels ``sigma`` drawn log-uniformly from ``[sigma_min, sigma_max]``, to
return the clean window. By Tweedie's formula its residual gives the score of
the source's density smoothed by Gaussian noise of std ``sigma``:

    grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2,

which is what a sampler needs, without autograd (:meth:`Denoiser.score`).
The network ``F`` is wrapped as in Karras et al. (EDM, 2022):

    D(x, sigma) = c_skip x + c_out F(c_in x, c_noise),
    c_skip = s_d^2 / (sigma^2 + s_d^2),  c_out = sigma s_d / sqrt(sigma^2 + s_d^2),
    c_in = 1 / sqrt(sigma^2 + s_d^2),     c_noise = log(sigma) / 4,

with ``s_d`` the data's std, and trained with EDM's weight
``(sigma^2 + s_d^2) / (sigma s_d)^2`` on the squared error, which makes the
loss on ``F``'s output of order one at every level.

``F`` is a non-causal stack of gated dilated convolutions (dilations
``1, 2, ..., 2^(layers-1)``; with 11 layers of kernel 3 it sees 4095 samples,
so every output sample sees the whole 2048-sample window), told the noise
level by a learned per-layer bias from Fourier features of ``c_noise``.

The contract of a prior (``log_prob(x, sigma=None) -> [B]``) is met by a
*bound*: :meth:`Denoiser.log_prob` is the variational lower bound of a
variance-exploding diffusion (Kingma et al., VDM, 2021) from ``sigma_min`` to
``sigma_max`` with a fixed quadrature and fixed noise (deterministic), in
nats. It is exact only as far as the bound is tight; it ranks priors on the
same input consistently, which is how chapter 07 uses it.

:class:`StackedDenoisers` gives the sampler one call for all sources,
``score_all(x [B, K, T], sigma)``: by default the models side by side on the
CPU's cores (one after another on a GPU, or with ``workers=1``), or, with ``vmap=True``, the parameters stacked
(``torch.func.stack_module_state``) and the model ``vmap``-ed over the
sources. On the 2-core CPU the stacked call is the slowest (``vmap`` turns the
convolutions into grouped ones) and side by side the fastest at the samplers'
small batches; ``python -m sepnb.bench`` measures all three. Without autograd
the network runs :meth:`Denoiser._net_inference`, the same function computed
faster.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Denoiser", "StackedDenoisers"]


def _sigma_tensor(sigma, x: torch.Tensor) -> torch.Tensor:
    """``sigma`` as a ``[B, 1]`` tensor on ``x``'s device (a number or a ``[B]`` tensor)."""
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.dim() == 0:
        s = s.expand(x.shape[0])
    if s.shape != (x.shape[0],) or not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"sigma must be a positive number or {x.shape[0]} positive numbers, got {sigma!r}")
    return s[:, None]


class _Layer(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, emb: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.cond = nn.Linear(emb, 2 * channels)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)

    def forward(self, h, e):
        a, b = (self.conv(h) + self.cond(e)[:, :, None]).chunk(2, dim=1)
        g = torch.tanh(a) * torch.sigmoid(b)
        return (h + self.res(g)) * math.sqrt(0.5), self.skip(g)


class Denoiser(nn.Module):
    """One source's denoiser ``D(x, sigma)`` with EDM preconditioning; ``x [B, T]``.

    ``sigma_data``: the std of the source's samples (EDM's ``s_d``);
    ``sigma_min``, ``sigma_max``: the range of noise levels it is trained on.
    """

    def __init__(
        self,
        channels: int = 32,
        layers: int = 11,
        kernel: int = 3,
        emb: int = 32,
        sigma_data: float = 0.6,
        sigma_min: float = 0.005,
        sigma_max: float = 3.0,
    ):
        super().__init__()
        for name, v in (("channels", channels), ("layers", layers), ("kernel", kernel), ("emb", emb)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (centred, non-causal convolutions), got {kernel}")
        if not 0 < sigma_min < sigma_max or sigma_data <= 0:
            raise ValueError(
                f"need 0 < sigma_min < sigma_max and sigma_data > 0, got {sigma_min}, {sigma_max}, {sigma_data}"
            )
        self.sigma_data, self.sigma_min, self.sigma_max = float(sigma_data), float(sigma_min), float(sigma_max)
        self.register_buffer("freqs", torch.arange(1, emb // 2 + 1, dtype=torch.float32) * math.pi / 2)
        self.emb = nn.Sequential(nn.Linear(2 * (emb // 2), emb), nn.SiLU(), nn.Linear(emb, emb), nn.SiLU())
        self.inp = nn.Conv1d(1, channels, 1)
        self.layers = nn.ModuleList(_Layer(channels, kernel, 2**i, emb) for i in range(layers))
        self.out = nn.Sequential(nn.SiLU(), nn.Conv1d(channels, channels, 1), nn.SiLU(), nn.Conv1d(channels, 1, 1))

    def receptive_field(self) -> int:
        k = self.layers[0].conv.kernel_size[0]
        return 1 + (k - 1) * sum(layer.conv.dilation[0] for layer in self.layers)

    def _net(self, x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        f = c_noise * self.freqs  # [B, emb/2]
        e = self.emb(torch.cat([f.sin(), f.cos()], dim=1))
        if not torch.is_grad_enabled():
            return self._net_inference(x_in, e)
        h = self.inp(x_in[:, None])
        skip = 0
        for layer in self.layers:
            h, s = layer(h, e)
            skip = skip + s
        return self.out(skip / math.sqrt(len(self.layers)))[:, 0]

    def _net_inference(self, x_in: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """``F`` without autograd: the same function as the layers' ``forward``, computed faster on
        the CPU (tested equal to float rounding; the samplers and the search spend their time here).

        * The gate ``tanh(a) sigmoid(b)`` is ``2 (sigmoid(2a) - 1/2) sigmoid(b)``: one sigmoid over
          both halves (torch's CPU ``tanh`` costs about five sigmoids), the 2 in ``2a`` folded into
          the convolution's weights and the outer 2 into the 1x1 convolutions that read the gate.
        * The dilation-1 convolution is one matrix product of the stacked shifted inputs (oneDNN's
          kernel for it is two to three times slower than for the other dilations at these sizes).
        * Every layer's conditioning comes from one linear map; where all windows share one level
          it is the convolution's bias. The residual's ``sqrt(1/2)`` is folded into its weights.
        """
        layers = self.layers
        C = layers[0].res.weight.shape[0]
        B = x_in.shape[0]
        scale = torch.ones(2 * C, dtype=x_in.dtype, device=x_in.device)
        scale[:C] = 2.0  # sigmoid(2a)
        bias = F.linear(
            e,
            torch.cat([layer.cond.weight * scale[:, None] for layer in layers]),
            torch.cat([(layer.cond.bias + layer.conv.bias) * scale for layer in layers]),
        ).view(B, len(layers), 2 * C)
        shared = B == 1 or bool((bias == bias[:1]).all())  # one level for every window: a plain conv bias
        h = self.inp(x_in[:, None])
        T = h.shape[-1]
        r = math.sqrt(0.5)
        skip = None
        for i, layer in enumerate(layers):
            conv = layer.conv
            k, d = conv.kernel_size[0], conv.dilation[0]
            w = conv.weight * scale[:, None, None]
            if d == 1:
                hp = F.pad(h, (k // 2, k // 2))
                cols = torch.cat([hp[:, :, j : j + T] for j in range(k)], dim=1)  # [B, k C, T]
                z = torch.matmul(w.permute(0, 2, 1).reshape(2 * C, k * C), cols)
                z += bias[:1, i, :, None] if shared else bias[:, i, :, None]
            elif shared:
                z = F.conv1d(h, w, bias[0, i], padding=conv.padding, dilation=conv.dilation)
            else:
                z = F.conv1d(h, w, None, padding=conv.padding, dilation=conv.dilation)
                z += bias[:, i, :, None]
            z = torch.sigmoid_(z)
            g = (z[:, :C] - 0.5).mul_(z[:, C:])  # (sigmoid(2a) - 1/2) sigmoid(b), half the gate
            h = F.conv1d(g, layer.res.weight * (2 * r), layer.res.bias * r).add_(h, alpha=r)
            s = F.conv1d(g, layer.skip.weight * 2, layer.skip.bias)
            skip = s if skip is None else skip.add_(s)
        return self.out(skip / math.sqrt(len(layers)))[:, 0]

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """The denoised ``x``: an estimate of the clean window, ``[B, T]``."""
        if x.dim() != 2:
            raise ValueError(f"x must have shape [batch, time], got {tuple(x.shape)}")
        s = _sigma_tensor(sigma, x)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (s**2 + sd2)
        c_out = s * self.sigma_data / (s**2 + sd2).sqrt()
        c_in = 1 / (s**2 + sd2).sqrt()
        return c_skip * x + c_out * self._net(c_in * x, s.log() / 4)

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """``grad_x log p_sigma(x)`` by Tweedie's formula, ``(D(x, sigma) - x) / sigma^2`` (no autograd)."""
        s = _sigma_tensor(sigma, x)
        return (self(x, sigma) - x) / s**2

    def _weighted_error(self, x: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        s = sigma[:, None]
        w = (s**2 + self.sigma_data**2) / (s * self.sigma_data) ** 2
        return (w * (self(x + s * eps, sigma) - x) ** 2).mean(dim=1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """EDM-weighted denoising error per sample, averaged over the batch.

        Training mode: one level per window, log-uniform in ``[sigma_min,
        sigma_max]``, from torch's global generator (the training loop seeds
        it). Evaluation mode: the same levels and noise every call (a fixed
        generator and levels evenly spaced in log), so held-out losses compare.
        """
        B = x.shape[0]
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        if self.training:
            sigma = torch.exp(lo + (hi - lo) * torch.rand(B, device=x.device))
            eps = torch.randn_like(x)
        else:
            gen = torch.Generator().manual_seed(0)
            sigma = torch.exp(torch.linspace(lo, hi, B)).to(x.device, x.dtype)
            eps = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        return self._weighted_error(x, sigma, eps).mean()

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, sigma=None, levels: int = 24, draws: int = 2) -> torch.Tensor:
        """A lower bound on ``log p(x)`` in nats per window ``[B]`` (VDM's bound; ``sigma`` is ignored).

        ``-log p(x) <= ||x||^2 / (2 sigma_max^2) + (T/2) log(2 pi e sigma_min^2)
        + (1/2) int ||x - D(x + sigma eps, sigma)||^2 d(sigma^-2)``, the
        integral over ``sigma`` in ``[sigma_min, sigma_max]`` taken on
        ``levels`` midpoints in log-sigma with ``draws`` fixed noise draws each.
        """
        if x.dim() != 2:
            raise ValueError(f"x must have shape [batch, time], got {tuple(x.shape)}")
        B, T = x.shape
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        du = (hi - lo) / levels
        gen = torch.Generator().manual_seed(0)
        total = torch.zeros(B, dtype=torch.float64, device=x.device)
        for i in range(levels):
            s = math.exp(lo + (i + 0.5) * du)
            err = 0
            for _ in range(draws):
                eps = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
                err = err + (x - self(x + s * eps, s)).pow(2).sum(dim=1).double()
            # d(sigma^-2) = -2 sigma^-2 du  ->  (1/2) * 2 * err / sigma^2 * du
            total += err / draws / s**2 * du
        prior_term = x.double().pow(2).sum(dim=1) / (2 * self.sigma_max**2)
        decoder = 0.5 * T * math.log(2 * math.pi * math.e * self.sigma_min**2)
        return -(total + prior_term + decoder)


class StackedDenoisers:
    """The denoisers of all sources (same architecture) behind one call: ``score_all(x [B, K, T], sigma)``.

    ``vmap=False``: the models one after another, or, on the CPU with ``workers > 1`` (default:
    torch's thread count), side by side: the ``K`` models shared out among ``workers`` Python
    threads. At the sampler's small batches torch spreads each operation over the cores poorly,
    and running whole models side by side is faster (``python -m sepnb.bench``). ``vmap=True``: the
    parameters stacked along a new source axis (frozen copies: later changes to the models do not
    reach the stack) and the model ``vmap``-ed over it. All give the same scores (tested).
    """

    def __init__(self, models, vmap: bool = False, workers: int | None = None):
        from torch.func import stack_module_state

        models = list(models)
        if not models or not all(isinstance(m, Denoiser) for m in models):
            raise ValueError("StackedDenoisers needs a non-empty list of sepnb.priors.Denoiser models")
        shapes = {tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()) for m in models}
        if len(shapes) > 1:
            raise ValueError("StackedDenoisers needs models of one architecture (same sizes)")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer or None (torch's thread count), got {workers!r}")
        self.models, self.vmap, self.workers = models, bool(vmap), workers
        if not self.vmap:
            return
        self.params, self.buffers = stack_module_state([copy.deepcopy(m).eval().requires_grad_(False) for m in models])
        self.base = copy.deepcopy(models[0]).to("meta")

    def __len__(self) -> int:
        return len(self.models)

    def modules(self):
        return self.models

    def _denoise_all(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params, buffers, xk):
            return functional_call(self.base, (params, buffers), (xk, sigma))

        # the layers' plain forward (the inference path's data-dependent branch cannot be vmap-ed);
        # nothing here requires grad, so no graph is recorded
        with torch.enable_grad():
            return vmap(one, in_dims=(0, 0, 1), out_dims=1)(self.params, self.buffers, x)

    def _side_by_side(self, x: torch.Tensor, sigma: float, workers: int) -> torch.Tensor:
        K = len(self.models)
        shares = [list(range(w, K, workers)) for w in range(workers)]

        def run(ks):
            with torch.no_grad():  # grad mode is per thread
                return [(k, self.models[k].score(x[:, k], sigma)) for k in ks]

        # torch's thread count is left as it is: changing it once MKL has run breaks torch's LU
        # solves afterwards (torch 2.11: wrong pivots in lu_solve; the tests check it stays sound)
        done = dict(kv for part in _pool(workers).map(run, shares) for kv in part)
        return torch.stack([done[k] for k in range(K)], dim=1)

    @torch.no_grad()
    def score_all(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """``[B, K, T]``: the score of source ``k``'s denoiser at ``x[:, k]``, for every ``k`` at once."""
        if x.dim() != 3 or x.shape[1] != len(self.models):
            raise ValueError(f"x must have shape [batch, {len(self.models)}, time], got {tuple(x.shape)}")
        if self.vmap:
            return (self._denoise_all(x, float(sigma)) - x) / float(sigma) ** 2
        workers = min(self.workers or torch.get_num_threads(), len(self.models))
        if workers > 1 and x.device.type == "cpu":
            return self._side_by_side(x, float(sigma), workers)
        return torch.stack([m.score(x[:, k], float(sigma)) for k, m in enumerate(self.models)], dim=1)


_POOLS: dict = {}


def _pool(workers: int):
    """One thread pool per size, made on first use and kept (its threads idle between calls)."""
    from concurrent.futures import ThreadPoolExecutor

    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="sepnb-denoiser")
    return _POOLS[workers]
