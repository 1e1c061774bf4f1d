"""Argument checks shared by the package: bad input gets a clear ValueError."""

from __future__ import annotations

import ast
import difflib
from numbers import Integral

__all__ = ["check_int", "check_parameters"]


def check_int(value, name: str, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``name`` if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _injected_parameters() -> list[str]:
    """Names assigned by papermill's injected-parameters cell in this kernel (empty when none ran)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    ip = get_ipython()
    if ip is None:
        return []
    for source in reversed(ip.user_ns.get("In", [])):
        # papermill writes the passed parameters as a cell that starts with this comment
        if source.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return []
            return [
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    return []


def check_parameters(*valid: str, seed=None) -> None:
    """Stop a chapter run with a parameter it does not take (every chapter, after its parameters cell).

    papermill only warns about an unknown name (``-p sigmaa 0.3``) and runs at
    the defaults; this turns it into a ``ValueError`` that lists the valid
    names and suggests the nearest. ``seed``, when given, must be an integer
    >= 0.
    """
    unknown = [name for name in _injected_parameters() if name not in valid]
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(name, valid, n=1))
            else repr(name)
            for name in unknown
        ]
        raise ValueError(f"unknown parameter {', '.join(hints)}: this chapter takes {', '.join(valid)}")
    if seed is not None:
        check_int(seed, "seed", 0)
