"""sepnb: the package behind the book, a literate reproduction of Frank & Ilse, *Problems using deep
generative models for probabilistic audio source separation*.

Use a trained prior::

    import sepnb
    flow = sepnb.load_prior("flow", "sine", profile="book")   # never trains; a missing run says how to train it
    x = sepnb.data.toy_batch(4, seed=0)[1][:, 0]              # four sine sources, [4, 16000]
    flow.log_prob(x)                                          # nats per waveform

The layers, in the order data flow (each a sub-package, its public names in its ``__all__``):

* :mod:`sepnb.core`: paths, experiment sizes (profiles), checks, atomic writes, progress;
* :mod:`sepnb.data`: the toy sources, musdb18 and its stand-in, the windows a run trains on;
* :mod:`sepnb.priors`: the model families (WaveNet, FloWaveNet, denoising priors);
* :mod:`sepnb.runs`: the run store, the training loop, the catalogue of the chapters' runs;
* :mod:`sepnb.separation`: Langevin separation, the constrained sampler, the harmonic start,
  the oracle and the supervised reference, the metrics;
* :mod:`sepnb.analysis`: out-of-distribution scores, intervals, the scorecard;
* :mod:`sepnb.book`: executing the chapters into the book, figures, glued numbers.

The names below are the ones a researcher reuses; the chapters import only this package and its
sub-packages' public names.
"""

from sepnb import analysis, book, core, data, priors, runs, separation
from sepnb.api import RunNotFound, load_prior, load_run, prior_config, separate_toy_mixes, train_prior
from sepnb.core.profiles import get as get_profile
from sepnb.priors import Denoiser, FloWaveNet, WaveNet
from sepnb.separation import (
    ConvTasNetSeparator,
    NoiseConditionedPrior,
    annealed_sigmas,
    bss_eval,
    constrained_langevin,
    harmonic_start,
    oracle_mask,
    separate,
    si_sdr,
)

__version__ = "0.1.0"

__all__ = [
    # trained priors
    "load_prior",
    "load_run",
    "train_prior",
    "prior_config",
    "RunNotFound",
    "get_profile",
    # the model families and the supervised reference
    "WaveNet",
    "FloWaveNet",
    "Denoiser",
    "ConvTasNetSeparator",
    # separation
    "separate_toy_mixes",
    "separate",
    "NoiseConditionedPrior",
    "annealed_sigmas",
    "constrained_langevin",
    "harmonic_start",
    "oracle_mask",
    # metrics
    "si_sdr",
    "bss_eval",
    # the layers
    "core",
    "data",
    "priors",
    "runs",
    "separation",
    "analysis",
    "book",
    "__version__",
]
