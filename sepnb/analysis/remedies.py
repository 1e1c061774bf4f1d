"""Scores that repair a raw likelihood for out-of-distribution ranking (issue 24; the rules are the
``remedy_*`` rows of ``book/scorecard.yaml``, written before this code).

Every score maps one window ``x [T]`` (a batch ``[B, T]``) and one prior to a number per window,
*higher = more in-class*, so that every AUC and operating point of chapter 04 applies unchanged:

* :func:`loglik`: ``log p(x) / T`` in nats per sample, the paper's score (the baseline);
* :func:`typicality`: ``-| -log p(x) / T - H_p |`` (Nalisnick et al. 2019, one window per test),
  with ``H_p`` the prior's mean negative log-likelihood per sample on reference windows
  (:func:`reference_entropy`);
* :func:`likelihood_ratio`: ``(log p(x) - log q(x)) / T`` against a background model ``q``
  (Ren et al. 2019) trained on windows perturbed by :func:`sepnb.runs.loop.perturb_samples`;
* :func:`complexity`: ``log2 p(x~) / T + L(x) / T`` in bits per sample (Serra et al. 2020, with
  the sign turned), ``x~`` the window quantised to 16 bits and ``L`` its FLAC length
  (:func:`flac_bits`).

The priors are anything with ``log_prob(x) -> [B]`` in nats per window (a density over
``[-1, 1]``, as every prior of the book).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

__all__ = [
    "QUANT_BITS",
    "loglik",
    "reference_entropy",
    "typicality",
    "likelihood_ratio",
    "flac_bits",
    "complexity",
    "SCORES",
    "all_scores",
    "complexity_from",
]

#: The compressor's input resolution: windows are quantised to 16-bit PCM before FLAC.
QUANT_BITS = 16


def _windows(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    x = x[None] if x.dim() == 1 else x
    if x.dim() != 2 or x.shape[1] < 1:
        raise ValueError(f"windows must be [T] or [batch, T], got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("windows must be finite")
    return x


@torch.no_grad()
def loglik(prior, x) -> np.ndarray:
    """``log p(x) / T`` per window (nats per sample), float64 ``[B]``."""
    x = _windows(x)
    return (prior.log_prob(x).double() / x.shape[1]).cpu().numpy()


def reference_entropy(prior, reference) -> float:
    """``H_p``: the mean negative log-likelihood per sample of ``prior`` on its reference windows
    (training-split windows of its own source that it was not trained on)."""
    return float(-loglik(prior, reference).mean())


def typicality(prior, x, entropy: float) -> np.ndarray:
    """``-| -log p(x) / T - H_p |`` per window: 0 for a window as typical as the reference, lower the
    further its negative log-likelihood lies from the prior's entropy, on either side."""
    if not math.isfinite(entropy):
        raise ValueError(f"entropy must be finite, got {entropy}")
    return -np.abs(-loglik(prior, x) - entropy)


def likelihood_ratio(prior, background, x) -> np.ndarray:
    """``(log p(x) - log q(x)) / T`` per window (nats per sample)."""
    return loglik(prior, x) - loglik(background, x)


def flac_bits(x, sample_rate: int = 16_000) -> np.ndarray:
    """Bits a lossless audio coder needs per window: each window clipped to [-1, 1], quantised to
    16-bit PCM and written as a FLAC file (soundfile, its default compression), whole file
    (headers included: the same for every window of one length). ``[B]`` integers."""
    import soundfile as sf

    x = _windows(x).double().cpu().numpy()
    pcm = np.round(np.clip(x, -1.0, 1.0) * (2 ** (QUANT_BITS - 1) - 1)).astype(np.int16)
    out = np.empty(len(pcm), dtype=np.int64)
    for i, w in enumerate(pcm):
        buf = io.BytesIO()
        sf.write(buf, w, sample_rate, format="FLAC", subtype="PCM_16")
        out[i] = 8 * len(buf.getvalue())  # (not tell(): the writer seeks back to its header)
    return out


def complexity(prior, x, sample_rate: int = 16_000) -> np.ndarray:
    """``log2 p(x~) / T + L(x) / T`` per window, bits per sample: the prior's code length for the
    16-bit quantised window against the compressor's (higher = the prior explains the window
    better than a generic coder does). ``log p(x~) = log p(x) + T log(2 / 2^16)`` (the density
    times the width of a 16-bit step on [-1, 1])."""
    x = _windows(x)
    return complexity_from(loglik(prior, x), flac_bits(x, sample_rate), x.shape[1])


#: The scores in the rules file's order (its tie-break for the best remedy).
SCORES = ("loglik", "typicality", "llr", "complexity")


def all_scores(prior, x, entropy: float, background=None, sample_rate: int = 16_000) -> dict:
    """Every score of :data:`SCORES` for the windows ``x``, the prior scored once: ``{name: [B]}``.

    ``log p`` is computed once and reused by typicality and complexity; the
    likelihood ratio needs ``background`` (left out without one); the FLAC
    lengths do not depend on the prior, so callers scoring one set of windows
    with many priors may pass them in through :func:`complexity_from`.
    """
    x = _windows(x)
    ll = loglik(prior, x)
    out = {"loglik": ll, "typicality": -np.abs(-ll - float(entropy))}
    if background is not None:
        out["llr"] = ll - loglik(background, x)
    out["complexity"] = complexity_from(ll, flac_bits(x, sample_rate), x.shape[1])
    return out


def complexity_from(ll: np.ndarray, bits: np.ndarray, length: int) -> np.ndarray:
    """:func:`complexity` from a prior's ``log p / T`` (nats per sample) and the windows' FLAC bits."""
    return (np.asarray(ll, dtype=float) + math.log(2.0 / 2**QUANT_BITS)) / math.log(2.0) + np.asarray(bits) / length
