"""Atomic writes: every file sepnb saves is written to a temporary name beside its target and
renamed over it (``os.replace``), so an interrupted save leaves the old file, never half of a new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["replace_with", "write_bytes", "write_text", "write_json", "torch_save", "save_npz"]


def _tmp(path: Path) -> Path:
    # one temporary name per process: two processes writing the same file never share one
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def replace_with(path, write) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file over ``path``; on error it is removed."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return replace_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return replace_with(path, lambda tmp: tmp.write_text(text))


def write_json(path, payload, *, indent: int = 2, sort_keys: bool = False) -> Path:
    """Write ``payload`` as JSON (with a final newline) to ``path`` atomically."""
    return write_text(path, json.dumps(payload, indent=indent, sort_keys=sort_keys) + "\n")


def torch_save(obj, path) -> Path:
    """``torch.save(obj, path)`` atomically."""
    import torch

    return replace_with(path, lambda tmp: torch.save(obj, tmp))


def save_npz(path, **arrays) -> Path:
    """``numpy.savez`` of ``arrays`` to ``path`` atomically (the file name keeps its ``.npz``)."""
    import numpy as np

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the cache is large and read by later processes: on disk before the rename

    return replace_with(path, write)
