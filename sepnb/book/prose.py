"""Numbers for the prose: rounded to what the text prints (every chapter).

A chapter glues a number into its text with ``{glue:text}`name:.2f```; the
stored output holds the glued value itself. Torch picks other kernels on
other CPUs (AVX2, AVX-512, the generic ones), so the last digits of a float
computed from a model differ from machine to machine, and a stored
``-1.6034691035747528`` would fail the comparison on a machine that computes
``-1.6034691333770752``. Gluing the value rounded to the precision the prose
prints stores what the reader sees and nothing more.
"""

from __future__ import annotations

import math

__all__ = ["rounded", "glue_number"]


def rounded(value, decimals: int | None = None, sig: int | None = None) -> float:
    """``value`` rounded to ``decimals`` places (for ``:.Nf``) or ``sig`` significant digits (``:.Ng``, ``:.Ne``)."""
    if (decimals is None) == (sig is None):
        raise ValueError("give exactly one of decimals= (for :.Nf) or sig= (for :.Ng / :.Ne)")
    x = float(value)
    if not math.isfinite(x) or x == 0:
        return x
    if sig is not None:
        decimals = sig - 1 - math.floor(math.log10(abs(x)))
    return round(x, decimals)


def glue_number(name: str, value, decimals: int | None = None, sig: int | None = None) -> float:
    """Glue ``value`` under ``name`` for the prose, rounded (see :func:`rounded`); returns the rounded value."""
    from myst_nb import glue

    x = rounded(value, decimals=decimals, sig=sig)
    glue(name, x, display=False)
    return x
