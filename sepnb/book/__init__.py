"""The book machinery, the last layer: executing the chapters and building the HTML
(:mod:`~sepnb.book.build`, ``python -m sepnb.book``), figures (:mod:`~sepnb.book.plots`) and
numbers glued into the prose (:mod:`~sepnb.book.prose`).
"""

from sepnb.book import plots, prose

__all__ = ["plots", "prose"]
