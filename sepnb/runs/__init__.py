"""Runs, the third layer: a trained prior is a run of the store.

* :mod:`~sepnb.runs.config`: :class:`RunConfig`, everything that defines a run (its key hashes it);
* :mod:`~sepnb.runs.store`: the run store's folders, files and their checks (loads, never trains);
* :mod:`~sepnb.runs.loop`: the training loop; :func:`get_prior` loads a run or trains it;
* :mod:`~sepnb.runs.catalogue`: the runs each chapter needs, as functions of the profile;
* :mod:`~sepnb.runs.lock`, :mod:`~sepnb.runs.schedule`, :mod:`~sepnb.runs.ddp`,
  :mod:`~sepnb.runs.devices`: one process per run, many runs at once, ``torchrun``, the device.

A new experiment's runs are a function in the catalogue (and a line in ``profile_runs``).
"""

from sepnb.runs import store  # the module too (store.load never trains; chapter 08 reads it)
from sepnb.runs.catalogue import *  # noqa: F403
from sepnb.runs.catalogue import __all__ as _catalogue
from sepnb.runs.config import *  # noqa: F403
from sepnb.runs.config import __all__ as _config
from sepnb.runs.devices import *  # noqa: F403
from sepnb.runs.devices import __all__ as _devices
from sepnb.runs.loop import *  # noqa: F403
from sepnb.runs.loop import __all__ as _loop
from sepnb.runs.store import *  # noqa: F403
from sepnb.runs.store import __all__ as _store

__all__ = [*_config, *_devices, *_store, *_loop, *_catalogue, "store"]
