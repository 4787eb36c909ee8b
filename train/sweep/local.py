"""The local queue: the sweep's runs as worker processes on this machine (processes x threads
measured once per machine), the runs of one budget sharing a process, children that die with the
sweep, a folder lock against a second sweep, and Ctrl-C that leaves everything resumable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ...core.files import exclusive_lock, write_json
from ..config import RunError
from ..runfolder import EXITS, Interrupted
from .plan import LOGS, RunSpec, SweepPlan, prepare, runs_to_launch, status, write_requests

SWEEP_LOCK = "llmhist sweep"


LAUNCHERS = ("local", "slurm")


def check_launch(launcher: str, workers: int | None = None, threads: int | None = None) -> None:
    """The launch options, checked once for sweep and ablate before any work: the launcher's name,
    and for the local queue the processes x threads against this machine's cores."""
    if launcher not in LAUNCHERS:
        raise RunError(f"--launcher {launcher!r}: use local or slurm")
    if launcher == "local":
        from ..config import usable_cores

        check_workers(workers, threads, usable_cores())


def check_workers(workers: int | None, threads: int | None, cores: int) -> None:
    if workers is not None and not 1 <= workers <= cores:
        raise RunError(f"--workers {workers}: give 1 to {cores} (this machine's usable cores), or leave it out for "
                       "the measured best split")
    if threads is not None and not 1 <= threads <= cores:
        raise RunError(f"--threads {threads}: give 1 to {cores} (this machine's usable cores), or leave it out")
    if workers and threads and workers * threads > cores:
        raise RunError(f"--workers {workers} x --threads {threads} = {workers * threads} threads on {cores} cores; "
                       "lower one of them")


