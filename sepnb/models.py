"""Models: the two deep priors of the paper, a WaveNet and a FloWaveNet.

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

from .checks import check_int as _check_int

__all__ = [
    "mu_law_encode",
    "mu_law_decode",
    "mu_law_log_bin_width",
    "WaveNet",
    "FloWaveNet",
    "ConvTasNetSeparator",
]

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
        self.skip_channels = (
            self.channels if skip_channels is None else _check_int(skip_channels, "skip_channels", 1)
        )
        C, S = self.channels, self.skip_channels
        self.dilations = [2**i for _ in range(self.n_stacks) for i in range(self.n_layers)]
        # row n_classes is the start token seen by column 0
        self.embed = nn.Embedding(self.n_classes + 1, C)
        self.dilated = nn.ModuleList(
            nn.Conv1d(C, 2 * C, self.kernel_size, dilation=d) for d in self.dilations
        )
        self.skips = nn.ModuleList(nn.Conv1d(C, S, 1) for _ in self.dilations)
        # the last layer's residual output would be unused: it has none
        self.residuals = nn.ModuleList(nn.Conv1d(C, C, 1) for _ in self.dilations[:-1])
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv1d(S, S, 1), nn.ReLU(), nn.Conv1d(S, self.n_classes, 1)
        )

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
            raise ValueError(
                f"onehot must have shape [batch, {self.n_classes}, time], got {tuple(onehot.shape)}"
            )
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
        """A differentiable stand-in for :meth:`log_prob`, for Langevin dynamics (chapter 05). ``[B]``.

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
        u = torch.rand(
            logits.shape[0], 1, generator=generator, device=logits.device, dtype=cdf.dtype
        ) * cdf[:, -1:]
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


# --------------------------------------------------------------------------- FloWaveNet
def _soft_clamp(raw: torch.Tensor, bound: float) -> torch.Tensor:
    return bound * torch.tanh(raw / bound)


def _std_normal_log_p(z: torch.Tensor) -> torch.Tensor:
    return (-0.5 * (_LOG_2PI + z * z)).flatten(1).sum(1)


