"""The run store: one folder per :class:`~sepnb.runs.config.RunConfig` (chapter 02).

The store (default ``runs/``, or ``$SEPNB_RUNS``) holds one folder per
configuration, named ``<family>-<source>-<hash>`` where the hash covers every
field of the configuration and the models' code version:

* ``config.json``: the configuration, human readable;
* ``checkpoint.pt``: model, optimiser, schedule, step and loss history, written
  every ``ckpt_every`` steps (atomically: temp file + rename) while training;
* ``final.pt``: the trained weights and the history, written once at the end;
* ``meta.json``: where and how each stretch of training ran (never in the key).

Everything is loaded with ``torch.load(weights_only=True)``. A file that
cannot be read, or a folder whose ``config.json`` does not match, raises
:class:`StoreError` naming the file; nothing is ever retrained over it.
Nothing here trains: :func:`load` returns ``None`` for an unfinished run.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sepnb.core import atomic, paths
from sepnb.runs import lock
from sepnb.runs.config import RunConfig, build_model
from sepnb.runs.devices import device

__all__ = ["StoreError", "run_dir", "load", "read", "check_config", "write_meta", "run_status"]


class StoreError(RuntimeError):
    """A file of the run store is unreadable or does not match its configuration."""


def run_dir(cfg: RunConfig) -> Path:
    return paths.runs_dir() / f"{cfg.family}-{cfg.source}-{cfg.key()}"


# --------------------------------------------------------------------------- files
def read(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise StoreError(
            f"cannot read {path} ({type(err).__name__}: {err}). The file is corrupt or was not "
            f"written by sepnb; it was left in place. Delete it (or its folder) to train again."
        ) from None


def check_config(folder: Path, cfg: RunConfig) -> None:
    cfg_path = folder / "config.json"
    want = cfg.to_dict()
    if cfg_path.exists():
        try:
            have = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as err:
            raise StoreError(f"{cfg_path} is not valid JSON ({err}); delete the folder to retrain") from None
        if have != json.loads(json.dumps(want)):
            raise StoreError(f"{cfg_path} does not match the requested configuration; delete the folder to retrain")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_json(cfg_path, want, sort_keys=True)


def write_meta(folder: Path, meta: dict) -> None:
    """Write ``meta.json``: where and how each stretch of training ran."""
    atomic.write_json(folder / "meta.json", meta)


def load(cfg: RunConfig) -> tuple[torch.nn.Module, dict] | None:
    """Load the finished run ``cfg`` from the store, or ``None`` if it is not finished."""
    folder = run_dir(cfg)
    final = folder / "final.pt"
    if not final.exists():
        return None
    check_config(folder, cfg)
    state = read(final)
    model = build_model(cfg.family, cfg.model)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        raise StoreError(
            f"{final} does not hold weights for this configuration ({err}); delete it to retrain"
        ) from None
    return model.to(device()).eval(), state["history"]


def run_status(cfg: RunConfig) -> tuple[str, str]:
    """``(status, detail)`` of a run in the store: ``done``, ``partial`` (a checkpoint), ``locked`` or ``missing``.

    ``locked`` means a process holds the run's lock now (``detail`` names it;
    a lock whose process is gone reads ``stale lock``); a locked run may also
    have a checkpoint, given in ``detail``.
    """

    folder = run_dir(cfg)
    if (folder / "final.pt").exists():
        return "done", ""
    detail = ""
    ckpt = folder / "checkpoint.pt"
    if ckpt.exists():
        try:
            detail = f"checkpoint at step {int(read(ckpt)['step'])}/{cfg.steps}"
        except StoreError:
            detail = "unreadable checkpoint"
    info = lock.read_lock(folder)
    if info is not None:
        what = f"stale lock ({lock.describe(info)})" if lock.is_stale(info) else f"by {lock.describe(info)}"
        return "locked", what + (f"; {detail}" if detail else "")
    return ("partial", detail) if ckpt.exists() else ("missing", "")
