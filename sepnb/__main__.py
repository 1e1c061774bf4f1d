"""``python -m sepnb`` is the ``sepnb`` command (also what ``torchrun -m sepnb`` runs)."""

import sys

from sepnb.cli import main

sys.exit(main())
