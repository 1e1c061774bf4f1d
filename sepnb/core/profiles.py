"""Experiment sizes: the one place they live.

Every notebook has a ``parameters`` cell holding ``profile``; it calls
:func:`get` and reads every size from the returned :class:`Profile`. Nothing
about experiment size is typed into a notebook.

* ``smoke``: what ``pytest --nbval`` runs; seconds per notebook on a CPU.
* ``book``: the rendered book on a 2-core CPU.
* ``paper``: the paper's sizes (5000 / 1500 toy mixes of 1 s); meant for a GPU.

The notebooks pick the profile with the pyro idiom
``profile = os.environ.get("SEPNB_PROFILE", "book")``: the tests set
``SEPNB_PROFILE=smoke`` (``tests/conftest.py``), papermill can override it with
``-p profile smoke``.

Introduced in chapter ``01_data``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

__all__ = ["Profile", "PROFILES", "get", "default_name", "ENV_VAR"]

ENV_VAR = "SEPNB_PROFILE"


@dataclass(frozen=True)
class Profile:
    """A named experiment size. Fields are read by the notebooks and by ``sepnb``."""

    name: str
    description: str
    #: Sample rate of every waveform in the book (paper 3.1).
    sample_rate: int = 16_000
    #: Length of one toy item (a "mix of 1 s").
    item_length: int = 16_000
    #: Size of the toy training and test splits (paper: 5000 / 1500).
    n_train: int = 5000
    n_test: int = 1500
    #: How many examples a chapter draws to show (plots, tables).
    n_show: int = 4
    #: Seconds of audio in each embedded player (keeps notebooks light).
    clip_seconds: float = 1.0
    #: Toy items whose spectra are averaged in chapter 01.
    n_spectra: int = 64
    #: Rough wall time of a full book build at this profile, for the README.
    expected_time: str = ""
    #: Prior sizes (constructor keywords of sepnb.priors.WaveNet / FloWaveNet); chapter 02.
    wavenet: dict = field(default_factory=dict)
    flow: dict = field(default_factory=dict)
    #: Training of each noise-free prior: steps of `batch` random windows of `window` samples.
    steps: int = 300
    batch: int = 8
    window: int = 2048
    lr: float = 1e-3
    eval_every: int = 50
    eval_items: int = 16
    ckpt_every: int = 50
    #: Samples drawn from each prior to show and play (chapter 02).
    sample_length: int = 4096
    #: Noise levels of the noise-conditioned priors (paper 3.3) and fine-tuning steps per level (chapter 03).
    sigmas: tuple = (0.01, 0.027, 0.077, 0.129, 0.359)
    finetune_steps: int = 100
    #: Test examples per source, and their length in samples, for the cross-likelihoods (chapters 03, 04).
    ood_items: int = 32
    ood_length: int = 2048
    #: Test items per source for Figure 3 (chapter 04; its first `ood_items` are Figure 4's): one
    #: window of every source per item, distinct items, so intervals can resample items.
    fig3_items: int = 128
    #: Training seeds of the noise-free toy priors whose Figure 3 the scorecard judges over seeds
    #: (book/scorecard.yaml, defaults.training_seeds); seed 0's priors are the ones every other
    #: chapter uses.
    train_seeds: tuple = (0, 1, 2)
    #: Separation (chapter 06): toy test mixes to separate and their length; Langevin steps per
    #: noise level and the step-size scale delta (BASIS: 100 and 3e-5); the single level of
    #: plain SGLD (the authors': 0.1, 300 steps).
    sep_items: int = 4
    sep_length: int = 2048
    sep_steps: int = 60
    sep_delta: float = 3e-5
    sgld_sigma: float = 0.1
    sgld_steps: int = 200
    #: The BASIS schedule as BASIS ran it (ORIGINAL_CODE.md; book/scorecard.yaml, deviation
    #: basis_schedule): 10 geometric levels from 1.0 to 0.01, the paper's five rounded as the
    #: paper rounds them, `steps` per level, on the first `items` test mixes, with the flows
    #: fine-tuned at every level (the five the paper skips are extra fine-tunes).
    basis: dict = field(
        default_factory=lambda: dict(
            sigmas=(1.0, 0.599, 0.359, 0.215, 0.129, 0.077, 0.0464, 0.027, 0.0167, 0.01), steps=100, items=8
        )
    )
    #: The supervised reference separator (torchaudio Conv-TasNet, constructor keywords of
    #: sepnb.priors.ConvTasNetSeparator), its training steps and learning rate.
    tasnet: dict = field(
        default_factory=lambda: dict(
            enc_num_feats=128, msk_num_feats=64, msk_num_hidden_feats=128, msk_num_layers=6, msk_num_stacks=2
        )
    )
    tasnet_steps: int = 1000
    tasnet_lr: float = 1e-3
    #: its loss (negative SI-SDR) is monitored every `tasnet_eval_every` steps on the first
    #: `tasnet_eval_items` test windows (a monitor: nothing is chosen by it)
    tasnet_eval_every: int = 50
    tasnet_eval_items: int = 16
    #: then a continuation until its loss on held-out training-split mixes stops improving
    #: (sepnb.runs.separator_config): at most `steps` more steps at learning rate `lr`, halved after
    #: `lr_patience` evaluations without a gain of more than `min_delta` dB, stopped after
    #: `stop_patience` such evaluations, on `eval_items` mixes. Empty: no continuation.
    tasnet_continue: dict = field(
        default_factory=lambda: dict(steps=100, lr=3e-4, lr_patience=2, stop_patience=4, min_delta=0.05, eval_items=16)
    )
    #: Background models of the likelihood-ratio score (issue 24; book/scorecard.yaml, the remedy
    #: rows): each toy prior's architecture, trained on its source's windows with this share of the
    #: samples replaced by uniform draws (Ren et al. 2019's perturbation, fixed before any result).
    background_perturb: float = 0.2
    #: Chapter 05's variants: the flow objective's weight on the log-determinant in the authors'
    #: code, and how many times the profile's `steps` the longer-trained WaveNets train.
    authors_logdet_weight: float = 0.25
    budget_factor: int = 4
    #: Denoising priors (chapter 07; sepnb.priors.Denoiser keywords), trained on windows of
    #: `sep_length` samples of one source: steps, batch, learning rate, held-out loss every so often.
    denoiser: dict = field(default_factory=lambda: dict(channels=8, layers=8, emb=16))
    denoiser_steps: int = 30
    denoiser_batch: int = 4
    denoiser_lr: float = 2e-3
    denoiser_eval_every: int = 10
    #: Chapter 07's separation: validation mixes (toy training-split items after the first
    #: `n_train`, never seen by a prior); the harmonic grouping's options (sepnb.separation.group);
    #: the constrained sampler's refinement of the grouping (first level chosen on the validation
    #: mixes from `refine_grid`, geometric levels down to `refine_floor`, steps per level, step
    #: factor eta = step * sigma^2) and its run from noise (levels from `noise_sigma_max`).
    val_items: int = 3
    harmonic: dict = field(default_factory=lambda: dict(n_candidates=5, max_harmonics=8))
    refine_grid: tuple = (0.05, 0.1, 0.2)
    refine_sigma: float = 0.05
    refine_floor: float = 0.005
    refine_levels: int = 2
    refine_steps: int = 2
    refine_step: float = 0.5
    noise_sigma_max: float = 1.0
    noise_levels: int = 2
    noise_steps: int = 2
    #: Issue 23's model-judged search: its validation mixes (training-split items from `n_train`
    #: on, the first `val_items` of them chapter 07's) and test mixes (test items from 0 on, the
    #: first `sep_items` of them chapter 06's), as book/scorecard.yaml fixes them.
    search_val_items: int = 3
    search_test_items: int = 4
    #: The search's configuration (keywords of sepnb.separation.SearchConfig) for
    #: sepnb.separate_toy_mixes: at the book's sizes the one the validation record chose
    #: (book/results/07_search_validation.json); None while the record is not complete.
    search: dict | None = None
    #: Music (chapters 01-02, see sepnb.data.music_source). The procedural stand-in for musdb18
    #: used when no musdb18 is given: keywords of sepnb.data.make_standin (songs in train/ and
    #: test/, seconds per song, seed). The paper's musdb18 has 100 / 50 songs of 2.5-10 min.
    standin: dict = field(default_factory=lambda: dict(n_train=12, n_test=4, seconds=30.0, seed=0))
    #: Fixed frames cut from every song (paper: 150 of one second), evenly spaced over the song.
    music_frames: int = 30
    music_frame_seconds: float = 1.0
    #: Training of each music prior (same model sizes, batch and learning rate as the toy priors):
    #: steps, and the window in samples (at most one frame).
    music_steps: int = 300
    music_window: int = 2048
    #: Length in samples of the `ood_items` test windows per stem for the music
    #: cross-likelihoods (chapter 04); at most one frame.
    music_ood_length: int = 2048

    def model(self, family: str) -> dict:
        """The constructor keywords of ``family`` (``"wavenet"`` or ``"flow"``) at this size."""
        if family not in ("wavenet", "flow"):
            raise ValueError(f"unknown model family {family!r}: use 'wavenet' or 'flow'")
        return dict(getattr(self, family))

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (for experiments outside the named sizes)."""
        return dataclasses.replace(self, **changes)


