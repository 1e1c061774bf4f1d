"""Training the priors, and the run store that caches them (chapter 02).

A prior is asked for by its full configuration (:class:`RunConfig`): model
family and size, data, training schedule, noise level, seed. :func:`get_prior`
trains it if the store has no finished run with that configuration, resumes it
if an interrupted run left a checkpoint, and loads it otherwise.

The run store (default ``runs/``, or ``$SEPNB_RUNS``) holds one folder per
configuration, named ``<family>-<source>-<hash>`` where the hash covers every
field of the configuration and the models' code version:

* ``config.json``: the configuration, human readable;
* ``checkpoint.pt``: model, optimiser, schedule, step and loss history, written
  every ``ckpt_every`` steps (atomically: temp file + rename) while training;
* ``final.pt``: the trained weights and the history, written once at the end.

Music priors (``dataset="music"``, sources ``bass``, ``drums``, ``vocals``,
``other``) are keyed by the identity of their data (the stand-in's parameters,
or musdb18's resolved path) and the frame settings, see :func:`music_priors`.

Everything is loaded with ``torch.load(weights_only=True)``. A file that
cannot be read, or a folder whose ``config.json`` does not match, raises
:class:`StoreError` naming the file; nothing is ever retrained over it.

Training is deterministic on the CPU: the model is initialised from the seed,
and the batch of step ``k`` is a pure function of ``(seed, k)``, so a run that
was killed and resumed follows the same loss curve as one that was not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data, models, parallel, paths
from . import music as _music  # imports neither musdb nor ffmpeg (tested)
from .lock import RunLock

__all__ = [
    "RunConfig",
    "StoreError",
    "TrainingDiverged",
    "build_model",
    "run_dir",
    "get_prior",
    "load_prior",
    "train",
    "add_noise",
    "device",
    "prior_config",
    "finetune_config",
    "toy_priors",
    "separator_config",
    "variant_config",
    "variant_runs",
    "denoiser_config",
    "toy_denoisers",
    "music_prior_config",
    "music_priors",
    "profile_runs",
    "run_status",
    "default_workers",
    "check_training_options",
    "loss_unit",
]

FAMILIES = ("wavenet", "flow")
#: Supervised separators trained on mixes (chapter 05's reference point); their ``source`` is "mix".
SEPARATORS = ("convtasnet",)
#: Denoising (score) priors of one source each (chapter 06): trained like the priors, on single sources.
DENOISERS = ("denoiser",)
#: Part of every run's key: bump it when a change to sepnb.models or to the training
#: loop changes what a configuration trains to, so that stale runs are not loaded.
CODE_VERSION = 1
NOISE_MODES = ("fixed", "authors")
#: Chapter 07's variants of a noise-free toy prior: the authors' flow objective (log-determinant
#: weighted by the profile's ``authors_logdet_weight``), the WaveNets at ``budget_factor`` x steps,
#: and the flows trained on the authors' toy data (dataset "toy_authors").
VARIANTS = ("authors-objective", "budget", "authors-data")
#: "toy_authors": the toy sources as the authors' runs drew them (data.toy_params_authors; chapter 07)
DATASETS = ("toy", "music", "toy_authors")
_PLATEAU_DEFAULTS = {"eval_split": "test", "lr_patience": 0, "stop_patience": 0, "min_delta": 0.0}
_MUSIC_FRAME_KEYS = ("sample_rate", "frames_per_song", "frame_seconds", "mono", "normalize")


class StoreError(RuntimeError):
    """A file of the run store is unreadable or does not match its configuration."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


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


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a trained prior (chapter 02).

    ``model`` holds the constructor keywords of the family's class. ``sigma``
    > 0 fine-tunes on noisy inputs (chapter 03), starting from the weights of
    ``parent`` (the noise-free run's config), with ``noise_mode`` ``"fixed"``
    (``x + sigma * N(0, I)``, as in BASIS) or ``"authors"`` (per-example std
    ``sigma * U(0, 1)``, clamped to [-1, 1], as the authors' code did).

    ``dataset`` is ``"toy"`` or ``"music"``. A music run's ``music`` holds the
    identity of its data (:func:`sepnb.music.music_identity`: the stand-in's
    parameters, or musdb18's resolved root) and its ``frames``
    (:func:`sepnb.music.frame_settings`); ``data_root`` says where the data
    lie. ``music`` is part of the key (and of ``config.json``) only for music
    runs, and ``data_root`` never is (where a stand-in lies does not change
    it), so the keys of toy runs are what they were before music existed.
    """

    family: str
    source: str
    model: dict
    steps: int
    batch: int
    window: int
    lr: float = 1e-3
    lr_min_ratio: float = 0.1
    warmup: int = 20
    clip: float = 1.0
    eval_every: int = 50
    eval_items: int = 16
    ckpt_every: int = 50
    n_items: int = 5000
    dataset: str = "toy"
    seed: int = 0
    sigma: float = 0.0
    noise_mode: str = "fixed"
    parent: "RunConfig | None" = None
    music: dict | None = None
    data_root: str | None = field(default=None, compare=False)
    #: Where the held-out loss is measured: "test" (the first ``eval_items`` test items, a
    #: monitor only) or "val" (training-split items ``n_items ..``, which no step trains on;
    #: toy runs only). Runs that stop or lower their step size by it use "val".
    eval_split: str = "test"
    #: Plateau rules on the held-out loss, counted in evaluations: halve the learning rate after
    #: ``lr_patience`` evaluations without an improvement of more than ``min_delta`` (0: never);
    #: stop after ``stop_patience`` such evaluations and keep the best weights (0: never).
    lr_patience: int = 0
    stop_patience: int = 0
    min_delta: float = 0.0

    def __post_init__(self):
        if self.eval_split not in ("test", "val"):
            raise ValueError(f"eval_split must be 'test' or 'val', got {self.eval_split!r}")
        if self.eval_split == "val" and self.dataset == "music":
            raise ValueError("eval_split='val' (held-out training items) exists for toy runs only")
        for name in ("lr_patience", "stop_patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0 (0: off), got {v!r}")
        if not (isinstance(self.min_delta, (int, float)) and math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {self.min_delta!r}")
        if (self.lr_patience or self.stop_patience) and self.eval_split != "val":
            raise ValueError("lr_patience and stop_patience decide on the held-out loss: use eval_split='val', "
                             "never the test items")
        if self.family not in FAMILIES + DENOISERS + SEPARATORS:
            raise ValueError(f"unknown model family {self.family!r}: use one of {FAMILIES + DENOISERS + SEPARATORS}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}: use one of {DATASETS}")
        if self.dataset == "music":
            self._check_music()
        elif self.music is not None or self.data_root is not None:
            raise ValueError("music= and data_root= belong to dataset='music' runs only")
        sources = _music.MUSIC_SOURCES if self.dataset == "music" else data.SOURCES
        if self.family in SEPARATORS and self.source != "mix":
            raise ValueError(f"a separator ({self.family}) trains on mixes: source must be 'mix', got {self.source!r}")
        if self.family in FAMILIES + DENOISERS and self.source not in sources:
            raise ValueError(f"unknown source {self.source!r} for dataset {self.dataset!r}: use one of {list(sources)}")
        for name in ("steps", "batch", "window", "eval_every", "eval_items", "ckpt_every", "n_items"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma!r}")
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {self.noise_mode!r}: use one of {NOISE_MODES}")
        if self.sigma > 0 and self.parent is None:
            raise ValueError("a noise-conditioned run (sigma > 0) needs the noise-free parent config")

    def _check_music(self) -> None:
        m = self.music
        if not isinstance(m, dict) or m.get("kind") not in ("standin", "musdb"):
            raise ValueError("a music run needs music={'kind': 'standin' or 'musdb', ..., 'frames': {...}}; "
                             "build it with music_prior_config()")
        if m["kind"] == "standin" and not isinstance(m.get("standin"), dict):
            raise ValueError("a stand-in music run needs music['standin'], the stand-in's parameters")
        if m["kind"] == "musdb" and not isinstance(m.get("root"), str):
            raise ValueError("a musdb18 music run needs music['root'], the resolved musdb18 folder")
        frames = m.get("frames")
        if not isinstance(frames, dict) or sorted(frames) != sorted(_MUSIC_FRAME_KEYS):
            raise ValueError(f"music['frames'] must hold exactly {list(_MUSIC_FRAME_KEYS)}, got {frames!r}")
        frame_length = int(round(frames["frame_seconds"] * frames["sample_rate"]))
        if self.window > frame_length:
            raise ValueError(f"window ({self.window}) must not exceed the music frame length ({frame_length})")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["data_root"]  # where the data lie is not what they are
        if d["music"] is None:
            del d["music"]  # toy runs: the keys they had before music existed
        for name, default in _PLATEAU_DEFAULTS.items():
            if d[name] == default:
                del d[name]  # runs without plateau rules keep the keys they had before these existed
        d["parent"] = None if self.parent is None else self.parent.key()
        d["code_version"] = CODE_VERSION
        return d

    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)


def build_model(family: str, model_kwargs: dict) -> torch.nn.Module:
    """Instantiate a prior of ``family`` (``"wavenet"`` or ``"flow"``)."""
    if family == "wavenet":
        return models.WaveNet(**model_kwargs)
    if family == "flow":
        return models.FloWaveNet(**model_kwargs)
    if family == "convtasnet":
        return models.ConvTasNetSeparator(**model_kwargs)
    if family == "denoiser":
        from .denoiser import Denoiser

        return Denoiser(**model_kwargs)
    raise ValueError(f"unknown model family {family!r}: use one of {FAMILIES + DENOISERS + SEPARATORS}")


def run_dir(cfg: RunConfig) -> Path:
    return paths.runs_dir() / f"{cfg.family}-{cfg.source}-{cfg.key()}"


# --------------------------------------------------------------------------- files
def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise StoreError(
            f"cannot read {path} ({type(err).__name__}: {err}). The file is corrupt or was not "
            f"written by sepnb; it was left in place. Delete it (or its folder) to train again."
        ) from None


def _check_config(folder: Path, cfg: RunConfig) -> None:
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
        tmp = cfg_path.with_name("config.json.tmp")
        tmp.write_text(json.dumps(want, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, cfg_path)


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


def _train_batch(cfg: RunConfig, ds, step: int):
    """The batch of step ``step``: a pure function of (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step, 17])
    ds.set_epoch(step)
    x = ds.batch(rng.integers(len(ds), size=cfg.batch))
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return add_noise(x, cfg.sigma, cfg.noise_mode, gen)


def _music_root(cfg: RunConfig) -> Path:
    """The folder of a music run's data, checked against its identity (a missing stand-in is rebuilt)."""
    m = cfg.music
    if m["kind"] == "musdb":
        return _music.musdb_root(m["root"])
    if cfg.data_root is None:
        raise ValueError("a stand-in music run needs data_root, the stand-in's folder (music_prior_config sets it)")
    params = dict(m["standin"])
    version = params.pop("version", None)
    if version != _music._STANDIN_VERSION:
        raise StoreError(f"this run's stand-in was made by generator version {version}; this sepnb writes "
                         f"version {_music._STANDIN_VERSION} and cannot rebuild it")
    # idempotent: checks the folder's parameters, writes only missing songs, refuses other parameters
    return _music.make_standin(cfg.data_root, **params, progress=False)


def _windows(cfg: RunConfig, split: str, n_items: int):
    """A prior's windows of its source; a separator's windows of all sources ``[4, window]``.

    ``data.ToyWindows`` for toy runs; ``music.MusicWindows`` of the musdb
    subset ``split`` ("train" or "test") for music runs.
    """
    source = None if cfg.source == "mix" else cfg.source
    if cfg.dataset == "music":
        frames = _music.load_frames(_music_root(cfg), split, progress=False, **cfg.music["frames"])
        return _music.MusicWindows(split, window=cfg.window, source=source, n_items=n_items, seed=cfg.seed,
                                   frames=frames)
    return data.ToyWindows(split, window=cfg.window, source=source, n_items=n_items, seed=cfg.seed,
                           variant="authors" if cfg.dataset == "toy_authors" else "paper")


def _eval_batch(cfg: RunConfig) -> torch.Tensor:
    if cfg.eval_split == "val":  # training-split items after the n_items that training draws from
        ds = _windows(cfg, "train", cfg.n_items + cfg.eval_items)
        x = ds.batch(np.arange(cfg.n_items, cfg.n_items + cfg.eval_items))
    else:
        ds = _windows(cfg, "test", cfg.eval_items)
        x = ds.batch(np.arange(cfg.eval_items))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    return add_noise(x, cfg.sigma, cfg.noise_mode, gen)


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
            x = x[self.rank * n:(self.rank + 1) * n].clone()
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


def default_workers(dev: torch.device | None = None) -> int:
    """``DataLoader`` workers rendering training batches: ``$SEPNB_WORKERS``, else 0 on the CPU, 4 on CUDA."""
    if os.environ.get("SEPNB_WORKERS"):
        return int(os.environ["SEPNB_WORKERS"])
    return 4 if (dev or device()).type == "cuda" else 0


def _session(dev: torch.device, bf16: bool, world: int, workers: int, step: int) -> dict:
    """What ran a stretch of training (the run's metadata; never part of its key)."""
    import platform
    import socket

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "device": dev.type,
            "device_name": name, "precision": "bf16-autocast" if bf16 else "float32", "world_size": world,
            "workers": workers, "torch": str(torch.__version__), "from_step": step, "to_step": step}


def _write_meta(folder: Path, meta: dict) -> None:
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, folder / "meta.json")


