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
# # The toy data
#
# The paper trains one prior per source on two data sets: a toy set of four
# periodic waveforms, and the real music of musdb18 {cite}`rafii2017musdb18`.
# This chapter builds the toy set exactly as section 3.1 of
# {cite}`frank2020problems` describes it, shows what it looks like and sounds
# like, and states the choices the paper leaves open. Everything here comes
# from `sepnb.data`; the data are generated on the fly from a seed, never
# stored.

# %%
import os

import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from sepnb import data, plots, profiles
from sepnb.audio import player

plots.use_style()

# %% tags=["parameters"]
profile = os.environ.get("SEPNB_PROFILE", "book")  # smoke | book | paper
seed = 0  # the data set's seed: the same seed gives the same waveforms

# %%
P = profiles.get(profile)
print(f"profile {P.name!r} ({P.description}), seed {seed}")

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
glue("freq_error_hz", float(freq_error_hz), display=False)
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
glue("full_gb", full_gb, display=False)
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
# ## Summary
#
# - Four sources, one of each waveform per mix, with random frequency,
#   amplitude and phase per source; the mix is their mean.
# - Frequencies are log-uniform over the piano's range; waveforms are not
#   band-limited, so high square and sawtooth waves alias.
# - Items are generated from `(seed, split, index)`; nothing is stored. The
#   training code draws random windows through `sepnb.data.ToyWindows`.