#: Chapter 07's grouping and sampler schedule, the same at the book's and the paper's sizes.
_SEPARATION_06 = dict(
    harmonic=dict(n_candidates=8, max_harmonics=32, sigmas=(0.05, 0.2)),
    refine_levels=8,
    refine_steps=20,
    noise_levels=10,
    noise_steps=20,
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="smoke",
            description="tiny sizes for the tests; seconds per notebook on a CPU",
            n_train=64,
            n_test=16,
            n_show=3,
            clip_seconds=0.25,
            n_spectra=8,
            expected_time="under a minute per notebook",
            wavenet=dict(n_layers=4, n_stacks=1, channels=8, kernel_size=2),
            flow=dict(n_blocks=2, n_flows=2, n_layers=2, channels=8, kernel_size=3),
            steps=20,
            batch=4,
            window=256,
            eval_every=10,
            eval_items=4,
            ckpt_every=10,
            sample_length=256,
            finetune_steps=10,
            ood_items=4,
            ood_length=256,
            fig3_items=6,
            train_seeds=(0, 1),
            sep_items=3,
            sep_length=256,
            sep_steps=3,
            # a fixed tiny configuration for the tests (not tuned)
            search=dict(n_candidates=6, n_sets=2, n_screen=2, brief_steps=2, top_m=1, max_harmonics=16),
            sgld_steps=6,
            basis=dict(sigmas=(1.0, 0.599, 0.359, 0.215, 0.129, 0.077, 0.0464, 0.027, 0.0167, 0.01), steps=2, items=2),
            tasnet=dict(enc_num_feats=16, msk_num_feats=8, msk_num_hidden_feats=16, msk_num_layers=2, msk_num_stacks=1),
            tasnet_steps=20,
            tasnet_eval_every=10,
            tasnet_eval_items=4,
            tasnet_continue=dict(steps=40, lr=3e-4, lr_patience=1, stop_patience=2, min_delta=0.05, eval_items=4),
            standin=dict(n_train=2, n_test=1, seconds=3.0, seed=0),
            music_frames=3,
            music_steps=20,
            music_window=256,
            music_ood_length=256,
        ),
        Profile(
            name="book",
            description="the rendered book on a 2-core CPU",
            n_train=5000,
            n_test=1500,
            n_show=4,
            clip_seconds=1.0,
            n_spectra=64,
            expected_time="about 3 h 25 min on a 2-core CPU from an empty run store",
            wavenet=dict(n_layers=10, n_stacks=1, channels=32, kernel_size=2),
            flow=dict(n_blocks=4, n_flows=4, n_layers=4, channels=32, kernel_size=3),
            # measured (python -m sepnb.bench): ~0.25 s (WaveNet) and ~0.4 s (flow) per step
            # on the 2-core CPU, so the 8 priors train in about 15 minutes
            steps=400,
            batch=8,
            window=2048,
            # stand-in: 16 songs of 30 s render in about 30 s and are cut into 30 disjoint one-second
            # frames each (480 frames, 150 MB in memory); at ~0.22 s (WaveNet) and ~0.45 s (flow)
            # per step, the 8 music priors train 200 steps each in about 9 minutes
            standin=dict(n_train=12, n_test=4, seconds=30.0, seed=0),
            music_frames=30,
            music_steps=200,
            music_window=2048,
            music_ood_length=2048,
            # 32 test mixes: the scorecard's minimum number of clusters for a separation verdict
            sep_items=32,
            # first stage: at 8000 steps it still gained 0.6 dB in the last quarter; 16000 steps take
            # about 27 minutes on the 2-core CPU
            tasnet_steps=16000,
            tasnet_eval_every=400,
            tasnet_eval_items=64,
            # ... where it still gained 0.9 dB in the last quarter, so it continues until its loss on
            # 64 held-out training mixes has not improved by 0.05 dB for 8 evaluations (3200 steps),
            # with its step size halved after 3; at most 20000 more steps (about 35 minutes)
            tasnet_continue=dict(steps=20000, lr=3e-4, lr_patience=3, stop_patience=8, min_delta=0.05, eval_items=64),
            # 118k weights; about 0.15 s per step of 8 windows on the 2-core CPU, 3 minutes a source
            denoiser=dict(channels=32, layers=11, emb=32),
            denoiser_steps=1200,
            denoiser_batch=8,
            denoiser_eval_every=100,
            # chapter 07: the grouping takes about 3.4 s per mix and 160 refinement steps 3.7 s per
            # mix on the 2-core CPU; refine_sigma was chosen on the validation mixes (chapter 07
            # recomputes the choice and checks it)
            val_items=32,
            search_val_items=64,
            search_test_items=64,
            # issue 23's search: the validation record's choice (book/results/07_search_validation.json,
            # the protocol of book/scorecard.yaml; tests/test_tuning.py checks the two agree)
            search=dict(
                n_candidates=8,
                joint_fit=True,
                ratios=(0.5, 2.0),
                n_sets=3,
                criterion_sigmas=(0.05, 0.1),
                brief_steps=20,
                top_m=3,
            ),
            refine_sigma=0.05,
            **_SEPARATION_06,
        ),
        Profile(
            name="paper",
            description="the paper's sizes; meant for a GPU",
            n_train=5000,
            n_test=1500,
            n_show=4,
            clip_seconds=1.0,
            n_spectra=256,
            expected_time="hours on a GPU",
            # the authors' sizes (ORIGINAL_CODE.md): flow 4 blocks x 6 flows, 10-layer width-32
            # couplings, batch 5; WaveNet 3 x 10 layers. Their window of 16384 samples is longer
            # than a 1 s toy item (16000), so windows here are whole items.
            wavenet=dict(n_layers=10, n_stacks=3, channels=64, kernel_size=2),
            flow=dict(n_blocks=4, n_flows=6, n_layers=10, channels=32, kernel_size=3),
            steps=100_000,
            batch=5,
            window=16_000,
            lr=1e-4,
            eval_every=1000,
            eval_items=64,
            ckpt_every=1000,
            sample_length=16_000,
            finetune_steps=20_000,
            ood_items=1500,
            ood_length=16_000,
            fig3_items=1500,
            sep_items=100,
            sep_length=16_000,
            sep_steps=100,
            sgld_steps=300,
            basis=dict(
                sigmas=(1.0, 0.599, 0.359, 0.215, 0.129, 0.077, 0.0464, 0.027, 0.0167, 0.01), steps=100, items=100
            ),
            tasnet=dict(
                enc_num_feats=512, msk_num_feats=128, msk_num_hidden_feats=512, msk_num_layers=8, msk_num_stacks=3
            ),  # torchaudio's defaults (the paper's Conv-TasNet size)
            tasnet_steps=50_000,
            tasnet_eval_every=1000,
            tasnet_eval_items=64,
            tasnet_continue=dict(steps=50_000, lr=3e-4, lr_patience=3, stop_patience=8, min_delta=0.05, eval_items=64),
            # the paper's musdb18 sizes; as a stand-in, 150 songs of 60 s (overlapping frames) take
            # about 8 GB on disk plus 7 GB of frame cache
            standin=dict(n_train=100, n_test=50, seconds=60.0, seed=0),
            music_frames=150,
            music_steps=100_000,
            music_window=16_000,  # one whole frame
            music_ood_length=16_000,
            denoiser=dict(channels=64, layers=12, emb=32),
            denoiser_steps=50_000,
            denoiser_batch=16,
            denoiser_lr=2e-4,
            denoiser_eval_every=1000,
            val_items=100,
            search_val_items=100,
            search_test_items=100,
            **_SEPARATION_06,
        ),
    )
}


def default_name() -> str:
    """The profile named by ``$SEPNB_PROFILE``, else ``"book"``."""
    return os.environ.get(ENV_VAR, "book")


def get(name: str | Profile | None = None) -> Profile:
    """Return the named profile (default: :func:`default_name`).

    Raises ``ValueError`` naming the known profiles for an unknown name.
    """
    if isinstance(name, Profile):
        return name
    if name is None:
        name = default_name()
    if not isinstance(name, str) or name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: choose one of {sorted(PROFILES)} "
            f"(e.g. papermill ... -p profile smoke, or {ENV_VAR}=smoke)"
        )
    return PROFILES[name]