def check_training_options(cfg: RunConfig, bf16: bool = False) -> None:
    """A ValueError, before anything is written, for a batch the processes cannot share or bf16 off CUDA."""
    world = parallel.world_size()
    if cfg.batch % world:
        raise ValueError(f"batch {cfg.batch} of {run_dir(cfg).name} cannot be split evenly over {world} processes: "
                         f"use a number of processes that divides {cfg.batch}")
    if bf16 and device().type != "cuda":
        raise ValueError("bf16 autocast is an option on CUDA only; on the CPU training runs in float32")


def loss_unit(cfg: RunConfig) -> str:
    """The unit of a run's training and held-out loss."""
    if cfg.family in DENOISERS:
        return "EDM-weighted MSE"
    return "dB (-SI-SDR)" if cfg.family in SEPARATORS else "nats/sample"


def train(cfg: RunConfig, progress: bool = True, stop_after: int | None = None, workers: int | None = None,
          bf16: bool = False, lock_timeout: float | None = None,
          break_lock: bool = False) -> tuple[torch.nn.Module, dict]:
    """Train (or resume) the run ``cfg`` under its lock and return ``(model, history)``.

    The run's folder is locked while it trains (:class:`sepnb.lock.RunLock`;
    ``lock_timeout``, ``break_lock``). ``workers``: ``DataLoader`` processes
    rendering the batches (default :func:`default_workers`); the batches are
    the same for any number. ``bf16``: bfloat16 autocast for the training
    forward (CUDA only; held-out losses are float32).

    Under ``torchrun`` (:mod:`sepnb.parallel`) every rank trains on its
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
        return _train_locked(cfg, progress=progress and main, stop_after=stop_after, workers=workers, bf16=bf16)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(cfg: RunConfig, progress: bool = True, stop_after: int | None = None, workers: int | None = None,
                  bf16: bool = False) -> tuple[torch.nn.Module, dict]:
    """Train (or resume) the run ``cfg`` and return ``(model, history)``.

    ``stop_after`` stops after that many steps of this call, leaving the
    checkpoint (used by the tests to simulate an interruption).
    """
    from .progress import bar as progress_bar

    folder = run_dir(cfg)
    rank, world, main = parallel.rank(), parallel.world_size(), parallel.is_main()
    if main:
        _check_config(folder, cfg)
    parallel.barrier()
    if not main:
        _check_config(folder, cfg)
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
        history["plateau"] = {"best": None, "best_step": None, "since": 0, "since_lr": 0, "lr_scale": 1.0,
                              "halved_at": [], "stopped_at": None}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
    # the plateau's factor is read from the (possibly resumed) history at every step
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(cfg, s) * history.get("plateau", {}).get("lr_scale", 1.0))
    meta = {"sessions": []}
    step = 0
    best_state = None
    rng_state = (None, None)
    if ckpt_path.exists():
        state = _load(ckpt_path)
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

    ds = _windows(cfg, "train", cfg.n_items)
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
            net, device_ids=[dev.index if dev.index is not None else torch.cuda.current_device()]
            if dev.type == "cuda" else None)
    loader = torch.utils.data.DataLoader(
        _StepBatches(cfg, ds, rank, world), batch_size=None, sampler=range(step, cfg.steps), num_workers=workers,
        pin_memory=dev.type == "cuda", prefetch_factor=4 if workers else None)
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
        _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), **extra,
                      "scheduler": sched.state_dict(), "history": history, "step": step, "meta": meta}, ckpt_path)

    if main:
        _write_meta(folder, meta)
    name = f"{cfg.family}/{cfg.source}" + (f" sigma={cfg.sigma:g}" if cfg.sigma else "")
    bar = progress_bar(total=cfg.steps, initial=step, desc=name, disable=not progress, mininterval=5.0,
                       unit="step")
    unit = loss_unit(cfg)
    model.train()
    done_here = 0
    history.setdefault("seconds", 0.0)  # wall time spent in training steps, over all resumptions
    while step < cfg.steps:
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
        _save_atomic({"model": model.state_dict(), "history": history, "meta": meta}, folder / "final.pt")
        _write_meta(folder, meta)
        ckpt_path.unlink(missing_ok=True)
    parallel.barrier()  # final.pt is there for every rank
    return model, history


def load_prior(cfg: RunConfig) -> tuple[torch.nn.Module, dict] | None:
    """Load the finished run ``cfg`` from the store, or ``None`` if it is not finished."""
    folder = run_dir(cfg)
    final = folder / "final.pt"
    if not final.exists():
        return None
    _check_config(folder, cfg)
    state = _load(final)
    model = build_model(cfg.family, cfg.model)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        raise StoreError(f"{final} does not hold weights for this configuration ({err}); delete it to retrain") from None
    return model.to(device()).eval(), state["history"]


def get_prior(cfg: RunConfig, progress: bool = True, lock_timeout: float | None = None, break_lock: bool = False,
              **train_options) -> tuple[torch.nn.Module, dict]:
    """The prior ``cfg`` from the store: loaded if finished, else trained or resumed (chapter 02).

    Training holds the run's lock (:mod:`sepnb.lock`): a second process
    asking for the same run waits for it (at most ``lock_timeout`` seconds)
    and then loads what the first one finished. ``train_options`` go to
    :func:`train` (``workers``, ``bf16``). Under ``torchrun`` rank 0 decides,
    and every rank then loads or trains.
    """
    if not parallel.is_distributed():
        loaded = load_prior(cfg)
        if loaded is not None:
            return loaded
        with RunLock(run_dir(cfg), timeout=lock_timeout, break_lock=break_lock):
            loaded = load_prior(cfg)  # another process may have finished it while we waited
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
            return load_prior(cfg)
        model, history = train(cfg, progress=progress, **train_options)
        return model.eval(), history
    finally:
        if lock is not None:
            lock.release()


def prior_config(profile, family: str, source: str, seed: int = 0) -> RunConfig:
    """The noise-free prior of ``family`` for ``source`` at a profile's sizes (chapter 02)."""
    from . import profiles

    p = profiles.get(profile)
    return RunConfig(family=family, source=source, steps=p.steps, window=p.window, n_items=p.n_train, seed=seed,
                     **_prior_sizes(p, family))


