"""What every layer uses: where things live (:mod:`~sepnb.core.paths`), experiment sizes
(:mod:`~sepnb.core.profiles`), argument checks (:mod:`~sepnb.core.checks`), atomic writes
(:mod:`~sepnb.core.atomic`) and progress bars in the terminal (:mod:`~sepnb.core.progress`).
"""

from sepnb.core import atomic, checks, paths, profiles, progress

__all__ = ["atomic", "checks", "paths", "profiles", "progress"]
