"""Audio helpers: checks, WAV files and players (chapter 01).

The book's contract: audio is float32 in [-1, 1], mono, shape ``[time]`` or
``[batch, time]``, at 16 kHz unless a config says otherwise. Everything that
enters the package from outside goes through :func:`check_audio` so that a
wrong sample rate, a stereo file, NaNs or clipping are caught with a message
that says what to do, not three modules later.

WAV files are read and written with ``soundfile`` (torchaudio's own I/O needs
torchcodec, which we do not install).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from sepnb.core import atomic

__all__ = ["check_audio", "read_wav", "write_wav", "player"]


def check_audio(x, name: str = "audio", *, max_abs: float | None = 1.0, ndim=(1, 2)) -> torch.Tensor:
    """Return ``x`` as a float32 tensor after checking the audio contract.

    Raises ``ValueError`` for NaN/Inf samples, values outside ``[-max_abs, max_abs]``,
    or a shape with the wrong number of dimensions.
    """
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if not t.is_floating_point():
        raise ValueError(f"{name}: expected floating-point audio in [-1, 1], got dtype {t.dtype}")
    t = t.to(torch.float32)
    if t.ndim not in ndim:
        raise ValueError(
            f"{name}: expected {' or '.join(f'{d}-D' for d in ndim)} mono audio "
            f"([time] or [batch, time]), got shape {tuple(t.shape)}; "
            "for multi-channel audio take the mean of the channels first"
        )
    if t.numel() == 0:
        raise ValueError(f"{name}: empty audio")
    bad = ~torch.isfinite(t)
    if bad.any():
        first = int(bad.flatten().nonzero()[0])
        raise ValueError(f"{name}: {int(bad.sum())} NaN/Inf samples (first at flat index {first}); clean the input")
    if max_abs is not None:
        peak = float(t.abs().max())
        if peak > max_abs + 1e-6:
            raise ValueError(f"{name}: peak |x| = {peak:.4g} exceeds {max_abs}; scale the audio into [-1, 1]")
    return t


def read_wav(path, sample_rate: int, *, mono: str = "error") -> torch.Tensor:
    """Read a WAV file as float32 ``[time]``, checking its sample rate and channels.

    ``mono`` says what to do with a multi-channel file: ``"error"`` (default),
    ``"mean"`` (mean of the channels) or ``"left"`` (the first channel, as the
    authors' code did).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    try:
        data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own LibsndfileError
        raise ValueError(f"cannot read {path} as audio ({err}); is the file complete?") from err
    if sr != sample_rate:
        raise ValueError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz; resample it first")
    if data.shape[1] > 1:
        if mono == "mean":
            data = data.mean(axis=1, keepdims=True)
        elif mono == "left":
            data = data[:, :1]
        else:
            raise ValueError(
                f"{path}: {data.shape[1]} channels where mono was expected; pass mono='mean' or mono='left' to downmix"
            )
    return check_audio(data[:, 0], name=str(path))


def write_wav(path, x, sample_rate: int) -> Path:
    """Write mono float audio ``[time]`` as 16-bit WAV, atomically (temp file + rename)."""
    import soundfile as sf

    x = check_audio(x, name=str(path), ndim=(1,))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.replace_with(
        path, lambda tmp: sf.write(os.fspath(tmp), x.numpy(), sample_rate, subtype="PCM_16", format="WAV")
    )
    return path


def player(x, sample_rate: int = 16_000, seconds: float | None = None):
    """An ``IPython.display.Audio`` player for mono audio ``[time]`` (chapter 01).

    Not normalised: quiet signals stay quiet, so a mix sounds at its real level
    next to its sources. ``seconds`` trims the clip to keep notebooks light.
    """
    from IPython.display import Audio

    x = check_audio(x, ndim=(1,))
    if seconds is not None:
        x = x[: int(round(seconds * sample_rate))]
    return Audio(x.numpy(), rate=sample_rate, normalize=False)
