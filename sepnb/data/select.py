"""The one place that turns a run's configuration into its data windows.

Training (:mod:`sepnb.runs.loop`) asks :func:`run_windows` for a run's
windows and never reaches into a data set's internals: toy runs get
:class:`~sepnb.data.toy.ToyWindows`, music runs
:class:`~sepnb.data.framecache.MusicWindows` of their (checked) data folder.
A new data set adds one branch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sepnb.data import musdb, standin
from sepnb.data.framecache import MusicWindows
from sepnb.data.music import load_frames
from sepnb.data.toy import ToyWindows

__all__ = ["run_windows", "music_root"]

if TYPE_CHECKING:
    from sepnb.runs.config import RunConfig


def music_root(cfg: RunConfig) -> Path:
    """The folder of a music run's data, checked against its identity (a missing stand-in is rebuilt)."""
    m = cfg.music
    if m["kind"] == "musdb":
        return musdb.musdb_root(m["root"])
    if cfg.data_root is None:
        raise ValueError("a stand-in music run needs data_root, the stand-in's folder (music_prior_config sets it)")
    params = dict(m["standin"])
    version = params.pop("version", None)
    if version != musdb._STANDIN_VERSION:
        raise musdb.MusicDataError(
            f"this run's stand-in was made by generator version {version}; this sepnb writes "
            f"version {musdb._STANDIN_VERSION} and cannot rebuild it"
        )
    # idempotent: checks the folder's parameters, writes only missing songs, refuses other parameters
    return standin.make_standin(cfg.data_root, **params, progress=False)


def run_windows(cfg: RunConfig, split: str, n_items: int):
    """A prior's windows of its source; a separator's windows of all sources ``[4, window]``.

    ``ToyWindows`` for toy runs; ``MusicWindows`` of the musdb
    subset ``split`` ("train" or "test") for music runs.
    """
    source = None if cfg.source == "mix" else cfg.source
    if cfg.dataset == "music":
        frames = load_frames(music_root(cfg), split, progress=False, **cfg.music["frames"])
        return MusicWindows(split, window=cfg.window, source=source, n_items=n_items, seed=cfg.seed, frames=frames)
    return ToyWindows(
        split,
        window=cfg.window,
        source=source,
        n_items=n_items,
        seed=cfg.seed,
        variant="authors" if cfg.dataset == "toy_authors" else "paper",
    )
