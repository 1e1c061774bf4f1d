"""``python -m sepnb`` is the ``sepnb`` command (also what ``torchrun -m sepnb`` runs)."""

import sys

from .cli import main

sys.exit(main())
