"""Chapter 05's device control: are the 1x and 4x WaveNets different because of the budget or the device?

Chapter 05's longer-trained WaveNets may be trained on another device than the
book's 1x priors (the run folders say where). This retrains the 1x WaveNet
configurations (the same keys as chapter 02's) in a scratch run store on the
device at hand and scores them exactly as chapter 05 scores both budgets, so
that the chapter can set "1x on this device" beside "1x on that one"::

    python -m sepnb.analysis.control --out book/results/05_device_control.json

It trains 4 priors (seconds on a GPU, about 4 minutes on the 2-core CPU) and
never touches the run store the chapters use.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from sepnb.analysis import ood
from sepnb.analysis.ood import fig3_windows
from sepnb.core import atomic, paths, profiles
from sepnb.data import toy
from sepnb.runs import catalogue, devices, loop


def wavenet_control(profile="book", seed: int = 0) -> dict:
    """Train the 1x WaveNets of ``profile`` in a scratch store on this device and score them (Figure 3 AUCs)."""
    p = profiles.get(profile)
    sources = list(toy.SOURCES)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sepnb-control-") as scratch, paths.environ(SEPNB_RUNS=scratch):
        runs = {s: loop.get_prior(catalogue.prior_config(p, "wavenet", s, seed=seed), progress=False) for s in sources}
    windows = fig3_windows(p, seed)
    r = ood.cross_likelihood({s: m for s, (m, _) in runs.items()}, {s: windows[:, j] for j, s in enumerate(sources)})
    per, mean = r.auc_intervals(resamples=2000, seed=seed)
    dev = devices.device()
    return {
        "what": f"the {p.name} profile's 1x WaveNet priors (chapter 02's configurations) retrained in a scratch "
        "store on this device, scored as chapter 05 scores both budgets",
        "profile": p.name,
        "seed": seed,
        "device": dev.type,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": str(torch.__version__),
        "seconds": round(time.perf_counter() - t0, 1),
        "auc_per_prior": [iv.to_json() for iv in per],
        "auc_mean": mean.to_json(),
        "heldout_final": {s: round(float(h["eval"][-1]), 5) for s, (_, h) in runs.items()},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sepnb.analysis.control", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="book")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="the JSON file to write (refuses to overwrite)")
    args = ap.parse_args(argv)
    if args.out.exists():
        ap.error(f"{args.out} exists; move it away first (nothing is overwritten)")
    result = wavenet_control(args.profile, args.seed)
    atomic.write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"mean AUC {result['auc_mean']} on {result['device_name']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