def _prior_sizes(p, family: str) -> dict:
    """What the toy and the music priors of a profile share: model size, batch, schedule."""
    return dict(model=p.model(family), batch=p.batch, lr=p.lr, eval_every=p.eval_every, eval_items=p.eval_items,
                ckpt_every=p.ckpt_every)


def finetune_config(parent: RunConfig, sigma: float, profile, noise_mode: str = "fixed") -> RunConfig:
    """The prior ``parent`` fine-tuned on inputs noised at ``sigma`` (chapter 03).

    Starts from the parent's weights with a fresh optimiser, ``finetune_steps``
    of the profile, a short warm-up and a third of the learning rate.
    """
    from . import profiles

    p = profiles.get(profile)
    return parent.replace(sigma=float(sigma), parent=parent, noise_mode=noise_mode,
                          steps=p.finetune_steps, lr=parent.lr / 3, warmup=min(parent.warmup, 10))


def separator_config(profile, seed: int = 0) -> RunConfig:
    """The supervised Conv-TasNet reference of a profile, trained on toy mixes (chapter 05).

    Two stages: ``tasnet_steps`` on a cosine schedule (its held-out curve is a
    monitor on test windows), then, where the profile has ``tasnet_continue``,
    a continuation from those weights (fresh Adam) that measures its loss on
    held-out *training-split* mixes, halves its step size when that loss
    stalls and stops when it has stopped improving, keeping the best weights
    (the Conv-TasNet paper's recipe). The continuation is returned; its
    ``parent`` is the first stage.
    """
    from . import profiles

    p = profiles.get(profile)
    first = RunConfig(family="convtasnet", source="mix", model=dict(p.tasnet), steps=p.tasnet_steps,
                      batch=p.batch, window=p.window, lr=p.tasnet_lr, eval_every=p.tasnet_eval_every,
                      eval_items=p.tasnet_eval_items, ckpt_every=max(p.ckpt_every, p.tasnet_eval_every),
                      n_items=p.n_train, seed=seed)
    if not p.tasnet_continue:
        return first
    c = p.tasnet_continue
    return first.replace(steps=c["steps"], lr=c["lr"], warmup=min(first.warmup, 10), lr_min_ratio=1.0,
                         eval_items=c["eval_items"], eval_split="val", lr_patience=c["lr_patience"],
                         stop_patience=c["stop_patience"], min_delta=c["min_delta"], parent=first)


