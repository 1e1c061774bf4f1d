"""Where priors train and run: :func:`device` (``$SEPNB_DEVICE``, else CUDA when torch sees a GPU, else the CPU)."""

from __future__ import annotations

import os

import torch

__all__ = ["device", "default_workers", "DEVICE_ENV"]


DEVICE_ENV = "SEPNB_DEVICE"


def device() -> torch.device:
    """Where priors train and run: ``$SEPNB_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``), else
    CUDA when available, else the CPU. Nothing in sepnb hard-codes a device (chapter 02)."""
    want = os.environ.get(DEVICE_ENV, "").strip()
    if not want:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(want)
    except RuntimeError as err:
        raise ValueError(f"{DEVICE_ENV}={want!r} is not a device ({err}); use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={want!r}: sepnb runs on cpu or cuda devices")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={want!r} but torch sees no CUDA device; unset it to use the CPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{DEVICE_ENV}={want!r} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return dev


def default_workers(dev: torch.device | None = None) -> int:
    """``DataLoader`` workers rendering training batches: ``$SEPNB_WORKERS``, else 0 on the CPU, 4 on CUDA."""
    if os.environ.get("SEPNB_WORKERS"):
        return int(os.environ["SEPNB_WORKERS"])
    return 4 if (dev or device()).type == "cuda" else 0
