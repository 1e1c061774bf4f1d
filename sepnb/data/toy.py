"""Data: the toy waveforms of the paper (section 3.1), generated on the fly.

Four sources, ordered ``("sine", "square", "saw", "triangle")``. Each source of
each item has its own random frequency in [27, 4186] Hz (the piano's range),
amplitude in [0.8, 1.0] and phase in [0, 2 pi]; the mix is the mean of the
four (paper eq. 8). Sample rate 16 kHz, items of 1 s, 5000 train / 1500 test
mixes at the paper's size.

Nothing is materialised: an item is a pure function of ``(seed, split,
index)``, so item 4321 of the training set is the same whether it is drawn
alone, in a batch, or as a window for training. (The whole training set would
be 5000 x 4 x 16000 float32 = 1.3 GB.)

Choices the paper leaves open, made here and documented in chapter 01:

* frequencies are drawn **log-uniformly** (uniform in pitch, like the piano
  keys the authors' code used) rather than uniformly in Hz, which would put
  three quarters of the items above 1 kHz;
* waveforms are the naive (non band-limited) ones, as in the paper: square and
  saw at high frequencies alias, which the spectra in chapter 01 show;
* all four waveforms share the phase convention of the sine (zero crossing,
  rising, at phase 0).

Introduced in chapter ``01_data``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sepnb.core.checks import check_int as _check_int

__all__ = [
    "SOURCES",
    "SPLITS",
    "SAMPLE_RATE",
    "ITEM_LENGTH",
    "F_MIN",
    "F_MAX",
    "A_MIN",
    "A_MAX",
    "ToyParams",
    "toy_params",
    "toy_params_authors",
    "AUTHORS_SAMPLE_RATE",
    "AUTHORS_KEYS",
    "render",
    "waveform",
    "mix",
    "toy_batch",
    "ToyWindows",
]

SOURCES: tuple[str, ...] = ("sine", "square", "saw", "triangle")
SPLITS: dict[str, int] = {"train": 0, "test": 1}
SAMPLE_RATE = 16_000
ITEM_LENGTH = 16_000
F_MIN, F_MAX = 27.0, 4186.0
A_MIN, A_MAX = 0.8, 1.0
#: The authors' toy data as their published runs used them (ORIGINAL_CODE.md; chapter 05's variant):
#: 14.7 kHz, piano keys 1-65 (about 26-1101 Hz) quantised to an integer period in samples.
AUTHORS_SAMPLE_RATE = 14_700
AUTHORS_KEYS = (1, 65)


# --------------------------------------------------------------------------- checks


def _check_split(split) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
    return SPLITS[split]


def _check_source(source) -> int:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: use one of {list(SOURCES)}")
    return SOURCES.index(source)


def _rng(seed: int, split_id: int, index: int, *stream: int) -> np.random.Generator:
    """The random stream of one item: a pure function of (seed, split, index, stream)."""
    return np.random.default_rng([seed, split_id, index, *stream])


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class ToyParams:
    """Per-item, per-source parameters; arrays of shape ``[n, 4]`` (float64)."""

    freq: np.ndarray  # Hz
    amp: np.ndarray  # linear amplitude
    phase: np.ndarray  # radians in [0, 2 pi)

    def __len__(self) -> int:
        return self.freq.shape[0]


def _uniform_draws(indices, seed: int, split: str, *stream: int) -> np.ndarray:
    """``[n, 3, 4]`` uniforms per item (frequency, amplitude, phase per source), a pure function of the item."""
    seed = _check_int(seed, "seed", 0)
    split_id = _check_split(split)
    idx = np.atleast_1d(np.asarray(indices))
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or (idx < 0).any():
        raise ValueError(f"indices must be non-negative integers, got {indices!r}")
    draws = np.empty((len(idx), 3, len(SOURCES)))
    for row, i in enumerate(idx):
        draws[row] = _rng(seed, split_id, int(i), *stream).random((3, len(SOURCES)))
    return draws


def toy_params(indices, seed: int = 0, split: str = "train") -> ToyParams:
    """Draw the parameters of the given items (chapter 01).

    ``indices`` is an int or a sequence of item indices. Item ``i`` of a split
    always gets the same parameters for the same seed.
    """
    draws = _uniform_draws(indices, seed, split)
    log_f = math.log(F_MIN) + draws[:, 0] * (math.log(F_MAX) - math.log(F_MIN))
    return ToyParams(
        freq=np.exp(log_f),
        amp=A_MIN + draws[:, 1] * (A_MAX - A_MIN),
        phase=2 * math.pi * draws[:, 2],
    )


def toy_params_authors(indices, seed: int = 0, split: str = "train") -> ToyParams:
    """The authors' variant of :func:`toy_params` (chapter 05), at :data:`AUTHORS_SAMPLE_RATE`.

    Each source's key is uniform on :data:`AUTHORS_KEYS` (440 Hz is key 49),
    its period is rounded to a whole number of samples (the frequency is the
    sample rate over that period), its phase is a random whole-sample offset
    within the period, and its amplitude is U[0.8, 1] in training and 1 in the
    test split, as in the authors' loaders.
    """
    draws = _uniform_draws(indices, seed, split, 2)  # stream 2: not the paper variant's draws
    lo, hi = AUTHORS_KEYS
    key = lo + np.floor(draws[:, 0] * (hi - lo + 1))
    period = np.round(AUTHORS_SAMPLE_RATE / (440.0 * 2.0 ** ((key - 49) / 12)))
    offset = np.floor(draws[:, 2] * period)
    amp = A_MIN + draws[:, 1] * (A_MAX - A_MIN) if split == "train" else np.ones_like(period)
    return ToyParams(freq=AUTHORS_SAMPLE_RATE / period, amp=amp, phase=2 * math.pi * offset / period)


# --------------------------------------------------------------------------- waveforms
def waveform(kind: str, cycles: np.ndarray) -> np.ndarray:
    """The unit-amplitude waveform ``kind`` at ``cycles`` (phase in periods, any shape).

    All four cross zero rising at ``cycles = 0``: sine, square (+1 on the first
    half period), saw (rising ramp, jump at half a period), triangle.
    """
    _check_source(kind)
    u = np.mod(cycles, 1.0)
    if kind == "sine":
        return np.sin(2 * math.pi * u)
    if kind == "square":
        return np.where(u < 0.5, 1.0, -1.0)
    if kind == "saw":
        return 2.0 * np.mod(u + 0.5, 1.0) - 1.0
    return 1.0 - 4.0 * np.abs(np.mod(u + 0.25, 1.0) - 0.5)  # triangle


def render(
    params: ToyParams,
    length: int = ITEM_LENGTH,
    offset=0,
    sample_rate: int = SAMPLE_RATE,
    sources: tuple[str, ...] = SOURCES,
) -> torch.Tensor:
    """Render ``[n, len(sources), length]`` float32 waveforms from ``params`` (chapter 01).

    ``offset`` (an int or one int per item) is the first sample's time index,
    so a window of an item equals the same slice of the whole item.
    """
    length = _check_int(length, "length", 1)
    sample_rate = _check_int(sample_rate, "sample_rate", 1)
    cols = [_check_source(s) for s in sources]
    n = len(params)
    offset = np.broadcast_to(np.asarray(offset, dtype=np.int64), (n,))
    t = (offset[:, None] + np.arange(length)[None, :]).astype(np.float64)  # [n, T]
    out = np.empty((n, len(cols), length), dtype=np.float32)
    for j, c in enumerate(cols):
        cycles = params.freq[:, c, None] * t / sample_rate + params.phase[:, c, None] / (2 * math.pi)
        out[:, j] = params.amp[:, c, None] * waveform(SOURCES[c], cycles)
    return torch.from_numpy(out)


def mix(sources: torch.Tensor, alphas=None) -> torch.Tensor:
    """The mix ``m = sum_k alpha_k s_k`` of ``sources [n, K, T]`` (paper eq. 1).

    The default ``alphas`` is ``1/K`` each: the mean of the sources (eq. 8).
    """
    if sources.ndim != 3:
        raise ValueError(f"sources must have shape [batch, n_sources, time], got {tuple(sources.shape)}")
    k = sources.shape[1]
    if alphas is None:
        return sources.mean(dim=1)
    a = torch.as_tensor(alphas, dtype=sources.dtype, device=sources.device)
    if a.shape != (k,):
        raise ValueError(f"alphas must have one weight per source ({k}), got shape {tuple(a.shape)}")
    return torch.einsum("k,nkt->nt", a, sources)


def toy_batch(n: int, length: int = ITEM_LENGTH, seed: int = 0, split: str = "train"):
    """Items ``0 .. n-1`` of a toy split: ``(mix [n, length], sources [n, 4, length])``.

    Sources are ordered ``SOURCES`` = (sine, square, saw, triangle); the mix is
    their mean (eq. 8). Deterministic in ``(seed, split)``. Chapter 01.

    >>> m, s = toy_batch(3, 16000, seed=1)
    >>> tuple(m.shape), tuple(s.shape)
    ((3, 16000), (3, 4, 16000))
    """
    n = _check_int(n, "n", 1)
    length = _check_int(length, "length", 1)
    sources = render(toy_params(np.arange(n), seed=seed, split=split), length)
    return mix(sources), sources


# --------------------------------------------------------------------------- training windows
class _RandomWindows(torch.utils.data.Dataset):
    """Random windows of fixed-length items: the sampling shared by toy and music windows.

    A subclass sets ``item_length``, ``window``, ``n_items``, ``seed``,
    ``split_id`` and ``epoch``; item ``i``'s window starts at an offset in
    ``[0, item_length - window]`` drawn from ``(seed, split, i, epoch)``.
    """

    def __len__(self) -> int:
        return self.n_items

    def set_epoch(self, epoch: int) -> None:
        self.epoch = _check_int(epoch, "epoch", 0)

    def offsets(self, indices) -> np.ndarray:
        span = self.item_length - self.window + 1
        return np.array(
            [_rng(self.seed, self.split_id, int(i), 1, self.epoch).integers(span) for i in indices],
            dtype=np.int64,
        )


class ToyWindows(_RandomWindows):
    """Random windows of toy items, the training data of the priors (chapter 02).

    Item ``i`` is toy item ``i`` of ``split``; its window starts at a random
    offset in ``[0, item_length - window]`` that depends on ``(seed, split, i,
    epoch)``: call :meth:`set_epoch` to draw new windows, as with a
    ``DistributedSampler``. With ``source=None`` an item is all four sources
    ``[4, window]``; with a source name it is that source ``[window]``.
    ``variant="authors"`` draws the authors' data as run
    (:func:`toy_params_authors`, at 14.7 kHz unless ``sample_rate`` says
    otherwise; chapter 05).
    """

    def __init__(
        self,
        split: str = "train",
        window: int = 2048,
        source: str | None = None,
        n_items: int | None = None,
        seed: int = 0,
        item_length: int = ITEM_LENGTH,
        sample_rate: int | None = None,
        variant: str = "paper",
    ):
        if variant not in ("paper", "authors"):
            raise ValueError(f"unknown variant {variant!r}: use 'paper' (the paper's text) or 'authors' (their runs)")
        self.variant = variant
        if sample_rate is None:
            sample_rate = AUTHORS_SAMPLE_RATE if variant == "authors" else SAMPLE_RATE
        self.split_id = _check_split(split)
        self.split = split
        self.item_length = _check_int(item_length, "item_length", 1)
        self.window = _check_int(window, "window", 1)
        if self.window > self.item_length:
            raise ValueError(f"window ({window}) must not exceed item_length ({item_length})")
        if source is not None:
            _check_source(source)
        self.source = source
        default = 5000 if split == "train" else 1500
        self.n_items = _check_int(default if n_items is None else n_items, "n_items", 1)
        self.seed = _check_int(seed, "seed", 0)
        self.sample_rate = _check_int(sample_rate, "sample_rate", 1)
        self.epoch = 0

    def batch(self, indices) -> torch.Tensor:
        """The windows of several items at once (vectorised ``__getitem__``)."""
        idx = np.atleast_1d(np.asarray(indices))
        if ((idx < 0) | (idx >= self.n_items)).any():
            raise IndexError(f"item index out of range [0, {self.n_items}): {indices!r}")
        sources = SOURCES if self.source is None else (self.source,)
        params = toy_params_authors if self.variant == "authors" else toy_params
        out = render(
            params(idx, seed=self.seed, split=self.split),
            self.window,
            offset=self.offsets(idx),
            sample_rate=self.sample_rate,
            sources=sources,
        )
        return out if self.source is None else out[:, 0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.batch([i])[0]
