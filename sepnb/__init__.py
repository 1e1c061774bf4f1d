"""sepnb: the thin package behind the book.

A literate reproduction of Frank & Ilse, *Problems using deep generative models
for probabilistic audio source separation*. The notebooks in ``notebooks/``
import from here; every public function's docstring names the chapter that
introduces it.
"""

__version__ = "0.1.0"
