"""What defines a run: :class:`RunConfig` (its key is the hash of every field) and the model families it builds (chapter 02)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

import torch

from sepnb.data import musdb as _music
from sepnb.data import toy as data

__all__ = [
    "RunConfig",
    "build_model",
    "loss_unit",
    "FAMILIES",
    "SEPARATORS",
    "DENOISERS",
    "NOISE_MODES",
    "VARIANTS",
    "DATASETS",
    "CODE_VERSION",
]


FAMILIES = ("wavenet", "flow")
#: Supervised separators trained on mixes (chapter 06's reference point); their ``source`` is "mix".
SEPARATORS = ("convtasnet",)
#: Denoising (score) priors of one source each (chapter 07): trained like the priors, on single sources.
DENOISERS = ("denoiser",)
#: Part of every run's key: bump it when a change to sepnb.priors or to the training
#: loop changes what a configuration trains to, so that stale runs are not loaded.
CODE_VERSION = 1
NOISE_MODES = ("fixed", "authors")
#: Chapter 05's variants of a noise-free toy prior: the authors' flow objective (log-determinant
#: weighted by the profile's ``authors_logdet_weight``), the WaveNets at ``budget_factor`` x steps,
#: and the flows trained on the authors' toy data (dataset "toy_authors").
VARIANTS = ("authors-objective", "budget", "authors-data")
#: "toy_authors": the toy sources as the authors' runs drew them (data.toy_params_authors; chapter 05)
DATASETS = ("toy", "music", "toy_authors")
#: Fields left out of a run's key at their default, so that the runs made before each existed keep their keys.
_PLATEAU_DEFAULTS = {"eval_split": "test", "lr_patience": 0, "stop_patience": 0, "min_delta": 0.0, "perturb": 0.0}
_MUSIC_FRAME_KEYS = ("sample_rate", "frames_per_song", "frame_seconds", "mono", "normalize")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a trained prior (chapter 02).

    ``model`` holds the constructor keywords of the family's class. ``sigma``
    > 0 fine-tunes on noisy inputs (chapter 03), starting from the weights of
    ``parent`` (the noise-free run's config), with ``noise_mode`` ``"fixed"``
    (``x + sigma * N(0, I)``, as in BASIS) or ``"authors"`` (per-example std
    ``sigma * U(0, 1)``, clamped to [-1, 1], as the authors' code did).

    ``dataset`` is ``"toy"`` or ``"music"``. A music run's ``music`` holds the
    identity of its data (:func:`sepnb.data.music_identity`: the stand-in's
    parameters, or musdb18's resolved root) and its ``frames``
    (:func:`sepnb.data.frame_settings`); ``data_root`` says where the data
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
    #: A background model's perturbation (Ren et al. 2019; issue 24): every training and held-out
    #: sample is replaced, with this probability, by a uniform draw on [-1, 1] before any noise.
    perturb: float = 0.0

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
        if not (isinstance(self.perturb, (int, float)) and 0 <= self.perturb < 1):
            raise ValueError(f"perturb must be a probability in [0, 1), got {self.perturb!r}")
        if (self.lr_patience or self.stop_patience) and self.eval_split != "val":
            raise ValueError(
                "lr_patience and stop_patience decide on the held-out loss: use eval_split='val', never the test items"
            )
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
            raise ValueError(
                "a music run needs music={'kind': 'standin' or 'musdb', ..., 'frames': {...}}; "
                "build it with music_prior_config()"
            )
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
    from sepnb.priors.flowavenet import FloWaveNet
    from sepnb.priors.wavenet import WaveNet
    from sepnb.separation.convtasnet import ConvTasNetSeparator

    if family == "wavenet":
        return WaveNet(**model_kwargs)
    if family == "flow":
        return FloWaveNet(**model_kwargs)
    if family == "convtasnet":
        return ConvTasNetSeparator(**model_kwargs)
    if family == "denoiser":
        from sepnb.priors.denoiser import Denoiser

        return Denoiser(**model_kwargs)
    raise ValueError(f"unknown model family {family!r}: use one of {FAMILIES + DENOISERS + SEPARATORS}")


def loss_unit(cfg: RunConfig) -> str:
    """The unit of a run's training and held-out loss."""
    if cfg.family in DENOISERS:
        return "EDM-weighted MSE"
    return "dB (-SI-SDR)" if cfg.family in SEPARATORS else "nats/sample"
