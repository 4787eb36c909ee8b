"""Sweeps: plan the runs scaling laws are fitted to, run them (locally in parallel, or on Slurm
through submitit), stop and restart without losing work.

A sweep is a folder: plan.json (the plan and its hash), one run folder per run (its run.json is
the run's full TrainConfig; the rest is what `llmhist train` writes) and logs/. Both launchers start
the worker (`python -m llmhist.train.worker`, or `llmhist.train.worker.run_dirs` in a Slurm task),
never the command line; the local queue gives one worker process a group of small runs of one
budget, so start-up and data loading are paid once per group. The same command again skips finished
runs, resumes interrupted ones (each from its own folder) and retries failed ones when asked; a
folder of another plan is refused, and a folder another sweep is running is refused (its lock).
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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from llmhist.archs import accounting
from llmhist.archs.registry import build_spec, template
from llmhist.archs.spec import SpecError
from llmhist.errors import UserError
from llmhist.files import exclusive_lock, lock_holder, write_json

from .config import RunError, TrainConfig

PLAN_VERSION = 1
MIN_LAYERS, MAX_LAYERS = 1, 48
MIN_STEPS = 4  # optimizer steps every run of a plan gets at least
SNAP = 4.0  # an isoFLOP size may sit up to this factor from its log-spaced target at the ends of the family's shapes
EXIT_DIVERGED = 3
DEFAULT_BUDGETS = (1e11, 3e11, 1e12)  # minutes on a 2-core CPU for every family (the README's study)
SWEEP_LOCK = "llmhist sweep"


class Interrupted(UserError):
    """The sweep was stopped by a signal; its children were stopped too; resumable."""

    exit_code = 130


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
    options: dict = field(default_factory=dict, hash=False, compare=False)  # a grid run's own TrainConfig options

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.N


def _spec_dict(r: RunSpec) -> dict:
    d = asdict(r)
    if not d["options"]:
        del d["options"]  # plans without per-run options hash as they always did
    return d


@dataclass
class SweepPlan:
    kind: str  # isoflop | ladder | grid | ablation
    runs: list[RunSpec]
    common: dict = field(default_factory=dict)  # options every run shares (ctx, batch, data, seed, ...)
    # what a planner adds for its own reading (an ablation's variants and comparisons); saved in
    # plan.json, not hashed: the runs (with their options) are what identify a plan
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"version": PLAN_VERSION, "kind": self.kind, "common": self.common, "runs": [_spec_dict(r) for r in self.runs]}
        d["hash"] = hashlib.sha256(json.dumps({k: d[k] for k in ("version", "kind", "common", "runs")},
                                              sort_keys=True).encode()).hexdigest()[:16]
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "plan.json") -> SweepPlan:
        try:
            return cls(kind=d["kind"], runs=[RunSpec(**r) for r in d["runs"]], common=dict(d["common"]),
                       meta=dict(d.get("meta") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(f"{source}: not a sweep plan ({type(e).__name__}: {e}); give a folder `llmhist sweep` "
                           "wrote, or plan it again into a new --out") from None

    def config(self, folder: str | Path, r: RunSpec, threads: int | None = None) -> TrainConfig:
        """The full, validated TrainConfig of one run of this plan in `folder`."""
        return run_config(folder, r, self.common, threads)


def run_config(folder: str | Path, r: RunSpec, common: dict, threads: int | None = None) -> TrainConfig:
    d = {k: v for k, v in common.items() if k != "vocab"}
    d.update(arch=r.arch, size=None, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads, tokens=r.tokens,
             flops=None, schedule=r.schedule, branches=r.branches or None)
    d.update(r.options)
    d["out"] = str(Path(folder) / r.name)
    if threads:
        d["threads"] = threads
    return TrainConfig.from_dict(d, source=f"run {r.name}")


def check_common(archs: list[str], ctx: int, batch: int, common: dict | None) -> None:
    """The options every run shares get TrainConfig's checks before any planning."""
    if not archs:
        raise RunError("--arch '': give a family, or several: gpt2,llama")
    for arch in archs:
        TrainConfig.from_dict({**{k: v for k, v in (common or {}).items() if k != "vocab"}, "arch": arch, "ctx": ctx,
                               "batch": batch, "out": "sweep"}, source="the sweep's options")


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


