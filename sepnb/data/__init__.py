"""Data, the first layer: the toy sources (:mod:`~sepnb.data.toy`), musdb18 (:mod:`~sepnb.data.musdb`,
read; :mod:`~sepnb.data.framecache`, cut into cached frames), its procedural stand-in
(:mod:`~sepnb.data.standin`), which of the two a chapter reads (:mod:`~sepnb.data.music`), WAV
files and players (:mod:`~sepnb.data.audio`), and :func:`run_windows`, the one place that turns a
run's configuration into its training windows (:mod:`~sepnb.data.select`); windows from
outside the project, made at run time by espeak-ng and sox (:mod:`~sepnb.data.outside`, issue 24).

A new data set is a module here plus one branch in :func:`run_windows`.
"""

from sepnb.data import outside  # a module of its own: sepnb.data.outside.speech_windows, ...
from sepnb.data.audio import *  # noqa: F403
from sepnb.data.audio import __all__ as _audio
from sepnb.data.framecache import *  # noqa: F403
from sepnb.data.framecache import __all__ as _framecache
from sepnb.data.musdb import *  # noqa: F403
from sepnb.data.musdb import __all__ as _musdb
from sepnb.data.music import *  # noqa: F403
from sepnb.data.music import __all__ as _music
from sepnb.data.select import *  # noqa: F403
from sepnb.data.select import __all__ as _select
from sepnb.data.standin import *  # noqa: F403
from sepnb.data.standin import __all__ as _standin
from sepnb.data.toy import *  # noqa: F403
from sepnb.data.toy import __all__ as _toy

__all__ = [*_toy, *_audio, *_musdb, *_framecache, *_standin, *_music, *_select, "outside"]
