"""The researcher's way in: trained priors by name or by folder, and training one on purpose.

:func:`load_prior` and :func:`load_run` only read the run store; they never train. A run the
store lacks is a :class:`RunNotFound` whose message is the ``sepnb train`` command that makes
it. :func:`train_prior` trains (or resumes, or loads when finished) explicitly.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import torch

from sepnb.runs import catalogue, config, store
from sepnb.runs.devices import device

__all__ = ["RunNotFound", "prior_config", "load_prior", "load_run", "train_prior", "separate_toy_mixes"]


class RunNotFound(store.StoreError):
    """The run store has no finished run for what was asked; the message says how to train it."""


def _namespace(family, source, profile, sigma, noise_mode, variant, music, seed) -> argparse.Namespace:
    return argparse.Namespace(
        family=family,
        source=source,
        profile=profile,
        sigma=float(sigma),
        noise_mode=noise_mode,
        variant=variant,
        music=music,
        seed=int(seed),
    )


def _command(ns: argparse.Namespace) -> str:
    cmd = ["sepnb", "train", "--profile", ns.profile, "--family", ns.family]
    if ns.family not in config.SEPARATORS:
        cmd += ["--source", ns.source]
    if ns.sigma:
        cmd += ["--sigma", f"{ns.sigma:g}"]
    if ns.noise_mode != "fixed":
        cmd += ["--noise-mode", ns.noise_mode]
    if ns.variant:
        cmd += ["--variant", ns.variant]
    if ns.music != "auto":
        cmd += ["--music", ns.music]
    if ns.seed:
        cmd += ["--seed", str(ns.seed)]
    return shlex.join(cmd)


def prior_config(
    family: str,
    source: str,
    profile: str = "book",
    sigma: float = 0.0,
    *,
    noise_mode: str = "fixed",
    variant: str | None = None,
    music: str = "auto",
    seed: int = 0,
) -> config.RunConfig:
    """The configuration of the run the book trains for these names (what ``sepnb train`` with the
    same options trains); nothing is read or written.

    ``family``: ``"wavenet"``, ``"flow"``, ``"denoiser"`` or ``"convtasnet"`` (the supervised
    reference; ``source="mix"``). ``source``: a toy source (``sine``, ``square``, ``saw``,
    ``triangle``) or a music stem (``bass``, ``drums``, ``vocals``, ``other``). ``sigma > 0``: the
    prior fine-tuned on inputs noised at ``sigma`` (chapter 03). ``variant``: one of chapter 05's
    variants (``"authors-objective"``, ``"budget"``, ``"authors-data"``).
    """
    from sepnb import cli
    from sepnb.data import musdb

    ns = _namespace(family, source, profile, sigma, noise_mode, variant, music, seed)
    if source in musdb.MUSIC_SOURCES and family in config.FAMILIES and not sigma and not variant:
        return catalogue.listed_music_config(profile, family, source, seed=seed, music=music)
    return cli.config_from_args(ns)


def load_prior(
    family: str,
    source: str,
    profile: str = "book",
    sigma: float = 0.0,
    *,
    noise_mode: str = "fixed",
    variant: str | None = None,
    music: str = "auto",
    seed: int = 0,
) -> torch.nn.Module:
    """The trained prior for these names (see :func:`prior_config`), from the run store, in eval mode on
    :func:`sepnb.runs.device`. Never trains: a missing or unfinished run raises :class:`RunNotFound`
    with the ``sepnb train`` command that makes it.

    >>> flow = sepnb.load_prior("flow", "sine", profile="book")          # doctest: +SKIP
    >>> flow.log_prob(x)  # x: [batch, time] in [-1, 1]; nats per waveform  # doctest: +SKIP
    """
    ns = _namespace(family, source, profile, sigma, noise_mode, variant, music, seed)
    cfg = prior_config(family, source, profile, sigma, noise_mode=noise_mode, variant=variant, music=music, seed=seed)
    loaded = store.load(cfg)
    if loaded is None:
        status, detail = store.run_status(cfg)
        raise RunNotFound(
            f"the run store ({store.run_dir(cfg).parent}) has no finished run {store.run_dir(cfg).name} "
            f"({status}{': ' + detail if detail else ''}); train it with:\n    {_command(ns)}\n"
            f"(or point $SEPNB_RUNS at a store that holds it)"
        )
    return loaded[0]


def load_run(folder: str | Path) -> tuple[torch.nn.Module, dict, dict]:
    """A finished run from its folder in any store: ``(model, history, config)``, the model in eval mode
    on :func:`sepnb.runs.device`, ``config`` the run's ``config.json``. Never trains."""
    folder = Path(folder).expanduser()
    cfg_path, final = folder / "config.json", folder / "final.pt"
    if not cfg_path.is_file():
        raise RunNotFound(f"{folder} is not a run folder: it has no config.json")
    if not final.is_file():
        raise RunNotFound(
            f"{folder} holds no finished run (no final.pt): resume it with `sepnb train` and the options that "
            f"made it (its config.json names them)"
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise store.StoreError(f"{cfg_path} is not valid JSON ({err})") from None
    state = store.read(final)
    model = config.build_model(cfg["family"], cfg["model"])
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        raise store.StoreError(f"{final} does not hold weights for the model of {cfg_path} ({err})") from None
    return model.to(device()).eval(), state["history"], cfg


def train_prior(
    family: str,
    source: str,
    profile: str = "book",
    sigma: float = 0.0,
    *,
    noise_mode: str = "fixed",
    variant: str | None = None,
    music: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> torch.nn.Module:
    """Train the prior for these names into the run store (resuming a checkpoint; loading it when it is
    finished) and return it in eval mode; what ``sepnb train`` with the same options does. At the
    ``paper`` profile this is days of GPU time; at ``smoke`` seconds."""
    from sepnb import cli
    from sepnb.runs import loop

    ns = _namespace(family, source, profile, sigma, noise_mode, variant, music, seed)
    cfg = cli.config_from_args(ns)  # the stand-in of a music prior is written here if missing
    return loop.get_prior(cfg, progress=progress)[0]


def separate_toy_mixes(
    mixes, profile: str = "book", seed: int = 0, progress: bool = True, method: str | None = None
) -> torch.Tensor:
    """Separate toy mixes with the book's best method and its trained denoising priors.

    ``mixes [B, T]`` (or ``[T]``) at 16 kHz, each the mean of four toy sources
    (eq. 8); returns ``[B, 4, T]`` (or ``[4, T]``) in the order of
    :data:`sepnb.data.SOURCES`, adding up to the mix exactly. ``method``:

    * ``"search"``: issue 23's model-judged search
      (:func:`sepnb.separation.search_mixes`) with the profile's configuration
      (``Profile.search``, at the book's sizes the one its validation record chose),
      its finalists refined with chapter 07's schedule;
    * ``"refine"``: chapter 07's method, the harmonic start
      (:func:`sepnb.harmonic_start`) refined by constrained Langevin dynamics
      (:func:`sepnb.constrained_langevin`) with the profile's tuned levels;
    * ``None`` (default): the search where the profile has its configuration, else
      chapter 07's method.

    Never trains: a missing denoiser raises :class:`RunNotFound` with the ``sepnb
    train`` command that makes it. ``sepnb separate IN.wav OUT_DIR`` is the same
    from the command line.

    >>> sources = sepnb.separate_toy_mixes(mix)  # mix: [B, T]; sources: [B, 4, T]  # doctest: +SKIP
    """
    import numpy as np

    from sepnb.core import profiles
    from sepnb.data.toy import SOURCES
    from sepnb.priors import StackedDenoisers
    from sepnb.separation import SearchConfig, check_mix, constrained_langevin, harmonic_start, search_mixes
    from sepnb.separation.tuning import refine_options

    P = profiles.get(profile)
    method = ("search" if P.search is not None else "refine") if method is None else method
    if method not in ("search", "refine"):
        raise ValueError(f"method must be 'search', 'refine' or None, got {method!r}")
    if method == "search" and P.search is None:
        raise ValueError(
            f"profile {P.name!r} has no search configuration yet (its validation record is not complete: "
            "python -m sepnb.separation.tuning); use method='refine'"
        )
    m, single = check_mix(mixes)
    denoisers = [load_prior("denoiser", source, profile, seed=seed) for source in SOURCES]
    if method == "search":
        out, _ = search_mixes(
            m.cpu(), denoisers, SearchConfig(**P.search), progress=progress, seed=seed, **refine_options(P)
        )
        out = out.to(m.device)
    else:
        start, _ = harmonic_start(m, denoisers, progress=progress, **P.harmonic)
        sigmas = np.geomspace(P.refine_sigma, P.refine_floor, P.refine_levels)  # chapter 07's refinement
        out = constrained_langevin(
            m,
            StackedDenoisers(denoisers),
            sigmas=sigmas,
            steps_per_sigma=P.refine_steps,
            step=P.refine_step,
            init=start,
            seed=seed,
            progress=progress,
        )
    return out[0] if single else out