def isoflop_range(arch: str, spread: float, ctx: int, batch: int, vocab: int = 256) -> tuple[float, float]:
    """The budgets C an isoFLOP sweep of `arch` can plan: its sizes (sqrt(C/120) x spread^+-1/2) within
    the family's shapes (up to SNAP off at the ends) and its largest size trained for MIN_STEPS steps."""
    ladder = shape_ladder(arch, vocab, ctx)
    n_min, n_max = ladder[0][3], ladder[-1][3]
    c_steps = (6 * MIN_STEPS * ctx * batch * math.sqrt(spread / 120)) ** 2
    bracket = 1.25  # the optimum N ~ sqrt(C/120) must sit inside the shapes, with sizes on both sides
    lo = max(120 * (n_min / SNAP * math.sqrt(spread)) ** 2, 120 * (bracket * n_min) ** 2, c_steps)
    hi = min(120 * (n_max * SNAP / math.sqrt(spread)) ** 2, 120 * (n_max / bracket) ** 2)
    return lo, hi


def default_budgets(archs: list[str], spread: float = 16.0, ctx: int = 128, batch: int = 16) -> list[float]:
    """Three budgets (1-3-10 steps) from the smallest every family in `archs` can plan, at least
    DEFAULT_BUDGETS: minutes on a laptop CPU."""
    lo = max([DEFAULT_BUDGETS[0]] + [isoflop_range(a, spread, ctx, batch)[0] for a in archs])
    steps = [m * 10**e for e in range(9, 20) for m in (1, 3)]
    first = next(c for c in steps if c >= lo * 0.999)
    i = steps.index(first)
    return [float(c) for c in steps[i : i + 3]]


def _pick_distinct(ladder, targets):
    """One shape per target, each strictly larger than the last (so `points` targets give `points`
    distinct sizes), nearest the target in log N, preferring aspect ratio ~32 among near ties."""
    chosen: list[tuple[int, int, int, int]] = []
    for t in targets:
        pool = [s for s in ladder if not chosen or s[3] > chosen[-1][3] * 1.05]
        if not pool:
            break
        chosen.append(_prefer_aspect(pool, t))
    return chosen


