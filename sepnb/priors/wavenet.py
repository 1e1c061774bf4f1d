"""The WaveNet prior (and the contract both of the paper's priors share; the flow is in :mod:`sepnb.priors.flowavenet`).

Both are ``torch.nn.Module`` priors over waveforms ``x`` of shape
``[batch, time]`` (float, in [-1, 1]) with one shared contract:

``log_prob(x) -> Tensor[batch]``
    the exact log-likelihood in nats of each whole waveform, as a *density*
    (per-sample figures are ``log_prob(x) / time``).

* :class:`WaveNet` (van den Oord et al. 2016) is an autoregressive model over
  256 mu-law classes. Its discrete likelihood ``P(c_1..c_T)`` is turned into a
  density over ``[-1, 1]^T`` by dividing by the width (in x-space) of each
  sample's mu-law bin, i.e. the density that is uniform inside each bin
  (:func:`mu_law_log_bin_width`). That density integrates to one over
  ``[-1, 1]^T``, so it is in the same unit (nats per sample of a density) as
  the flow's.
* :class:`FloWaveNet` (Kim et al. 2019) is a normalizing flow: squeeze,
  ActNorm, affine couplings whose scale and shift come from a non-causal
  WaveNet, channel flips and multi-scale factoring-out with a learned Gaussian
  prior. Its density is over ``R^T`` (it is not restricted to [-1, 1]; the
  mass outside is small for a prior trained on audio).

The authors' reported flow "likelihood" omitted the log-determinant; it is
kept as :meth:`FloWaveNet.latent_log_prob`, labelled as such, next to the
correct :meth:`FloWaveNet.log_prob`.

Nothing here hard-codes a device: computation follows the input's (or, for
sampling, the parameters') device and dtype.

Introduced in chapter ``02_models``.
"""

from __future__ import annotations

import functools
import math
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from sepnb.core.checks import check_int as _check_int

__all__ = ["mu_law_encode", "mu_law_decode", "mu_law_log_bin_width", "WaveNet"]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- checks


