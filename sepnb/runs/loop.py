"""The training loop (chapter 02): :func:`train` one run under its lock, :func:`get_prior` loads or trains.

Training is deterministic on the CPU: the model is initialised from the seed,
and the batch of step ``k`` is a pure function of ``(seed, k)``, so a run that
was killed and resumed follows the same loss curve as one that was not.
"""

from __future__ import annotations

import math
import signal
import time

import numpy as np
import torch

from sepnb.core import atomic
from sepnb.data.select import run_windows
from sepnb.runs import ddp as parallel
from sepnb.runs import stopping
from sepnb.runs.config import NOISE_MODES, RunConfig, build_model, loss_unit
from sepnb.runs.devices import default_workers, device
from sepnb.runs.lock import RunLock
from sepnb.runs.store import check_config, load, read, run_dir, write_meta

TrainingInterrupted = stopping.TrainingInterrupted

__all__ = [
    "TrainingDiverged",
    "TrainingInterrupted",
    "add_noise",
    "perturb_samples",
    "check_training_options",
    "train",
    "get_prior",
]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


# --------------------------------------------------------------------------- data
def add_noise(x: torch.Tensor, sigma: float, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Noise the training inputs (chapter 03): ``"fixed"`` or the authors' ``"authors"`` variant."""
    if sigma == 0:
        return x
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    if mode == "fixed":
        return x + sigma * eps
    if mode == "authors":
        std = sigma * torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), generator=generator, dtype=x.dtype)
        return (x + std * eps).clamp(-1.0, 1.0)
    raise ValueError(f"unknown noise_mode {mode!r}: use one of {NOISE_MODES}")


def perturb_samples(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Replace every sample of ``x``, with probability ``rate``, by a uniform draw on [-1, 1]: the
    inputs of a background model (Ren et al. 2019). ``rate == 0`` returns ``x`` and draws nothing."""
    if rate == 0:
        return x
    hit = torch.rand(x.shape, generator=generator) < rate
    fresh = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
    return torch.where(hit, fresh, x)


def _inputs(cfg: RunConfig, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """What a run trains and is evaluated on: its windows, perturbed (background runs), then noised."""
    return add_noise(perturb_samples(x, cfg.perturb, gen), cfg.sigma, cfg.noise_mode, gen)


def _train_batch(cfg: RunConfig, ds, step: int):
    """The batch of step ``step``: a pure function of (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step, 17])
    ds.set_epoch(step)
    x = ds.batch(rng.integers(len(ds), size=cfg.batch))
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return _inputs(cfg, x, gen)


def _eval_batch(cfg: RunConfig) -> torch.Tensor:
    if cfg.eval_split == "val":  # training-split items after the n_items that training draws from
        ds = run_windows(cfg, "train", cfg.n_items + cfg.eval_items)
        x = ds.batch(np.arange(cfg.n_items, cfg.n_items + cfg.eval_items))
    else:
        ds = run_windows(cfg, "test", cfg.eval_items)
        x = ds.batch(np.arange(cfg.eval_items))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    return _inputs(cfg, x, gen)


