"""The frame cache: each song decoded once, downmixed and resampled, cut at fixed positions and kept
on disk (:class:`MusicFrames`), and the training windows drawn from it (:class:`MusicWindows`).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from sepnb.core import atomic
from sepnb.core.checks import check_int as _check_int
from sepnb.data.musdb import (
    _CACHE_VERSION,
    _SIGNALS,
    _TAKE_STANDIN,
    MUSIC_SOURCES,
    MusdbNotFoundError,
    MusicDataError,
    _BadSong,
    _decode_song,
    _detect_is_wav,
    _fingerprint,
    _song_entries,
    _song_files,
    musdb_root,
)
from sepnb.data.toy import SPLITS, _RandomWindows

__all__ = ["MusicFrames", "MusicWindows"]


def _frame_starts(length: int, frames: int, frame: int) -> np.ndarray:
    """Evenly spaced frame starts from 0 to ``length - frame`` (one frame: centred)."""
    if frames == 1:
        return np.array([(length - frame) // 2], dtype=np.int64)
    return np.round(np.linspace(0, length - frame, frames)).astype(np.int64)


def _cache_name(song: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", song).strip("._")[:80] or "song"
    return f"{slug}-{hashlib.sha1(song.encode()).hexdigest()[:8]}.npz"


# --------------------------------------------------------------------------- fixed frames
class MusicFrames:
    """Fixed one-second frames of every song of a musdb18 subset (chapter 01).

    Each song is read (all four stems and the mixture), downmixed to mono
    (``mono="mean"``: mean of the channels, the default; ``"left"``: the left
    channel, as the authors' code did), resampled from 44.1 kHz to
    ``sample_rate`` with ``torchaudio.functional.resample`` (windowed sinc,
    default settings) and, with ``normalize="stem_peak"``, each whole signal
    scaled to max |x| = 1 as the authors did (near-silent stems are inflated;
    the mixture is scaled on its own, so it is then no longer the sum of the
    stems). Default: no normalisation. Samples are clipped to [-1, 1] (the
    resampler may overshoot a full-scale peak slightly).

    Frames: ``frames_per_song`` frames of ``frame_seconds`` per song, starting
    at evenly spaced positions from the song's first to its last possible
    sample (``round(linspace(0, L - T, n))``; one frame is centred). They are
    the same for every run. A song shorter than ``frames_per_song`` frames laid
    end to end gives overlapping frames (musdb18 songs, 2.5-10 min, give 150
    disjoint one-second frames; a 30 s stand-in song gives overlapping ones);
    a song shorter than one frame is a bad song.

    Reading: the ``.stem.mp4`` release through ``musdb``/``stempeg`` (ffmpeg,
    see :func:`ensure_ffmpeg`); the WAV release by default with ``soundfile``
    (``reader="soundfile"``: exact for PCM and float files, checks every
    file's rate and shape, no ffmpeg), or with ``reader="musdb"`` through
    ``musdb`` (16-bit PCM via ffmpeg, as musdb does; identical numbers for the
    PCM16 WAVs of musdb18 and of the stand-in). ``is_wav=None`` detects the
    release from the files.

    Cache: decoded frames are kept per song in
    ``<cache_dir>/<settings-hash>/<subset>/<song>.npz`` (``cache_dir`` defaults
    to ``<root>/.sepnb_cache``), keyed by every setting that changes the
    numbers and by the size and modification time of the song's files; each
    file is written atomically. About 4 x frames_per_song x frame samples x 5
    bytes per song (48 MB at 150 x 16000).

    Bad songs (a missing stem, a sample rate other than 44.1 kHz, files that
    differ in length, an unreadable file, NaN/Inf samples) raise
    :class:`MusicDataError` naming the song and file; with ``skip_bad=True``
    they are skipped with one warning naming them (and listed in ``skipped``).

    Attributes: ``frames`` float32 ``[n_frames, 4, T]`` (sources in
    :data:`MUSIC_SOURCES` order), ``mixture`` ``[n_frames, T]``, ``songs``
    (names), ``frame_song`` (song index of each frame), ``frame_starts``
    (first sample of each frame in its song, at ``sample_rate``), ``skipped``
    (``(song, reason)`` pairs), ``n_decoded`` (songs decoded rather than read
    from the cache by this object).
    """

    def __init__(
        self,
        root=None,
        subset: str = "train",
        sample_rate: int = 16_000,
        frames_per_song: int = 150,
        frame_seconds: float = 1.0,
        mono: str = "mean",
        normalize: str | None = None,
        is_wav: bool | None = None,
        cache_dir=None,
        skip_bad: bool = False,
        max_songs: int | None = None,
        progress: bool = True,
        reader: str | None = None,
    ):
        from sepnb.core.progress import bar as progress_bar

        if subset not in ("train", "test"):
            raise ValueError(f"unknown subset {subset!r}: use 'train' or 'test'")
        if mono not in ("mean", "left"):
            raise ValueError(f"mono must be 'mean' or 'left', got {mono!r}")
        if normalize not in (None, "stem_peak"):
            raise ValueError(f"normalize must be None or 'stem_peak', got {normalize!r}")
        self.root = musdb_root(root)
        self.subset = subset
        self.sample_rate = _check_int(sample_rate, "sample_rate", 1)
        self.frames_per_song = _check_int(frames_per_song, "frames_per_song", 1)
        if not (isinstance(frame_seconds, (int, float)) and frame_seconds > 0):
            raise ValueError(f"frame_seconds must be a positive number, got {frame_seconds!r}")
        self.frame_length = int(round(frame_seconds * self.sample_rate))
        if self.frame_length < 1:
            raise ValueError(f"frame_seconds={frame_seconds} gives no sample at {sample_rate} Hz")
        self.is_wav = _detect_is_wav(self.root, subset) if is_wav is None else bool(is_wav)
        if reader is None:
            reader = "soundfile" if self.is_wav else "musdb"
        if reader not in ("soundfile", "musdb"):
            raise ValueError(f"reader must be 'soundfile' or 'musdb', got {reader!r}")
        if reader == "soundfile" and not self.is_wav:
            raise ValueError(
                "reader='soundfile' reads the WAV release only; the .stem.mp4 release needs reader='musdb'"
            )
        self.reader = reader
        self.mono, self.normalize = mono, normalize
        self.settings = {
            "cache_version": _CACHE_VERSION,
            "sample_rate": self.sample_rate,
            "frames_per_song": self.frames_per_song,
            "frame_length": self.frame_length,
            "mono": mono,
            "normalize": normalize,
            "release": "wav" if self.is_wav else "stem.mp4",
            "reader": reader,
            "resampler": "torchaudio.functional.resample(44100 -> sample_rate), sinc_interp_hann, width 6, rolloff 0.99",
            "clip": [-1.0, 1.0],
        }
        key = hashlib.sha1(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:12]
        base = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".sepnb_cache"
        self.cache_dir = base.resolve() / key / subset
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            settings_file = self.cache_dir.parent / "settings.json"
            if not settings_file.exists():
                atomic.write_json(settings_file, self.settings, sort_keys=True)
        except OSError as err:
            raise OSError(
                f"cannot write the frame cache in {self.cache_dir} ({err}); pass cache_dir=... "
                "to put it in a writable folder"
            ) from err

        wav, mp4 = _song_entries(self.root / subset)
        names = wav if self.is_wav else mp4
        if max_songs is not None:
            names = names[: _check_int(max_songs, "max_songs", 1)]
        if not names:
            raise MusdbNotFoundError(
                f"{self.root / subset} holds no songs of the "
                f"{'WAV' if self.is_wav else '.stem.mp4'} release. {_TAKE_STANDIN}"
            )

        self.n_decoded = 0
        self.skipped: list[tuple[str, str]] = []
        self.songs: list[str] = []
        chunks, starts = [], []
        for name in progress_bar(iterable=names, desc=f"{self.root.name}/{subset}", unit="song", disable=not progress):
            try:
                audio, song_starts = self._load_song(name)
            except _BadSong as bad:
                if not skip_bad:
                    raise MusicDataError(f"{bad} (pass skip_bad=True to skip such songs)") from None
                self.skipped.append((bad.song, f"{bad.file}: {bad.reason}"))
                continue
            self.songs.append(name)
            chunks.append(audio)
            starts.append(song_starts)
        if self.skipped:
            listing = "; ".join(f"{song!r} ({why})" for song, why in self.skipped)
            warnings.warn(f"skipped {len(self.skipped)} bad song(s) of {self.root / subset}: {listing}", stacklevel=2)
        if not self.songs:
            raise MusicDataError(f"no usable song in {self.root / subset}: every song was bad")
        k = len(MUSIC_SOURCES)
        self.frames = torch.from_numpy(np.concatenate([c[:, :k] for c in chunks]))  # [n_frames, 4, T]
        self.mixture = torch.from_numpy(np.concatenate([c[:, k] for c in chunks]))  # [n_frames, T]
        del chunks
        self.frame_song = torch.arange(len(self.songs)).repeat_interleave(self.frames_per_song)
        self.frame_starts = torch.from_numpy(np.concatenate(starts))

    def _load_song(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        files = _song_files(self.root, self.subset, name, self.is_wav)
        fingerprint = _fingerprint(name, files)
        path = self.cache_dir / _cache_name(name)
        shape = (self.frames_per_song, len(_SIGNALS), self.frame_length)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    if str(z["fingerprint"]) == fingerprint and str(z["song"]) == name and z["audio"].shape == shape:
                        return z["audio"].astype(np.float32, copy=False), z["starts"]
                reason = "the song's files changed"
            except Exception as err:  # truncated or foreign file: rebuild it, it is only a cache
                reason = f"unreadable ({err})"
            warnings.warn(f"frame cache {path} is stale: {reason}; decoding {name!r} again", stacklevel=3)
        audio = _decode_song(
            self.root,
            self.subset,
            name,
            self.is_wav,
            self.reader,
            sample_rate=self.sample_rate,
            mono=self.mono,
            normalize=self.normalize,
        )
        self.n_decoded += 1
        if audio.shape[1] < self.frame_length:
            raise _BadSong(
                name,
                files["mixture"],
                f"shorter ({audio.shape[1]} samples at {self.sample_rate} Hz) "
                f"than one frame ({self.frame_length} samples)",
            )
        starts = _frame_starts(audio.shape[1], self.frames_per_song, self.frame_length)
        idx = torch.from_numpy(starts)[:, None] + torch.arange(self.frame_length)
        frames = audio[:, idx].permute(1, 0, 2).contiguous().numpy()  # [F, 5, T]
        atomic.save_npz(path, audio=frames, starts=starts, fingerprint=np.array(fingerprint), song=np.array(name))
        return frames, starts

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame ``i`` as ``(mixture [T], sources [4, T])``, the order of ``sepnb.data.toy_batch``."""
        return self.mixture[i], self.frames[i]

    def __repr__(self) -> str:
        return (
            f"MusicFrames({str(self.root)!r}, subset={self.subset!r}: {len(self.songs)} songs x "
            f"{self.frames_per_song} frames of {self.frame_length} samples at {self.sample_rate} Hz)"
        )


# --------------------------------------------------------------------------- training windows
class MusicWindows(_RandomWindows):
    """Random windows of music frames: the training data of the music priors (chapter 02).

    The interface of :class:`sepnb.data.ToyWindows`. ``split`` ("train" or
    "test") is the musdb subset. Item ``i`` is frame ``(i * n_frames) //
    n_items`` of :class:`MusicFrames` (``n_items`` defaults to the number of
    frames, so item ``i`` is frame ``i``; fewer items spread over all songs);
    its window starts at a random offset in ``[0, frame_length - window]`` that
    depends on ``(seed, split, i, epoch)``: call :meth:`set_epoch` for new
    windows. With ``source=None`` an item is the four sources ``[4, window]``
    in :data:`MUSIC_SOURCES` order; with a source name, that source
    ``[window]``. ``frame_options`` go to :class:`MusicFrames`; pass
    ``frames=`` to reuse one already loaded.
    """

    def __init__(
        self,
        split: str = "train",
        window: int = 2048,
        source: str | None = None,
        n_items: int | None = None,
        seed: int = 0,
        root=None,
        frames: MusicFrames | None = None,
        **frame_options,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
        self.split, self.split_id = split, SPLITS[split]
        if frames is None:
            frames = MusicFrames(root, subset=split, **frame_options)
        elif frame_options or root is not None:
            raise ValueError("pass either frames= or root/frame options, not both")
        elif frames.subset != split:
            raise ValueError(f"frames hold the {frames.subset!r} subset, not split {split!r}")
        self.data = frames
        self.sample_rate = frames.sample_rate
        self.item_length = frames.frame_length
        self.window = _check_int(window, "window", 1)
        if self.window > self.item_length:
            raise ValueError(f"window ({window}) must not exceed the frame length ({self.item_length})")
        if source is not None and source not in MUSIC_SOURCES:
            raise ValueError(f"unknown source {source!r}: use one of {list(MUSIC_SOURCES)}")
        self.source = source
        self.n_items = _check_int(len(frames) if n_items is None else n_items, "n_items", 1)
        self.seed = _check_int(seed, "seed", 0)
        self.epoch = 0

    def frame_index(self, indices) -> np.ndarray:
        """The frame of each item."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        return idx * len(self.data) // self.n_items

    def batch(self, indices) -> torch.Tensor:
        """The windows of several items at once: ``[B, 4, window]``, or ``[B, window]`` for one source."""
        idx = np.atleast_1d(np.asarray(indices))
        if ((idx < 0) | (idx >= self.n_items)).any():
            raise IndexError(f"item index out of range [0, {self.n_items}): {indices!r}")
        frames = self.data.frames[torch.from_numpy(self.frame_index(idx))]  # [B, 4, T]
        if self.source is not None:
            frames = frames[:, MUSIC_SOURCES.index(self.source) : MUSIC_SOURCES.index(self.source) + 1]
        cols = torch.from_numpy(self.offsets(idx))[:, None] + torch.arange(self.window)  # [B, W]
        out = torch.gather(frames, 2, cols[:, None, :].expand(-1, frames.shape[1], -1))
        return out if self.source is None else out[:, 0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.batch([i])[0]


# --------------------------------------------------------------------------- the stand-in: composing
