"""Scores that repair a raw likelihood for out-of-distribution ranking (issue 24; the rules are the
``remedy_*`` rows of ``book/scorecard.yaml``, written before this code).

Every score maps one window ``x [T]`` (a batch ``[B, T]``) and one prior to a number per window,
*higher = more in-class*, so that every AUC and operating point of chapter 04 applies unchanged:

* :func:`loglik`: ``log p(x) / T`` in nats per sample, the paper's score (the baseline);
* :func:`typicality`: ``-| -log p(x) / T - H_p |`` (Nalisnick et al. 2019, one window per test),
  with ``H_p`` the prior's mean negative log-likelihood per sample on reference windows
  (:func:`reference_entropy`);
* :func:`likelihood_ratio`: ``(log p(x) - log q(x)) / T`` against a background model ``q``
  (Ren et al. 2019) trained on windows perturbed by :func:`sepnb.runs.loop.perturb_samples`;
* :func:`complexity`: ``log2 p(x~) / T + L(x) / T`` in bits per sample (Serra et al. 2020, with
  the sign turned), ``x~`` the window quantised to 16 bits and ``L`` its FLAC length
  (:func:`flac_bits`).

The priors are anything with ``log_prob(x) -> [B]`` in nats per window (a density over
``[-1, 1]``, as every prior of the book).

The study of the rules (chapter 09) on top of the scores: :func:`training_windows` (the
reference and validation windows, training-split items no prior was trained on),
:func:`cross_scores` (every score as a :class:`~sepnb.analysis.ood.CrossLikelihood`, so that
chapter 04's AUCs and cluster bootstraps apply unchanged, its log-likelihoods reused),
:func:`min_auc_over_levels`, :func:`operating_points` and :func:`accepted_fraction` (the probe
rows' 5th-percentile operating point), :func:`best_remedy` (the rules' choice on validation
windows), and :class:`LikelihoodRatio`, the ratio as a prior (``log_prob(x, sigma=None)``) for
the samplers.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

__all__ = [
    "QUANT_BITS",
    "loglik",
    "reference_entropy",
    "typicality",
    "likelihood_ratio",
    "flac_bits",
    "complexity",
    "SCORES",
    "all_scores",
    "complexity_from",
    "REFERENCE_ITEMS",
    "VALIDATION_ITEMS",
    "REMEDIES",
    "training_windows",
    "cross_scores",
    "min_auc_over_levels",
    "operating_points",
    "accepted_fraction",
    "best_remedy",
    "LikelihoodRatio",
    "probe_windows",
    "study",
]

#: The compressor's input resolution: windows are quantised to 16-bit PCM before FLAC.
QUANT_BITS = 16


def _windows(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    x = x[None] if x.dim() == 1 else x
    if x.dim() != 2 or x.shape[1] < 1:
        raise ValueError(f"windows must be [T] or [batch, T], got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("windows must be finite")
    return x


@torch.no_grad()
def loglik(prior, x) -> np.ndarray:
    """``log p(x) / T`` per window (nats per sample), float64 ``[B]``."""
    x = _windows(x)
    return (prior.log_prob(x).double() / x.shape[1]).cpu().numpy()


def reference_entropy(prior, reference) -> float:
    """``H_p``: the mean negative log-likelihood per sample of ``prior`` on its reference windows
    (training-split windows of its own source that it was not trained on)."""
    return float(-loglik(prior, reference).mean())


def typicality(prior, x, entropy: float) -> np.ndarray:
    """``-| -log p(x) / T - H_p |`` per window: 0 for a window as typical as the reference, lower the
    further its negative log-likelihood lies from the prior's entropy, on either side."""
    if not math.isfinite(entropy):
        raise ValueError(f"entropy must be finite, got {entropy}")
    return -np.abs(-loglik(prior, x) - entropy)


def likelihood_ratio(prior, background, x) -> np.ndarray:
    """``(log p(x) - log q(x)) / T`` per window (nats per sample)."""
    return loglik(prior, x) - loglik(background, x)


def flac_bits(x, sample_rate: int = 16_000) -> np.ndarray:
    """Bits a lossless audio coder needs per window: each window clipped to [-1, 1], quantised to
    16-bit PCM and written as a FLAC file (soundfile, its default compression), whole file
    (headers included: the same for every window of one length). ``[B]`` integers."""
    import soundfile as sf

    x = _windows(x).double().cpu().numpy()
    pcm = np.round(np.clip(x, -1.0, 1.0) * (2 ** (QUANT_BITS - 1) - 1)).astype(np.int16)
    out = np.empty(len(pcm), dtype=np.int64)
    for i, w in enumerate(pcm):
        buf = io.BytesIO()
        sf.write(buf, w, sample_rate, format="FLAC", subtype="PCM_16")
        out[i] = 8 * len(buf.getvalue())  # (not tell(): the writer seeks back to its header)
    return out


