# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# (sec-data)=
# # The data
#
# The paper trains one prior per source on two data sets: a toy set of four
# periodic waveforms, and the real music of musdb18 {cite}`rafii2017musdb18`.
# This chapter builds the toy set exactly as section 3.1 of
# {cite}`frank2020problems` describes it, shows what it looks like and sounds
# like, and states the choices the paper leaves open. The toy data come from
# `sepnb.data`; they are generated on the fly from a seed, never stored. The
# last section introduces the music data (`sepnb.music`): musdb18 when a copy
# is given, otherwise a procedurally composed stand-in for it, which is not
# musdb18 and is named as a stand-in wherever it is used.

# %%
import os

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from sepnb import data
from sepnb.book import plots, prose
from sepnb.core import checks, profiles
from sepnb.data import player

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
seed = 0  # the data set's seed: the same seed gives the same waveforms
music = "auto"  # music data: auto (musdb18 if MUSDB_PATH is set, else the stand-in) | musdb | standin

# %%
checks.check_parameters("profile", "seed", "music", seed=seed)  # a misspelt or bad parameter stops here
P = profiles.get(profile)
data.check_music_choice(music)
print(f"profile {P.name!r} ({P.description}), seed {seed}, music {music!r}")

# %% [markdown]
# ## Four waveforms
#
# Each mix holds one of each of four sources: a **sine**, a **square**, a
# **sawtooth** and a **triangle** wave ({numref}`fig-01-periods`, the paper's
# Figure 1). They differ only in shape: the sine is a single partial, the
# square has the odd harmonics falling as $1/n$, the sawtooth all harmonics
# as $1/n$, the triangle the odd harmonics as $1/n^2$. All four cross zero
# rising at phase 0.

# %% mystnb={"figure": {"caption": "One period of each of the four toy waveforms (the paper's Figure 1).", "name": "fig-01-periods"}}
phase = np.linspace(0.0, 1.0, 401)
fig = plots.plot_periods(data.SOURCES, phase, [data.waveform(k, phase) for k in data.SOURCES])

# %% [markdown]
# ## How an item is drawn
#
# For every source of every item the generator draws a frequency $f$ in
# [27 Hz, 4186 Hz] (the range of a piano), an amplitude $A \in [0.8, 1.0]$ and
# a phase $\phi \in [0, 2\pi]$, and renders one second at 16 kHz:
# $s(t) = A\, w(f t / f_s + \phi / 2\pi)$ for the waveform $w$ of the
# source. The mix is the mean of the four sources, the paper's eq. (8):
#
# $$ m = \frac{1}{4} \sum_{i=1}^{4} s_i . $$
#
# Two choices are not in the paper. Frequencies are drawn **log-uniformly**
# (uniform in pitch, as the authors' code drew piano keys); uniform in hertz
# would put most items above 1 kHz. And the waveforms are the naive,
# not band-limited ones, so the harmonics of a high square or sawtooth fold
# back below the Nyquist frequency (8 kHz): the spectra below show it. An
# item is a pure function of (seed, split, index), which is what lets the
# training code draw random windows of a 5000-item set without ever storing
# it.

# %%
mix, sources = data.toy_batch(P.n_show, length=P.item_length, seed=seed, split="test")
params = data.toy_params(np.arange(P.n_show), seed=seed, split="test")
table = pd.DataFrame(
    {
        (name, q): np.round(values[:, j], 2)
        for j, name in enumerate(data.SOURCES)
        for q, values in (("f (Hz)", params.freq), ("A", params.amp), ("phase", params.phase))
    }
)
table.index.name = "test item"
table

# %% mystnb={"figure": {"caption": "The first 10 ms of a few test items: the four sources and their mix (the mean). Rows are items; the table above gives each source's frequency, amplitude and phase.", "name": "fig-01-examples"}}
labels = [f"item {i}" for i in range(P.n_show)]
fig = plots.plot_sources(sources, mix, data.SOURCES, P.sample_rate, ms=10.0, labels=labels)