def plan_isoflop(archs: list[str], budgets: list[float], points: int = 7, spread: float = 16.0,
                 ctx: int = 128, batch: int = 16, vocab: int = 256, common: dict | None = None) -> SweepPlan:
    """Chinchilla Approach 2: per budget C, exactly `points` distinct sizes log-spaced over `spread`
    (max/min N) centred on the expected optimum N ~ sqrt(C / 120) (20 tokens per parameter), D = C / 6N.
    A budget whose sizes fall outside the family's shapes, or whose largest size would train for fewer
    than 4 optimizer steps, is refused with the range that works."""
    if not isinstance(points, int) or not 3 <= points <= 50:
        raise RunError(f"--points {points}: an isoFLOP parabola needs at least 3 sizes per budget (5-9 is usual; "
                       "at most 50)")
    if not (math.isfinite(spread) and 2 <= spread <= 1e4):
        raise RunError(f"--spread {spread}: sizes must span at least a factor 2 to bracket an optimum (and at most "
                       "1e4)")
    if not budgets or any(not (c > 0 and math.isfinite(c)) for c in budgets):
        raise RunError(f"--budgets {','.join(f'{c:g}' for c in budgets) or '(none)'}: give positive FLOP budgets, "
                       "e.g. 1e11,3e11,1e12")
    check_common(archs, ctx, batch, common)
    runs = []
    step_tokens = ctx * batch
    for arch in archs:
        ladder = shape_ladder(arch, vocab, ctx)
        n_min, n_max = ladder[0][3], ladder[-1][3]
        c_lo, c_hi = isoflop_range(arch, spread, ctx, batch, vocab)
        for C in sorted(budgets):
            n_mid = math.sqrt(C / 120)
            lo_t, hi_t = n_mid / math.sqrt(spread), n_mid * math.sqrt(spread)
            works = (f"budgets from {c_lo:.2g} to {c_hi:.2g} work for {arch} at --spread {spread:g}, --ctx {ctx}, "
                     f"--batch {batch}" if c_lo <= c_hi else
                     f"no budget works for {arch} at --spread {spread:g}, --ctx {ctx}, --batch {batch}; lower "
                     "--spread, --batch or --ctx")
            if lo_t < n_min / SNAP or n_mid < 1.25 * n_min:
                raise RunError(f"--budgets {C:.3g} is too small for {arch}: its sizes (N~{lo_t:,.0f} to {hi_t:,.0f} "
                               f"around the optimum N~{n_mid:,.0f}) reach below the smallest {arch} model "
                               f"(N={n_min:,}); {works}")
            if hi_t > n_max * SNAP or n_mid > n_max / 1.25:
                raise RunError(f"--budgets {C:.3g} is too large for {arch}: its sizes (N~{lo_t:,.0f} to {hi_t:,.0f} "
                               f"around the optimum N~{n_mid:,.0f}) reach beyond this tool's shapes "
                               f"(up to N={n_max:,}); {works}")
            targets = [n_mid * spread ** (i / (points - 1) - 0.5) for i in range(points)]
            chosen = _pick_distinct(ladder, targets)
            if len(chosen) < points:
                raise RunError(f"--points {points} at C={C:.3g}: {arch} has only {len(chosen)} distinct sizes between "
                               f"N~{lo_t:,.0f} and N~{hi_t:,.0f}; lower --points or widen --spread")
            short = [s for s in chosen if C / (6 * s[3]) < MIN_STEPS * step_tokens]
            if short:
                raise RunError(f"--budgets {C:.3g} is too small for {arch}: the size N={short[-1][3]:,} would train on "
                               f"{C / (6 * short[-1][3]):,.0f} tokens, fewer than {MIN_STEPS} optimizer steps of "
                               f"{step_tokens} tokens (--ctx x --batch); {works}")
            lo, hi = chosen[0][3], chosen[-1][3]
            if not (lo < n_mid < hi):
                side = "small" if lo >= n_mid else "large"
                raise RunError(f"--budgets {C:.3g} is too {side} for {arch}: the sizes available ({lo:,}-{hi:,}) cannot "
                               f"bracket the expected optimum N~{n_mid:,.0f}; {works}")
            for d, L, h, N in chosen:
                D = int(C / (6 * N))
                runs.append(RunSpec(name=f"{arch}-{C:.0e}-d{d}l{L}".replace("+", ""), arch=arch, d_model=d,
                                    n_layers=L, n_heads=h, tokens=D, N=N, C=6 * N * D, group=f"C={C:.3g}"))
    plan = SweepPlan("isoflop", runs, {"ctx": ctx, "batch": batch, **(common or {})})
    _check_runs(plan)
    return plan


