"""Priors, the second layer: the model families. A prior is anything with
``log_prob(x, sigma=None) -> Tensor[batch]`` over waveforms ``x [batch, time]``:

* :class:`WaveNet` (:mod:`~sepnb.priors.wavenet`), autoregressive over mu-law classes, as a density;
* :class:`FloWaveNet` (:mod:`~sepnb.priors.flowavenet`), a normalizing flow, exact density;
* :class:`Denoiser` (:mod:`~sepnb.priors.denoiser`), a per-source denoising (score) prior
  with ``score(x, sigma)`` and a likelihood *bound* (chapter 07).

A new family is a module here, one name in :data:`sepnb.runs.config.FAMILIES` (or ``DENOISERS``)
and one branch in :func:`sepnb.runs.config.build_model`. The supervised Conv-TasNet is not a prior:
it lives with the separation methods, as a reference (:mod:`sepnb.separation.convtasnet`).
"""

from sepnb.priors.denoiser import *  # noqa: F403
from sepnb.priors.denoiser import __all__ as _denoiser
from sepnb.priors.flowavenet import *  # noqa: F403
from sepnb.priors.flowavenet import __all__ as _flow
from sepnb.priors.wavenet import *  # noqa: F403
from sepnb.priors.wavenet import __all__ as _wavenet

__all__ = [*_wavenet, *_flow, *_denoiser]
