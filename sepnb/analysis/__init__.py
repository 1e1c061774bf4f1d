"""Analysis, the fifth layer: what the chapters conclude from runs and separations.

* :mod:`~sepnb.analysis.ood`: cross-likelihoods, AUCs, the noise grid (chapters 04-05);
* :mod:`~sepnb.analysis.stats`: cluster-bootstrap intervals;
* :mod:`~sepnb.analysis.remedies`: scores that repair a raw likelihood (typicality, likelihood
  ratio, input complexity; issue 24);
* :mod:`~sepnb.analysis.scorecard`: the verdicts, by the rules of ``book/scorecard.yaml``;
* :mod:`~sepnb.analysis.control`: the device control of chapter 05 (``python -m sepnb.analysis.control``);
* :mod:`~sepnb.analysis.failures`: which toy mixes a separation fails and why (issue 23's groups and
  failure taxonomy).
* :mod:`~sepnb.analysis.provenance`: whether a scorecard rule or the result it judges came first,
  read from git (the opening page and chapter 08 show it).

The modules are the public names here (``from sepnb.analysis import ood, scorecard, stats``).
"""

from sepnb.analysis import control, failures, ood, provenance, remedies, scorecard, stats

__all__ = ["control", "failures", "ood", "provenance", "remedies", "scorecard", "stats"]