def _check_real(value, name: str, minimum: float, *, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    return float(value)


def _check_audio(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [batch, time], got shape {tuple(x.shape)}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one time step, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (audio in [-1, 1]), got {x.dtype}")
    return x


# --------------------------------------------------------------------------- mu-law
def _mu(n_classes: int) -> float:
    return float(_check_int(n_classes, "n_classes", 2) - 1)


def _mu_law_inverse(y: torch.Tensor, mu: float) -> torch.Tensor:
    """x = sign(y) ((1 + mu)^|y| - 1) / mu, the inverse of the mu-law companding."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def mu_law_encode(x: torch.Tensor, n_classes: int = 256) -> torch.Tensor:
    """Quantise audio in [-1, 1] to ``n_classes`` mu-law classes (a LongTensor).

    With ``mu = n_classes - 1`` the companded value
    ``y = sign(x) log(1 + mu |x|) / log(1 + mu)`` lies in [-1, 1]; that range is
    cut into ``n_classes`` *equal* bins and class ``c`` is the bin
    ``[-1 + 2c / n, -1 + 2(c + 1) / n)`` holding ``y`` (``y = 1`` goes to the
    last class). Inputs outside [-1, 1] are clamped first. The bins in x-space
    are the preimages of these uniform bins: narrow near 0, wide near +-1.
    Chapter 02.

    >>> mu_law_encode(torch.tensor([-1.0, 0.0, 1.0])).tolist()
    [0, 128, 255]
    """
    n = _check_int(n_classes, "n_classes", 2)
    mu = float(n - 1)
    x = x.clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    c = torch.floor((y + 1.0) * (0.5 * n))
    return c.clamp(0, n - 1).long()


def mu_law_decode(c: torch.Tensor, n_classes: int = 256, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Map mu-law classes back to audio: the bin centre, taken in mu-law space.

    Class ``c`` decodes to ``x = f^-1(-1 + (2c + 1) / n)``, the preimage of
    the centre of its uniform bin in companded space, so
    ``mu_law_encode(mu_law_decode(c)) == c`` for every class. Chapter 02.
    """
    n = _check_int(n_classes, "n_classes", 2)
    y = -1.0 + (2.0 * c.to(torch.float64) + 1.0) / n
    return _mu_law_inverse(y, float(n - 1)).to(dtype)


@functools.lru_cache(maxsize=16)
def _log_bin_width_table(n_classes: int) -> torch.Tensor:
    """log widths of all ``n_classes`` bins, in float64 on the CPU (cached)."""
    mu = float(n_classes - 1)
    y_edges = -1.0 + 2.0 * torch.arange(n_classes + 1, dtype=torch.float64) / n_classes
    edges = _mu_law_inverse(y_edges, mu)
    edges[0], edges[-1] = -1.0, 1.0  # the outer edges are exactly -1 and 1
    return torch.log(edges[1:] - edges[:-1])


def mu_law_log_bin_width(c: torch.Tensor, n_classes: int = 256) -> torch.Tensor:
    """log of the width, in x-space, of the mu-law bin of class ``c`` (float64).

    The bin edges are ``f^-1(-1 + 2k / n)`` for ``k = 0 .. n`` (see
    :func:`mu_law_encode`), computed in float64, with the outer edges set to
    exactly -1 and 1; so the widths of all classes sum to 2, the length of
    [-1, 1]. A discrete probability ``P(c)`` becomes the piecewise-constant
    density ``P(c) / width(c)`` on [-1, 1], which integrates to one. For
    ``n = 256`` the widths range from about 1.7e-4 (next to 0) to 0.044
    (next to +-1). The result is on ``c``'s device, in float64. Chapter 02.
    """
    n = _check_int(n_classes, "n_classes", 2)
    table = _log_bin_width_table(n).to(c.device)
    return table[c]


# --------------------------------------------------------------------------- WaveNet
class WaveNet(nn.Module):
    """Autoregressive WaveNet prior over mu-law classes (a density on [-1, 1]^T).

    Column ``t`` of the logits predicts sample ``t`` from samples ``< t`` only:
    the input is the one-hot class of the *previous* sample (an
    ``nn.Embedding``, which is a 1x1 convolution on the one-hot), shifted right
    by one with a learned start token in front, followed by
    ``n_stacks x n_layers`` causal dilated convolutions (dilations
    ``1, 2, ..., 2^(n_layers - 1)`` per stack) with gated ``tanh * sigmoid``
    units, residual and skip 1x1 convolutions, and the output head
    ``ReLU -> 1x1 -> ReLU -> 1x1`` to ``n_classes`` logits.

    :attr:`receptive_field` is ``(kernel_size - 1) * n_stacks * (2^n_layers - 1) + 1``
    samples: column ``t`` depends on samples ``t - receptive_field .. t - 1``.

    ``log_prob(x)`` is ``sum_t [log P(c_t | c_<t) - log width(c_t)]``, the
    density of ``x`` on [-1, 1]^T that is uniform inside each mu-law bin.
    Chapter 02.
    """

    def __init__(
        self,
        *,
        n_layers: int = 10,
        n_stacks: int = 1,
        channels: int = 32,
        n_classes: int = 256,
        kernel_size: int = 2,
        skip_channels: int | None = None,
    ):
        super().__init__()
        self.n_layers = _check_int(n_layers, "n_layers", 1)
        self.n_stacks = _check_int(n_stacks, "n_stacks", 1)
        self.channels = _check_int(channels, "channels", 1)
        self.n_classes = _check_int(n_classes, "n_classes", 2)
        self.kernel_size = _check_int(kernel_size, "kernel_size", 1)
        self.skip_channels = self.channels if skip_channels is None else _check_int(skip_channels, "skip_channels", 1)
        C, S = self.channels, self.skip_channels
        self.dilations = [2**i for _ in range(self.n_stacks) for i in range(self.n_layers)]
        # row n_classes is the start token seen by column 0
        self.embed = nn.Embedding(self.n_classes + 1, C)
        self.dilated = nn.ModuleList(nn.Conv1d(C, 2 * C, self.kernel_size, dilation=d) for d in self.dilations)
        self.skips = nn.ModuleList(nn.Conv1d(C, S, 1) for _ in self.dilations)
        # the last layer's residual output would be unused: it has none
        self.residuals = nn.ModuleList(nn.Conv1d(C, C, 1) for _ in self.dilations[:-1])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(S, S, 1), nn.ReLU(), nn.Conv1d(S, self.n_classes, 1))

    @property
    def receptive_field(self) -> int:
        """Number of past samples each prediction sees: ``(k - 1) * sum(dilations) + 1``."""
        return (self.kernel_size - 1) * sum(self.dilations) + 1

    # ------------------------------------------------------------------ full (parallel) pass
    def _trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Causal stack on the shifted embedding ``h [B, C, T]`` -> logits."""
        C, k = self.channels, self.kernel_size
        skip = 0.0
        for i, d in enumerate(self.dilations):
            a = self.dilated[i](F.pad(h, ((k - 1) * d, 0)))
            z = torch.tanh(a[:, :C]) * torch.sigmoid(a[:, C:])
            skip = skip + self.skips[i](z)
            if i < len(self.residuals):
                h = h + self.residuals[i](z)
        return self.head(skip)

    def logits_from_classes(self, c: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n_classes, T]`` for a class sequence ``c [B, T]`` (long). Chapter 02."""
        if c.dim() != 2 or c.shape[1] < 1:
            raise ValueError(f"classes must have shape [batch, time], got {tuple(c.shape)}")
        start = torch.full_like(c[:, :1], self.n_classes)
        h = self.embed(torch.cat([start, c[:, :-1]], dim=1)).transpose(1, 2)
        return self._trunk(h)

    def logits_from_onehot(self, onehot: torch.Tensor) -> torch.Tensor:
        """Logits from a (relaxed) one-hot input ``[B, n_classes, T]``: a differentiable path.

        Equal to :meth:`logits_from_classes` for exact one-hots; used to check
        causality with autograd. Chapter 02.
        """
        if onehot.dim() != 3 or onehot.shape[1] != self.n_classes:
            raise ValueError(f"onehot must have shape [batch, {self.n_classes}, time], got {tuple(onehot.shape)}")
        w = self.embed.weight
        e = torch.einsum("bnt,nc->bct", onehot, w[: self.n_classes])
        start = w[self.n_classes][None, :, None].expand(onehot.shape[0], -1, 1)
        return self._trunk(torch.cat([start, e[:, :, :-1]], dim=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n_classes, T]`` for audio ``x [B, T]``; column t sees samples < t. Chapter 02."""
        x = _check_audio(x)
        return self.logits_from_classes(mu_law_encode(x, self.n_classes))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density (nats) of each waveform on [-1, 1]^T, shape ``[B]``. Chapter 02.

        ``sum_t log softmax(logits)[c_t] - log width(c_t)``; see
        :func:`mu_law_log_bin_width`.
        """
        x = _check_audio(x)
        c = mu_law_encode(x, self.n_classes)
        logits = self.logits_from_classes(c)
        logp = torch.log_softmax(logits, dim=1).gather(1, c[:, None, :])[:, 0]
        log_w = mu_law_log_bin_width(c, self.n_classes).to(logp.dtype)
        return (logp - log_w).sum(dim=1)

    def smooth_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """A differentiable stand-in for :meth:`log_prob`, for Langevin dynamics (chapter 06). ``[B]``.

        :meth:`log_prob` is piecewise constant in ``x`` (the density is
        uniform inside each mu-law bin), so its gradient is zero almost
        everywhere. Here each sample's position between the two nearest bin
        centres, in companded (mu-law) space, is a weight ``w`` in [0, 1]:
        the network's input embedding is interpolated between the two
        classes, and the log density between their two log densities. At a
        bin centre the value equals :meth:`log_prob` exactly; between centres
        it is the piecewise-linear interpolation. Inputs are clamped to
        [-1, 1] (no gradient outside).
        """
        x = _check_audio(x).clamp(-1.0, 1.0)
        n, mu = self.n_classes, float(self.n_classes - 1)
        y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
        u = ((y + 1.0) * (0.5 * n) - 0.5).clamp(0.0, n - 1.0)  # bin centres at 0, 1, ..., n - 1
        c0 = u.detach().floor().clamp(max=n - 2).long()
        w = (u - c0).to(self.embed.weight.dtype)
        W = self.embed.weight
        e = (1 - w)[:, None] * W[c0].transpose(1, 2) + w[:, None] * W[c0 + 1].transpose(1, 2)  # [B, C, T]
        start = W[n][None, :, None].expand(x.shape[0], -1, 1)
        logits = self._trunk(torch.cat([start, e[:, :, :-1]], dim=2))
        log_d = torch.log_softmax(logits, dim=1) - _log_bin_width_table(n).to(logits)[None, :, None]
        lo = log_d.gather(1, c0[:, None, :])[:, 0]
        hi = log_d.gather(1, (c0 + 1)[:, None, :])[:, 0]
        return ((1 - w) * lo + w * hi).sum(dim=1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per sample (a scalar to minimise). Chapter 02."""
        return -self.log_prob(x).mean() / x.shape[1]

    # ------------------------------------------------------------------ sampling
    @staticmethod
    def _draw(logits: torch.Tensor, generator: torch.Generator, temperature: float) -> torch.Tensor:
        """One class per row of ``logits [n, N]``: inverse CDF of one uniform per row."""
        if temperature == 0:
            return logits.argmax(dim=-1)
        cdf = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)
        u = torch.rand(logits.shape[0], 1, generator=generator, device=logits.device, dtype=cdf.dtype) * cdf[:, -1:]
        c = torch.searchsorted(cdf.contiguous(), u, right=True)[:, 0]
        return c.clamp_max(logits.shape[-1] - 1)

    @torch.no_grad()
    def sample(self, n: int, length: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """Draw ``n`` waveforms ``[n, length]`` (mu-law bin centres) with fast cached generation.

        The "fast WaveNet" queue method: each dilated layer keeps a ring
        buffer of its last ``(k - 1) * d + 1`` inputs (zeros before time 0,
        as the zero left-padding of :meth:`forward`), so one step costs one
        small matrix product per layer instead of a full re-run. Each class is
        drawn by the inverse CDF of one uniform from a ``torch.Generator``
        seeded with ``seed``; logits are divided by ``temperature``
        (0 = greedy argmax). Chapter 02.
        """
        n = _check_int(n, "n", 1)
        length = _check_int(length, "length", 1)
        temperature = _check_real(temperature, "temperature", 0.0)
        p = self.embed.weight
        dev, dt = p.device, p.dtype
        g = torch.Generator(device=dev)
        g.manual_seed(int(seed))
        C, k = self.channels, self.kernel_size
        bufs = [torch.zeros(n, C, (k - 1) * d + 1, device=dev, dtype=dt) for d in self.dilations]
        prev = torch.full((n,), self.n_classes, dtype=torch.long, device=dev)
        out = torch.empty(n, length, dtype=torch.long, device=dev)
        for t in range(length):
            h = self.embed(prev)[:, :, None]  # [n, C, 1]
            skip = 0.0
            for i, d in enumerate(self.dilations):
                buf = bufs[i]
                L = buf.shape[2]
                buf[:, :, t % L] = h[:, :, 0]
                taps = buf[:, :, [(t - (k - 1 - m) * d) % L for m in range(k)]]  # oldest first
                conv = self.dilated[i]
                a = F.conv1d(taps, conv.weight, conv.bias)
                z = torch.tanh(a[:, :C]) * torch.sigmoid(a[:, C:])
                skip = skip + self.skips[i](z)
                if i < len(self.residuals):
                    h = h + self.residuals[i](z)
            c = self._draw(self.head(skip)[:, :, 0], g, temperature)
            out[:, t] = c
            prev = c
        return mu_law_decode(out, self.n_classes, dtype=dt)