def complexity(prior, x, sample_rate: int = 16_000) -> np.ndarray:
    """``log2 p(x~) / T + L(x) / T`` per window, bits per sample: the prior's code length for the
    16-bit quantised window against the compressor's (higher = the prior explains the window
    better than a generic coder does). ``log p(x~) = log p(x) + T log(2 / 2^16)`` (the density
    times the width of a 16-bit step on [-1, 1])."""
    x = _windows(x)
    return complexity_from(loglik(prior, x), flac_bits(x, sample_rate), x.shape[1])


#: The scores in the rules file's order (its tie-break for the best remedy).
SCORES = ("loglik", "typicality", "llr", "complexity")


def all_scores(prior, x, entropy: float, background=None, sample_rate: int = 16_000) -> dict:
    """Every score of :data:`SCORES` for the windows ``x``, the prior scored once: ``{name: [B]}``.

    ``log p`` is computed once and reused by typicality and complexity; the
    likelihood ratio needs ``background`` (left out without one); the FLAC
    lengths do not depend on the prior, so callers scoring one set of windows
    with many priors may pass them in through :func:`complexity_from`.
    """
    x = _windows(x)
    bg = None if background is None else loglik(background, x)
    return _scores(loglik(prior, x), flac_bits(x, sample_rate), x.shape[1], float(entropy), bg)


def complexity_from(ll: np.ndarray, bits: np.ndarray, length: int) -> np.ndarray:
    """:func:`complexity` from a prior's ``log p / T`` (nats per sample) and the windows' FLAC bits."""
    return (np.asarray(ll, dtype=float) + math.log(2.0 / 2**QUANT_BITS)) / math.log(2.0) + np.asarray(bits) / length


# ----------------------------------------------------------------------------- the study (rules first)

#: Reference windows (typicality's entropy, the probes' operating point): toy training-split items
#: no prior was trained on (the priors see items 0-4999), fixed by the rules before any number.
REFERENCE_ITEMS = range(5128, 5256)
#: Validation windows (the choice of the best remedy, before any test window is scored with it).
VALIDATION_ITEMS = range(5000, 5128)
#: The scores that are remedies (every score but the raw likelihood), in the rules' tie-break order.
REMEDIES = SCORES[1:]


def training_windows(profile, items, seed: int = 0) -> torch.Tensor:
    """``[len(items), 4, ood_length]``: one window of every source from each toy *training*-split item
    of ``items`` (:data:`REFERENCE_ITEMS` or :data:`VALIDATION_ITEMS`), drawn as chapter 04 draws its
    test windows. Clean; noise them with :func:`sepnb.analysis.ood.add_test_noise`."""
    from sepnb.core import profiles
    from sepnb.data import toy

    p = profiles.get(profile)
    items = np.asarray(list(items))
    if items.size == 0 or items.min() < 5000:
        raise ValueError(f"items must be training-split items >= 5000 (no prior was trained on them), got {items}")
    train = toy.ToyWindows("train", window=p.ood_length, n_items=int(items.max()) + 1, seed=seed)
    return train.batch(items)


def cross_scores(ll, bits, length: int, entropies, background=None) -> dict:
    """Every score of :data:`SCORES` on the same windows, as ``{score: CrossLikelihood}``.

    ``ll``: the priors' :class:`~sepnb.analysis.ood.CrossLikelihood` (``log p / T``, chapter 04's
    numbers where they are the same windows); ``bits``: ``{data name: [n]}`` FLAC bits of those
    windows (:func:`flac_bits`; the prior does not enter them); ``length``: the windows' ``T``;
    ``entropies``: ``{prior name: H_p}``;
    ``background``: the background models' cross-likelihood on the same windows, prior ``i``'s
    background in row ``i`` (without it there is no ``llr``).
    """
    from sepnb.analysis.ood import CrossLikelihood

    v = np.asarray(ll.values, dtype=float)
    h = np.array([float(entropies[p]) for p in ll.priors])
    if not np.isfinite(h).all():
        raise ValueError(f"entropies must be finite, got {entropies}")
    bg = None
    if background is not None:
        if list(background.priors) != list(ll.priors) or list(background.data) != list(ll.data):
            raise ValueError("the background's rows and columns must be the priors' (same names, same order)")
        bg = background.values
    b = np.stack([np.asarray(bits[d], dtype=float) for d in ll.data])  # [data, n]
    if b.shape != v.shape[1:]:
        raise ValueError(f"bits must be [n] per data set matching the windows {v.shape[1:]}, got {b.shape}")
    out = {k: CrossLikelihood(a, ll.priors, ll.data) for k, a in _scores(v, b[None], length, h, bg).items()}
    out["loglik"] = ll
    return out


