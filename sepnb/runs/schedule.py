"""Train many runs at once, several processes sharing the CPU cores (``sepnb train --all --jobs N``).

A small prior uses two CPU cores badly: on this project's 2-core machine a
book-size flow step took 0.21 s with two threads and 0.29 s with one, so two
one-thread processes side by side train more steps per second than one
two-thread process; ``python -m sepnb.bench --jobs 1 2`` measures it on a
slice of the book's runs (1.28 times, ``book/results/bench_jobs_cpu.json``). ``make book``
therefore trains every run its chapters need first, ``JOBS`` at a time, and
then executes the chapters against the filled store.

:func:`train_runs` is the scheduler: a run starts once its ``parent`` (the
noise-free prior of a fine-tune, the first stage of the separator) is
finished; among the runs that may start, the one heading the longest chain of
training (in samples) goes first, so the separator's two stages do not end
up trailing alone. Every run is trained by :func:`sepnb.runs.get_prior` in a
worker process (the store's locks, resumption and checkpoints as always), so
a run's result does not depend on the scheduler, only on its configuration
(and, in the last digits, on the CPU's kernels and threads, as for any run).
Interrupted, it loses at most the steps since each run's last checkpoint;
started again, it resumes them.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time

__all__ = ["train_runs", "default_threads", "chain_cost", "ScheduleError", "ScheduleInterrupted"]


class ScheduleError(RuntimeError):
    """Some runs failed (or were skipped because a run they start from failed); the message lists them."""


class ScheduleInterrupted(RuntimeError):
    """A signal stopped the command: the interrupted runs kept their checkpoints; ``signum`` is the signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def default_threads(jobs: int, cores: int | None = None) -> int:
    """Torch threads per worker: the cores shared out evenly, at least one."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def _samples(cfg) -> int:
    return int(cfg.steps) * int(cfg.batch) * int(cfg.window)


def chain_cost(cfgs: list) -> dict[str, int]:
    """For each run (by key), the training samples of the run plus its longest chain of descendants in ``cfgs``."""
    keys = {c.key(): c for c in cfgs}
    children: dict[str, list[str]] = {k: [] for k in keys}
    for k, c in keys.items():
        if c.parent is not None and c.parent.key() in keys:
            children[c.parent.key()].append(k)
    memo: dict[str, int] = {}

    def cost(k: str) -> int:
        if k not in memo:
            memo[k] = _samples(keys[k]) + max((cost(ch) for ch in children[k]), default=0)
        return memo[k]

    return {k: cost(k) for k in keys}


_BUSY = {"run": False}


def _worker_init(threads: int, env: dict) -> None:
    import signal

    from sepnb.runs import stopping

    os.environ.update(env)
    # Idle, a worker ignores the stop signals (the parent decides; it passes a stop on as
    # stopping.REQUEST); training, it holds the handlers of sepnb.runs.stopping and checkpoints.
    for s in (*stopping.SIGNALS, stopping.REQUEST):
        signal.signal(s, signal.SIG_IGN)
    _watch_parent(os.getppid())
    import torch

    torch.set_num_threads(threads)


def _watch_parent(parent: int) -> None:
    """No worker outlives its parent, even one killed with SIGKILL: when the parent is gone, a training
    worker stops as on a signal (checkpoint, lock released) and any worker then exits."""
    import threading

    from sepnb.runs import stopping

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        if _BUSY["run"]:
            stopping.request()
            t0 = time.monotonic()
            while _BUSY["run"] and time.monotonic() - t0 < stopping.GRACE_S:
                time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="sepnb-watch-parent", daemon=True).start()


def _train_one(cfg) -> float:
    """Seconds to train (or load) ``cfg`` in this worker."""
    from sepnb.runs import loop

    t0 = time.perf_counter()
    _BUSY["run"] = True
    try:
        loop.get_prior(cfg, progress=False)
    finally:
        _BUSY["run"] = False
    return time.perf_counter() - t0


_SEEN: dict[int, list] = {}  # id(pool) -> every worker process it started (the pool forgets them on shutdown)


def _remember(pool) -> None:
    seen = _SEEN.setdefault(id(pool), [])
    seen += [p for p in (getattr(pool, "_processes", None) or {}).values() if p not in seen]


def _close(pool, wait_s: float = 10.0) -> None:
    """Shut the pool down and make sure its workers are gone: idle ones exit on their own, the rest are killed."""
    import signal

    _remember(pool)
    procs = _SEEN.pop(id(pool), [])
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + wait_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.join(5)


def _signal_workers(pool, signum: int) -> None:
    _remember(pool)
    for proc in _SEEN.get(id(pool), []):
        if not proc.is_alive():  # exited (and reaped): its pid may be another process's now
            continue
        try:
            os.kill(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _label(cfg) -> str:
    parts = [cfg.family, cfg.source]
    if cfg.dataset != "toy":
        parts.append(cfg.dataset)
    if cfg.sigma:
        parts.append(f"sigma={cfg.sigma:g}" + ("" if cfg.noise_mode == "fixed" else f" ({cfg.noise_mode})"))
    if cfg.family == "flow" and cfg.model.get("logdet_weight", 1.0) != 1.0:
        parts.append(f"logdet weight {cfg.model['logdet_weight']:g}")
    if cfg.parent is not None and cfg.family == "convtasnet":
        parts.append("continuation")
    parts.append(f"{cfg.steps} steps")
    return " ".join(parts)


def _prepare_music(cfgs: list, say) -> None:
    """Write the music stand-in once, here, before any worker needs it (two workers must not both write it)."""
    from sepnb.data import select

    seen = set()
    for c in cfgs:
        if c.dataset == "music" and c.data_root not in seen:
            seen.add(c.data_root)
            say(f"music data for {c.family}/{c.source}: {c.data_root}")
            select.music_root(c)


def train_runs(cfgs: list, jobs: int = 2, threads: int | None = None, out=None) -> dict:
    """Train every run of ``cfgs`` that the store lacks, ``jobs`` processes at a time; the summary as a dict.

    Finished runs are skipped; a run whose parent is in ``cfgs`` waits for
    it. A failed run does not stop the others, but the runs that start from it
    are skipped; :class:`ScheduleError` lists both at the end. One line per
    run started and finished goes to ``out`` (the terminal's standard error by
    default). Returns ``{"trained": [...], "skipped_done": n, "seconds": wall,
    "jobs": jobs, "threads": threads}``, each trained run with its folder and
    seconds.
    """
    from sepnb.core.checks import check_int
    from sepnb.runs import store

    jobs = check_int(jobs, "jobs", 1)
    threads = default_threads(jobs) if threads is None else check_int(threads, "threads", 1)
    out = sys.stderr if out is None else out

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=out, flush=True)

    unique: dict[str, object] = {}
    for c in cfgs:
        while c is not None:  # a run's missing parent is trained first, by the scheduler
            unique.setdefault(c.key(), c)
            c = c.parent
    done = {k for k, c in unique.items() if (store.run_dir(c) / "final.pt").exists()}
    todo = {k: c for k, c in unique.items() if k not in done}
    summary = {"trained": [], "skipped_done": len(done), "seconds": 0.0, "jobs": jobs, "threads": threads}
    if not todo:
        say(
            f"all {len(unique)} runs are in the store ({store.run_dir(next(iter(unique.values()))).parent})"
            if unique
            else "no runs to train"
        )
        return summary
    say(
        f"training {len(todo)} runs ({len(done)} already in the store), {jobs} at a time with "
        f"{threads} thread{'s' if threads > 1 else ''} each"
    )
    _prepare_music(list(todo.values()), say)
    priority = chain_cost(list(todo.values()))

    trained: set[str] = set()

    def waiting_on(k: str) -> str | None:
        """The key of the unfinished run ``k`` starts from, if any."""
        p = todo[k].parent
        return p.key() if p is not None and p.key() in todo and p.key() not in trained else None

    pending = set(todo)
    failed: dict[str, str] = {}
    running: dict[cf.Future, str] = {}
    started: dict[str, float] = {}
    t0 = time.perf_counter()
    env = {"SEPNB_PROGRESS": "off", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    ctx = multiprocessing.get_context("spawn")  # torch in a forked child of a threaded parent is unsafe
    n_total = len(todo)
    import signal

    from sepnb.runs import stopping

    stop = {"signum": None, "deadline": None}
    interrupted: dict[str, str] = {}
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads, env))

    def on_signal(signum, frame):
        if stop["signum"] is None:
            stop["signum"], stop["deadline"] = signum, time.monotonic() + stopping.GRACE_S
            _signal_workers(pool, stopping.REQUEST)  # each training worker checkpoints and stops
            return
        _signal_workers(pool, signal.SIGKILL)  # a second signal: now (the last checkpoints are intact)
        os._exit(stopping.exit_status(signum))

    previous = {s: signal.signal(s, on_signal) for s in stopping.SIGNALS}
    try:
        # no `with pool`: _close shuts it down without waiting on a worker that will not exit
        while (pending and stop["signum"] is None) or running:
            for k in sorted(pending, key=lambda k: -priority[k]):
                if len(running) >= jobs or stop["signum"] is not None:
                    break
                parent = waiting_on(k)
                if parent in failed:
                    pending.discard(k)
                    failed[k] = f"not started: the run it starts from ({store.run_dir(todo[parent]).name}) failed"
                    continue
                if parent is not None:
                    continue
                pending.discard(k)
                started[k] = time.perf_counter()
                running[pool.submit(_train_one, todo[k])] = k
                _remember(pool)
                say(f"start  {store.run_dir(todo[k]).name}: {_label(todo[k])}")
            if not running:  # nothing can start: only runs whose parent failed were left
                break
            # with a timeout, so that a signal is acted on within a second
            finished, _ = cf.wait(running, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            if stop["signum"] is not None and running:
                _signal_workers(pool, stopping.REQUEST)  # again: a worker may have been between steps of setup
            if stop["signum"] is not None and not finished and time.monotonic() > stop["deadline"]:
                say(f"workers still running {stopping.GRACE_S:g} s after the signal: killed")
                _signal_workers(pool, signal.SIGKILL)
                stop["deadline"] = float("inf")
            for fut in finished:
                k = running.pop(fut)
                name = store.run_dir(todo[k]).name
                try:
                    seconds = fut.result()
                except stopping.TrainingInterrupted as err:
                    interrupted[k] = f"stopped at step {err.step}/{todo[k].steps}, checkpoint kept"
                    say(f"STOPPED {name}: {interrupted[k]}")
                    continue
                except cf.process.BrokenProcessPool:
                    interrupted[k] = "its worker was killed; it resumes from its last checkpoint"
                    say(f"STOPPED {name}: {interrupted[k]}")
                    continue
                except Exception as err:  # noqa: BLE001 -- reported, the others go on
                    failed[k] = f"{type(err).__name__}: {err}"
                    say(f"FAILED {name}: {failed[k]}")
                    continue
                trained.add(k)
                summary["trained"].append({"run": name, "label": _label(todo[k]), "seconds": round(seconds, 1)})
                n = len(summary["trained"])
                say(f"done   {name} in {seconds:.0f} s  [{n}/{n_total}, {time.perf_counter() - t0:.0f} s elapsed]")
    finally:
        _close(pool)
        for s, old in previous.items():
            signal.signal(s, old)
    if stop["signum"] is not None:
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        lines = "\n".join(
            f"  {store.run_dir(todo[k]).name} ({_label(todo[k])}): {why}" for k, why in interrupted.items()
        )
        raise ScheduleInterrupted(
            f"stopped by {signal.Signals(stop['signum']).name} after {summary['seconds']:.0f} s: {len(summary['trained'])} runs "
            f"finished, {len(interrupted)} interrupted"
            + (f":\n{lines}" if lines else "")
            + "\nrun the same command again to resume (finished runs are kept, interrupted ones resume)",
            stop["signum"],
        )
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    say(f"trained {len(summary['trained'])} runs in {summary['seconds']:.0f} s")
    if failed:
        lines = "\n".join(f"  {store.run_dir(todo[k]).name} ({_label(todo[k])}): {why}" for k, why in failed.items())
        raise ScheduleError(
            f"{len(failed)} of {n_total} runs did not finish:\n{lines}\n"
            "fix the cause and run the same command again: finished runs are kept"
        )
    return summary
