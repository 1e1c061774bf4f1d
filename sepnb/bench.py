"""Throughput and memory of the priors: ``python -m sepnb.bench`` (chapter 02).

For each family at the ``smoke``, ``book`` and ``paper`` sizes, and at the
configurations of the public reference implementations (batch 8 x 2048),
it measures on the current device:

* training step throughput (audio samples per second: forward, backward,
  gradient clipping and an Adam step), median of a few steps after warm-up;
* log-likelihood throughput (samples per second, ``log_prob`` under
  ``torch.inference_mode``);
* peak memory: resident set size of a fresh process running the benchmark
  (CPU) or ``torch.cuda.max_memory_allocated`` (GPU).

Each configuration runs in its own subprocess so that peak memory is its own.
The table is printed, followed by the same rows as JSON (``--json PATH``
writes them to a file too). A benchmark is only meaningful on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from . import profiles, train

__all__ = ["CASES", "REFERENCE", "measure", "main"]

#: The public reference implementations timed on the 2-core CPU this book was
#: built on (fp32, 2 threads, batch 8 x 2048, median of 5 steps); from the
#: project's issue tracker. Audio samples per second.
REFERENCE = {
    "ref-flow-4x6-L10": {"what": "FloWaveNet (Kim et al.'s code), 4 blocks x 6 flows, 10-layer couplings, width 32",
                         "train": 6800, "logp": 26600},
    "ref-flow-4x2-L4": {"what": "FloWaveNet, 4 blocks x 2 flows, 4-layer couplings, width 32",
                        "train": 61300, "logp": 182900},
    "ref-wavenet-L10-C32": {"what": "WaveNet (r9y9's wavenet_vocoder), 10 layers, residual 32, mu-law one-hot",
                            "train": 74400, "logp": 128900},
    "ref-wavenet-L30-C64": {"what": "WaveNet, 30 layers (3 stacks), residual 64",
                            "train": 9600, "logp": 30300},
}


def _cases() -> dict:
    cases = {}
    for name in ("smoke", "book", "paper"):
        p = profiles.get(name)
        for family in ("wavenet", "flow"):
            cases[f"{family}-{name}"] = {"family": family, "model": dict(p.model(family)),
                                         "batch": p.batch, "window": p.window}
    ref = {"batch": 8, "window": 2048}
    cases["ref-flow-4x6-L10"] = {"family": "flow", "model": dict(n_blocks=4, n_flows=6, n_layers=10, channels=32,
                                                                   kernel_size=3), **ref}
    cases["ref-flow-4x2-L4"] = {"family": "flow", "model": dict(n_blocks=4, n_flows=2, n_layers=4, channels=32,
                                                                  kernel_size=3), **ref}
    cases["ref-wavenet-L10-C32"] = {"family": "wavenet", "model": dict(n_layers=10, n_stacks=1, channels=32,
                                                                         kernel_size=2), **ref}
    cases["ref-wavenet-L30-C64"] = {"family": "wavenet", "model": dict(n_layers=10, n_stacks=3, channels=64,
                                                                         kernel_size=2), **ref}
    return cases


CASES = _cases()


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def measure(case: dict, steps: int = 5, warmup: int = 2, compile: bool = False) -> dict:
    """Time one configuration in this process; returns a row of the table.

    ``compile=True`` wraps ``loss`` and ``log_prob`` in ``torch.compile`` (inductor),
    to measure what it buys; compilation happens during the warm-up steps.
    """
    dev = train.device()
    torch.manual_seed(0)
    model = train.build_model(case["family"], case["model"]).to(dev)
    if compile:
        model.loss = torch.compile(model.loss)
        model.log_prob = torch.compile(model.log_prob)
    x = (0.8 * torch.sin(torch.linspace(0, 400, case["window"]))).repeat(case["batch"], 1).to(dev)
    x = x + 0.01 * torch.randn_like(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)  # as in sepnb.train
    times = []
    for i in range(warmup + steps):
        _sync(dev)
        t0 = time.perf_counter()
        loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()
        _sync(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    model.eval()
    ltimes = []
    with torch.inference_mode():
        for i in range(warmup + steps):
            _sync(dev)
            t0 = time.perf_counter()
            model.log_prob(x)
            _sync(dev)
            if i >= warmup:
                ltimes.append(time.perf_counter() - t0)
    n = case["batch"] * case["window"]
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "family": case["family"],
        "params": sum(p.numel() for p in model.parameters()),
        "batch": case["batch"],
        "window": case["window"],
        "step_s": statistics.median(times),
        "train_samples_per_s": n / statistics.median(times),
        "logp_samples_per_s": n / statistics.median(ltimes),
        "peak_mem_mb": peak_mb,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "compiled": compile,
    }


def _run_isolated(name: str, steps: int, compile: bool = False) -> dict:
    cmd = [sys.executable, "-m", "sepnb.bench", "--one", name, "--steps", str(steps)]
    out = subprocess.run(cmd + (["--compile"] if compile else []), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark case {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sepnb.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), metavar="CASE", help=f"subset of {list(CASES)}")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per case (median is reported)")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    ap.add_argument("--compile", action="store_true", help="measure with torch.compile (inductor)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(CASES[args.one], steps=args.steps, warmup=4 if args.compile else 2,
                                 compile=args.compile)))
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    rows = {}
    head = f"{'case':<22}{'params':>10}{'batch x window':>16}{'train samp/s':>14}{'logp samp/s':>13}" \
           f"{'peak MB':>9}{'ref train':>11}{'ref logp':>10}"
    print(f"device: {train.device()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (", torch.compile" if args.compile else ""))
    print(head)
    print("-" * len(head))
    for name in args.cases:
        row = _run_isolated(name, args.steps, compile=args.compile)
        ref = REFERENCE.get(name, {})
        row["reference_train_samples_per_s"] = ref.get("train")
        row["reference_logp_samples_per_s"] = ref.get("logp")
        rows[name] = row
        rt = f"{ref['train']:>11,}" if ref else f"{'':>11}"
        rl = f"{ref['logp']:>10,}" if ref else f"{'':>10}"
        print(f"{name:<22}{row['params']:>10,}{row['batch']:>7} x {row['window']:<6}"
              f"{row['train_samples_per_s']:>14,.0f}{row['logp_samples_per_s']:>13,.0f}{row['peak_mem_mb']:>9,.0f}"
              f"{rt}{rl}", flush=True)
    print(json.dumps(rows, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
