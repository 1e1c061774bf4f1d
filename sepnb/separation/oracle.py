"""Oracle time-frequency masks: what masking the mix's STFT can achieve at best (chapter 06).

An oracle separator is handed the true sources and only asks how well a
*mask* on the mix's short-time Fourier transform could recover them. It is a
ceiling for every method that filters the mix in that representation (and a
yardstick for the rest), never a method: it needs the answer.

With the mix ``m = sum_k alpha_k s_k`` and ``X_k = STFT(alpha_k s_k)``, the
mask of source ``k`` in every time-frequency bin is

* ``"irm"`` (ideal ratio mask): ``|X_k| / sum_j |X_j|``;
* ``"wiener"`` (the oracle Wiener filter): ``|X_k|^2 / sum_j |X_j|^2``;

and the estimate is ``ISTFT(mask_k * STFT(m)) / alpha_k``. The masks of a bin
sum to one, so the estimates remix to the mix exactly (up to the STFT's
round-off). The frame (512 samples = 32 ms at 16 kHz, hop 128, Hann) is the
usual speech and music choice, fixed here before any score was seen.
"""

from __future__ import annotations

import torch

__all__ = ["oracle_mask", "MASKS"]

MASKS = {"irm": 1.0, "wiener": 2.0}


def oracle_mask(
    sources: torch.Tensor, alphas=None, kind: str = "irm", n_fft: int = 512, hop: int = 128
) -> torch.Tensor:
    """Oracle mask estimates ``[B, K, T]`` of the true ``sources [B, K, T]`` from their mix.

    ``alphas``: the mixing weights (default ``1 / K`` each: the mean, eq. 8).
    ``kind``: ``"irm"`` or ``"wiener"`` (see the module). Bins where every
    source is silent give each source an equal share.
    """
    if kind not in MASKS:
        raise ValueError(f"unknown mask {kind!r}: use one of {sorted(MASKS)}")
    if not isinstance(sources, torch.Tensor) or sources.dim() != 3 or not sources.is_floating_point():
        raise ValueError(
            f"sources must be a float tensor [batch, n_sources, T], got "
            f"{getattr(sources, 'shape', type(sources).__name__)}"
        )
    B, K, T = sources.shape
    if T < n_fft:
        raise ValueError(f"signals of {T} samples are shorter than one STFT frame ({n_fft}); use a smaller n_fft")
    a = torch.full((K,), 1.0 / K) if alphas is None else torch.as_tensor(alphas, dtype=torch.float64)
    if a.shape != (K,):
        raise ValueError(f"alphas must be {K} numbers (one per source), got {a.tolist()}")
    x = sources.double() * a.double()[None, :, None]  # each source as it sits in the mix
    window = torch.hann_window(n_fft, dtype=torch.float64)

    def stft(v):
        return torch.stft(v.reshape(-1, T), n_fft, hop, window=window, center=True, return_complex=True)

    X = stft(x).reshape(B, K, n_fft // 2 + 1, -1)
    M = stft(x.sum(1))[:, None]
    power = X.abs() ** MASKS[kind]
    total = power.sum(1, keepdim=True)
    mask = torch.where(total > 0, power / total.clamp_min(1e-300), torch.full_like(power, 1.0 / K))
    est = torch.istft((mask * M).reshape(B * K, n_fft // 2 + 1, -1), n_fft, hop, window=window, center=True, length=T)
    return (est.reshape(B, K, T) / a.double()[None, :, None]).to(sources.dtype)
