"""The book's figures. One house style (``sepnb.mplstyle``); captions live in
the notebooks' cell metadata, not in plot titles.

Introduced in chapter ``01_data``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = [
    "use_style",
    "SOURCE_COLORS",
    "plot_periods",
    "plot_sources",
    "plot_spectra",
    "plot_histograms",
    "plot_loss_curves",
    "plot_waveform_grid",
    "plot_heatmaps",
    "plot_noise_grid",
]

STYLE = Path(__file__).with_name("sepnb.mplstyle")

#: One colour per source, used in every figure (toy sources, then music stems).
SOURCE_COLORS = {
    "sine": "#1f77b4",
    "square": "#d62728",
    "saw": "#2ca02c",
    "triangle": "#9467bd",
    "mix": "#444444",
    "bass": "#1f77b4",
    "drums": "#d62728",
    "vocals": "#2ca02c",
    "other": "#9467bd",
}


def use_style() -> None:
    """Apply the house style (call once per notebook, in the imports cell)."""
    mpl.style.use(STYLE)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_periods(names, phase, periods):
    """Figure 1: one period of each waveform, one panel each; ``periods[k]`` is sampled at ``phase``."""
    fig, axes = plt.subplots(1, len(names), figsize=(8, 1.9), sharey=True)
    for ax, name, y in zip(axes, names, periods):
        ax.plot(_np(phase), _np(y), color=SOURCE_COLORS.get(name))
        ax.set_title(name)
        ax.set_xlabel("phase (periods)")
        ax.set_ylim(-1.15, 1.15)
    axes[0].set_ylabel("amplitude")
    return fig


def plot_sources(sources, mix, names, sample_rate: int, ms: float = 10.0, labels=None):
    """A grid of examples: one row per item, one column per source plus the mix.

    ``sources`` is ``[n, K, T]``, ``mix`` is ``[n, T]``; the first ``ms``
    milliseconds are drawn. ``labels`` (one string per row) annotate the rows.
    """
    s, m = _np(sources), _np(mix)
    n, k, _ = s.shape
    t = int(round(ms * sample_rate / 1000))
    time_ms = np.arange(t) / sample_rate * 1000
    fig, axes = plt.subplots(n, k + 1, figsize=(8, 1.1 * n + 0.5), sharex=True, sharey=True, squeeze=False)
    for i in range(n):
        for j in range(k + 1):
            ax = axes[i, j]
            y, name = (s[i, j], names[j]) if j < k else (m[i], "mix")
            ax.plot(time_ms, y[:t], color=SOURCE_COLORS.get(name), lw=0.9)
            if i == 0:
                ax.set_title(name)
            if i == n - 1:
                ax.set_xlabel("time (ms)")
        if labels is not None:
            axes[i, 0].set_ylabel(labels[i], fontsize=7)
    axes[0, 0].set_ylim(-1.1, 1.1)
    return fig


def plot_spectra(sources, names, sample_rate: int, fundamentals=None):
    """Magnitude spectrum (dB) of one item's sources ``[K, T]``, one panel per source.

    ``fundamentals`` (Hz, one per source) are marked with a dashed line; every
    other peak is a harmonic or, above the Nyquist frequency, its alias.
    """
    s = _np(sources)
    k, n = s.shape
    win = np.hanning(n)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    fig, axes = plt.subplots(2, (k + 1) // 2, figsize=(8, 3.6), sharex=True, sharey=True, squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.set_visible(False)
            continue
        mag = np.abs(np.fft.rfft(s[j] * win))
        ax.plot(freqs[1:], 20 * np.log10(mag[1:] / mag.max() + 1e-9), color=SOURCE_COLORS.get(names[j]), lw=0.6)
        if fundamentals is not None:
            ax.axvline(fundamentals[j], color="k", ls="--", lw=0.8)
        ax.set_title(names[j] if fundamentals is None else f"{names[j]}, f0 = {fundamentals[j]:.0f} Hz")
        ax.set_xscale("log")
        ax.set_xlim(20, sample_rate / 2)
        ax.set_ylim(-100, 5)
    for ax in axes[-1]:
        ax.set_xlabel("frequency (Hz)")
    for ax in axes[:, 0]:
        ax.set_ylabel("dB re peak")
    return fig


def plot_histograms(values: dict, xlabel: str, bins=30, log: bool = False):
    """Histograms of named 1-D arrays side by side (e.g. drawn frequencies per source)."""
    fig, axes = plt.subplots(1, len(values), figsize=(8, 1.9), sharey=True)
    for ax, (name, v) in zip(np.atleast_1d(axes), values.items()):
        v = _np(v).ravel()
        edges = np.geomspace(v.min(), v.max(), bins + 1) if log else bins
        ax.hist(v, bins=edges, color=SOURCE_COLORS.get(name), alpha=0.85)
        if log:
            ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
    np.atleast_1d(axes)[0].set_ylabel("count")
    return fig


def plot_loss_curves(histories: dict, families, sources, smooth: int = 10):
    """Training (line, moving average) and held-out (dots) loss in nats per sample.

    ``histories[(family, source)]`` is a history dict of :func:`sepnb.runs.train`.
    One panel per family; lower is better (the loss is the negative log-likelihood).
    """
    fig, axes = plt.subplots(1, len(families), figsize=(8, 2.8), squeeze=False)
    for ax, fam in zip(axes[0], families):
        for src in sources:
            h = histories[(fam, src)]
            y = np.asarray(h["train"], dtype=float)
            k = max(1, min(smooth, len(y)))
            ys = np.convolve(y, np.ones(k) / k, mode="valid")
            c = SOURCE_COLORS.get(src)
            ax.plot(np.asarray(h["step"])[k - 1 :], ys, color=c, lw=1, label=src)
            ax.plot(h["eval_step"], h["eval"], "o", color=c, ms=3)
        ax.set_title(fam)
        ax.set_xlabel("training step")
        # symlog: the first steps' losses are tens of nats above the last ones, which a linear axis
        # would squash into a flat line; linear within 1 nat of zero (flow losses go negative)
        ax.set_yscale("symlog", linthresh=1.0)
    axes[0, 0].set_ylabel("loss (nats / sample, symlog)")
    axes[0, -1].legend()
    return fig


def plot_waveform_grid(waves: dict, rows, cols, sample_rate: int, ms: float = 20.0):
    """A grid of waveforms ``waves[(row, col)]`` (``[time]``), first ``ms`` milliseconds."""
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(8, 1.3 * len(rows) + 0.4), sharex=True, sharey=True, squeeze=False
    )
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            y = _np(waves[(r, c)])
            t = min(len(y), int(round(ms * sample_rate / 1000)))
            axes[i, j].plot(np.arange(t) / sample_rate * 1000, y[:t], color=SOURCE_COLORS.get(c), lw=0.8)
            if i == 0:
                axes[i, j].set_title(c)
            if i == len(rows) - 1:
                axes[i, j].set_xlabel("time (ms)")
        axes[i, 0].set_ylabel(r)
    return fig


def _norm(m: np.ndarray):
    """Symmetric-log colour scale (linear within +-1) for values spanning more than 50 nats, else linear."""
    if np.nanmax(m) - np.nanmin(m) > 50:
        return mpl.colors.SymLogNorm(linthresh=1.0, vmin=np.nanmin(m), vmax=np.nanmax(m))
    return None


def plot_heatmaps(
    matrices: dict,
    rows,
    cols,
    fmt: str = "{:.3g}",
    cmap: str = "viridis",
    xlabel: str = "test data",
    ylabel: str = "prior",
    cbar_label: str = "log-lik. / sample",
):
    """One heatmap per entry of ``matrices`` (title -> ``[len(rows), len(cols)]`` array), values written in.

    Rows are priors, columns the test data (the paper's Figures 3 and 4). Each
    panel has its own colour scale: likelihoods differ by orders of magnitude
    between families. A panel whose values span more than 50 nats uses a
    symmetric-log colour scale (linear within +-1), so that one huge negative
    entry does not wash out the rest.
    """
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.3), squeeze=False)
    for ax, (title, m) in zip(axes[0], matrices.items()):
        m = np.asarray(m, dtype=float)
        im = ax.imshow(m, cmap=cmap, norm=_norm(m))
        ax.set_xticks(range(len(cols)), cols, rotation=30)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(False)
        scaled = np.asarray(im.norm(m))  # colour position in [0, 1]
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                light = scaled[i, j] < 0.5
                ax.text(
                    j, i, fmt.format(m[i, j]), ha="center", va="center", fontsize=7, color="white" if light else "black"
                )
        fig.colorbar(im, ax=ax, shrink=0.8, label=cbar_label)
    return fig


def plot_noise_grid(means, prior_sigmas, test_sigmas, names, aucs=None, cmap: str = "viridis"):
    """The paper's Figure 4 for one family: a grid of small cross-likelihood heatmaps.

    ``means[a, b]`` is the ``[prior, data]`` matrix under the priors at noise
    level ``prior_sigmas[a]`` (columns of the grid, left to right) for test
    data noised at ``test_sigmas[b]`` (rows, top to bottom). All panels share
    one colour scale, read off the colour bar on the right (symmetric-log,
    linear within +-1 nat, when the values span more than 50 nats), so panels
    can be compared; the diagonal is outlined in white where the own prior
    ranks first, and ``aucs[a, b]`` (mean AUC) is written above each panel.
    """
    means = np.asarray(means, dtype=float)
    A, B = means.shape[:2]
    norm = _norm(means) or mpl.colors.Normalize(vmin=np.nanmin(means), vmax=np.nanmax(means))
    fig, axes = plt.subplots(B, A, figsize=(1.35 * A + 1.6, 1.35 * B + 0.6), squeeze=False)
    for a in range(A):
        for b in range(B):
            ax, m = axes[b, a], means[a, b]
            ax.imshow(m, cmap=cmap, norm=norm)
            first = m.argmax(axis=0)
            for j, i in enumerate(first):
                if i == j:
                    ax.add_patch(mpl.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="white", lw=1.2))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if aucs is not None:
                ax.set_title(f"AUC {np.mean(aucs[a, b]):.2f}", fontsize=7, pad=2)
            if b == B - 1:
                ax.set_xlabel(f"prior {prior_sigmas[a]:g}" if prior_sigmas[a] else "prior noise-free", fontsize=7)
            if a == 0:
                ax.set_ylabel(f"data {test_sigmas[b]:g}" if test_sigmas[b] else "data clean", fontsize=7)
    fig.text(0.01, 0.99, "rows: prior (" + ", ".join(names) + "); columns: test data", fontsize=7, va="top")
    cbar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.6, pad=0.02)
    cbar.set_label("log-lik. / sample (all panels)", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    return fig