def _lr_factor(cfg: RunConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``lr_min_ratio``."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _plateau_update(cfg: RunConfig, plateau: dict, step: int, value: float) -> bool:
    """Record the held-out loss ``value`` at ``step`` by the plateau rules; True when the run should stop.

    An improvement is a loss below the best by more than ``min_delta``; each
    ``lr_patience`` evaluations without one halve ``plateau["lr_scale"]``.
    """
    if plateau["best"] is None or value < plateau["best"] - cfg.min_delta:
        plateau.update(best=value, best_step=step, since=0, since_lr=0)
        return False
    plateau["since"] += 1
    plateau["since_lr"] += 1
    if cfg.lr_patience and plateau["since_lr"] >= cfg.lr_patience:
        plateau["lr_scale"] /= 2
        plateau["since_lr"] = 0
        plateau["halved_at"].append(step)
    return bool(cfg.stop_patience) and plateau["since"] >= cfg.stop_patience


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@torch.no_grad()
def _evaluate(model, x: torch.Tensor) -> float:
    model.eval()
    out = float(model.loss(x.to(next(model.parameters()).device)))
    model.train()
    return out


# --------------------------------------------------------------------------- training
class _StepBatches(torch.utils.data.Dataset):
    """The batch of step ``k`` (:func:`_train_batch`), or this rank's contiguous slice of it.

    Served by a ``DataLoader`` over the step indices, so ``workers`` processes
    can render batches ahead of a GPU while every batch stays the pure
    function of ``(seed, k)`` it is on one CPU process.
    """

    def __init__(self, cfg: RunConfig, ds, rank: int = 0, world: int = 1):
        self.cfg, self.ds, self.rank, self.world = cfg, ds, rank, world

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> torch.Tensor:
        x = _train_batch(self.cfg, self.ds, int(step))
        if self.world > 1:
            n = self.cfg.batch // self.world
            x = x[self.rank * n : (self.rank + 1) * n].clone()
        return x


class _Loss(torch.nn.Module):
    """``model.loss`` as a module's forward, so that DDP's gradient hooks see it; float32 out."""

    def __init__(self, model: torch.nn.Module, bf16: bool):
        super().__init__()
        self.model, self.bf16 = model, bf16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.model.loss(x)
        return loss.float()


def _session(dev: torch.device, bf16: bool, world: int, workers: int, step: int) -> dict:
    """What ran a stretch of training (the run's metadata; never part of its key)."""
    import platform
    import socket

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "device": dev.type,
        "device_name": name,
        "precision": "bf16-autocast" if bf16 else "float32",
        "world_size": world,
        "workers": workers,
        "torch": str(torch.__version__),
        "from_step": step,
        "to_step": step,
    }


def check_training_options(cfg: RunConfig, bf16: bool = False) -> None:
    """A ValueError, before anything is written, for a batch the processes cannot share or bf16 off CUDA."""
    world = parallel.world_size()
    if cfg.batch % world:
        raise ValueError(
            f"batch {cfg.batch} of {run_dir(cfg).name} cannot be split evenly over {world} processes: "
            f"use a number of processes that divides {cfg.batch}"
        )
    if bf16 and device().type != "cuda":
        raise ValueError("bf16 autocast is an option on CUDA only; on the CPU training runs in float32")


