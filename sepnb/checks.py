"""Argument checks shared by the package: bad input gets a clear ValueError."""

from __future__ import annotations

from numbers import Integral

__all__ = ["check_int"]


def check_int(value, name: str, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``name`` if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
