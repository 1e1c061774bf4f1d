"""``python -m sepnb.book``: execute the chapters and build the book (see :mod:`sepnb.book.build`)."""

import sys

from sepnb.book.build import main

sys.exit(main())
