"""The book's music data: which folder a chapter reads (musdb18 at ``$MUSDB_PATH``, else the stand-in
under ``sepnb.core.paths.data_dir()``), how it is named, and the identity and frame settings
that key the music priors.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sepnb.data.framecache import MusicFrames, MusicWindows
from sepnb.data.musdb import (
    _STANDIN_MARKER,
    _TAKE_MUSDB,
    MusdbNotFoundError,
    MusicDataError,
    _detect_is_wav,
    _song_entries,
    musdb_root,
)
from sepnb.data.standin import make_standin

__all__ = [
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
    (:func:`sepnb.core.paths.data_dir`). ``label`` names the data set in every
    figure and print: ``"musdb18 (<root>)"``, or :data:`STANDIN_LABEL` (also
    when ``$MUSDB_PATH`` points at a stand-in folder).
    """
    from sepnb.core import paths, profiles

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
    from sepnb.core import profiles

    p = profiles.get(profile)
    return {
        "sample_rate": p.sample_rate,
        "frames_per_song": p.music_frames,
        "frame_seconds": float(p.music_frame_seconds),
        "mono": "mean",
        "normalize": None,
    }


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
    from sepnb.core import paths

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


def music_windows(
    profile=None,
    split: str = "test",
    music: str = "auto",
    *,
    window: int | None = None,
    source: str | None = None,
    n_items: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> MusicWindows:
    """Windows of the book's music data at a profile (chapters 02-04).

    ``window`` defaults to the profile's ``music_window``; e.g. the music
    cross-likelihoods take ``music_windows(P, "test", music, window=P.music_ood_length,
    n_items=P.ood_items, source=stem)``.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    root, _ = music_source(p, music, progress=progress)
    frames = load_frames(root, split, progress=progress, **frame_settings(p))
    return MusicWindows(
        split,
        window=p.music_window if window is None else window,
        source=source,
        n_items=n_items,
        seed=seed,
        frames=frames,
    )