def variant_config(profile, family: str, source: str, variant: str, seed: int = 0) -> RunConfig:
    """A noise-free toy prior of chapter 07's ``variant`` (one of :data:`VARIANTS`).

    ``"authors-objective"`` (flows): the log-determinant weighted by the
    profile's ``authors_logdet_weight`` in the training loss, as the authors'
    code did; ``"budget"``: ``budget_factor`` times the profile's steps, all
    else (seed, data, learning rate, schedule shape) as the 1x prior;
    ``"authors-data"``: trained on the authors' toy data as run.
    """
    from . import profiles

    p = profiles.get(profile)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {VARIANTS}")
    cfg = prior_config(p, family, source, seed=seed)
    if variant == "authors-objective":
        if family != "flow":
            raise ValueError(f"the authors' objective weights a flow's log-determinant: family must be 'flow', "
                             f"got {family!r}")
        return cfg.replace(model={**cfg.model, "logdet_weight": float(p.authors_logdet_weight)})
    if variant == "authors-data":
        return cfg.replace(dataset="toy_authors")
    return cfg.replace(steps=cfg.steps * p.budget_factor)


def variant_runs(profile, seed: int = 0) -> list[tuple[dict, RunConfig]]:
    """Chapter 07's runs, parents first: ``[(what, cfg)]`` (``what`` as in :func:`profile_runs`).

    The flows fine-tuned at every ``sigmas`` level with the authors' noise
    scheme; the flows trained with the authors' objective; the WaveNets
    trained ``budget_factor`` times longer; the flows trained on the authors'
    toy data.
    """
    from . import profiles

    p = profiles.get(profile)
    out = []
    for sigma in p.sigmas:
        for source in data.SOURCES:
            out.append(({"family": "flow", "source": source, "sigma": float(sigma), "noise_mode": "authors",
                         "seed": seed},
                        finetune_config(prior_config(p, "flow", source, seed=seed), sigma, p, noise_mode="authors")))
    for family, variant in (("flow", "authors-objective"), ("wavenet", "budget"), ("flow", "authors-data")):
        for source in data.SOURCES:
            out.append(({"family": family, "source": source, "variant": variant, "seed": seed},
                        variant_config(p, family, source, variant, seed=seed)))
    return out