# %% [markdown]
# ### Are the drawn parameters what the paper specifies?
#
# A check the reader can see: over a larger batch of training items, the
# frequency estimated from the spectrum's peak of each sine should match the
# drawn frequency, every frequency should lie in the range, and every peak
# amplitude in [0.8, 1.0]. (The unit tests in `tests/test_data.py` check the
# same and more, for all four waveforms.)

# %%
check_params = data.toy_params(np.arange(P.n_spectra), seed=seed, split="train")
_, check_sources = data.toy_batch(P.n_spectra, length=P.item_length, seed=seed, split="train")
sines = check_sources[:, 0].numpy()
spectrum = np.abs(np.fft.rfft(sines * np.hanning(sines.shape[-1]), axis=-1))
peak_hz = spectrum.argmax(axis=-1) * P.sample_rate / sines.shape[-1]
freq_error_hz = np.abs(peak_hz - check_params.freq[:, 0]).max()
summary = pd.DataFrame(
    {
        "min f (Hz)": check_params.freq.min(axis=0),
        "max f (Hz)": check_params.freq.max(axis=0),
        "min peak |s|": check_sources.abs().amax(dim=-1).min(dim=0).values.numpy(),
        "max peak |s|": check_sources.abs().amax(dim=-1).max(dim=0).values.numpy(),
    },
    index=list(data.SOURCES),
).round(2)
glue("n_check", P.n_spectra, display=False)
prose.glue_number("freq_error_hz", float(freq_error_hz), decimals=2)
summary

# %% [markdown]
# Over {glue:text}`n_check` training items, the spectral peak of every sine
# lies within {glue:text}`freq_error_hz:.2f` Hz of its drawn frequency (the FFT
# of one second resolves 1 Hz).

# %% mystnb={"figure": {"caption": "The drawn frequencies per source over a batch of training items, on a log axis: flat, because frequencies are uniform in pitch.", "name": "fig-01-frequencies"}}
fig = plots.plot_histograms(
    {name: check_params.freq[:, j] for j, name in enumerate(data.SOURCES)}, "frequency (Hz)", bins=10, log=True
)

# %% [markdown]
# ## Spectra
#
# {numref}`fig-01-spectra` shows the spectrum of each source of test item 0.
# The sine is one line; the square and the triangle have odd harmonics; the
# sawtooth has all of them. Harmonics above 8 kHz alias back into the band:
# the more of them there are (high fundamental, slow harmonic decay), the
# denser the spectrum. This is the data a prior must learn: narrow in shape,
# wide in frequency.

# %% mystnb={"figure": {"caption": "Magnitude spectrum of each source of test item 0; the dashed line marks the drawn fundamental.", "name": "fig-01-spectra"}}
fig = plots.plot_spectra(sources[0], data.SOURCES, P.sample_rate, fundamentals=params.freq[0])

# %% [markdown]
# ## Listen
#
# The four sources of test item 0 and their mix, at their true level (the
# players do not normalise, so the mix, a mean, sounds quieter than its
# sources).

# %%
for j, name in enumerate(data.SOURCES):
    display(Markdown(f"**{name}**, {params.freq[0, j]:.0f} Hz, A = {params.amp[0, j]:.2f}"))
    display(player(sources[0, j], P.sample_rate, seconds=P.clip_seconds))
display(Markdown("**mix** (mean of the four)"))
display(player(mix[0], P.sample_rate, seconds=P.clip_seconds))

# %% [markdown]
# ## The data set
#
# What the toy set holds at this profile. At the paper's size it would take
# {glue:text}`full_gb:.2f` GB as float32 if stored; it is generated on the
# fly instead, item by item.

