"""FloWaveNet (Kim et al. 2019), a normalizing flow over waveforms: squeeze, ActNorm, affine
couplings whose scale and shift come from a non-causal WaveNet, channel flips and multi-scale
factoring-out with a learned Gaussian prior. ``log_prob`` is exact (the log-determinant included);
the authors' metric, which omitted it, is :meth:`FloWaveNet.latent_log_prob`, labelled as such.

Introduced in chapter ``02_models``.
"""

from __future__ import annotations

import torch
from torch import nn

from sepnb.core.checks import check_int as _check_int
from sepnb.priors.wavenet import _LOG_2PI, _check_audio, _check_real

__all__ = ["FloWaveNet"]


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
            nn.Conv1d(channels, 2 * channels, kernel_size, dilation=2**i, padding="same") for i in range(n_layers)
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

    def __init__(
        self, channels_in: int, n_flows: int, channels: int, n_layers: int, kernel_size: int, scale_max: float
    ):
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
        # authors' code used 1/4 (ORIGINAL_CODE.md), a variant run in chapter 05. log_prob is exact either way.
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

        With ``logdet_weight != 1`` (the authors' variant, chapter 05) the
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
