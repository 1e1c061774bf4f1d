"""The catalogue: every run a chapter asks the store for, as a function of the profile.

``prior_config`` (chapter 02), ``finetune_config`` (03), ``separator_config``
(05's reference), ``denoiser_config`` (chapter 05, beyond the paper),
``variant_config`` (05, the authors' variants), the music priors, and
``profile_runs``, the whole list ``sepnb train --all`` trains. The getters
(``toy_priors``, ``music_priors``, ``toy_denoisers``) load what the store has
and train what it lacks; :func:`sepnb.load_prior` never trains.
"""

from __future__ import annotations

import os

from sepnb.core import paths
from sepnb.data import musdb
from sepnb.data import music as _music
from sepnb.data.toy import SOURCES
from sepnb.runs.config import FAMILIES, VARIANTS, RunConfig
from sepnb.runs.loop import get_prior

__all__ = [
    "prior_config",
    "finetune_config",
    "background_config",
    "separator_config",
    "variant_config",
    "variant_runs",
    "denoiser_config",
    "toy_denoisers",
    "toy_priors",
    "toy_backgrounds",
    "basis_extra_sigmas",
    "music_prior_config",
    "listed_music_config",
    "music_priors",
    "profile_runs",
]


def prior_config(profile, family: str, source: str, seed: int = 0) -> RunConfig:
    """The noise-free prior of ``family`` for ``source`` at a profile's sizes (chapter 02)."""
    from sepnb.core import profiles

    p = profiles.get(profile)
    return RunConfig(
        family=family,
        source=source,
        steps=p.steps,
        window=p.window,
        n_items=p.n_train,
        seed=seed,
        **_prior_sizes(p, family),
    )


def _prior_sizes(p, family: str) -> dict:
    """What the toy and the music priors of a profile share: model size, batch, schedule."""
    return dict(
        model=p.model(family),
        batch=p.batch,
        lr=p.lr,
        eval_every=p.eval_every,
        eval_items=p.eval_items,
        ckpt_every=p.ckpt_every,
    )


def background_config(profile, family: str, source: str, seed: int = 0) -> RunConfig:
    """The background model of ``family``'s prior for ``source`` (issue 24's likelihood ratio): the
    prior's configuration, trained on windows with ``profile.background_perturb`` of their samples
    replaced by uniform draws. Fine-tune it with :func:`finetune_config` as the prior is."""
    from sepnb.core import profiles

    p = profiles.get(profile)
    return prior_config(p, family, source, seed=seed).replace(perturb=float(p.background_perturb))


