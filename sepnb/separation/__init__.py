"""Separation, the fourth layer: from a mix and one prior per source to the sources.

* :mod:`~sepnb.separation.langevin`: :func:`separate`, SGLD and annealed Langevin dynamics (chapter 06);
* :mod:`~sepnb.separation.constrained`: :func:`constrained_langevin`, the mix kept exact (chapter 07);
* :mod:`~sepnb.separation.harmonic`: :func:`harmonic_start`, a start from harmonic grouping (chapter 07);
* :mod:`~sepnb.separation.search`: :func:`search_mixes`, candidates of many starts judged by the priors (issue 23);
* :mod:`~sepnb.separation.tuning`: the search's knobs tuned on validation mixes by issue 23's protocol
  (``python -m sepnb.separation.tuning``; a public module of this layer, chapter 08 reads it);
* :mod:`~sepnb.separation.ablation`: issue 23's ablation, every part of the method alone on the same
  test mixes, the references and the truth (a public module of this layer);
* references that bound the problem, not the paper's method: :func:`oracle_mask`
  (:mod:`~sepnb.separation.oracle`) and the supervised :class:`ConvTasNetSeparator`
  (:mod:`~sepnb.separation.convtasnet`);
* :mod:`~sepnb.separation.metrics`: SI-SDR and BSS Eval.
"""

from sepnb.separation.constrained import *  # noqa: F403
from sepnb.separation.constrained import __all__ as _constrained
from sepnb.separation.convtasnet import *  # noqa: F403
from sepnb.separation.convtasnet import __all__ as _convtasnet
from sepnb.separation.harmonic import *  # noqa: F403
from sepnb.separation.harmonic import __all__ as _harmonic
from sepnb.separation.langevin import *  # noqa: F403
from sepnb.separation.langevin import __all__ as _langevin
from sepnb.separation.metrics import *  # noqa: F403
from sepnb.separation.metrics import __all__ as _metrics
from sepnb.separation.oracle import *  # noqa: F403
from sepnb.separation.oracle import __all__ as _oracle
from sepnb.separation.search import *  # noqa: F403
from sepnb.separation.search import __all__ as _search

#: Modules of this layer loaded on first use, not at import: ``python -m sepnb.separation.tuning``
#: would otherwise find its module imported before it runs (runpy's warning).
_LAZY = ("ablation", "tuning")

__all__ = [*_langevin, *_constrained, *_harmonic, *_search, *_oracle, *_convtasnet, *_metrics, *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