def train(
    cfg: RunConfig,
    progress: bool = True,
    stop_after: int | None = None,
    workers: int | None = None,
    bf16: bool = False,
    lock_timeout: float | None = None,
    break_lock: bool = False,
) -> tuple[torch.nn.Module, dict]:
    """Train (or resume) the run ``cfg`` under its lock and return ``(model, history)``.

    The run's folder is locked while it trains (:class:`sepnb.runs.lock.RunLock`;
    ``lock_timeout``, ``break_lock``). ``workers``: ``DataLoader`` processes
    rendering the batches (default :func:`default_workers`); the batches are
    the same for any number. ``bf16``: bfloat16 autocast for the training
    forward (CUDA only; held-out losses are float32).

    Under ``torchrun`` (:mod:`sepnb.runs.ddp`) every rank trains on its
    slice of each step's batch; rank 0 takes the lock and writes the files.
    Device, precision and world size of each stretch of training go to
    ``meta.json`` (and to ``final.pt``), never into the key.
    """
    folder = run_dir(cfg)
    check_training_options(cfg, bf16)
    main = parallel.is_main()
    lock = RunLock(folder, timeout=lock_timeout, break_lock=break_lock) if main else None
    if lock is not None:
        lock.acquire()
    try:
        with stopping.stop_on_signals():  # SIGTERM / SIGINT: checkpoint, release the lock, raise
            return _train_locked(cfg, progress=progress and main, stop_after=stop_after, workers=workers, bf16=bf16)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(
    cfg: RunConfig, progress: bool = True, stop_after: int | None = None, workers: int | None = None, bf16: bool = False
) -> tuple[torch.nn.Module, dict]:
    """Train (or resume) the run ``cfg`` and return ``(model, history)``.

    ``stop_after`` stops after that many steps of this call, leaving the
    checkpoint (used by the tests to simulate an interruption).
    """
    from sepnb.core.progress import bar as progress_bar

    folder = run_dir(cfg)
    rank, world, main = parallel.rank(), parallel.world_size(), parallel.is_main()
    if main:
        check_config(folder, cfg)
    parallel.barrier()
    if not main:
        check_config(folder, cfg)
    ckpt_path = folder / "checkpoint.pt"
    dev = device()
    workers = default_workers(dev) if workers is None else int(workers)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.family, cfg.model).to(dev)
    if cfg.parent is not None:
        parent_model, _ = get_prior(cfg.parent, progress=progress, workers=workers, bf16=bf16)
        model.load_state_dict(parent_model.state_dict())
    history = {"step": [], "train": [], "eval_step": [], "eval": []}
    selecting = cfg.stop_patience > 0  # keep the best held-out weights, not the last
    if cfg.lr_patience or selecting:
        history["plateau"] = {
            "best": None,
            "best_step": None,
            "since": 0,
            "since_lr": 0,
            "lr_scale": 1.0,
            "halved_at": [],
            "stopped_at": None,
        }
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    # the plateau's factor is read from the (possibly resumed) history at every step
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(cfg, s) * history.get("plateau", {}).get("lr_scale", 1.0)
    )
    meta = {"sessions": []}
    step = 0
    best_state = None
    rng_state = (None, None)
    if ckpt_path.exists():
        state = read(ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = state["history"]
        step = int(state["step"])
        meta = state.get("meta", meta)
        best_state = state.get("best_model")
        rng_state = (state.get("torch_rng"), state.get("cuda_rng"))  # restored just before the first step
    session = _session(dev, bf16, world, workers, step)
    meta["sessions"].append(session)

    ds = run_windows(cfg, "train", cfg.n_items)
    x_eval = _eval_batch(cfg) if main else None
    if step == 0:
        # data-dependent initialisation (the flow's ActNorm) is part of "at initialisation":
        # one forward in training mode on the first batch, before the first evaluation. Every
        # rank runs it on the WHOLE first batch (not its slice), so it is identical everywhere.
        model.train()
        with torch.no_grad():
            model.loss(_train_batch(cfg, ds, 0).to(dev))
        if main:
            history["eval_step"].append(0)
            history["eval"].append(_evaluate(model, x_eval))
            if "plateau" in history:
                _plateau_update(cfg, history["plateau"], 0, history["eval"][-1])
                best_state = _cpu_state(model) if selecting else None
    net = _Loss(model, bf16)
    if parallel.is_distributed():
        net = torch.nn.parallel.DistributedDataParallel(
            net,
            device_ids=[dev.index if dev.index is not None else torch.cuda.current_device()]
            if dev.type == "cuda"
            else None,
        )
    loader = torch.utils.data.DataLoader(
        _StepBatches(cfg, ds, rank, world),
        batch_size=None,
        sampler=range(step, cfg.steps),
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    batches = iter(loader)  # (this draws the loader's base seed from torch's global generator)
    if rng_state[0] is not None:  # checkpoints written before the state was kept resume without it
        torch.set_rng_state(rng_state[0])
    if rng_state[1] is not None and dev.type == "cuda":
        torch.cuda.set_rng_state(rng_state[1], dev)

    def checkpoint():
        session["to_step"] = step
        extra = {"best_model": best_state} if selecting else {}
        # torch's global generator: a denoiser draws its training noise levels from it, so a resumed
        # run must continue its stream (priors draw nothing from it; their batches are per-step)
        extra["torch_rng"] = torch.get_rng_state()
        if dev.type == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state(dev)
        atomic.torch_save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                **extra,
                "scheduler": sched.state_dict(),
                "history": history,
                "step": step,
                "meta": meta,
            },
            ckpt_path,
        )

    if main:
        write_meta(folder, meta)
    name = f"{cfg.family}/{cfg.source}" + (f" sigma={cfg.sigma:g}" if cfg.sigma else "")
    bar = progress_bar(total=cfg.steps, initial=step, desc=name, disable=not progress, mininterval=5.0, unit="step")
    unit = loss_unit(cfg)
    model.train()
    done_here = 0
    history.setdefault("seconds", 0.0)  # wall time spent in training steps, over all resumptions
    while step < cfg.steps:
        # a signal asked to stop (on any rank: all ranks stop at the same step)
        if parallel.any_true(stopping.requested() is not None):
            bar.close()
            if main:
                checkpoint()
            parallel.barrier()  # the checkpoint is there for every rank
            signum = parallel.broadcast_object(stopping.requested() or 15)
            raise stopping.TrainingInterrupted(
                f"{name}: stopped by {signal.Signals(signum).name} at step {step}/{cfg.steps}; its checkpoint ({ckpt_path}) "
                "is written and its lock released: the same command resumes it",
                folder=folder,
                step=step,
                signum=signum,
            )
        t_step = time.perf_counter()
        x = next(batches).to(dev, non_blocking=True)
        loss = net(x)
        reported = parallel.all_mean(loss.detach())  # the whole batch's mean loss, on every rank
        if not torch.isfinite(reported):
            bar.close()
            raise TrainingDiverged(
                f"{name}: loss is {float(reported)} at step {step}; nothing was saved from this step, "
                f"the last good checkpoint ({ckpt_path}) is kept. Lower lr or clip, or change the seed."
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()  # under DDP the gradients are averaged over the ranks here, before clipping
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip, foreach=True)
        opt.step()
        sched.step()
        step += 1
        done_here += 1
        history["seconds"] += time.perf_counter() - t_step
        history["step"].append(step)
        history["train"].append(float(reported))
        stop = False
        if step % cfg.eval_every == 0 or step == cfg.steps:
            if main:
                history["eval_step"].append(step)
                history["eval"].append(_evaluate(model, x_eval))
                bar.set_postfix_str(f"train {history['train'][-1]:.3f} eval {history['eval'][-1]:.3f} {unit}")
                if "plateau" in history:
                    stop = _plateau_update(cfg, history["plateau"], step, history["eval"][-1])
                    if selecting and history["plateau"]["best_step"] == step:
                        best_state = _cpu_state(model)
                    if stop:
                        history["plateau"]["stopped_at"] = step
            if "plateau" in history:  # every rank follows rank 0's decisions
                stop, history["plateau"] = parallel.broadcast_object((stop, history["plateau"]))
        bar.update(1)
        if stop:
            break
        if main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
            checkpoint()
        if stop_after is not None and done_here >= stop_after and step < cfg.steps:
            bar.close()
            return model, history
    bar.close()
    if selecting:  # the weights of the best held-out loss, on every rank
        best_state = parallel.broadcast_object(best_state)
        model.load_state_dict(best_state)
    if main:
        session["to_step"] = step
        atomic.torch_save({"model": model.state_dict(), "history": history, "meta": meta}, folder / "final.pt")
        write_meta(folder, meta)
        ckpt_path.unlink(missing_ok=True)
    parallel.barrier()  # final.pt is there for every rank
    return model, history


