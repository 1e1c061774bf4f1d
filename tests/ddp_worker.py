"""Run by ``torchrun`` in tests/test_ddp.py: train tiny runs data-parallel (gloo on the CPU).

Usage: ``torchrun --standalone --nproc_per_node N tests/ddp_worker.py '<json>'`` where the JSON holds
``configs`` (keyword dicts for tests.test_train.tiny_config), optionally ``stop_after`` and
``pid_dir`` (each rank writes its pid there).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

torch.set_num_threads(1)

from sepnb.runs import ddp, loop, stopping
from tests.test_train import tiny_config  # noqa: E402

spec = json.loads(sys.argv[1])
assert ddp.init_from_env(), "not started by torchrun"
if spec.get("pid_dir"):  # so that the test can kill every rank (torchrun starts them in their own sessions)
    with open(os.path.join(spec["pid_dir"], f"rank{ddp.rank()}.pid"), "w") as f:
        f.write(str(os.getpid()))
try:
    for kw in spec["configs"]:
        try:
            loop.train(tiny_config(**kw), progress=False, stop_after=spec.get("stop_after"))
        except stopping.TrainingInterrupted as err:  # SIGTERM from torchrun: checkpointed, lock released
            print(f"rank {ddp.rank()}: {err}", flush=True)
            sys.exit(stopping.exit_status(err.signum))
    print(f"rank {ddp.rank()} of {ddp.world_size()} done", flush=True)
finally:
    ddp.shutdown()