def denoiser_config(profile, source: str, seed: int = 0) -> RunConfig:
    """The denoising prior of ``source`` at a profile's sizes (chapter 06): single-source windows only."""
    from . import profiles

    p = profiles.get(profile)
    return RunConfig(family="denoiser", source=source, model=dict(p.denoiser), steps=p.denoiser_steps,
                     batch=p.denoiser_batch, window=p.sep_length, lr=p.denoiser_lr, warmup=50,
                     eval_every=p.denoiser_eval_every, eval_items=p.eval_items,
                     ckpt_every=max(p.ckpt_every, p.denoiser_eval_every), n_items=p.n_train, seed=seed)


def toy_denoisers(profile, seed: int = 0, progress: bool = True) -> dict:
    """The denoising prior of every toy source at a profile, from the run store: ``{source: (model, history)}``."""
    return {source: get_prior(denoiser_config(profile, source, seed=seed), progress=progress)
            for source in data.SOURCES}


def toy_priors(profile, seed: int = 0, sigma: float = 0.0, noise_mode: str = "fixed",
               families=FAMILIES, progress: bool = True) -> dict:
    """Every toy prior of ``families`` at a profile, from the run store (chapters 02-04).

    Returns ``{(family, source): (model, history)}``; ``sigma > 0`` gives the
    priors fine-tuned at ``sigma`` from the noise-free ones.
    """
    out = {}
    for family in families:
        for source in data.SOURCES:
            cfg = prior_config(profile, family, source, seed=seed)
            if sigma:
                cfg = finetune_config(cfg, sigma, profile, noise_mode=noise_mode)
            out[(family, source)] = get_prior(cfg, progress=progress)
    return out


