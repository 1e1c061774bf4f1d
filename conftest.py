"""Tests run every notebook at the `smoke` profile (the pyro idiom: the
notebook's parameters cell reads SEPNB_PROFILE, which the kernel inherits),
with a run store, a results folder and a data folder of their own, so that they neither use
nor touch `runs/`, `book/results/` and `data/`."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SEPNB_PROFILE", "smoke")
for _var, _prefix in (
    ("SEPNB_RUNS", "sepnb-test-runs-"),
    ("SEPNB_RESULTS", "sepnb-test-results-"),
    ("SEPNB_DATA", "sepnb-test-data-"),
):
    if _var not in os.environ:
        _dir = tempfile.mkdtemp(prefix=_prefix)
        os.environ[_var] = _dir
        atexit.register(shutil.rmtree, _dir, ignore_errors=True)