def min_auc_over_levels(crosses, resamples: int = 2000, seed: int = 0):
    """The minimum over noise levels of the mean AUC of each level's priors (the matched diagonal of
    Figure 4, one :class:`~sepnb.analysis.ood.CrossLikelihood` per level, the same test items at every
    level), with its cluster-bootstrap interval, the minimum taken on every draw: ``(Interval, [level
    mean AUC])``."""
    from sepnb.analysis.stats import from_draws, resample_indices

    crosses = list(crosses)
    n = {c.values.shape[-1] for c in crosses}
    if len(n) != 1:
        raise ValueError(f"every level needs the same test items, got {sorted(n)} examples")
    n = n.pop()
    idx = resample_indices(n, resamples, seed)
    means = np.array([c.aucs().mean() for c in crosses])
    draws = np.stack([c.auc_draws(idx).mean(1) for c in crosses]).min(0)
    return from_draws(float(means.min()), draws, n), means.tolist()


def operating_points(reference, quantile: float = 0.05) -> np.ndarray:
    """Per prior, the ``quantile`` of its scores on its own reference windows ``[n_priors, n]``: a window
    scoring at or above it is *accepted* (the rules' 5th-percentile operating point)."""
    r = np.asarray(reference, dtype=float)
    if r.ndim != 2 or r.shape[1] < 2 or not np.isfinite(r).all():
        raise ValueError(f"reference scores must be finite [n_priors, n >= 2], got shape {r.shape}")
    return np.quantile(r, quantile, axis=1)