def _music_data(p, music: str, progress: bool) -> dict:
    """The data fields of a profile's music runs: dataset, music (identity + frames), data_root, n_items."""
    root, _ = _music.music_source(p, music, progress=progress)
    frames = _music.frame_settings(p)
    n_frames = len(_music.song_names(root, "train")) * frames["frames_per_song"]
    return dict(dataset="music", music={**_music.music_identity(root), "frames": frames}, data_root=str(root),
                n_items=n_frames)


def _music_config(p, family: str, source: str, seed: int, music_data: dict) -> RunConfig:
    return RunConfig(family=family, source=source, steps=p.music_steps, window=p.music_window, seed=seed,
                     **_prior_sizes(p, family), **music_data)


def music_prior_config(profile, family: str, source: str, seed: int = 0, music: str = "auto",
                       progress: bool = True) -> RunConfig:
    """The noise-free music prior of ``family`` for the stem ``source`` at a profile (chapter 02).

    ``music`` picks the data as :func:`sepnb.music.music_source` does
    (``"auto"``, ``"musdb"`` or ``"standin"``; the stand-in is written on
    first use). Model size, batch and schedule are the toy priors'; steps
    and window are the profile's ``music_steps`` and ``music_window``; one
    item per training frame (``n_items``).
    """
    from . import profiles

    p = profiles.get(profile)
    return _music_config(p, family, source, seed, _music_data(p, music, progress))


