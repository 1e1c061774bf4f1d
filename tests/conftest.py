"""Tests run every notebook at the `smoke` profile (the pyro idiom: the
notebook's parameters cell reads SEPNB_PROFILE, which the kernel inherits)."""

import os

os.environ.setdefault("SEPNB_PROFILE", "smoke")
