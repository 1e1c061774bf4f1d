"""Data-parallel training with ``torchrun`` (PyTorch DDP): the few helpers :mod:`sepnb.runs` uses.

``torchrun --nproc_per_node N -m sepnb train ...`` starts N processes; each
calls :func:`init_from_env`, which joins the process group (``nccl`` on CUDA,
one GPU per process by ``LOCAL_RANK``; ``gloo`` on the CPU). Without
torchrun (``WORLD_SIZE`` unset or 1) nothing is initialised and every helper
answers as for a single process, so the same code runs in a notebook.

How :func:`sepnb.runs.train` uses it: every rank computes the whole batch of
step ``k`` (a pure function of seed and step) and keeps its contiguous slice
of ``batch // world_size`` items; DDP averages the gradients, which equals
the gradient of the whole batch's mean loss. Rank 0 alone takes the run's
lock, writes ``config.json``, checkpoints and ``final.pt``; every rank
resumes from the checkpoint. Chapter 02.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

__all__ = [
    "init_from_env",
    "is_distributed",
    "rank",
    "world_size",
    "is_main",
    "barrier",
    "broadcast_object",
    "all_mean",
    "shutdown",
]

#: How long a collective may wait (rank 0 may wait for another process's lock while the others
#: wait at a barrier): a day, unless ``$SEPNB_DDP_TIMEOUT`` (seconds) says otherwise.
DEFAULT_TIMEOUT_S = 24 * 3600


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(timeout_s: float | None = None) -> bool:
    """Join torchrun's process group if this process was started by it; True if distributed.

    ``nccl`` when CUDA is available (this process uses GPU ``LOCAL_RANK``),
    ``gloo`` otherwise. Idempotent.
    """
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if timeout_s is None:
        timeout_s = float(os.environ.get("SEPNB_DDP_TIMEOUT", DEFAULT_TIMEOUT_S))
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return True


def barrier() -> None:
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (a copy; ``t`` itself is left alone)."""
    if not is_distributed():
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / world_size()


def any_true(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (every rank gets the same answer); ``flag`` itself off DDP."""
    if not is_distributed():
        return bool(flag)
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()