def finetune_config(parent: RunConfig, sigma: float, profile, noise_mode: str = "fixed") -> RunConfig:
    """The prior ``parent`` fine-tuned on inputs noised at ``sigma`` (chapter 03).

    Starts from the parent's weights with a fresh optimiser, ``finetune_steps``
    of the profile, a short warm-up and a third of the learning rate.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    return parent.replace(
        sigma=float(sigma),
        parent=parent,
        noise_mode=noise_mode,
        steps=p.finetune_steps,
        lr=parent.lr / 3,
        warmup=min(parent.warmup, 10),
    )


def separator_config(profile, seed: int = 0) -> RunConfig:
    """The supervised Conv-TasNet reference of a profile, trained on toy mixes (chapter 06).

    Two stages: ``tasnet_steps`` on a cosine schedule (its held-out curve is a
    monitor on test windows), then, where the profile has ``tasnet_continue``,
    a continuation from those weights (fresh Adam) that measures its loss on
    held-out *training-split* mixes, halves its step size when that loss
    stalls and stops when it has stopped improving, keeping the best weights
    (the Conv-TasNet paper's recipe). The continuation is returned; its
    ``parent`` is the first stage.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    first = RunConfig(
        family="convtasnet",
        source="mix",
        model=dict(p.tasnet),
        steps=p.tasnet_steps,
        batch=p.batch,
        window=p.window,
        lr=p.tasnet_lr,
        eval_every=p.tasnet_eval_every,
        eval_items=p.tasnet_eval_items,
        ckpt_every=max(p.ckpt_every, p.tasnet_eval_every),
        n_items=p.n_train,
        seed=seed,
    )
    if not p.tasnet_continue:
        return first
    c = p.tasnet_continue
    return first.replace(
        steps=c["steps"],
        lr=c["lr"],
        warmup=min(first.warmup, 10),
        lr_min_ratio=1.0,
        eval_items=c["eval_items"],
        eval_split="val",
        lr_patience=c["lr_patience"],
        stop_patience=c["stop_patience"],
        min_delta=c["min_delta"],
        parent=first,
    )


def variant_config(profile, family: str, source: str, variant: str, seed: int = 0) -> RunConfig:
    """A noise-free toy prior of chapter 05's ``variant`` (one of :data:`VARIANTS`).

    ``"authors-objective"`` (flows): the log-determinant weighted by the
    profile's ``authors_logdet_weight`` in the training loss, as the authors'
    code did; ``"budget"``: ``budget_factor`` times the profile's steps, all
    else (seed, data, learning rate, schedule shape) as the 1x prior;
    ``"authors-data"``: trained on the authors' toy data as run.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {VARIANTS}")
    cfg = prior_config(p, family, source, seed=seed)
    if variant == "authors-objective":
        if family != "flow":
            raise ValueError(
                f"the authors' objective weights a flow's log-determinant: family must be 'flow', got {family!r}"
            )
        return cfg.replace(model={**cfg.model, "logdet_weight": float(p.authors_logdet_weight)})
    if variant == "authors-data":
        return cfg.replace(dataset="toy_authors")
    return cfg.replace(steps=cfg.steps * p.budget_factor)


def variant_runs(profile, seed: int = 0) -> list[tuple[dict, RunConfig]]:
    """Chapter 05's runs, parents first: ``[(what, cfg)]`` (``what`` as in :func:`profile_runs`).

    The flows fine-tuned at every ``sigmas`` level with the authors' noise
    scheme; the flows trained with the authors' objective; the WaveNets
    trained ``budget_factor`` times longer; the flows trained on the authors'
    toy data.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    out = []
    for sigma in p.sigmas:
        for source in SOURCES:
            out.append(
                (
                    {"family": "flow", "source": source, "sigma": float(sigma), "noise_mode": "authors", "seed": seed},
                    finetune_config(prior_config(p, "flow", source, seed=seed), sigma, p, noise_mode="authors"),
                )
            )
    for family, variant in (("flow", "authors-objective"), ("wavenet", "budget"), ("flow", "authors-data")):
        for source in SOURCES:
            out.append(
                (
                    {"family": family, "source": source, "variant": variant, "seed": seed},
                    variant_config(p, family, source, variant, seed=seed),
                )
            )
    return out


def denoiser_config(profile, source: str, seed: int = 0) -> RunConfig:
    """The denoising prior of ``source`` at a profile's sizes (chapter 07): single-source windows only."""
    from sepnb.core import profiles

    p = profiles.get(profile)
    return RunConfig(
        family="denoiser",
        source=source,
        model=dict(p.denoiser),
        steps=p.denoiser_steps,
        batch=p.denoiser_batch,
        window=p.sep_length,
        lr=p.denoiser_lr,
        warmup=50,
        eval_every=p.denoiser_eval_every,
        eval_items=p.eval_items,
        ckpt_every=max(p.ckpt_every, p.denoiser_eval_every),
        n_items=p.n_train,
        seed=seed,
    )


def toy_denoisers(profile, seed: int = 0, progress: bool = True) -> dict:
    """The denoising prior of every toy source at a profile, from the run store: ``{source: (model, history)}``."""
    return {source: get_prior(denoiser_config(profile, source, seed=seed), progress=progress) for source in SOURCES}


def basis_extra_sigmas(profile) -> tuple:
    """The levels of the profile's BASIS schedule (``profile.basis``) that ``profile.sigmas`` lacks:
    chapter 06 fine-tunes the flows there as well, to run BASIS's schedule as BASIS ran it."""
    from sepnb.core import profiles

    p = profiles.get(profile)
    return tuple(s for s in p.basis["sigmas"] if s not in p.sigmas)


def toy_priors(
    profile, seed: int = 0, sigma: float = 0.0, noise_mode: str = "fixed", families=FAMILIES, progress: bool = True
) -> dict:
    """Every toy prior of ``families`` at a profile, from the run store (chapters 02-04).

    Returns ``{(family, source): (model, history)}``; ``sigma > 0`` gives the
    priors fine-tuned at ``sigma`` from the noise-free ones.
    """
    out = {}
    for family in families:
        for source in SOURCES:
            cfg = prior_config(profile, family, source, seed=seed)
            if sigma:
                cfg = finetune_config(cfg, sigma, profile, noise_mode=noise_mode)
            out[(family, source)] = get_prior(cfg, progress=progress)
    return out


def toy_backgrounds(profile, seed: int = 0, sigma: float = 0.0, families=FAMILIES, progress: bool = True) -> dict:
    """The background model of every toy prior of ``families`` (issue 24's likelihood ratio), from the run
    store, trained where it lacks them: ``{(family, source): (model, history)}`` as :func:`toy_priors`,
    ``sigma > 0`` the background fine-tuned at ``sigma`` the way its prior is."""
    out = {}
    for family in families:
        for source in SOURCES:
            cfg = background_config(profile, family, source, seed=seed)
            if sigma:
                cfg = finetune_config(cfg, sigma, profile)
            out[(family, source)] = get_prior(cfg, progress=progress)
    return out


def _music_data(p, music: str, progress: bool) -> dict:
    """The data fields of a profile's music runs: dataset, music (identity + frames), data_root, n_items."""
    root, _ = _music.music_source(p, music, progress=progress)
    frames = _music.frame_settings(p)
    n_frames = len(_music.song_names(root, "train")) * frames["frames_per_song"]
    return dict(
        dataset="music", music={**_music.music_identity(root), "frames": frames}, data_root=str(root), n_items=n_frames
    )


def _music_config(p, family: str, source: str, seed: int, music_data: dict) -> RunConfig:
    return RunConfig(
        family=family,
        source=source,
        steps=p.music_steps,
        window=p.music_window,
        seed=seed,
        **_prior_sizes(p, family),
        **music_data,
    )


def music_prior_config(
    profile, family: str, source: str, seed: int = 0, music: str = "auto", progress: bool = True
) -> RunConfig:
    """The noise-free music prior of ``family`` for the stem ``source`` at a profile (chapter 02).

    ``music`` picks the data as :func:`sepnb.data.music_source` does
    (``"auto"``, ``"musdb"`` or ``"standin"``; the stand-in is written on
    first use). Model size, batch and schedule are the toy priors'; steps
    and window are the profile's ``music_steps`` and ``music_window``; one
    item per training frame (``n_items``).
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    return _music_config(p, family, source, seed, _music_data(p, music, progress))


def music_priors(profile, seed: int = 0, music: str = "auto", families=FAMILIES, progress: bool = True) -> dict:
    """Every noise-free music prior of ``families`` at a profile, from the run store (chapter 02).

    Returns ``{(family, stem): (model, history)}`` for the stems
    ``sepnb.data.MUSIC_SOURCES``, trained on the data ``music`` picks (see
    :func:`music_prior_config`).
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    music_data = _music_data(p, music, progress)
    out = {}
    for family in families:
        for source in musdb.MUSIC_SOURCES:
            out[(family, source)] = get_prior(_music_config(p, family, source, seed, music_data), progress=progress)
    return out


def _standin_music_data(p) -> dict:
    """:func:`_music_data` of the profile's stand-in, without writing it (what the keys need is its parameters)."""
    frames = _music.frame_settings(p)
    params = {**p.standin, "version": musdb._STANDIN_VERSION}
    return dict(
        dataset="music",
        music={"kind": "standin", "standin": params, "frames": frames},
        data_root=str(paths.data_dir() / f"musdb-standin-{p.name}"),
        n_items=int(p.standin["n_train"]) * frames["frames_per_song"],
    )


def _listed_music_data(p, music: str) -> dict:
    """The data fields of a profile's music runs as ``music`` picks them, never writing the stand-in."""
    _music.check_music_choice(music)
    choice = ("musdb" if os.environ.get("MUSDB_PATH") else "standin") if music == "auto" else music
    return _standin_music_data(p) if choice == "standin" else _music_data(p, music, progress=False)


def listed_music_config(profile, family: str, source: str, seed: int = 0, music: str = "auto") -> RunConfig:
    """:func:`music_prior_config` without writing anything: the stand-in's key comes from its parameters.

    What ``sepnb train --all`` lists and :func:`sepnb.load_prior` looks up.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    return _music_config(p, family, source, seed, _listed_music_data(p, music))


def profile_runs(
    profile,
    seed: int = 0,
    music: str = "auto",
    with_music: bool = True,
    with_variants: bool = True,
    with_seeds: bool = True,
) -> list[tuple[dict, RunConfig]]:
    """Every run the chapters ask the store for at a profile, parents first: ``[(what, cfg)]``.

    ``what`` holds the ``sepnb train`` options that name the run (``family``,
    ``source``, ``sigma``, ``noise_mode``, ``music``, ``seed``). The runs are:
    the 8 noise-free toy priors (chapter 02); their fine-tunes at every
    ``profile.sigmas`` level, ``noise_mode="fixed"`` (chapters 03-06; chapter
    03's default ``sigma`` is one of them); the 8 music priors on the data
    ``music`` picks (chapter 02; the stand-in is not written to list them);
    the Conv-TasNet separator (chapter 06); the 4 denoising priors
    (chapter 07); the flows fine-tuned at the levels of the BASIS schedule
    that ``profile.sigmas`` lacks (:func:`basis_extra_sigmas`, chapter 06);
    chapter 05's variants (:func:`variant_runs`; left out
    with ``with_variants=False``); and the noise-free toy priors of the
    other training seeds of ``profile.train_seeds`` (chapter 04's Figure 3 over
    seeds; left out with ``with_seeds=False``). Chapter 01 trains nothing.
    """
    from sepnb.core import profiles

    p = profiles.get(profile)
    out = []
    clean = {}
    for family in FAMILIES:
        for source in SOURCES:
            clean[(family, source)] = cfg = prior_config(p, family, source, seed=seed)
            out.append(({"family": family, "source": source, "seed": seed}, cfg))
    for sigma in p.sigmas:
        for family in FAMILIES:
            for source in SOURCES:
                out.append(
                    (
                        {"family": family, "source": source, "sigma": float(sigma), "seed": seed},
                        finetune_config(clean[(family, source)], sigma, p),
                    )
                )
    if with_music:
        music_data = _listed_music_data(p, music)
        for family in FAMILIES:
            for source in musdb.MUSIC_SOURCES:
                out.append(
                    (
                        {"family": family, "source": source, "music": music, "seed": seed},
                        _music_config(p, family, source, seed, music_data),
                    )
                )
    out.append(({"family": "convtasnet", "source": "mix", "seed": seed}, separator_config(p, seed=seed)))
    for source in SOURCES:
        out.append(({"family": "denoiser", "source": source, "seed": seed}, denoiser_config(p, source, seed=seed)))
    for sigma in basis_extra_sigmas(p):
        for source in SOURCES:
            out.append(
                (
                    {"family": "flow", "source": source, "sigma": float(sigma), "seed": seed},
                    finetune_config(clean[("flow", source)], sigma, p),
                )
            )
    out += variant_runs(p, seed=seed) if with_variants else []
    if with_seeds:
        for s in (s for s in p.train_seeds if s != seed):
            for family in FAMILIES:
                for source in SOURCES:
                    out.append(
                        ({"family": family, "source": source, "seed": s}, prior_config(p, family, source, seed=s))
                    )
    return out
