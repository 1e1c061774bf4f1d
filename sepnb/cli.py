"""The ``sepnb`` command: train one prior, list a profile's runs, run the benchmark, build the book.

``sepnb train`` builds exactly the configuration a chapter asks the run store
for (same key, so a notebook later loads what the command trained) and trains,
resumes or loads it. See ``sepnb --help`` and ``sepnb train --help``, and the
README's "Training from the command line".
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

__all__ = ["main", "train_command", "config_from_args"]

_TRAIN_EPILOG = """\
examples:
  sepnb train --profile smoke --family flow --source sine
      the noise-free flow prior of the sine source at the smoke sizes (seconds on a CPU);
      run it again and it loads the finished run instead of training it
  sepnb train --profile book --family wavenet --source saw --sigma 0.129
      the saw WaveNet fine-tuned at sigma 0.129 (chapter 03); trains its noise-free parent first if needed
  sepnb train --profile book --family flow --source drums --music standin
      a music prior (sources bass, drums, vocals, other) on the procedural stand-in for musdb18
  sepnb train --profile book --family convtasnet
      the supervised Conv-TasNet separator of chapter 06 (its source is "mix")
  sepnb train --profile book --family flow --source sine --variant authors-objective
      a chapter-05 variant: the sine flow trained with the authors' objective (or --variant budget:
      a prior trained budget_factor times longer); --noise-mode authors with --sigma: their noise scheme
  sepnb train --profile book --all --jobs 2
      train every run the book's chapters need that the store lacks, two processes at a time with
      one thread each (what make book does first: two one-thread processes train more steps per
      second than one two-thread process on a 2-core CPU)
  sepnb train --profile paper --all
      every run the paper profile needs, with the command that trains each and whether it is
      done, partial (a checkpoint), locked (training now) or missing: hand the commands to
      other machines or a job scheduler; they can share one run store ($SEPNB_RUNS)
  torchrun --nproc_per_node 4 -m sepnb train --profile paper --family flow --source sine
      one prior on 4 GPUs (or 4 CPU processes) with PyTorch DDP: each step's batch is split
      over the processes (the profile's batch must divide by their number)

Several processes (or machines sharing a file system) may use one run store: a run being
trained is locked (lock.json in its folder); another process asking for it waits and then
loads it. The holder refreshes the lock's heartbeat every 30 s; a lock whose heartbeat is over
120 s old (its machine died) or whose process on this machine is gone is taken over with a
message (--break-lock takes any lock over, if you know its process is gone).

SIGTERM or Ctrl-C stops training cleanly: every worker checkpoints, releases its lock and
stops; the command exits with 143 or 130 naming the runs it interrupted; the same command
resumes them. A second signal stops at once (the last checkpoint is intact).
"""


def _profiles():
    from sepnb.core import profiles

    return sorted(profiles.PROFILES)


def _parser() -> argparse.ArgumentParser:
    from sepnb.core import profiles
    from sepnb.data import musdb, toy
    from sepnb.runs import config

    top = argparse.ArgumentParser(
        prog="sepnb",
        description="The book's command line: train the priors of a profile (one command per run), "
        "measure throughput, build the book.",
        epilog="Run `sepnb train --help` for training, with examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from sepnb import __version__

    top.add_argument("--version", action="version", version=f"sepnb {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{train,bench,book,separate}")
    sub.required = True
    t = sub.add_parser(
        "train",
        help="train, resume or load one prior (or list a profile's runs with --all)",
        description="Train, resume or load one run of the run store: the prior a chapter asks for, by the same "
        "configuration (same key, same folder). Prints where the run is and its final held-out loss.",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument(
        "--profile",
        choices=_profiles(),
        default=profiles.default_name(),
        metavar="P",
        help=f"experiment size, one of {_profiles()} (default: $SEPNB_PROFILE or 'book': {profiles.default_name()!r})",
    )
    t.add_argument(
        "--family",
        choices=config.FAMILIES + config.DENOISERS + config.SEPARATORS,
        metavar="F",
        help=f"model family, one of {list(config.FAMILIES + config.DENOISERS + config.SEPARATORS)}",
    )
    t.add_argument(
        "--source",
        metavar="S",
        help=f"the source the prior models: toy {list(toy.SOURCES)}, music {list(musdb.MUSIC_SOURCES)}; "
        f"'mix' (the default) for convtasnet",
    )
    t.add_argument(
        "--sigma",
        type=float,
        default=0.0,
        metavar="X",
        help="fine-tune at this noise level (chapter 03; the chapters use the profile's sigmas, "
        "e.g. 0.01 0.027 0.077 0.129 0.359); 0 (default) is the noise-free prior",
    )
    t.add_argument(
        "--noise-mode",
        choices=config.NOISE_MODES,
        default="fixed",
        metavar="M",
        help=f"how fine-tuning noises its inputs, one of {list(config.NOISE_MODES)} (default: fixed)",
    )
    t.add_argument(
        "--variant",
        choices=config.VARIANTS,
        default=None,
        metavar="V",
        help=f"chapter 05's variant of a noise-free toy prior, one of {list(config.VARIANTS)}: the "
        "authors' flow objective, or the WaveNets' longer training budget",
    )
    t.add_argument(
        "--music",
        choices=("auto", "musdb", "standin"),
        default="auto",
        metavar="M",
        help="music data for music sources: auto (musdb18 if $MUSDB_PATH is set, else the stand-in), "
        "musdb, standin (default: auto)",
    )
    t.add_argument("--seed", type=int, default=0, metavar="N", help="the run's seed (default: 0)")
    t.add_argument(
        "--all",
        action="store_true",
        help="list every run the profile's chapters need, its status and its command; trains nothing "
        "unless --jobs is given",
    )
    t.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="with --all: train every run the store lacks, N processes at a time, the CPU cores shared "
        "out among them (parents first; what make book does first, with N=$(JOBS))",
    )
    t.add_argument("--no-music", action="store_true", help="with --all: leave the music priors out")
    t.add_argument("--runs", metavar="DIR", help="the run store (default: $SEPNB_RUNS, else runs/ in the repository)")
    t.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up (exit 3) if another process still holds the run after this long (default: wait)",
    )
    t.add_argument(
        "--break-lock",
        action="store_true",
        help="take over the run's lock even if another machine (or a live process) holds it",
    )
    t.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="DataLoader processes rendering training batches (default: $SEPNB_WORKERS, "
        "else 0 on the CPU, 4 on CUDA); the batches are the same for any number",
    )
    t.add_argument(
        "--bf16",
        action="store_true",
        help="bfloat16 autocast for the training forward (CUDA only); likelihoods stay float32",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("bench", help="throughput and memory of the priors (python -m sepnb.bench)", add_help=False)
    sub.add_parser("book", help="execute the chapters and build the book (python -m sepnb.book)", add_help=False)
    sub.add_parser("separate", help="separate a toy mix (a 16 kHz mono WAV) into its four sources", add_help=False)
    return top


#: The shortest mix ``sepnb separate`` accepts: 64 ms at 16 kHz (the harmonic fit needs some periods).
MIN_SEPARATE_SAMPLES = 1024


def separate_main(argv) -> int:
    """``sepnb separate IN.wav OUT_DIR``: the four sources of a toy mix as WAV files (sepnb.separate_toy_mixes)."""
    import soundfile as sf
    import torch

    from sepnb.core import profiles
    from sepnb.data.toy import SAMPLE_RATE, SOURCES

    ap = argparse.ArgumentParser(
        prog="sepnb separate",
        description="Separate a toy mix (16 kHz mono WAV, the mean of four toy sources) into its sources with "
        "the book's method and trained denoising priors (never trains); writes OUT_DIR/<source>.wav.",
    )
    ap.add_argument("mix", metavar="IN.wav", help="the mix: 16 kHz, mono, at least 1024 samples")
    ap.add_argument("out", metavar="OUT_DIR", help="folder for sine.wav, square.wav, saw.wav, triangle.wav")
    ap.add_argument("--profile", default=profiles.default_name(), choices=sorted(profiles.PROFILES))
    ap.add_argument("--seed", type=int, default=0, help="the priors' training seed and the sampler's seed")
    ap.add_argument(
        "--method",
        choices=("search", "refine"),
        default=None,
        help="issue 23's model-judged search, or chapter 07's harmonic start and refinement (default: the "
        "search where the profile has its tuned configuration, else chapter 07's method)",
    )
    ap.add_argument("--force", action="store_true", help="overwrite source files already in OUT_DIR")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.method == "search" and profiles.get(args.profile).search is None:
        ap.error(f"profile {args.profile!r} has no tuned search configuration yet; use --method refine")
    try:
        info = sf.info(args.mix)
    except (RuntimeError, OSError) as err:
        ap.error(f"cannot read {args.mix} as audio: {err}")
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        ap.error(
            f"{args.mix} is {info.samplerate} Hz with {info.channels} channel(s); the priors model 16 kHz mono: "
            f"convert it first (e.g. sox IN.wav -r 16000 -c 1 OUT.wav)"
        )
    if info.frames < MIN_SEPARATE_SAMPLES:
        ap.error(f"{args.mix} has {info.frames} samples; at least {MIN_SEPARATE_SAMPLES} (64 ms) are needed")
    out = Path(args.out)
    targets = [out / f"{s}.wav" for s in SOURCES]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.force:
        ap.error(f"{', '.join(existing)} exist(s); nothing was written (use --force to overwrite)")
    from sepnb.api import RunNotFound, separate_toy_mixes

    mix, _ = sf.read(args.mix, dtype="float32")
    try:
        sources = separate_toy_mixes(
            torch.as_tensor(mix), profile=args.profile, seed=args.seed, progress=not args.quiet, method=args.method
        )
    except RunNotFound as err:
        print(f"sepnb separate: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    from sepnb.data.audio import write_wav

    for t, wave in zip(targets, sources):
        write_wav(t, wave.clamp(-1, 1), SAMPLE_RATE)
        print(t)
    return 0


def config_from_args(args, parser=None):
    """The :class:`sepnb.runs.RunConfig` that ``sepnb train`` options name (the chapters' configuration)."""
    from sepnb.data import musdb, toy
    from sepnb.runs import catalogue, config

    def fail(msg):
        if parser is None:
            raise ValueError(msg)
        parser.error(msg)

    if args.family is None:
        fail(
            "--family is required (or --all to list the runs): "
            f"choose one of {list(config.FAMILIES + config.DENOISERS + config.SEPARATORS)}"
        )
    if args.family in config.SEPARATORS:
        if args.source not in (None, "mix"):
            fail(f"--family {args.family} is a separator trained on mixes: --source must be 'mix' (or left out)")
        if args.sigma:
            fail(f"--sigma applies to priors, not to the separator {args.family}")
        return catalogue.separator_config(args.profile, seed=args.seed)
    if args.family in config.DENOISERS:
        if args.source not in toy.SOURCES or args.sigma:
            fail(
                f"--family {args.family} trains on toy sources at every noise level: --source must be one of "
                f"{list(toy.SOURCES)} and --sigma left out"
            )
        return catalogue.denoiser_config(args.profile, args.source, seed=args.seed)
    valid = list(toy.SOURCES) + list(musdb.MUSIC_SOURCES)
    if args.source not in valid:
        fail(f"--source must be one of {valid} for --family {args.family}, got {args.source!r}")
    if args.sigma < 0 or args.sigma != args.sigma:
        fail(f"--sigma must be a number >= 0, got {args.sigma}")
    if getattr(args, "variant", None):
        if args.sigma or args.source not in toy.SOURCES:
            fail(f"--variant {args.variant} is a noise-free toy prior: --source one of {list(toy.SOURCES)}, no --sigma")
        try:
            return catalogue.variant_config(args.profile, args.family, args.source, args.variant, seed=args.seed)
        except ValueError as e:
            fail(str(e))
    if args.source in musdb.MUSIC_SOURCES:
        cfg = catalogue.music_prior_config(args.profile, args.family, args.source, seed=args.seed, music=args.music)
    else:
        cfg = catalogue.prior_config(args.profile, args.family, args.source, seed=args.seed)
    if args.sigma:
        cfg = catalogue.finetune_config(cfg, args.sigma, args.profile, noise_mode=args.noise_mode)
    return cfg


def train_command(what: dict, profile: str) -> str:
    """The ``sepnb train`` command line of a run listed by :func:`sepnb.runs.profile_runs`."""
    cmd = ["sepnb", "train", "--profile", profile, "--family", what["family"]]
    if what["family"] != "convtasnet":
        cmd += ["--source", what["source"]]
    if what.get("sigma"):
        cmd += ["--sigma", f"{what['sigma']:g}"]
    if what.get("noise_mode", "fixed") != "fixed":
        cmd += ["--noise-mode", what["noise_mode"]]
    if what.get("variant"):
        cmd += ["--variant", what["variant"]]
    if what.get("music", "auto") != "auto":
        cmd += ["--music", what["music"]]
    if what.get("seed"):
        cmd += ["--seed", str(what["seed"])]
    return shlex.join(cmd)


def _list(args) -> int:
    from sepnb.core import paths
    from sepnb.runs import catalogue, store

    runs = catalogue.profile_runs(args.profile, seed=args.seed, music=args.music, with_music=not args.no_music)
    print(f"profile {args.profile!r}: {len(runs)} runs, store {paths.runs_dir()}")
    if not args.no_music:
        print("(music priors: on the data --music picks; the stand-in is written by the first music run)")
    counts = {}
    rows = []
    for what, cfg in runs:
        status, detail = store.run_status(cfg)
        counts[status] = counts.get(status, 0) + 1
        rows.append((status, store.run_dir(cfg).name, train_command(what, args.profile), detail))
    width = max(len(r[1]) for r in rows)
    print(f"{'status':8}  {'run folder':{width}}  command")
    for status, folder, cmd, detail in rows:
        print(f"{status:8}  {folder:{width}}  {cmd}" + (f"   # {detail}" if detail else ""))
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    print(
        "Fine-tunes train their noise-free parent first if it is missing; to spread the work, run the "
        "noise-free priors first, or train every missing run here with --all --jobs N."
    )
    return 0


def _train_all(args, parser) -> int:
    from sepnb.runs import catalogue, devices, schedule, stopping

    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if devices.device().type == "cuda" and args.jobs > 1:
        print("sepnb: note: --jobs shares out CPU cores; on a GPU the runs share the one device", file=sys.stderr)
    runs = catalogue.profile_runs(args.profile, seed=args.seed, music=args.music, with_music=not args.no_music)
    try:
        schedule.train_runs([cfg for _, cfg in runs], jobs=args.jobs)
    except schedule.ScheduleError as err:
        print(f"sepnb: {err}", file=sys.stderr)
        return 1
    except schedule.ScheduleInterrupted as err:
        print(f"sepnb: {err}\n  {_resume_command()}", file=sys.stderr)
        return stopping.exit_status(err.signum)
    return 0


def _resume_command() -> str:
    """The command line this process was started with: what resumes an interrupted run."""
    return shlex.join(["sepnb", *_ARGV]) if _ARGV else "the same command"


def _train(args, parser) -> int:
    from sepnb.runs import config, ddp, loop, stopping, store
    from sepnb.runs.lock import LockTimeout

    if args.jobs is not None and not args.all:
        parser.error("--jobs trains every run of the profile: use it with --all")
    if args.all:
        if args.jobs is not None:
            return _train_all(args, parser)
        if ddp.is_main():
            return _list(args)
        return 0
    distributed = ddp.init_from_env()
    try:
        cfg = config_from_args(args, parser)
        world = ddp.world_size()
        try:
            loop.check_training_options(cfg, bf16=args.bf16)  # the checks train() makes, as usage errors
        except ValueError as err:
            parser.error(str(err))
        folder = store.run_dir(cfg)
        if ddp.is_main():
            print(f"run {folder}" + (f" ({world} processes, DDP)" if distributed else ""), flush=True)
        try:
            model, history = loop.get_prior(
                cfg,
                progress=not args.quiet,
                lock_timeout=args.lock_timeout,
                break_lock=args.break_lock,
                workers=args.workers,
                bf16=args.bf16,
            )
        except LockTimeout as err:
            print(f"sepnb: {err}", file=sys.stderr)
            return 3
        except stopping.TrainingInterrupted as err:
            if ddp.is_main():
                print(f"sepnb: {err}\n  resume with: {_resume_command()}", file=sys.stderr, flush=True)
            return stopping.exit_status(err.signum)
        if ddp.is_main():
            unit = config.loss_unit(cfg)
            if history.get("eval"):
                print(
                    f"final held-out loss {history['eval'][-1]:.4f} {unit} after {history['eval_step'][-1]} steps "
                    f"({history.get('seconds', 0.0):.1f} s of training)"
                )
            plateau = history.get("plateau") or {}
            if plateau.get("stopped_at") is not None:
                print(
                    f"stopped by its plateau rule at step {plateau['stopped_at']}; kept the best weights, "
                    f"step {plateau['best_step']}: held-out loss {plateau['best']:.4f} {unit}"
                )
            print(f"done: {folder / 'final.pt'}", flush=True)
        return 0
    finally:
        ddp.shutdown()


_ARGV: list[str] = []  # this invocation's arguments (what resumes it)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _ARGV[:] = argv
    if argv and argv[0] == "bench":
        from sepnb import bench

        return bench.main(argv[1:])
    if argv and argv[0] == "book":
        from sepnb.book import build

        return build.main(argv[1:])
    if argv and argv[0] == "separate":
        return separate_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    if args.runs:
        os.environ["SEPNB_RUNS"] = args.runs
    return _train(args, train_parser)


if __name__ == "__main__":
    sys.exit(main())