def _gaussian_log_p(z: torch.Tensor, mean: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
    return (-0.5 * _LOG_2PI - log_sd - 0.5 * (z - mean) ** 2 * torch.exp(-2.0 * log_sd)).flatten(1).sum(1)


class _ActNorm(nn.Module):
    """Per-channel affine ``y = (x + loc) * exp(log_scale)``, data-initialised.

    The first forward in training mode sets ``loc = -mean`` and
    ``log_scale = -log(std)`` from the batch (std floored at 1e-4) so the
    output has zero mean and unit variance per channel; the ``initialized``
    buffer records it and travels with ``state_dict``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        self._known_initialized = False  # avoids a device sync per step once set

    def _load_from_state_dict(self, *args, **kwargs):
        self._known_initialized = False
        super()._load_from_state_dict(*args, **kwargs)

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2), keepdim=True)
        std = x.std(dim=(0, 2), keepdim=True, unbiased=False).clamp_min(1e-4)
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(std))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.training and not self._known_initialized:
            if not bool(self.initialized):
                self._initialize(x)
            self._known_initialized = True
        y = (x + self.loc) * torch.exp(self.log_scale)
        logdet = (x.shape[2] * self.log_scale.sum()).expand(x.shape[0])
        return y, logdet

    def reverse(self, y):
        return y * torch.exp(-self.log_scale) - self.loc


class _NonCausalWaveNet(nn.Module):
    """The coupling network: non-causal dilated WaveNet, zero-initialised output conv."""

    def __init__(self, in_channels: int, out_channels: int, channels: int, n_layers: int, kernel_size: int):
        super().__init__()
        self.channels = channels
        self.front = nn.Conv1d(in_channels, channels, kernel_size, padding="same")
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels, kernel_size, dilation=2**i, padding="same")
            for i in range(n_layers)
        )
        self.skips = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in range(n_layers))
        self.residuals = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in range(n_layers - 1))
        self.end = nn.Conv1d(channels, channels, 1)
        self.out = nn.Conv1d(channels, out_channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        C = self.channels
        h = torch.relu(self.front(x))
        skip = 0.0
        for i, conv in enumerate(self.dilated):
            a = conv(h)
            z = torch.tanh(a[:, :C]) * torch.sigmoid(a[:, C:])
            skip = skip + self.skips[i](z)
            if i < len(self.residuals):
                h = h + self.residuals[i](z)
        return self.out(torch.relu(self.end(torch.relu(skip))))


class _AffineCoupling(nn.Module):
    """``[xa, xb] -> [xa, xb * exp(log_s(xa)) + t(xa)]`` with a bounded log-scale."""

    def __init__(self, channels_in: int, channels: int, n_layers: int, kernel_size: int, scale_max: float):
        super().__init__()
        half = channels_in // 2
        self.scale_max = scale_max
        self.net = _NonCausalWaveNet(half, 2 * half, channels, n_layers, kernel_size)

    def _log_s_t(self, xa):
        raw_s, t = self.net(xa).chunk(2, dim=1)
        return _soft_clamp(raw_s, self.scale_max), t

    def forward(self, x):
        xa, xb = x.chunk(2, dim=1)
        log_s, t = self._log_s_t(xa)
        return torch.cat([xa, xb * torch.exp(log_s) + t], dim=1), log_s.flatten(1).sum(1)

    def reverse(self, y):
        ya, yb = y.chunk(2, dim=1)
        log_s, t = self._log_s_t(ya)
        return torch.cat([ya, (yb - t) * torch.exp(-log_s)], dim=1)


class _Block(nn.Module):
    """Squeeze (fold time by 2 into channels), then n_flows x (ActNorm, coupling, flip)."""

    def __init__(self, channels_in: int, n_flows: int, channels: int, n_layers: int, kernel_size: int, scale_max: float):
        super().__init__()
        c = 2 * channels_in
        self.actnorms = nn.ModuleList(_ActNorm(c) for _ in range(n_flows))
        self.couplings = nn.ModuleList(
            _AffineCoupling(c, channels, n_layers, kernel_size, scale_max) for _ in range(n_flows)
        )

    @staticmethod
    def squeeze(x):
        B, C, T = x.shape
        return x.view(B, C, T // 2, 2).permute(0, 1, 3, 2).reshape(B, 2 * C, T // 2)

    @staticmethod
    def unsqueeze(x):
        B, C, T = x.shape
        return x.view(B, C // 2, 2, T).permute(0, 1, 3, 2).reshape(B, C // 2, 2 * T)

    def forward(self, x):
        x = self.squeeze(x)
        logdet = 0.0
        for an, cp in zip(self.actnorms, self.couplings):
            x, ld1 = an(x)
            x, ld2 = cp(x)
            x = x.flip(1)
            logdet = logdet + ld1 + ld2
        return x, logdet

    def reverse(self, x):
        for an, cp in zip(reversed(self.actnorms), reversed(self.couplings)):
            x = an.reverse(cp.reverse(x.flip(1)))
        return self.unsqueeze(x)


class _SplitPrior(nn.Module):
    """Learned Gaussian for a factored-out half: mean, log_sd = zero-init conv(kept half)."""

    def __init__(self, kept_channels: int, kernel_size: int, scale_max: float):
        super().__init__()
        self.scale_max = scale_max
        self.conv = nn.Conv1d(kept_channels, 2 * kept_channels, kernel_size, padding="same")
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, kept):
        mean, raw = self.conv(kept).chunk(2, dim=1)
        return mean, _soft_clamp(raw, self.scale_max)


class FloWaveNet(nn.Module):
    """Unconditional FloWaveNet (Kim et al. 2019): a normalizing flow prior over R^T.

    ``n_blocks`` blocks, each a squeeze (``[B, C, T] -> [B, 2C, T/2]``,
    neighbouring samples folded into channels) followed by ``n_flows`` x
    (ActNorm with data-dependent initialisation, affine coupling, channel
    flip). The coupling splits channels into ``xa, xb`` and maps
    ``xb -> xb * exp(log_s) + t`` with ``(log_s, t)`` from a non-causal
    WaveNet on ``xa`` (``n_layers`` dilated layers 1, 2, .., 2^(n_layers-1),
    ``channels`` wide, ``kernel_size``) whose last conv is zero-initialised, so
    every coupling starts as the identity. ``log_s = scale_max * tanh(raw /
    scale_max)`` is bounded.

    Multi-scale: after every ``split_every`` blocks (except the last) half of
    the channels are factored out. As in FloWaveNet, they get a *learned*
    Gaussian ``N(mean, exp(log_sd))`` whose parameters come from the kept half
    by a zero-initialised conv (so it starts as a standard normal); the final
    latent is standard normal.

    Latent layout: ``forward`` returns ``z [B, T]``, the factored-out parts in
    the order they were factored out, then the final latent, each flattened
    channel-major (``[B, C_j, T_j] -> [B, C_j * T_j]``) and concatenated. The
    factored-out parts are *raw* (not standardised by their learned prior),
    so ``reverse(z)`` inverts ``forward`` exactly. The length ``T`` must be
    divisible by ``2 ** n_blocks``. Chapter 02.
    """

    def __init__(
        self,
        *,
        n_blocks: int = 2,
        n_flows: int = 2,
        n_layers: int = 4,
        channels: int = 32,
        kernel_size: int = 3,
        split_every: int = 2,
        scale_max: float = 3.0,
        logdet_weight: float = 1.0,
    ):
        super().__init__()
        self.n_blocks = _check_int(n_blocks, "n_blocks", 1)
        self.n_flows = _check_int(n_flows, "n_flows", 1)
        self.n_layers = _check_int(n_layers, "n_layers", 1)
        self.channels = _check_int(channels, "channels", 1)
        self.kernel_size = _check_int(kernel_size, "kernel_size", 1)
        self.split_every = _check_int(split_every, "split_every", 1)
        self.scale_max = _check_real(scale_max, "scale_max", 0.0, strict=True)
        # the training objective's weight on the log-determinant: 1 is maximum likelihood; the
        # authors' code used 1/4 (ORIGINAL_CODE.md), a variant run in chapter 07. log_prob is exact either way.
        self.logdet_weight = _check_real(logdet_weight, "logdet_weight", 0.0)
        blocks, priors = [], {}
        c = 1
        for b in range(self.n_blocks):
            blocks.append(_Block(c, self.n_flows, self.channels, self.n_layers, self.kernel_size, self.scale_max))
            c *= 2
            if self._splits_after(b):
                c //= 2
                priors[str(b)] = _SplitPrior(c, self.kernel_size, self.scale_max)
        self.blocks = nn.ModuleList(blocks)
        self.priors = nn.ModuleDict(priors)

    @property
    def receptive_field(self) -> int:
        """Input samples that can influence one latent value (two-sided span). Chapter 02.

        A coupling network sees ``1 + (k - 1) * 2^n_layers`` time steps of its
        block (front conv plus the dilated stack); a time step of block ``b``
        (from 1) is ``2^b`` samples, and the ``n_flows`` couplings of a block
        compose, so the span is ``2^n_blocks + sum_b n_flows (k - 1) 2^n_layers 2^b``.
        """
        per_coupling = (self.kernel_size - 1) * 2**self.n_layers
        return 2**self.n_blocks + sum(self.n_flows * per_coupling * 2**b for b in range(1, self.n_blocks + 1))

    def _splits_after(self, b: int) -> bool:
        return (b + 1) % self.split_every == 0 and b < self.n_blocks - 1

    def _check_length(self, T: int, name: str = "x") -> None:
        q = 2**self.n_blocks
        if T < q or T % q:
            raise ValueError(
                f"{name} has length {T}; FloWaveNet with n_blocks={self.n_blocks} needs a length "
                f"divisible by 2**n_blocks = {q} (crop or pad the audio)"
            )

    def latent_shapes(self, length: int) -> list[tuple[int, int]]:
        """``(channels, time)`` of each latent part for input ``length``, in packing order. Chapter 02."""
        self._check_length(length, "length")
        shapes, c, t = [], 1, length
        for b in range(self.n_blocks):
            c, t = 2 * c, t // 2
            if self._splits_after(b):
                c //= 2
                shapes.append((c, t))
        shapes.append((c, t))
        return shapes

    def _unpack(self, z: torch.Tensor) -> list[torch.Tensor]:
        shapes = self.latent_shapes(z.shape[1])
        parts = torch.split(z, [c * t for c, t in shapes], dim=1)
        return [p.reshape(z.shape[0], c, t) for p, (c, t) in zip(parts, shapes)]

    def _encode(self, x: torch.Tensor):
        """(packed z, logdet [B], base log density [B])."""
        x = _check_audio(x)
        self._check_length(x.shape[1])
        h = x[:, None, :]
        logdet = x.new_zeros(x.shape[0])
        base = x.new_zeros(x.shape[0])
        parts = []
        for b, block in enumerate(self.blocks):
            h, ld = block(h)
            logdet = logdet + ld
            if self._splits_after(b):
                h, z = h.chunk(2, dim=1)
                mean, log_sd = self.priors[str(b)](h)
                base = base + _gaussian_log_p(z, mean, log_sd)
                parts.append(z)
        base = base + _std_normal_log_p(h)
        parts.append(h)
        z = torch.cat([p.flatten(1) for p in parts], dim=1)
        return z, logdet, base

    def forward(self, x: torch.Tensor):
        """``x [B, T] -> (z [B, T], logdet [B])``, ``logdet = log|det dz/dx|``. Chapter 02."""
        z, logdet, _ = self._encode(x)
        return z, logdet

    def _decode(self, z: torch.Tensor, standardized: bool) -> torch.Tensor:
        _check_audio(z, "z")
        parts = self._unpack(z)
        h = parts.pop()
        for b in reversed(range(self.n_blocks)):
            if self._splits_after(b):
                zf = parts.pop()
                if standardized:
                    mean, log_sd = self.priors[str(b)](h)
                    zf = mean + torch.exp(log_sd) * zf
                h = torch.cat([h, zf], dim=1)
            h = self.blocks[b].reverse(h)
        return h[:, 0, :]

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`forward`: packed latent ``z [B, T]`` -> audio ``x [B, T]``. Chapter 02."""
        return self._decode(z, standardized=False)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log density (nats) of each waveform on R^T, shape ``[B]``. Chapter 02.

        Base log density of all latents (learned Gaussians for factored-out
        parts, standard normal for the last) plus the log-determinant.
        """
        _, logdet, base = self._encode(x)
        return base + logdet

    def latent_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' (buggy) metric: base log density of the latents, WITHOUT the log-determinant.

        This is *not* a likelihood of ``x``: it ignores the volume change of
        the flow, so it rewards flows that shrink their latents (hence the
        positive "log-likelihoods" such as +4.8 nats per sample in the
        paper's tables). Kept, labelled, to reproduce those tables; use
        :meth:`log_prob` for the real thing. Shape ``[B]``. Chapter 02.
        """
        _, _, base = self._encode(x)
        return base

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per sample (a scalar to minimise). Chapter 02.

        With ``logdet_weight != 1`` (the authors' variant, chapter 07) the
        log-determinant enters with that weight: no longer a likelihood.
        """
        if self.logdet_weight == 1.0:
            return -self.log_prob(x).mean() / x.shape[1]
        _, logdet, base = self._encode(x)
        return -(base + self.logdet_weight * logdet).mean() / x.shape[1]

    @torch.no_grad()
    def sample(self, n: int, length: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """Draw ``n`` waveforms ``[n, length]``; ``length`` divisible by ``2 ** n_blocks``.

        Standard normal noise from a ``torch.Generator`` seeded with ``seed``,
        multiplied by ``temperature``, is mapped through the learned split
        priors (``mean + sd * eps``) and the inverse flow. Chapter 02.
        """
        n = _check_int(n, "n", 1)
        length = _check_int(length, "length", 1)
        temperature = _check_real(temperature, "temperature", 0.0)
        self._check_length(length, "length")
        p = next(self.parameters())
        g = torch.Generator(device=p.device)
        g.manual_seed(int(seed))
        eps = torch.randn(n, length, generator=g, device=p.device, dtype=p.dtype) * temperature
        return self._decode(eps, standardized=True)


# --------------------------------------------------------------------------- supervised baseline
class ConvTasNetSeparator(nn.Module):
    """A *supervised* separator, the reference point of chapter 05 (not part of the paper's method).

    torchaudio's Conv-TasNet (Luo & Mesgarani 2019) at a small size, trained
    on toy mixes (the mean of the sources, eq. 8) to output the sources in a
    fixed order (sine, square, saw, triangle): the classes are distinct, so
    no permutation-invariant loss is needed. The loss is the negative SI-SDR
    in dB, averaged over sources and examples. ``forward(mix [B, T]) -> [B, K, T]``.
    """

    def __init__(self, n_sources: int = 4, enc_kernel_size: int = 16, enc_num_feats: int = 128,
                 msk_kernel_size: int = 3, msk_num_feats: int = 64, msk_num_hidden_feats: int = 128,
                 msk_num_layers: int = 6, msk_num_stacks: int = 2):
        super().__init__()
        from torchaudio.models import ConvTasNet

        self.n_sources = _check_int(n_sources, "n_sources", 1)
        self.net = ConvTasNet(
            num_sources=self.n_sources, enc_kernel_size=enc_kernel_size, enc_num_feats=enc_num_feats,
            msk_kernel_size=msk_kernel_size, msk_num_feats=msk_num_feats,
            msk_num_hidden_feats=msk_num_hidden_feats, msk_num_layers=msk_num_layers,
            msk_num_stacks=msk_num_stacks, msk_activate="relu",
        )

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        mix = _check_audio(mix, "mix")
        return self.net(mix[:, None])[..., : mix.shape[1]]

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative SI-SDR (dB) of the estimates from the mix of the sources ``x [B, K, T]``."""
        if x.dim() != 3 or x.shape[1] != self.n_sources:
            raise ValueError(f"x must be sources [batch, {self.n_sources}, time], got {tuple(x.shape)}")
        est = self(x.mean(dim=1))
        a = (est * x).sum(-1, keepdim=True) / (x.pow(2).sum(-1, keepdim=True) + 1e-8)
        target = a * x
        ratio = target.pow(2).sum(-1) / ((est - target).pow(2).sum(-1) + 1e-8)
        return -(10 * torch.log10(ratio + 1e-8)).mean()