def choose_split(plan: SweepPlan, workers: int | None = None, threads: int | None = None,
                 gpus: list[int] | None = None) -> tuple[int, int | None, str]:
    """(processes, threads per process, how it was chosen) for the local queue: one per GPU; else the
    given values (bounded by the machine); else the measured best split for the plan's median model."""
    from ..device import usable_cores

    cores = usable_cores()
    check_workers(workers, threads, cores)
    if gpus:
        return len(gpus), threads, f"{len(gpus)} GPUs"
    if workers or threads:
        w = workers or max(1, cores // (threads or cores))
        return w, threads or max(1, cores // w), "given"
    mid = plan.runs[len(plan.runs) // 2]
    probe = {"arch": mid.arch, "d_model": mid.d_model, "n_layers": mid.n_layers, "n_heads": mid.n_heads,
             "ctx": int(plan.common.get("ctx", 128)), "batch": int(plan.common.get("batch", 16))}
    w, t, measured = best_split(cores, probe)
    return w, t, ("processes x threads, total tokens/s measured: "
                  + ", ".join(f"{k}: {v:,.0f}" for k, v in measured.items()) + f" -> {w}x{t}")


def best_split(cores: int, probe: dict) -> tuple[int, int, dict]:
    """Processes x threads that gives the most total tokens/s on this CPU, measured: for each split,
    that many concurrent processes timing the sweep's median model (llmhist.train.bench). Cached per machine."""
    from ..data import cache_dir

    key = hashlib.sha256(json.dumps([cores, probe, sys.version, os.uname().machine],
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "splits.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    if key in cache:
        p, t = cache[key]["best"]
        return p, t, cache[key]["measured"]
    measured = {}
    for p in [x for x in (1, 2, 4, 8, 16, 32) if x <= cores and cores % x == 0]:
        t = cores // p
        code = ("import json,sys; from llmhist.train.bench import bench; "
                f"r = bench(**json.loads(sys.argv[1]), threads={t}); print(json.dumps(r['results'][0]['tokens_per_s']))")
        args = {**probe, "steps": 3, "repeats": 1, "device": "cpu", "hf": False}
        procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent)
                 for _ in range(p)]
        total = 0.0
        for pr in procs:
            outp, _ = pr.communicate()
            try:
                total += float(json.loads(outp))
            except (json.JSONDecodeError, TypeError, ValueError):
                pass
        measured[f"{p}x{t}"] = total
    best = max(measured, key=lambda k: measured[k])
    p, t = map(int, best.split("x"))
    cache[key] = {"best": [p, t], "measured": measured}
    write_json(path, cache)
    return p, t, measured


def queue_items(runs: list[RunSpec], workers: int, est: dict[str, float] | None = None,
                max_group_s: float = 120.0) -> list[list[RunSpec]]:
    """The local queue's items: the runs of one budget (group) share a worker process, in chunks small
    enough that `workers` processes stay busy (at least 2 items per worker when there are runs for
    it) and no chunk is estimated above max_group_s; longest first, so the tail is short."""
    est = est or {}
    by_group: dict = {}
    for r in runs:
        by_group.setdefault((r.arch, r.group), []).append(r)
    per_item = max(1, math.ceil(len(runs) / (1 if workers <= 1 else 2 * workers)))  # one worker: one process per group
    items = []
    for group in by_group.values():
        chunk: list[RunSpec] = []
        for r in group:
            cost = sum(est.get(x.name, 0.0) for x in chunk) + est.get(r.name, 0.0)
            if chunk and (len(chunk) >= per_item or cost > max_group_s):
                items.append(chunk)
                chunk = []
            chunk.append(r)
        if chunk:
            items.append(chunk)
    items.sort(key=lambda it: -sum(est.get(r.name, r.C) for r in it))
    return items


def _die_with_parent(parent: int | None = None) -> None:
    """In the child before exec (Linux): get SIGTERM when the parent dies, however it dies (and
    exit at once if it already died between the fork and this call)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the children share the parent's process group, so Ctrl-C reaches them
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _stop(procs, grace: float = 5.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def owner(plan: SweepPlan) -> str:
    """Who holds a sweep folder's lock, as its holder's message names it: the command that runs the plan."""
    return "llmhist ablate" if plan.kind == "ablation" else SWEEP_LOCK


def run_local(folder: Path, plan: SweepPlan, workers: int, threads: int | None, retry_failed: bool = False,
              on_tick=None, gpus: list[int] | None = None, est: dict[str, float] | None = None) -> list[dict]:
    """Run the sweep here: hold the sweep folder's lock (a second sweep on it is refused, naming this
    one), write the plan and each run's run.json, and keep `workers` worker processes busy, each
    training a group of runs (logs/RUN.log per run; a run that fails leaves logs/RUN.failed). On
    SIGINT/SIGTERM the workers are stopped and `Interrupted` (exit 130) says how to resume."""
    folder = Path(folder)
    with exclusive_lock(folder, f"{owner(plan)} (pid {os.getpid()})"):
        prepare(folder, plan)
        return _run_queue(folder, plan, workers, threads, retry_failed, on_tick, gpus, est)


def _run_queue(folder, plan, workers, threads, retry_failed, on_tick, gpus, est) -> list[dict]:
    todo = runs_to_launch(folder, plan, retry_failed)
    queue = queue_items(todo, workers, est)
    active: dict = {}
    free_gpus = list(gpus or [])
    main_thread = threading.current_thread() is threading.main_thread()

    def _signal(signum, frame):
        raise Interrupted(f"interrupted ({signal.Signals(signum).name}); stopped the runs in progress (each keeps "
                          f"its last checkpoint). The sweep is resumable: run the same command again "
                          f"(`llmhist sweep status {folder}` shows where it stands)")

    old = {s: signal.signal(s, _signal) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        while queue or active:
            while queue and len(active) < workers:
                item = queue.pop(0)
                dirs = write_requests(folder, plan, item, threads)
                env = dict(os.environ)
                gpu = None
                if free_gpus:
                    gpu = free_gpus.pop(0)
                    env["CUDA_VISIBLE_DEVICES"] = str(gpu)
                log = open(folder / LOGS / f"worker-{item[0].name}.log", "ab")
                proc = subprocess.Popen([sys.executable, "-m", "llmhist.train.worker", *map(str, dirs),
                                         "--log-dir", str(folder / LOGS)],
                                        stdout=log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=functools.partial(_die_with_parent, os.getpid()))
                active[proc] = (item, log, gpu)
            time.sleep(0.3)
            for proc in [p for p in active if p.poll() is not None]:
                item, log, gpu = active.pop(proc)
                log.close()
                if gpu is not None:
                    free_gpus.append(gpu)
                if proc.returncode not in EXITS:  # killed (OOM, a signal) or interrupted: its runs resume
                    _note_stopped(folder, item, proc.returncode)
            if on_tick:
                on_tick()
    finally:
        _stop(list(active))
        for _, log, _ in active.values():
            log.close()
        for s, h in old.items():
            signal.signal(s, h)
    return status(folder)


def _note_stopped(folder: Path, item: list[RunSpec], code: int) -> None:
    """A worker stopped by a signal (an OOM kill, a preempted node, Ctrl-C) has failed nothing: each
    of its runs keeps its last checkpoint (or was never started) and the same command resumes it,
    so no failure marker is written; the worker's log says what happened."""
    why = f"the worker process ended with {code}" + (f" (signal {signal.Signals(-code).name})" if code < 0 else "")
    with open(folder / LOGS / f"worker-{item[0].name}.log", "a") as log:
        log.write(f"{why}: its runs ({', '.join(r.name for r in item)}) are interrupted, not failed; "
                  "the same command resumes them\n")