# %%
n_total = P.n_train + P.n_test
paper = profiles.get("paper")
full_gb = paper.n_train * len(data.SOURCES) * paper.item_length * 4 / 1e9
prose.glue_number("full_gb", full_gb, decimals=2)
pd.DataFrame(
    [
        ("sources", ", ".join(data.SOURCES)),
        ("sample rate", f"{P.sample_rate} Hz"),
        ("item length", f"{P.item_length / P.sample_rate:g} s ({P.item_length} samples)"),
        ("frequency", f"log-uniform in [{data.F_MIN:g}, {data.F_MAX:g}] Hz, per source"),
        ("amplitude", f"uniform in [{data.A_MIN:g}, {data.A_MAX:g}], per source"),
        ("phase", "uniform in [0, 2 pi], per source"),
        ("mix", "mean of the four sources (eq. 8)"),
        ("training mixes", f"{P.n_train}"),
        ("test mixes", f"{P.n_test}"),
        ("audio in total", f"{n_total * P.item_length / P.sample_rate / 3600:.2f} h of mixes"),
        ("paper's training set if stored", f"{full_gb:.2f} GB (float32, sources only)"),
    ],
    columns=["quantity", f"profile {P.name!r}"],
).set_index("quantity")

# %% [markdown]
# (sec-data-music)=
# ## Music: musdb18 or its stand-in
#
# The paper's second data set is musdb18 {cite}`rafii2017musdb18`: 150 songs,
# 100 for training and 50 for testing, each with its mixture and four stems,
# *bass*, *drums*, *vocals* and *other* (every instrument not in the first
# three), as 44.1 kHz stereo. The paper down-samples to 16 kHz and cuts 150
# fixed frames of one second from each song. `sepnb.data.MusicFrames` does
# the same: it averages the two channels to mono, resamples to 16 kHz and cuts
# the frames at evenly spaced positions from the start to the end of each song,
# the same positions in every run, and caches them on disk. The stems keep
# their levels. (The authors' code kept the left channel only and scaled every
# whole stem to a peak of one, which inflates near-silent stems and makes the
# mixture no longer the sum of its stems; `MusicFrames` offers both choices as
# options, `mono="left"` and `normalize="stem_peak"`.)
#
# **The stand-in.** musdb18 cannot be downloaded where this book is built.
# So that the music chapters run anyway, `sepnb.data.make_standin` writes a
# *stand-in* in the folder layout of musdb18's WAV release: procedurally
# composed songs, each with a key, a tempo, a looped four-chord progression, a
# bass line, a drum pattern, a sung-like lead line on a choir or voice sound
# ("vocals") and chords or arpeggios on piano, guitar, strings or a pad
# ("other"), written as MIDI with `pretty_midi` and rendered with the General
# MIDI soundfont that ships with `pretty_midi` (TimGM6mb). Its mixture is the
# sum of its stems. It is **not musdb18**: one synthesised instrument per
# stem, no recorded voices, no production, far less variety. It exercises the
# whole pipeline and gives the priors a harder task than the toy waveforms,
# but a number measured on it says nothing about real music, and every figure
# and table in this book names the data it was made from.
#
# **Using musdb18.** With a copy of musdb18 (either release), point the book
# at the folder that holds its `train/` and `test/`:
# `export MUSDB_PATH=/path/to/musdb18` (the default `music = "auto"` then
# uses it), or run a chapter with `-p music musdb`, which stops with an error
# saying what is missing when `MUSDB_PATH` is not set. `-p music standin`
# forces the stand-in.

# %% tags=["nbval-ignore-output"]
music_root, music_label = data.music_source(P, music)
music_frames = {split: data.load_frames(music_root, split, **data.frame_settings(P))
                for split in ("train", "test")}
print(f"music data: {music_label}")

# %%
test_frames = music_frames["test"]
song = 0
frame = song * test_frames.frames_per_song + test_frames.frames_per_song // 2  # frames are stored song by song
stems, mixture = test_frames.frames[frame], test_frames.mixture[frame]
frame_start_s = float(test_frames.frame_starts[frame]) / test_frames.sample_rate
sum_error = float((test_frames.mixture - test_frames.frames.sum(dim=1)).abs().max())
glue("music_label", music_label, display=False)
glue("music_song", test_frames.songs[song], display=False)
prose.glue_number("music_frame_start", frame_start_s, decimals=1)
prose.glue_number("music_sum_error", sum_error, sig=2)
glue("standin_n_train", P.standin["n_train"], display=False)
glue("standin_n_test", P.standin["n_test"], display=False)
glue("standin_seconds", P.standin["seconds"], display=False)

