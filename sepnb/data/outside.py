"""Windows from outside the project (issue 24's out-of-project inputs): synthetic speech from
``espeak-ng`` and sounds from ``sox``'s generators, made at build time from a seed.

Nothing is downloaded and no audio is stored: the tools are Debian packages
(``apt-get install espeak-ng sox``), each window is a pure function of its
seed and index, and a missing tool raises :class:`ToolMissing`, which says
how to install it. Every window is ``window`` samples at 16 kHz, scaled to a
peak of 1 like the toy sources.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from sepnb.core.checks import check_int

__all__ = ["SENTENCES", "SOX_KINDS", "ToolMissing", "available", "speech_windows", "sox_windows"]

#: What the synthetic voice says (fixed, so the windows depend on the seed alone).
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "A deep generative prior scores every window it is shown.",
    "Separation by sampling needs a likelihood that knows its source.",
    "Four waveforms were mixed and then taken apart again.",
    "Noise and silence should never look like music.",
    "She sells sea shells by the sea shore.",
    "How much wood would a woodchuck chuck?",
    "Seven tired owls sang softly under the bridge.",
)
#: The sox generators used, in turn: a plucked string, pink noise, a sine sweep.
SOX_KINDS = ("pluck", "pinknoise", "sweep")


class ToolMissing(RuntimeError):
    """An external tool these windows need is not installed."""


def available() -> dict:
    """Which of the tools are on the PATH: ``{"espeak-ng": bool, "sox": bool}``."""
    return {tool: shutil.which(tool) is not None for tool in ("espeak-ng", "sox")}


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"{tool} is not installed; install it with: apt-get install {tool}")
    return path


def _read(path: Path, sample_rate: int) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    x, rate = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if rate != sample_rate:
        g = np.gcd(int(rate), int(sample_rate))
        x = resample_poly(x, sample_rate // g, int(rate) // g)
    return x


def _window(x: np.ndarray, window: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """A seeded window of ``x`` among those whose RMS is at least a fifth of the loudest's, peak 1."""
    if len(x) < window:
        x = np.pad(x, (0, window - len(x)))
    starts = np.arange(0, len(x) - window + 1, max(1, window // 4))
    rms = np.array([np.sqrt(np.mean(x[s : s + window] ** 2)) for s in starts])
    if rms.max() <= 0:
        raise RuntimeError(f"{what} produced silence")
    s = int(rng.choice(starts[rms >= 0.2 * rms.max()]))
    w = x[s : s + window]
    return w / np.abs(w).max()


def _run(cmd: list, what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(cmd[:2])} ...): {out.stderr.strip()[:300]}")


def speech_windows(n: int, window: int = 2048, seed: int = 0, sample_rate: int = 16_000) -> torch.Tensor:
    """``[n, window]`` windows of synthetic speech: sentence ``i % len(SENTENCES)``, spoken by
    espeak-ng at a seeded speed (130-220 words a minute) and pitch (20-80), resampled to
    ``sample_rate``, one seeded window among its loud ones."""
    n, window = check_int(n, "n", 1), check_int(window, "window", 1)
    exe = _need("espeak-ng")
    out = np.empty((n, window))
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            rng = np.random.default_rng([int(seed), i, 24])
            speed, pitch = int(rng.integers(130, 221)), int(rng.integers(20, 81))
            wav = Path(tmp) / f"{i}.wav"
            _run([exe, "-w", str(wav), "-s", str(speed), "-p", str(pitch), SENTENCES[i % len(SENTENCES)]], "espeak-ng")
            out[i] = _window(_read(wav, sample_rate), window, rng, "espeak-ng")
    return torch.as_tensor(out, dtype=torch.float32)


def sox_windows(n: int, window: int = 2048, seed: int = 0, sample_rate: int = 16_000) -> torch.Tensor:
    """``[n, window]`` windows from sox's generators, :data:`SOX_KINDS` in turn, at seeded
    parameters: a plucked string at 55-2000 Hz (log-uniform), pink noise (sox's repeatable
    generator, a seeded window of a longer stretch), a sine sweep between two such frequencies;
    at ``sample_rate``, one seeded loud window each."""
    n, window = check_int(n, "n", 1), check_int(window, "window", 1)
    exe = _need("sox")
    seconds = max(0.5, 2 * window / sample_rate)
    out = np.empty((n, window))
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            rng = np.random.default_rng([int(seed), i, 25])
            f1, f2 = np.exp(rng.uniform(np.log(55.0), np.log(2000.0), size=2))
            kind = SOX_KINDS[i % len(SOX_KINDS)]
            effect = {
                "pluck": ["pluck", f"{f1:.2f}"],
                "pinknoise": ["pinknoise"],
                "sweep": ["sine", f"{f1:.2f}-{f2:.2f}"],
            }
            # -R: sox's own random generator seeded the same every time (the noise is repeatable); the
            # noise's windows differ by their seeded place in a longer stretch
            length = 16 * seconds if kind == "pinknoise" else seconds
            wav = Path(tmp) / f"{i}.wav"
            cmd = [exe, "-R", "-n", "-r", str(sample_rate), "-c", "1", "-b", "16", str(wav), "synth", f"{length:.3f}"]
            _run(cmd + effect[kind], "sox")
            out[i] = _window(_read(wav, sample_rate), window, rng, f"sox {kind}")
    return torch.as_tensor(out, dtype=torch.float32)
