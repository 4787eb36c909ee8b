"""Sweeps: plan the runs scaling laws are fitted to, run them (locally in parallel, or on Slurm
through submitit), stop and restart without losing work.

A sweep is a folder: plan.json (the plan and its hash), one run folder per run (as `llmhist
train` writes it) and logs/. The same command again skips finished runs, resumes interrupted ones
(each run resumes from its own checkpoint) and retries failed ones when asked; a folder of another
plan is refused before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmhist.archs import accounting
from llmhist.archs.registry import build_spec, template
from llmhist.archs.spec import SpecError

from llmhist.files import write_json

from .loop import EXIT_DIVERGED, RunError

PLAN_VERSION = 1
MIN_LAYERS, MAX_LAYERS = 1, 48


@dataclass(frozen=True)
class RunSpec:
    name: str
    arch: str
    d_model: int
    n_layers: int
    n_heads: int
    tokens: int
    N: int  # total parameters (6N convention, embeddings included)
    C: float  # 6 N D, the budget this run belongs to
    group: str = ""  # budget label (isoFLOP) or size label (ladder)
    schedule: str = "cosine"
    branches: str = ""  # wsd: extra horizons (fractions of tokens), each a decay branch of this run

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.N


@dataclass
class SweepPlan:
    kind: str  # isoflop | ladder | grid
    runs: list[RunSpec]
    common: dict = field(default_factory=dict)  # options every run shares (ctx, batch, data, seed, ...)

    def to_dict(self) -> dict:
        d = {"version": PLAN_VERSION, "kind": self.kind, "common": self.common, "runs": [asdict(r) for r in self.runs]}
        d["hash"] = hashlib.sha256(json.dumps({k: d[k] for k in ("version", "kind", "common", "runs")},
                                              sort_keys=True).encode()).hexdigest()[:16]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepPlan":
        return cls(kind=d["kind"], runs=[RunSpec(**r) for r in d["runs"]], common=d["common"])


# ------------------------------------------------------------------------- shapes


def shape_ladder(arch: str, vocab: int = 256, ctx: int = 128) -> list[tuple[int, int, int, int]]:
    """Candidate (d_model, n_layers, n_heads, N) for a family, in the proportions of its small sizes:
    head width 8 below d_model 32, 16 below 128, 32 up to 256 and 64 above (whole heads, the family's GQA ratio kept), and
    aspect ratios d_model / n_layers between 16 and 64 (Kaplan et al. 2020, Fig. 5: loss is flat
    over a wide range of shapes at fixed N), so N grows in small steps from ~10^4 to ~10^8."""
    base = template(arch)
    ratio = base.n_heads // base.kv_heads if base.kv_heads not in (1, base.n_heads) else 1
    out, seen = [], set()
    for d in [16, 24] + list(range(32, 257, 16)) + list(range(288, 1025, 32)):
        hd = 8 if d < 32 else 16 if d < 128 else (32 if d <= 256 else 64)
        if d % hd:
            continue
        h = d // hd
        if ratio > 1:  # keep GQA r:1 with at least two KV heads (one would be MQA), heads >= 8 wide
            h = ratio * max(2, h // ratio)
            if d % h or (d // h) % 2 or d // h < 8:
                continue
        for L in range(max(MIN_LAYERS, math.ceil(d / 64)), min(MAX_LAYERS, d // 16) + 1):
            if (d, L, h) in seen:
                continue
            try:
                a = build_spec(arch, d_model=d, n_layers=L, n_heads=h, vocab_size=vocab, ctx_len=ctx)
            except SpecError:
                continue
            seen.add((d, L, h))
            out.append((d, L, h, accounting.params(a).active))
    return sorted(out, key=lambda s: s[3])


def _prefer_aspect(ladder, target_N, tol=0.08):
    """Among shapes within tol (in log N) of the target, the one closest to aspect ratio 32."""
    best = min(ladder, key=lambda s: abs(math.log(s[3] / target_N)))
    close = [s for s in ladder if abs(math.log(s[3] / target_N)) <= abs(math.log(best[3] / target_N)) + tol]
    return min(close, key=lambda s: abs(math.log(s[0] / s[1] / 32)))


def _nearest(ladder, target_N):
    return _prefer_aspect(ladder, target_N)


def plan_isoflop(archs: list[str], budgets: list[float], points: int = 7, spread: float = 16.0,
                 ctx: int = 128, batch: int = 16, vocab: int = 256, common: dict | None = None) -> SweepPlan:
    """Chinchilla Approach 2: per budget C, `points` sizes log-spaced over `spread` (max/min N)
    centred on the expected optimum N ~ sqrt(C / 120) (20 tokens per parameter), D = C / 6N."""
    if points < 3:
        raise RunError(f"--points {points}: an isoFLOP parabola needs at least 3 sizes per budget (5-9 is usual)")
    if spread < 2:
        raise RunError(f"--spread {spread}: sizes must span at least a factor 2 to bracket an optimum")
    if not budgets or any(not (c > 0 and math.isfinite(c)) for c in budgets):
        raise RunError(f"--budgets {budgets}: give positive FLOP budgets, e.g. 1e13,3e13,1e14")
    runs = []
    step_tokens = ctx * batch
    for arch in archs:
        ladder = shape_ladder(arch, vocab, ctx)
        for C in sorted(budgets):
            n_mid = math.sqrt(C / 120)
            targets = [n_mid * spread ** (i / (points - 1) - 0.5) for i in range(points)]
            chosen = []
            for t in targets:
                s = _nearest(ladder, t)
                if s not in chosen:
                    chosen.append(s)
            kept = [s for s in chosen if C / (6 * s[3]) >= 4 * step_tokens]  # at least 4 optimizer steps
            if len(kept) < 3:
                raise RunError(
                    f"budget C={C:.3g} is too small for {arch}: only {len(kept)} distinct model sizes get at least "
                    f"4 optimizer steps ({step_tokens} tokens each) of the {len(chosen)} planned; the smallest "
                    f"{arch} model has N={ladder[0][3]:,} and needs C >= {6 * ladder[0][3] * 4 * step_tokens:.2g}. "
                    "Raise the budget, or lower --batch/--ctx")
            lo, hi = kept[0][3], kept[-1][3]
            if not (lo < n_mid < hi):
                raise RunError(f"budget C={C:.3g}: the sizes available ({lo:,}-{hi:,}) cannot bracket the expected "
                               f"optimum N~{n_mid:,.0f}; change the budget or widen --spread")
            for d, L, h, N in kept:
                D = int(C / (6 * N))
                runs.append(RunSpec(name=f"{arch}-{C:.0e}-d{d}l{L}".replace("+", ""), arch=arch, d_model=d,
                                    n_layers=L, n_heads=h, tokens=D, N=N, C=6 * N * D, group=f"C={C:.3g}"))
    return SweepPlan("isoflop", runs, {"ctx": ctx, "batch": batch, **(common or {})})


def plan_ladder(archs: list[str], sizes_N: list[float], tokens_per_param: list[float], ctx=128, batch=16,
                vocab=256, schedule="cosine", common: dict | None = None) -> SweepPlan:
    """Approach 1: several N, each trained for each horizon (tokens per parameter). With
    schedule=cosine each horizon is its own run (the Chinchilla correction: the cosine matches the
    horizon); with schedule=wsd one run per N reaches the longest horizon and the shorter ones are
    decay branches from its stable phase (Hägele et al. 2024), so one run yields several D. The
    training curves of all runs feed the envelope fit."""
    if len(sizes_N) < 2:
        raise RunError("a ladder needs at least two model sizes (--sizes)")
    if schedule not in ("cosine", "wsd"):
        raise RunError(f"--schedule {schedule!r}: a ladder uses cosine or wsd")
    horizons = sorted(tokens_per_param)
    if not horizons or horizons[0] <= 0:
        raise RunError("--tokens-per-param: give positive horizons, e.g. 10,20,40")
    runs = []
    for arch in archs:
        ladder = shape_ladder(arch, vocab, ctx)
        for target in sizes_N:
            d, L, h, N = _nearest(ladder, target)
            per_run = [[t] for t in horizons] if schedule == "cosine" else [horizons]
            for group in per_run:
                tpp = group[-1]
                D = int(tpp * N)
                if D * group[0] / tpp < 4 * ctx * batch:
                    raise RunError(f"{arch} N={N:,} at {group[0]} tokens/param is {int(group[0] * N)} tokens, "
                                   "fewer than 4 steps")
                runs.append(RunSpec(name=f"{arch}-d{d}-l{L}-x{tpp:g}", arch=arch, d_model=d, n_layers=L, n_heads=h,
                                    tokens=D, N=N, C=6 * N * D, group=f"N={N:,}", schedule=schedule,
                                    branches=",".join(f"{t / tpp:.6g}" for t in group[:-1])))
    return SweepPlan("ladder", runs, {"ctx": ctx, "batch": batch, **(common or {})})


def plan_grid(path: str | Path, common: dict | None = None) -> SweepPlan:
    """Arbitrary runs from a TOML file:

        [defaults]            # any `llmhist train` option shared by every run (ctx, batch, data, ...)
        ctx = 128
        [[run]]
        arch = "llama"        # with size = "micro" or d_model/n_layers/n_heads
        d_model = 128
        n_layers = 4
        n_heads = 4
        tokens = 2e6          # or flops = 1e13
    """
    import tomllib

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"--grid {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise RunError(f"--grid {path}: not valid TOML ({e})") from None
    defaults = {**(common or {}), **doc.get("defaults", {})}
    ctx, batch = int(defaults.get("ctx", 128)), int(defaults.get("batch", 16))
    entries = doc.get("run", [])
    if not entries:
        raise RunError(f"--grid {path}: no [[run]] tables")
    runs = []
    for i, e in enumerate(entries):
        where = f"--grid {path}, run {i + 1}"
        try:
            a = build_spec(e["arch"], e.get("size"), d_model=e.get("d_model"), n_layers=e.get("n_layers"),
                           n_heads=e.get("n_heads"), vocab_size=int(defaults.get("vocab", 256)), ctx_len=ctx)
        except KeyError as k:
            raise RunError(f"{where}: missing {k}") from None
        except (SpecError, ValueError) as err:
            raise RunError(f"{where}: {err}") from None
        N = accounting.params(a).active
        if ("tokens" in e) == ("flops" in e):
            raise RunError(f"{where}: give exactly one of tokens or flops")
        D = int(e["tokens"]) if "tokens" in e else int(float(e["flops"]) / (6 * N))
        runs.append(RunSpec(name=e.get("name", f"{e['arch']}-d{a.d_model}-l{a.n_layers}-D{D:.0e}".replace("+", "")),
                            arch=e["arch"], d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads, tokens=D,
                            N=N, C=6 * N * D, group=str(e.get("group", "")), schedule=e.get("schedule", "cosine")))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise RunError(f"--grid {path}: run names repeat; give each [[run]] a distinct name")
    return SweepPlan("grid", runs, {"ctx": ctx, "batch": batch, **{k: v for k, v in defaults.items()
                                                                   if k not in ("ctx", "batch")}})


# ------------------------------------------------------------------------- state


def train_args(r: RunSpec, common: dict, out: Path, threads: int | None = None) -> list[str]:
    args = ["train", "--arch", r.arch, "--d-model", str(r.d_model), "--n-layers", str(r.n_layers),
            "--n-heads", str(r.n_heads), "--tokens", str(r.tokens), "--schedule", r.schedule, "--out", str(out)]
    if r.branches:
        args += ["--branches", r.branches]
    for k, v in common.items():
        if v is None or k in ("vocab",):
            continue
        args += [f"--{k.replace('_', '-')}", str(v)]
    if threads:
        args += ["--threads", str(threads)]
    return args


def run_state(run_dir: Path) -> dict:
    """pending / running / interrupted / finished / diverged / failed, with progress and error."""
    out = {"state": "pending", "step": 0, "steps": None, "val_loss": None, "error": None}
    prog = run_dir / "progress.json"
    summ = run_dir / "summary.json"
    if summ.exists():
        s = json.loads(summ.read_text())
        out.update(state=s.get("status", "finished"), step=s.get("steps"), steps=s.get("steps"),
                   val_loss=s.get("val_loss"), error=s.get("error"))
        return out
    fail = run_dir.parent / "logs" / f"{run_dir.name}.failed"
    if prog.exists():
        try:
            p = json.loads(prog.read_text())
        except json.JSONDecodeError:
            p = {}
        out.update(step=p.get("step", 0), steps=p.get("steps"), val_loss=p.get("val_loss"))
        alive = _alive(p.get("pid")) and p.get("host", os.uname().nodename) == os.uname().nodename
        out["state"] = "running" if (p.get("status") == "running" and alive) else "interrupted"
    if fail.exists():
        try:  # the runner's marker: exit code and the tail of the run's log; its last line says why
            tail = json.loads(fail.read_text()).get("log_tail", "").strip().splitlines()
            out.update(state="failed", error=tail[-1] if tail else "failed (no output)")
        except json.JSONDecodeError:
            out.update(state="failed", error=fail.read_text().strip()[-500:])
    return out


def runs_to_launch(folder: Path, plan: SweepPlan, retry_failed: bool = False) -> list[RunSpec]:
    """What either launcher starts: runs not finished, diverged or running elsewhere; failed runs
    only when asked (their marker is cleared then). Interrupted runs resume from their checkpoint."""
    todo = []
    for r in plan.runs:
        state = run_state(folder / r.name)["state"]
        if state in ("finished", "diverged", "running") or (state == "failed" and not retry_failed):
            continue
        (folder / "logs" / f"{r.name}.failed").unlink(missing_ok=True)
        todo.append(r)
    return todo


def _alive(pid) -> bool:
    """Whether the process is running. A killed process whose parent died stays a zombie until
    init reaps it; it answers signals but runs nothing, so it counts as dead."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is


def prepare(folder: Path, plan: SweepPlan) -> dict:
    """Write plan.json, or check the folder holds this same plan."""
    d = plan.to_dict()
    pj = folder / "plan.json"
    if pj.exists():
        old = json.loads(pj.read_text())
        if old.get("hash") != d["hash"]:
            raise RunError(f"{folder} holds another sweep plan (hash {old.get('hash')}, this one {d['hash']}); "
                           "use another --out, or the same options as before")
    elif folder.exists() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
        raise RunError(f"{folder}: exists and holds files but no plan.json; give a new --out")
    else:
        write_json(pj, d)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    return d


def status(folder: Path) -> list[dict]:
    pj = folder / "plan.json"
    if not pj.exists():
        raise FileNotFoundError(f"{folder}: no plan.json; give a folder `llmhist sweep` wrote")
    plan = SweepPlan.from_dict(json.loads(pj.read_text()))
    rows = []
    for r in plan.runs:
        st = run_state(folder / r.name)
        rows.append({"run": r.name, "arch": r.arch, "N": r.N, "D": r.tokens, "C": r.C, "group": r.group, **st})
    return rows


# ------------------------------------------------------------------------- local runner


def best_split(cores: int, probe_args: list[str]) -> tuple[int, int, dict]:
    """Processes x threads that gives the most total tokens/s on this CPU, measured: for each split,
    that many concurrent `llmhist bench` processes of the sweep's median model. Cached per machine."""
    from .data import cache_dir

    key = hashlib.sha256(json.dumps([cores, probe_args, sys.version, os.uname().machine]).encode()).hexdigest()[:16]
    path = cache_dir() / "splits.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    if key in cache:
        p, t = cache[key]["best"]
        return p, t, cache[key]["measured"]
    measured = {}
    for p in [x for x in (1, 2, 4, 8, 16, 32) if x <= cores and cores % x == 0]:
        t = cores // p
        procs = [subprocess.Popen([sys.executable, "-m", "llmhist", "bench", *probe_args, "--no-hf", "--json",
                                   "--device", "cpu", "--threads", str(t)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(p)]
        total = 0.0
        for pr in procs:
            outp, _ = pr.communicate()
            try:
                total += json.loads(outp)["results"][0]["tokens_per_s"]
            except (json.JSONDecodeError, KeyError, IndexError):
                pass
        measured[f"{p}x{t}"] = total
    best = max(measured, key=measured.get)
    p, t = map(int, best.split("x"))
    cache[key] = {"best": [p, t], "measured": measured}
    write_json(path, cache)
    return p, t, measured


def run_local(folder: Path, plan: SweepPlan, workers: int, threads: int | None, retry_failed: bool = False,
              on_tick=None, gpus: list[int] | None = None) -> list[dict]:
    """A queue of `llmhist train` processes, `workers` at a time. Each run's stdout/stderr go to
    logs/RUN.log; a run that exits non-zero without a summary is marked logs/RUN.failed."""
    queue = runs_to_launch(folder, plan, retry_failed)
    active: dict = {}
    free_gpus = list(gpus or [])
    while queue or active:
        while queue and len(active) < workers:
            r = queue.pop(0)
            env = dict(os.environ)
            gpu = None
            if free_gpus:
                gpu = free_gpus.pop(0)
                env["CUDA_VISIBLE_DEVICES"] = str(gpu)
            log = open(folder / "logs" / f"{r.name}.log", "ab")
            proc = subprocess.Popen([sys.executable, "-m", "llmhist", *train_args(r, plan.common, folder / r.name,
                                                                                   threads)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            active[proc] = (r, log, gpu)
        time.sleep(0.5)
        for proc in [p for p in active if p.poll() is not None]:
            r, log, gpu = active.pop(proc)
            log.close()
            if gpu is not None:
                free_gpus.append(gpu)
            if proc.returncode not in (0, EXIT_DIVERGED) and not (folder / r.name / "summary.json").exists():
                tail = (folder / "logs" / f"{r.name}.log").read_text(errors="replace")[-2000:]
                write_json(folder / "logs" / f"{r.name}.failed", {"exit": proc.returncode, "log_tail": tail})
        if on_tick:
            on_tick()
    return status(folder)


# ------------------------------------------------------------------------- Slurm


def run_one(args: list[str]) -> int:
    """What a Slurm array task runs: one `llmhist train` in-process (submitit pickles this call)."""
    from typer.main import get_command

    from llmhist.cli.main import app

    try:
        get_command(app).main(args=args, prog_name="llmhist", standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def submit_slurm(folder: Path, plan: SweepPlan, partition: str | None, time_min: int, gpus_per_job: int,
                 max_concurrent: int, cpus_per_job: int | None = None, retry_failed: bool = False) -> list[str]:
    """Submit the unfinished runs as one Slurm job array through submitit; returns job ids."""
    try:
        import submitit
    except ImportError as e:
        raise RunError("--launcher slurm needs submitit: pip install 'llmhist[slurm]'") from e
    todo = runs_to_launch(folder, plan, retry_failed)
    if not todo:
        return []
    ex = submitit.AutoExecutor(folder=str(folder / "slurm" / "%j"), cluster="slurm")
    params = {"timeout_min": time_min, "slurm_array_parallelism": max_concurrent, "name": f"llmhist-{folder.name}"}
    if partition:
        params["slurm_partition"] = partition
    if gpus_per_job:
        params["gpus_per_node"] = gpus_per_job
    if cpus_per_job:
        params["cpus_per_task"] = cpus_per_job
    ex.update_parameters(**params)
    jobs = ex.map_array(run_one, [train_args(r, plan.common, folder / r.name) for r in todo])
    ids = [j.job_id for j in jobs]
    write_json(folder / "logs" / "slurm.json", {"jobs": dict(zip([r.name for r in todo], ids)),
                                                "submitted": time.time()})
    return ids