# %% [markdown]
# The music data of this run: {glue:text}`music_label`.
# {numref}`fig-01-music` is the paper's Figure 2 on these data: the four stems
# and the mixture of the frame of test song *{glue:text}`music_song`* that
# starts {glue:text}`music_frame_start:.1f` s into the song. Over all test
# frames, the mixture differs from the sum of its stems by at most
# {glue:text}`music_sum_error:.2g`: the stand-in's mixture is that sum up to
# 16-bit rounding, while musdb18's is not, as the paper notes, because its
# mixing involves effects such as compression. At this profile the stand-in,
# when used, holds {glue:text}`standin_n_train` training and
# {glue:text}`standin_n_test` test songs of {glue:text}`standin_seconds:g` s.

# %% mystnb={"figure": {"caption": "The paper's Figure 2 on the music data named in the text above (musdb18, or its procedural stand-in when no musdb18 is given): the four stems and the mixture of one one-second frame of one test song (its name and the frame's start label the row).", "name": "fig-01-music"}}
row = f"{test_frames.songs[song]}\n{frame_start_s:.1f} s"
fig = plots.plot_sources(stems[None], mixture[None], data.MUSIC_SOURCES, test_frames.sample_rate,
                         ms=1000 * test_frames.frame_length / test_frames.sample_rate, labels=[row])

# %% [markdown]
# The same frame, as heard: the mixture, then each stem at its level in the
# mix (the players do not normalise).

# %% tags=["nbval-ignore-output"]
# resampled audio: its 16-bit players differ in a few samples between CPUs' kernels, so they are
# not compared; the frame itself is checked here on every machine
assert mixture.shape == stems.shape[1:] and stems.shape[0] == len(data.MUSIC_SOURCES)
assert bool(torch.isfinite(stems).all()) and float((mixture - stems.sum(0)).abs().max()) < 1e-3
display(Markdown(f"**mixture** ({music_label})"))
display(player(mixture, test_frames.sample_rate, seconds=P.clip_seconds))
for j, name in enumerate(data.MUSIC_SOURCES):
    display(Markdown(f"**{name}**"))
    display(player(stems[j], test_frames.sample_rate, seconds=P.clip_seconds))

# %% [markdown]
# What the music data hold at this profile (the paper: 100 training and 50
# test songs, 150 frames of one second each, at 16 kHz).

# %%
music_table = pd.DataFrame(
    {
        split: {
            "songs": len(fr.songs),
            "frames per song": fr.frames_per_song,
            "frames": len(fr),
            "seconds per frame": fr.frame_length / fr.sample_rate,
            "sample rate (Hz)": fr.sample_rate,
            "channels": "mono (mean of left and right)" if fr.mono == "mean" else "left channel",
            "normalisation": fr.normalize or "none (stems keep their levels)",
        }
        for split, fr in music_frames.items()
    }
)
music_table.columns.name = music_label
music_table

# %% [markdown]
# ## Summary
#
# - Four sources, one of each waveform per mix, with random frequency,
#   amplitude and phase per source; the mix is their mean.
# - Frequencies are log-uniform over the piano's range; waveforms are not
#   band-limited, so high square and sawtooth waves alias.
# - Items are generated from `(seed, split, index)`; nothing is stored. The
#   training code draws random windows through `sepnb.data.ToyWindows`.
# - The music data are musdb18 when `MUSDB_PATH` is set, otherwise a
#   procedurally composed stand-in rendered from MIDI, which is not musdb18;
#   `sepnb.music` cuts either into fixed one-second mono frames at 16 kHz and
#   the priors train on random windows of them (`sepnb.data.MusicWindows`).