def get_prior(
    cfg: RunConfig, progress: bool = True, lock_timeout: float | None = None, break_lock: bool = False, **train_options
) -> tuple[torch.nn.Module, dict]:
    """The prior ``cfg`` from the store: loaded if finished, else trained or resumed (chapter 02).

    Training holds the run's lock (:mod:`sepnb.runs.lock`): a second process
    asking for the same run waits for it (at most ``lock_timeout`` seconds)
    and then loads what the first one finished. ``train_options`` go to
    :func:`train` (``workers``, ``bf16``). Under ``torchrun`` rank 0 decides,
    and every rank then loads or trains.
    """
    if not parallel.is_distributed():
        loaded = load(cfg)
        if loaded is not None:
            return loaded
        with RunLock(run_dir(cfg), timeout=lock_timeout, break_lock=break_lock):
            loaded = load(cfg)  # another process may have finished it while we waited
            if loaded is not None:
                return loaded
            model, history = train(cfg, progress=progress, **train_options)
            return model.eval(), history
    lock = None
    try:
        if parallel.is_main():
            done = (run_dir(cfg) / "final.pt").exists()
            if not done:
                lock = RunLock(run_dir(cfg), timeout=lock_timeout, break_lock=break_lock).acquire()
                done = (run_dir(cfg) / "final.pt").exists()
        else:
            done = None
        if parallel.broadcast_object(done):
            if lock is not None:
                lock.release()
                lock = None
            return load(cfg)
        model, history = train(cfg, progress=progress, **train_options)
        return model.eval(), history
    finally:
        if lock is not None:
            lock.release()
