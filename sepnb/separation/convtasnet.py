"""The supervised reference separator (not a prior, not the paper's method): a small Conv-TasNet."""

from __future__ import annotations

import torch
from torch import nn

from sepnb.core.checks import check_int as _check_int
from sepnb.priors.wavenet import _check_audio

__all__ = ["ConvTasNetSeparator"]


# --------------------------------------------------------------------------- supervised baseline
class ConvTasNetSeparator(nn.Module):
    """A *supervised* separator, the reference point of chapter 06 (not part of the paper's method).

    torchaudio's Conv-TasNet (Luo & Mesgarani 2019) at a small size, trained
    on toy mixes (the mean of the sources, eq. 8) to output the sources in a
    fixed order (sine, square, saw, triangle): the classes are distinct, so
    no permutation-invariant loss is needed. The loss is the negative SI-SDR
    in dB, averaged over sources and examples. ``forward(mix [B, T]) -> [B, K, T]``.
    """

    def __init__(
        self,
        n_sources: int = 4,
        enc_kernel_size: int = 16,
        enc_num_feats: int = 128,
        msk_kernel_size: int = 3,
        msk_num_feats: int = 64,
        msk_num_hidden_feats: int = 128,
        msk_num_layers: int = 6,
        msk_num_stacks: int = 2,
    ):
        super().__init__()
        from torchaudio.models import ConvTasNet

        self.n_sources = _check_int(n_sources, "n_sources", 1)
        self.net = ConvTasNet(
            num_sources=self.n_sources,
            enc_kernel_size=enc_kernel_size,
            enc_num_feats=enc_num_feats,
            msk_kernel_size=msk_kernel_size,
            msk_num_feats=msk_num_feats,
            msk_num_hidden_feats=msk_num_hidden_feats,
            msk_num_layers=msk_num_layers,
            msk_num_stacks=msk_num_stacks,
            msk_activate="relu",
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