def music_priors(profile, seed: int = 0, music: str = "auto", families=FAMILIES, progress: bool = True) -> dict:
    """Every noise-free music prior of ``families`` at a profile, from the run store (chapter 02).

    Returns ``{(family, stem): (model, history)}`` for the stems
    ``sepnb.music.MUSIC_SOURCES``, trained on the data ``music`` picks (see
    :func:`music_prior_config`).
    """
    from . import profiles

    p = profiles.get(profile)
    music_data = _music_data(p, music, progress)
    out = {}
    for family in families:
        for source in _music.MUSIC_SOURCES:
            out[(family, source)] = get_prior(_music_config(p, family, source, seed, music_data), progress=progress)
    return out


def _standin_music_data(p) -> dict:
    """:func:`_music_data` of the profile's stand-in, without writing it (what the keys need is its parameters)."""
    frames = _music.frame_settings(p)
    params = {**p.standin, "version": _music._STANDIN_VERSION}
    return dict(dataset="music", music={"kind": "standin", "standin": params, "frames": frames},
                data_root=str(paths.data_dir() / f"musdb-standin-{p.name}"),
                n_items=int(p.standin["n_train"]) * frames["frames_per_song"])


def profile_runs(profile, seed: int = 0, music: str = "auto", with_music: bool = True,
                 with_variants: bool = True) -> list[tuple[dict, RunConfig]]:
    """Every run the chapters ask the store for at a profile, parents first: ``[(what, cfg)]``.

    ``what`` holds the ``sepnb train`` options that name the run (``family``,
    ``source``, ``sigma``, ``noise_mode``, ``music``, ``seed``). The runs are:
    the 8 noise-free toy priors (chapter 02); their fine-tunes at every
    ``profile.sigmas`` level, ``noise_mode="fixed"`` (chapters 03-05; chapter
    03's default ``sigma`` is one of them); the 8 music priors on the data
    ``music`` picks (chapter 02; the stand-in is not written to list them);
    the Conv-TasNet separator (chapter 05); the 4 denoising priors
    (chapter 06); and chapter 07's variants (:func:`variant_runs`; left out
    with ``with_variants=False``). Chapter 01 trains nothing.
    """
    from . import profiles

    p = profiles.get(profile)
    out = []
    clean = {}
    for family in FAMILIES:
        for source in data.SOURCES:
            clean[(family, source)] = cfg = prior_config(p, family, source, seed=seed)
            out.append(({"family": family, "source": source, "seed": seed}, cfg))
    for sigma in p.sigmas:
        for family in FAMILIES:
            for source in data.SOURCES:
                out.append(({"family": family, "source": source, "sigma": float(sigma), "seed": seed},
                            finetune_config(clean[(family, source)], sigma, p)))
    if with_music:
        _music.check_music_choice(music)
        choice = ("musdb" if os.environ.get("MUSDB_PATH") else "standin") if music == "auto" else music
        music_data = _standin_music_data(p) if choice == "standin" else _music_data(p, music, progress=False)
        for family in FAMILIES:
            for source in _music.MUSIC_SOURCES:
                out.append(({"family": family, "source": source, "music": music, "seed": seed},
                            _music_config(p, family, source, seed, music_data)))
    out.append(({"family": "convtasnet", "source": "mix", "seed": seed}, separator_config(p, seed=seed)))
    for source in data.SOURCES:
        out.append(({"family": "denoiser", "source": source, "seed": seed}, denoiser_config(p, source, seed=seed)))
    return out + (variant_runs(p, seed=seed) if with_variants else [])


def run_status(cfg: RunConfig) -> tuple[str, str]:
    """``(status, detail)`` of a run in the store: ``done``, ``partial`` (a checkpoint), ``locked`` or ``missing``.

    ``locked`` means a process holds the run's lock now (``detail`` names it;
    a lock whose process is gone reads ``stale lock``); a locked run may also
    have a checkpoint, given in ``detail``.
    """
    from . import lock as _lock

    folder = run_dir(cfg)
    if (folder / "final.pt").exists():
        return "done", ""
    detail = ""
    ckpt = folder / "checkpoint.pt"
    if ckpt.exists():
        try:
            detail = f"checkpoint at step {int(_load(ckpt)['step'])}/{cfg.steps}"
        except StoreError:
            detail = "unreadable checkpoint"
    info = _lock.read_lock(folder)
    if info is not None:
        what = f"stale lock ({_lock.describe(info)})" if _lock.is_stale(info) else f"by {_lock.describe(info)}"
        return "locked", what + (f"; {detail}" if detail else "")
    return ("partial", detail) if ckpt.exists() else ("missing", "")
