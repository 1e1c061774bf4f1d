"""Tests run every notebook at the `smoke` profile (the pyro idiom: the
notebook's parameters cell reads SEPNB_PROFILE, which the kernel inherits),
with a run store of their own so that they neither use nor touch `runs/`."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SEPNB_PROFILE", "smoke")
if "SEPNB_RUNS" not in os.environ:
    _store = tempfile.mkdtemp(prefix="sepnb-test-runs-")
    os.environ["SEPNB_RUNS"] = _store
    atexit.register(shutil.rmtree, _store, ignore_errors=True)