def _check_runs(plan: SweepPlan) -> None:
    names = [r.name for r in plan.runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RunError(f"two runs would share the folder {dup[0]}; give distinct budgets/sizes")
    for r in plan.runs:
        plan.config("sweep", r)


def plan_ladder(archs: list[str], sizes_N: list[float], tokens_per_param: list[float], ctx=128, batch=16,
                vocab=256, schedule="cosine", common: dict | None = None) -> SweepPlan:
    """Approach 1: several N, each trained for each horizon (tokens per parameter). With
    schedule=cosine each horizon is its own run (the Chinchilla correction: the cosine matches the
    horizon); with schedule=wsd one run per N reaches the longest horizon and the shorter ones are
    decay branches from its stable phase (Hägele et al. 2024), so one run yields several D. The
    training curves of all runs feed the envelope fit."""
    if len(set(sizes_N)) < 2:
        raise RunError("--sizes: a ladder needs at least two distinct model sizes, e.g. 2e5,8e5,3e6")
    if any(not (math.isfinite(n) and 0 < n <= 1e12) for n in sizes_N):
        raise RunError(f"--sizes {','.join(f'{n:g}' for n in sizes_N)}: give positive parameter counts, e.g. 2e5,8e5")
    if schedule not in ("cosine", "wsd"):
        raise RunError(f"--schedule {schedule!r}: a ladder uses cosine or wsd")
    horizons = sorted(tokens_per_param)
    if not horizons or horizons[0] <= 0 or not all(math.isfinite(h) and h <= 1e6 for h in horizons):
        raise RunError("--tokens-per-param: give positive horizons, e.g. 10,20,40")
    check_common(archs, ctx, batch, common)
    runs = []
    for arch in archs:
        ladder = shape_ladder(arch, vocab, ctx)
        for target in sizes_N:
            d, L, h, N = _nearest(ladder, target)
            per_run = [[t] for t in horizons] if schedule == "cosine" else [horizons]
            for group in per_run:
                tpp = group[-1]
                D = int(tpp * N)
                if D * group[0] / tpp < MIN_STEPS * ctx * batch:
                    raise RunError(f"--sizes: {arch} N={N:,} at {group[0]:g} tokens/param is {int(group[0] * N)} "
                                   f"tokens, fewer than {MIN_STEPS} steps of {ctx * batch} tokens; give larger sizes "
                                   "or horizons, or lower --batch/--ctx")
                runs.append(RunSpec(name=f"{arch}-d{d}-l{L}-x{tpp:g}", arch=arch, d_model=d, n_layers=L, n_heads=h,
                                    tokens=D, N=N, C=6 * N * D, group=f"N={N:,}", schedule=schedule,
                                    branches=",".join(f"{t / tpp:.6g}" for t in group[:-1])))
    plan = SweepPlan("ladder", runs, {"ctx": ctx, "batch": batch, **(common or {})})
    _check_runs(plan)
    return plan


GRID_RUN_KEYS = ("name", "group")  # besides TrainConfig's fields
RESERVED_NAMES = {"logs", "slurm", "plan.json", "fits"}


def check_run_name(name, where: str) -> str:
    """A run name is one path component inside the sweep folder (never `../x`, `a/b`, `.hidden`)."""
    if not isinstance(name, str) or not name.strip():
        raise RunError(f"{where}: name {name!r}: give a non-empty string")
    if ("/" in name or "\\" in name or name in (".", "..") or name.startswith(".") or "\0" in name
            or name in RESERVED_NAMES or len(name) > 200):
        raise RunError(f"{where}: name {name!r}: a run name is one folder name inside the sweep folder (no '/', "
                       f"no leading '.', not one of {', '.join(sorted(RESERVED_NAMES))}); e.g. name = \"llama-d64\"")
    return name


def plan_grid(path: str | Path, common: dict | None = None) -> SweepPlan:
    """Arbitrary runs from a TOML file:

        [defaults]            # any TrainConfig option shared by every run (ctx, batch, data, lr, ...)
        ctx = 128
        [[run]]
        name = "a"            # optional: the run's folder name (one path component)
        arch = "llama"        # with size = "micro" or d_model/n_layers/n_heads
        d_model = 128
        n_layers = 4
        n_heads = 4
        tokens = 2e6          # or flops = 1e13; any other TrainConfig option for this run alone

    Unknown tables or keys are refused by name; every run's values get TrainConfig's checks here,
    before anything runs."""
    import tomllib

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"--grid {path}: no such file") from None
    except IsADirectoryError:
        raise RunError(f"--grid {path}: a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise RunError(f"--grid {path}: not a text file") from None
    except tomllib.TOMLDecodeError as err:
        raise RunError(f"--grid {path}: not valid TOML ({err})") from None
    known = {f.name for f in fields(TrainConfig)} - {"out"}
    extra = sorted(set(doc) - {"defaults", "run"})
    if extra:
        raise RunError(f"--grid {path}: unknown table or key {', '.join(map(repr, extra))}; a grid has [defaults] and "
                       "[[run]] tables")
    if not isinstance(doc.get("defaults", {}), dict) or not isinstance(doc.get("run", []), list):
        raise RunError(f"--grid {path}: [defaults] is one table and runs are [[run]] tables")
    bad = sorted(set(doc.get("defaults", {})) - known)
    if bad:
        raise RunError(f"--grid {path}, [defaults]: unknown key {', '.join(map(repr, bad))} (known: the options of "
                       "`llmhist train`, with _ for -, e.g. eval_every; not out)")
    defaults = {**(common or {}), **doc.get("defaults", {})}
    entries = doc.get("run", [])
    if not entries:
        raise RunError(f"--grid {path}: no [[run]] tables")
    runs, names = [], set()
    for i, e in enumerate(entries):
        where = f"--grid {path}, run {i + 1}"
        bad = sorted(set(e) - known - set(GRID_RUN_KEYS))
        if bad:
            raise RunError(f"{where}: unknown key {', '.join(map(repr, bad))} (known: name, group and the options of "
                           "`llmhist train` with _ for -; not out)")
        if "arch" not in e and "arch" not in doc.get("defaults", {}):
            raise RunError(f"{where}: missing 'arch'")
        if ("tokens" in e or "tokens" in defaults) == ("flops" in e or "flops" in defaults):
            raise RunError(f"{where}: give exactly one of tokens or flops")
        opts = {k: v for k, v in {**defaults, **e}.items() if k not in GRID_RUN_KEYS}
        try:
            cfg = TrainConfig.from_dict({**opts, "out": "grid"}, source=where)
            a = build_spec(cfg.arch, cfg.size, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                           vocab_size=int(cfg.vocab_size or 256), ctx_len=cfg.ctx)
        except SpecError as err:
            raise RunError(f"{where}: {err}") from None
        N = accounting.params(a).active
        D = cfg.tokens if cfg.tokens is not None else int((cfg.flops or 0.0) / (6 * N))
        if D < MIN_STEPS * cfg.ctx * cfg.batch:
            raise RunError(f"{where}: {D:,} tokens is fewer than {MIN_STEPS} optimizer steps of {cfg.ctx * cfg.batch} "
                           "tokens (ctx x batch); give more tokens or flops")
        name = e.get("name", f"{cfg.arch}-d{a.d_model}-l{a.n_layers}-D{D:.0e}".replace("+", ""))
        check_run_name(name, where)
        if name in names:
            raise RunError(f"--grid {path}: run names repeat ({name!r}); give each [[run]] a distinct name")
        names.add(name)
        # a run's own options beyond the plan's common ones (shape, tokens and schedule are in the spec)
        mapped = {"arch", "size", "d_model", "n_layers", "n_heads", "tokens", "flops", "schedule", "branches"}
        own = {k: v for k, v in e.items() if k not in mapped and k not in GRID_RUN_KEYS}
        runs.append(RunSpec(name=name, arch=cfg.arch, d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads,
                            tokens=D, N=N, C=6 * N * D, group=str(e.get("group", "")), schedule=cfg.resolve().schedule,
                            branches=cfg.branches or "", options=own))
    ctx, batch = int(defaults.get("ctx", 128)), int(defaults.get("batch", 16))
    common_out = {k: v for k, v in defaults.items() if k not in ("ctx", "batch", "schedule", "branches", "arch",
                                                                 "size", "d_model", "n_layers", "n_heads", "tokens",
                                                                 "flops")}
    plan = SweepPlan("grid", runs, {"ctx": ctx, "batch": batch, **common_out})
    _check_runs(plan)
    return plan


# ------------------------------------------------------------------------- estimates


def _spec_of(r: RunSpec, ctx: int, vocab: int = 256):
    """The spec a run trains: its family at its shape, or its ablation variant (options["variant"])."""
    if r.options.get("variant"):
        from llmhist.archs.changes import variant_spec

        return variant_spec(r.options["variant"], r.d_model, r.n_layers, r.n_heads, vocab, ctx)
    return build_spec(r.arch, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads, vocab_size=vocab,
                      ctx_len=ctx)


# The CPU time model, calibrated on this project's 2-core Xeon (2026-12-01: 18 runs of gpt2- and
# llama3-like models at d_model 16-64, 1-2 layers, 4 heads, one thread each, 8-88 s; the fit's
# residuals are within 10%): per token, a fixed 1.44 us (embedding, loss over the vocabulary,
# optimizer share) + 0.63 us per layer x head at ctx 128 (the attention kernel's per-head work,
# growing with ctx) + the PaLM-convention FLOPs at 60% of a core's matmul peak. The fixed terms
# were measured on a core of 1.55e11 FLOP/s and scale with another CPU's per-core peak.
CPU_TOKEN_S = 1.44e-6
CPU_HEAD_TOKEN_S = 0.63e-6
CPU_MATMUL_EFF = 0.60
CPU_CALIB_CORE_PEAK = 1.55e11
GPU_MFU, GPU_STEP_S = 0.45, 0.02  # a fixed cost per optimizer step (launches, python, eval share)


def run_seconds(a, tokens: float, ctx: int, batch: int, peak: float, cores: int = 1, gpu: bool = False) -> float:
    """Estimated wall seconds of one run of spec `a` on a device of `peak` FLOP/s (a CPU's `cores`
    cores all busy: runs in parallel processes share them, so this is device-seconds)."""
    fpt = accounting.flops_per_token(a, "palm", ctx)
    if gpu:
        return math.ceil(tokens / (ctx * batch)) * GPU_STEP_S + tokens * fpt / (GPU_MFU * peak)
    core = peak / max(1, cores)
    fixed = (CPU_TOKEN_S + CPU_HEAD_TOKEN_S * a.n_layers * a.n_heads * ctx / 128) * CPU_CALIB_CORE_PEAK / core
    return tokens * (fixed + fpt / (CPU_MATMUL_EFF * core)) / max(1, cores)


def time_model(peak: float, gpu: bool = False) -> str:
    """One line saying how run_seconds estimates."""
    if gpu:
        return f"{peak:.3g} FLOP/s peak x {GPU_MFU:.0%} MFU + {1e3 * GPU_STEP_S:.0f} ms/step"
    return (f"{peak:.3g} FLOP/s CPU peak: per token {1e6 * CPU_TOKEN_S:.2f} us + {1e6 * CPU_HEAD_TOKEN_S:.2f} us per "
            f"layer x head (at a {CPU_CALIB_CORE_PEAK:.3g} FLOP/s core) + FLOPs at {CPU_MATMUL_EFF:.0%} of peak "
            "(calibrated on a 2-core Xeon)")


def estimate_seconds(plan: SweepPlan) -> tuple[list[float], str]:
    """Estimated wall time per run on one device (run_seconds, with the device's peak: the CPU's
    measured matmul probe or the GPU's datasheet)."""
    from . import device as devmod

    dev = devmod.pick("auto")
    dtype = devmod.setup(dev)
    peak = devmod.peak_flops(dev, dtype)
    if not peak:
        return [float("nan")] * len(plan.runs), "n/a (no known peak for this device)"
    ctx, batch = int(plan.common.get("ctx", 128)), int(plan.common.get("batch", 16))
    gpu = dev.type != "cpu"
    cores = 1 if gpu else devmod.usable_cores()
    out = [run_seconds(_spec_of(r, ctx), r.tokens, ctx, batch, peak, cores, gpu) for r in plan.runs]
    return out, time_model(peak, gpu)


# ------------------------------------------------------------------------- state


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def run_state(run_dir: Path) -> dict:
    """pending / running / interrupted / finished / diverged / failed, with progress and error."""
    out = {"state": "pending", "step": 0, "steps": None, "val_loss": None, "error": None}
    prog = run_dir / "progress.json"
    summ = run_dir / "summary.json"
    if summ.exists():
        s = _read_json(summ)
        if not isinstance(s, dict):
            out.update(state="failed", error=f"{summ}: unreadable (not a JSON object); delete it and run the sweep "
                                             "again to resume from the checkpoint")
            return out
        out.update(state=s.get("status", "finished"), step=s.get("steps"), steps=s.get("steps"),
                   val_loss=s.get("val_loss"), error=s.get("error"))
        return out
    fail = run_dir.parent / "logs" / f"{run_dir.name}.failed"
    if prog.exists():
        p = _read_json(prog)
        p = p if isinstance(p, dict) else {}
        out.update(step=p.get("step", 0), steps=p.get("steps"), val_loss=p.get("val_loss"))
        alive = _alive(p.get("pid")) and p.get("host", os.uname().nodename) == os.uname().nodename
        out["state"] = "running" if (p.get("status") == "running" and alive) else "interrupted"
    if lock_holder(run_dir) is not None:
        out["state"] = "running"
        return out
    if fail.exists():
        m = _read_json(fail)
        if isinstance(m, dict):  # the worker's marker: the error, or the last line of the run's log
            tail = str(m.get("log_tail", "")).strip().splitlines()
            err = m.get("error") or (tail[-1] if tail else "failed (no output)")
            out.update(state="failed", error=str(err))
        else:
            out.update(state="failed", error=fail.read_text(errors="replace").strip()[-500:])
    return out


def runs_to_launch(folder: Path, plan: SweepPlan, retry_failed: bool = False) -> list[RunSpec]:
    """What either launcher starts: runs not finished, diverged or running elsewhere (a live
    process holds the run's lock or reports progress); failed runs only when asked (their marker is
    cleared then). Interrupted runs resume from their checkpoint."""
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
    except (OSError, ValueError, OverflowError):
        return False
    try:
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is


def prepare(folder: Path, plan: SweepPlan) -> dict:
    """Write plan.json, or check the folder holds this same plan."""
    folder = Path(folder)
    d = plan.to_dict()
    pj = folder / "plan.json"
    if pj.exists():
        old = _read_json(pj)
        if not isinstance(old, dict):
            raise RunError(f"{pj}: unreadable (not a JSON object); give a new --out, or delete the folder to start over")
        if old.get("hash") != d["hash"]:
            raise RunError(f"{folder} holds another sweep plan (hash {old.get('hash')}, this one {d['hash']}); "
                           "use another --out, or the same options as before")
    elif folder.exists() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
        raise RunError(f"{folder}: exists and holds files but no plan.json; give a new --out")
    else:
        write_json(pj, d)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    return d


def load_plan(folder: Path) -> SweepPlan:
    pj = Path(folder) / "plan.json"
    if not pj.exists():
        raise RunError(f"{folder}: no plan.json; give a folder `llmhist sweep` wrote")
    d = _read_json(pj)
    if not isinstance(d, dict):
        raise RunError(f"{pj}: unreadable (not a JSON object); give a folder `llmhist sweep` wrote")
    return SweepPlan.from_dict(d, source=str(pj))


def status(folder: Path) -> list[dict]:
    folder = Path(folder)
    plan = load_plan(folder)
    rows = []
    for r in plan.runs:
        st = run_state(folder / r.name)
        rows.append({"run": r.name, "arch": r.arch, "N": r.N, "D": r.tokens, "C": r.C, "group": r.group, **st})
    return rows


def write_requests(folder: Path, plan: SweepPlan, runs: list[RunSpec], threads: int | None = None) -> list[Path]:
    """Each run's run.json (its full TrainConfig) in its folder; returns the run folders."""
    from .worker import write_request

    dirs = []
    for r in runs:
        cfg = plan.config(folder, r, threads)
        write_request(folder / r.name, cfg, sweep=str(folder), plan_hash=plan.to_dict()["hash"])
        dirs.append(folder / r.name)
    return dirs


# ------------------------------------------------------------------------- local runner


LAUNCHERS = ("local", "slurm")


def check_launch(launcher: str, workers: int | None = None, threads: int | None = None) -> None:
    """The launch options, checked once for sweep and ablate before any work: the launcher's name,
    and for the local queue the processes x threads against this machine's cores."""
    if launcher not in LAUNCHERS:
        raise RunError(f"--launcher {launcher!r}: use local or slurm")
    if launcher == "local":
        from .config import usable_cores

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
    from .device import usable_cores

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
    from .data import cache_dir

    key = hashlib.sha256(json.dumps([cores, probe, sys.version, os.uname().machine],
                                    sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "splits.json"
    cache = _read_json(path) if path.exists() else {}
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


def _owner(plan: SweepPlan) -> str:
    """Who holds a sweep folder's lock, as its holder's message names it: the command that runs the plan."""
    return "llmhist ablate" if plan.kind == "ablation" else SWEEP_LOCK


def run_local(folder: Path, plan: SweepPlan, workers: int, threads: int | None, retry_failed: bool = False,
              on_tick=None, gpus: list[int] | None = None, est: dict[str, float] | None = None) -> list[dict]:
    """Run the sweep here: hold the sweep folder's lock (a second sweep on it is refused, naming this
    one), write the plan and each run's run.json, and keep `workers` worker processes busy, each
    training a group of runs (logs/RUN.log per run; a run that fails leaves logs/RUN.failed). On
    SIGINT/SIGTERM the workers are stopped and `Interrupted` (exit 130) says how to resume."""
    folder = Path(folder)
    with exclusive_lock(folder, f"{_owner(plan)} (pid {os.getpid()})"):
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
                log = open(folder / "logs" / f"worker-{item[0].name}.log", "ab")
                proc = subprocess.Popen([sys.executable, "-m", "llmhist.train.worker", *map(str, dirs),
                                         "--log-dir", str(folder / "logs")],
                                        stdout=log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=functools.partial(_die_with_parent, os.getpid()))
                active[proc] = (item, log, gpu)
            time.sleep(0.3)
            for proc in [p for p in active if p.poll() is not None]:
                item, log, gpu = active.pop(proc)
                log.close()
                if gpu is not None:
                    free_gpus.append(gpu)
                if proc.returncode not in (0, 1, 2, EXIT_DIVERGED):  # killed (OOM, a signal): mark what it left
                    _mark_crashed(folder, item, proc.returncode)
            if on_tick:
                on_tick()
    finally:
        _stop(list(active))
        for _, log, _ in active.values():
            log.close()
        for s, h in old.items():
            signal.signal(s, h)
    return status(folder)


def _mark_crashed(folder: Path, item: list[RunSpec], code: int) -> None:
    wlog = folder / "logs" / f"worker-{item[0].name}.log"
    tail = wlog.read_text(errors="replace")[-2000:] if wlog.exists() else ""
    why = f"the worker process ended with {code}" + (f" (signal {signal.Signals(-code).name})" if code < 0 else "")
    for r in item:
        st = run_state(folder / r.name)["state"]
        if st in ("pending", "interrupted"):
            write_json(folder / "logs" / f"{r.name}.failed", {"exit": code, "error": why, "log_tail": tail})


# ------------------------------------------------------------------------- Slurm


def submit_slurm(folder: Path, plan: SweepPlan, partition: str | None, time_min: int, gpus_per_job: int,
                 max_concurrent: int, cpus_per_job: int | None = None, retry_failed: bool = False) -> list[str]:
    """Submit the unfinished runs as one Slurm job array through submitit (each task calls
    llmhist.train.worker.run_dirs on one run folder); returns job ids."""
    try:
        import submitit
    except ImportError as e:
        raise RunError("--launcher slurm needs submitit: pip install 'llmhist[slurm]'") from e
    for name, v, lo in (("--time", time_min, 1), ("--max-concurrent", max_concurrent, 1), ("--gpus-per-job",
                                                                                            gpus_per_job, 0)):
        if v < lo:
            raise RunError(f"{name} {v}: must be >= {lo}")
    if cpus_per_job is not None and cpus_per_job < 1:
        raise RunError(f"--cpus-per-job {cpus_per_job}: must be >= 1")
    folder = Path(folder)
    from .worker import run_dirs

    with exclusive_lock(folder, f"{_owner(plan)} --launcher slurm (pid {os.getpid()})"):
        prepare(folder, plan)
        todo = runs_to_launch(folder, plan, retry_failed)
        if not todo:
            return []
        dirs = write_requests(folder, plan, todo, cpus_per_job)
        ex = submitit.AutoExecutor(folder=str(folder / "slurm" / "%j"), cluster="slurm")
        params = {"timeout_min": time_min, "slurm_array_parallelism": max_concurrent, "name": f"llmhist-{folder.name}"}
        if partition:
            params["slurm_partition"] = partition
        if gpus_per_job:
            params["gpus_per_node"] = gpus_per_job
        if cpus_per_job:
            params["cpus_per_task"] = cpus_per_job
        ex.update_parameters(**params)
        jobs = ex.map_array(run_dirs, [[str(d)] for d in dirs], [str(folder / "logs")] * len(dirs))
        ids = [j.job_id for j in jobs]
        write_json(folder / "logs" / "slurm.json", {"jobs": dict(zip([r.name for r in todo], ids)),
                                                    "submitted": time.time()})
        return ids