def accepted_fraction(scores, thresholds, seed: int = 0, resamples: int = 2000):
    """The fraction of (window, prior) pairs accepted, mean over priors: ``scores [n_priors, n]`` of ``n``
    independent windows (probe draws, out-of-project windows), accepted at or above their prior's
    threshold. Its interval is the hull of the bootstrap over windows and the exact interval with
    ``n`` trials (the rules' exact_proportions method)."""
    from sepnb.analysis.stats import cluster_bootstrap, exact_proportion

    s = np.asarray(scores, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    if s.ndim != 2 or t.shape != (s.shape[0],):
        raise ValueError(f"scores must be [n_priors, n] and thresholds [n_priors], got {s.shape} and {t.shape}")
    acc = (np.nan_to_num(s, nan=-np.inf) >= t[:, None]).astype(float).T  # [n windows, priors]; NaN: rejected
    iv = cluster_bootstrap(acc, resamples=resamples, seed=seed)
    return exact_proportion(iv, trials=len(acc))


def best_remedy(min_aucs: dict) -> str:
    """The rules' best remedy of one family: the score of :data:`REMEDIES` with the highest minimum over
    the six levels of the matched-diagonal mean AUC on validation windows, ties to the earlier one."""
    missing = [r for r in REMEDIES if r not in min_aucs]
    if missing:
        raise ValueError(f"best_remedy needs every remedy's value, missing {missing}")
    return max(REMEDIES, key=lambda r: (float(min_aucs[r]), -REMEDIES.index(r)))


class LikelihoodRatio:
    """The likelihood ratio as a prior: ``log_prob(x, sigma=None) = log p(x) - log q(x)`` (Ren et al.
    2019's score times ``T``), for the samplers, whose gradient is ``grad log p - grad log q``.

    ``prior`` and ``background`` are anything the samplers take (a model, or a
    :class:`~sepnb.separation.langevin.NoiseConditionedPrior`); each is scored at ``sigma`` as the
    samplers score a prior.
    """

    def __init__(self, prior, background):
        self.prior, self.background = prior, background

    def log_prob(self, x: torch.Tensor, sigma=None) -> torch.Tensor:
        from sepnb.separation.langevin import _score

        return _score(self.prior, x, sigma) - _score(self.background, x, sigma)

    def modules(self):
        from sepnb.separation.langevin import _modules

        return _modules([self.prior, self.background])


def _scores(ll, bits, length: int, entropies, bg=None) -> dict:
    """Every score of :data:`SCORES` (``llr`` only with ``bg``) from the priors' ``log p / T`` ``ll``
    (priors along its first axis), the backgrounds' ``bg`` (same shape), the windows' FLAC ``bits``
    (broadcastable to ``ll``) and the priors' entropies (one per prior, or one number)."""
    ll = np.asarray(ll, dtype=float)
    h = np.asarray(entropies, dtype=float).reshape(-1, *[1] * (ll.ndim - 1))
    out = {"loglik": ll, "typicality": -np.abs(-ll - h)}
    if bg is not None:
        out["llr"] = ll - np.asarray(bg, dtype=float)
    out["complexity"] = complexity_from(ll, bits, length)
    return out


def probe_windows(profile, seed: int = 0) -> dict:
    """The probes of ``remedy_probes_rejected``: Table 1's ``ood_items`` draws of N(0, 0.5) clipped to
    [-1, 1] (chapter 04's generator, seed + 7, the same draws) and the constant inputs 0, 0.5 and -0.5:
    ``{name: [n, ood_length]}``."""
    from sepnb.core import profiles

    p = profiles.get(profile)
    gen = torch.Generator().manual_seed(seed + 7)
    out = {"N(0, 0.5)": (0.5 * torch.randn(p.ood_items, p.ood_length, generator=gen)).clamp(-1, 1)}
    for c in (0.0, 0.5, -0.5):
        out[f"constant {c:g}"] = torch.full((1, p.ood_length), c)
    return out


def _max_interval(ivs):
    """The rules' interval of a maximum over levels: the maximum of the lows and of the highs."""
    from sepnb.analysis.stats import Interval

    v = max(ivs, key=lambda iv: iv.value)
    return Interval(v.value, max(iv.low for iv in ivs), max(iv.high for iv in ivs), v.n_clusters)


def study(profile, family: str, r04: dict | None = None, seed: int = 0, outside=None, progress: bool = True) -> dict:
    """Issue 24's study of one family at a profile: the results entry :func:`sepnb.analysis.scorecard.
    remedy_rows` judges, plus what the chapter plots (``level_auc``: each score's matched-diagonal mean
    AUC per level on test windows; ``validation_min_auc``; ``entropies``; ``probes_accepted`` per level).

    Loads (or trains) the family's priors and background models at every level (0 and
    ``profile.sigmas``) through the run store. ``r04``: chapter 04's results entry for the same
    profile and seed, whose per-window log-likelihoods of the priors are reused where the windows are
    the same (Figure 3 and Figure 4's diagonal); ``None`` scores them here. ``outside``: ``{name: [n,
    T]}`` out-of-project windows (:mod:`sepnb.data.outside`), ``None`` where the tools are missing.
    """
    from sepnb.analysis import ood
    from sepnb.analysis.ood import CrossLikelihood, add_test_noise, cross_likelihood
    from sepnb.core import profiles
    from sepnb.core.progress import bar as progress_bar
    from sepnb.data import SOURCES
    from sepnb.runs import catalogue

    p = profiles.get(profile)
    levels = [0.0, *map(float, p.sigmas)]
    srcs = list(SOURCES)
    fig3 = ood.fig3_windows(p, seed)
    fig4 = fig3[: p.ood_items]
    ref_clean = training_windows(p, REFERENCE_ITEMS, seed)
    val_clean = training_windows(p, VALIDATION_ITEMS, seed)
    probes = probe_windows(p, seed)
    T = fig3.shape[-1]
    bits_of = {}

    def bits(key, windows):  # FLAC lengths do not depend on the prior: once per window set
        if key not in bits_of:
            bits_of[key] = {s: flac_bits(windows[:, j]) for j, s in enumerate(srcs)}
        return bits_of[key]

    def cross(models, windows):  # [n, 4, T] -> CrossLikelihood of every model on every source
        return cross_likelihood(models, {s: windows[:, j] for j, s in enumerate(srcs)})

    reuse = {"reused": 0, "recomputed": 0}

    def reused(level_index, test, priors, windows):
        """Chapter 04's numbers for these windows where its priors are these (checked on the first two
        items: another store's weights give other numbers), else None (scored afresh)."""
        if r04 is None:
            reuse["recomputed"] += 1
            return None
        if level_index == 0 and test == "fig3":
            v = np.asarray(r04["figure3_per_item"][family], dtype=float)
        else:
            v = np.asarray(r04["figure4_per_item"][family], dtype=float)[level_index, level_index]
        check = cross(priors, windows[:2]).values
        if v.shape[-1] != len(windows) or not np.allclose(v[..., :2], check, rtol=1e-3, atol=1e-3):
            reuse["recomputed"] += 1
            return None
        reuse["reused"] += 1
        return CrossLikelihood(v, srcs, srcs)

    per_level = []
    bar = progress_bar(total=len(levels), desc=f"remedies ({family})", unit="level", disable=not progress)
    for a, sigma in enumerate(levels):
        priors = {
            s: m.eval()
            for (f, s), (m, _) in catalogue.toy_priors(
                p, seed=seed, sigma=sigma, families=(family,), progress=progress
            ).items()
        }
        backs = {
            s: m.eval()
            for (f, s), (m, _) in catalogue.toy_backgrounds(
                p, seed=seed, sigma=sigma, families=(family,), progress=progress
            ).items()
        }
        ref = add_test_noise(ref_clean, sigma, seed)
        ll_ref = np.stack([cross_likelihood({s: priors[s]}, {s: ref[:, j]}).values[0, 0] for j, s in enumerate(srcs)])
        bg_ref = np.stack([cross_likelihood({s: backs[s]}, {s: ref[:, j]}).values[0, 0] for j, s in enumerate(srcs)])
        entropies = {s: float(-ll_ref[j].mean()) for j, s in enumerate(srcs)}
        h = list(entropies.values())
        ref_bits = bits(("ref", sigma), ref)
        ref_scores = _scores(ll_ref, np.stack([ref_bits[s] for s in srcs]), T, h, bg_ref)
        thresholds = {k: operating_points(v) for k, v in ref_scores.items()}

        def scores_of(x):  # [n, T] windows under every prior of the level: {score: [4, n]}
            ll = np.stack([loglik(priors[s], x) for s in srcs])
            return _scores(ll, flac_bits(x), T, h, np.stack([loglik(backs[s], x) for s in srcs]))

        def scored(windows, key, ll=None):
            ll = cross(priors, windows) if ll is None else ll
            return cross_scores(ll, bits(key, windows), T, entropies, background=cross(backs, windows))

        val = add_test_noise(val_clean, sigma, seed)
        test_windows = fig3 if sigma == 0 else add_test_noise(fig4, sigma, seed)
        row = {
            "sigma": sigma,
            "entropies": entropies,
            "validation": scored(val, ("val", sigma)),
            "test": scored(
                test_windows,
                ("fig3" if sigma == 0 else "fig4", sigma),
                reused(a, "fig3" if sigma == 0 else "fig4", priors, test_windows),
            ),
        }
        if sigma == 0:
            row["fig4_test"] = scored(fig4, ("fig4", 0.0), reused(0, "fig4", priors, fig4))
        probe_scores = scores_of(torch.cat(list(probes.values())))
        row["probes_accepted"] = {k: accepted_fraction(v, thresholds[k], seed=seed) for k, v in probe_scores.items()}
        if sigma == 0 and outside is not None:
            row["outside_accepted"] = {}
            row["outside_per_prior"] = {}
            for k, v in scores_of(torch.cat(list(outside.values()))).items():
                row["outside_accepted"][k] = accepted_fraction(v, thresholds[k], seed=seed)
                row["outside_per_prior"][k] = (v >= thresholds[k][:, None]).mean(1).round(4).tolist()
        per_level.append(row)
        bar.update()
    bar.close()

    diag = {k: [r["fig4_test" if r["sigma"] == 0 else "test"][k] for r in per_level] for k in SCORES}
    val_min = {k: min_auc_over_levels([r["validation"][k] for r in per_level], seed=seed) for k in SCORES}
    best = best_remedy({k: val_min[k][0].value for k in REMEDIES})
    noisefree = {k: per_level[0]["test"][k].auc_intervals(seed=seed)[1] for k in SCORES}
    conditioned = {k: min_auc_over_levels(diag[k][1:], seed=seed) for k in SCORES}
    return {
        "family": family,
        "levels": levels,
        "best_remedy": best,
        "validation_min_auc": {k: v[0].to_json() for k, v in val_min.items()},
        "noisefree_auc": {k: v.to_json() for k, v in noisefree.items()},
        "conditioned_min_auc": {k: v[0].to_json() for k, v in conditioned.items()},
        "level_auc": {k: [float(c.aucs().mean()) for c in diag[k]] for k in SCORES},
        "probes_accepted": {k: [r["probes_accepted"][k].to_json() for r in per_level] for k in SCORES},
        "probes_accepted_max": {
            k: _max_interval([r["probes_accepted"][k] for r in per_level]).to_json() for k in SCORES
        },
        "entropies": [r["entropies"] for r in per_level],
        "outside_accepted": (
            {k: v.to_json() for k, v in per_level[0]["outside_accepted"].items()}
            if "outside_accepted" in per_level[0]
            else None
        ),
        "outside_per_prior": per_level[0].get("outside_per_prior"),
        "chapter04_reuse": reuse,
    }
