"""Separation metrics (chapter 06): SI-SDR and BSS Eval SDR/SIR/SAR, via ``fast_bss_eval``.

``fast_bss_eval`` (Scheibler 2022) computes the BSS Eval v3 metrics of
``mir_eval``/``museval`` (distortion filters of 512 taps) in numpy or torch,
much faster (its torch backend: the numpy one fails under numpy 2). Known
trap: torch 2.11's batched ``torch.linalg.solve`` (MKL), which it uses, errors
or hangs in a process that has changed ``torch.set_num_threads`` after first
using it; nothing in sepnb does. Sources are matched to references either in the given order
(our Langevin separation knows which prior made which output) or by the
permutation that maximises the mean metric (a permutation-invariant separator
such as Conv-TasNet, and BASIS's own evaluation).
"""

from __future__ import annotations

import fast_bss_eval
import torch

__all__ = ["si_sdr", "bss_eval"]


def _pair(ref, est) -> tuple[torch.Tensor, torch.Tensor]:
    ref, est = torch.as_tensor(ref, dtype=torch.float64), torch.as_tensor(est, dtype=torch.float64)
    if ref.shape != est.shape or ref.dim() < 2:
        raise ValueError(
            f"ref and est must have the same shape [..., n_sources, T], got {tuple(ref.shape)} and {tuple(est.shape)}"
        )
    if not (torch.isfinite(ref).all() and torch.isfinite(est).all()):
        raise ValueError("ref or est contains NaN or Inf")
    if (ref.pow(2).sum(-1) == 0).any():
        raise ValueError("a reference source is silent: SI-SDR and SDR are undefined for it")
    return ref, est


def si_sdr(ref, est, permute: bool = False) -> torch.Tensor:
    """Scale-invariant SDR in dB, ``[..., n_sources]`` (Le Roux et al. 2019).

    ``10 log10(|a r|^2 / |e - a r|^2)`` with ``a = <e, r> / |r|^2``. With
    ``permute`` the estimates are matched to the references by the best
    permutation (``fast_bss_eval.si_sdr``); otherwise in the given order.
    """
    ref, est = _pair(ref, est)
    if permute:
        return fast_bss_eval.si_sdr(ref, est)
    a = (est * ref).sum(-1, keepdim=True) / ref.pow(2).sum(-1, keepdim=True)
    target = a * ref
    return 10 * torch.log10(target.pow(2).sum(-1) / (est - target).pow(2).sum(-1))


def bss_eval(ref, est, permute: bool = False, filter_length: int = 512) -> dict:
    """BSS Eval SDR, SIR, SAR in dB (``[..., n_sources]`` each) and the matching ``perm``.

    The distortion filter has ``filter_length`` taps (BSS Eval's 512), cut to
    a quarter of the signal for signals shorter than four times that.
    """
    ref, est = _pair(ref, est)
    taps = max(1, min(int(filter_length), ref.shape[-1] // 4))
    out = fast_bss_eval.bss_eval_sources(ref, est, filter_length=taps, compute_permutation=permute)
    if permute:
        sdr, sir, sar, perm = out
    else:  # the given order
        (sdr, sir, sar), perm = out, torch.arange(ref.shape[-2]).expand(ref.shape[:-1])
    return {"sdr": sdr, "sir": sir, "sar": sar, "perm": perm}
