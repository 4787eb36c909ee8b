"""The planners: which runs a sweep trains. isoFLOP (Chinchilla Approach 2), a ladder of sizes x
horizons (Approach 1; WSD branches), or a TOML grid of arbitrary runs. Each returns a checked
SweepPlan; a plan that cannot work is refused (RunError) with the range that does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from ...archs import accounting
from ...archs.registry import build_spec
from ...archs.spec import SpecError
from ..config import RunError, TrainConfig
from . import shapes as SH
from .plan import LOGS, MIN_STEPS, PLAN, RunSpec, SweepPlan, check_common

SNAP = 4.0  # an isoFLOP size may sit up to this factor from its log-spaced target at the ends of the family's shapes
BRACKET = 1.25  # the optimum N ~ sqrt(C/120) must sit inside the shapes by this factor, with sizes on both sides
DEFAULT_BUDGETS = (1e11, 3e11, 1e12)  # minutes on a 2-core CPU for every family (the README's study)


# ------------------------------------------------------------------------- isoFLOP


def isoflop_range(arch: str, spread: float, ctx: int, batch: int, vocab: int = 256) -> tuple[float, float]:
    """The budgets C an isoFLOP sweep of `arch` can plan: its sizes (sqrt(C/120) x spread^+-1/2) within
    the family's shapes (up to SNAP off at the ends) and its largest size trained for MIN_STEPS steps."""
    shapes = SH.family_ladder(arch, vocab, ctx)
    n_min, n_max = shapes[0].N, shapes[-1].N
    c_steps = (6 * MIN_STEPS * ctx * batch * math.sqrt(spread / SH.ISOFLOP_CENTRE)) ** 2
    lo = max(SH.ISOFLOP_CENTRE * (n_min / SNAP * math.sqrt(spread)) ** 2, SH.ISOFLOP_CENTRE * (BRACKET * n_min) ** 2,
             c_steps)
    hi = min(SH.ISOFLOP_CENTRE * (n_max * SNAP / math.sqrt(spread)) ** 2, SH.ISOFLOP_CENTRE * (n_max / BRACKET) ** 2)
    return lo, hi


def default_budgets(archs: list[str], spread: float = 16.0, ctx: int = 128, batch: int = 16) -> list[float]:
    """Three budgets (1-3-10 steps) from the smallest every family in `archs` can plan, at least
    DEFAULT_BUDGETS: minutes on a laptop CPU."""
    lo = max([DEFAULT_BUDGETS[0]] + [isoflop_range(a, spread, ctx, batch)[0] for a in archs])
    steps = [m * 10**e for e in range(9, 20) for m in (1, 3)]
    first = next(c for c in steps if c >= lo * 0.999)
    i = steps.index(first)
    return [float(c) for c in steps[i : i + 3]]


def _check_isoflop_options(budgets: list[float], points: int, spread: float) -> None:
    if not isinstance(points, int) or not 3 <= points <= 50:
        raise RunError(f"--points {points}: an isoFLOP parabola needs at least 3 sizes per budget (5-9 is usual; "
                       "at most 50)")
    if not (math.isfinite(spread) and 2 <= spread <= 1e4):
        raise RunError(f"--spread {spread}: sizes must span at least a factor 2 to bracket an optimum (and at most "
                       "1e4)")
    if not budgets or any(not (c > 0 and math.isfinite(c)) for c in budgets):
        raise RunError(f"--budgets {','.join(f'{c:g}' for c in budgets) or '(none)'}: give positive FLOP budgets, "
                       "e.g. 1e11,3e11,1e12")


@dataclass(frozen=True)
class _Family:
    """One family's shapes for an isoFLOP plan, and the sentence saying which budgets work."""

    arch: str
    shapes: list[SH.Shape]
    works: str
    spread: float
    step_tokens: int


def _family(arch: str, spread: float, ctx: int, batch: int, vocab: int) -> _Family:
    c_lo, c_hi = isoflop_range(arch, spread, ctx, batch, vocab)
    works = (f"budgets from {c_lo:.2g} to {c_hi:.2g} work for {arch} at --spread {spread:g}, --ctx {ctx}, "
             f"--batch {batch}" if c_lo <= c_hi else
             f"no budget works for {arch} at --spread {spread:g}, --ctx {ctx}, --batch {batch}; lower "
             "--spread, --batch or --ctx")
    return _Family(arch, SH.family_ladder(arch, vocab, ctx), works, spread, ctx * batch)


def _budget_shapes(f: _Family, C: float, points: int) -> list[SH.Shape]:
    """Exactly `points` distinct sizes around C's expected optimum, or a RunError saying why not."""
    arch, n_min, n_max = f.arch, f.shapes[0].N, f.shapes[-1].N
    n_mid = SH.centre_N(C)
    lo_t, hi_t = n_mid / math.sqrt(f.spread), n_mid * math.sqrt(f.spread)
    if lo_t < n_min / SNAP or n_mid < BRACKET * n_min:
        raise RunError(f"--budgets {C:.3g} is too small for {arch}: its sizes (N~{lo_t:,.0f} to {hi_t:,.0f} "
                       f"around the optimum N~{n_mid:,.0f}) reach below the smallest {arch} model "
                       f"(N={n_min:,}); {f.works}")
    if hi_t > n_max * SNAP or n_mid > n_max / BRACKET:
        raise RunError(f"--budgets {C:.3g} is too large for {arch}: its sizes (N~{lo_t:,.0f} to {hi_t:,.0f} "
                       f"around the optimum N~{n_mid:,.0f}) reach beyond this tool's shapes "
                       f"(up to N={n_max:,}); {f.works}")
    chosen = SH.pick_distinct(f.shapes, SH.targets(n_mid, f.spread, points))
    if len(chosen) < points:
        raise RunError(f"--points {points} at C={C:.3g}: {arch} has only {len(chosen)} distinct sizes between "
                       f"N~{lo_t:,.0f} and N~{hi_t:,.0f}; lower --points or widen --spread")
    short = [s for s in chosen if C / (6 * s.N) < MIN_STEPS * f.step_tokens]
    if short:
        raise RunError(f"--budgets {C:.3g} is too small for {arch}: the size N={short[-1].N:,} would train on "
                       f"{C / (6 * short[-1].N):,.0f} tokens, fewer than {MIN_STEPS} optimizer steps of "
                       f"{f.step_tokens} tokens (--ctx x --batch); {f.works}")
    lo, hi = chosen[0].N, chosen[-1].N
    if not (lo < n_mid < hi):
        side = "small" if lo >= n_mid else "large"
        raise RunError(f"--budgets {C:.3g} is too {side} for {arch}: the sizes available ({lo:,}-{hi:,}) cannot "
                       f"bracket the expected optimum N~{n_mid:,.0f}; {f.works}")
    return chosen


def plan_isoflop(archs: list[str], budgets: list[float], points: int = 7, spread: float = 16.0,
                 ctx: int = 128, batch: int = 16, vocab: int = 256, common: dict | None = None) -> SweepPlan:
    """Chinchilla Approach 2: per budget C, exactly `points` distinct sizes log-spaced over `spread`
    (max/min N) centred on the expected optimum N ~ sqrt(C / 120) (20 tokens per parameter), D = C / 6N.
    A budget whose sizes fall outside the family's shapes, or whose largest size would train for fewer
    than MIN_STEPS optimizer steps, is refused with the range that works."""
    _check_isoflop_options(budgets, points, spread)
    check_common(archs, ctx, batch, common)
    runs = []
    for arch in archs:
        f = _family(arch, spread, ctx, batch, vocab)
        for C in sorted(budgets):
            for d, L, h, N in _budget_shapes(f, C, points):
                D = int(C / (6 * N))
                runs.append(RunSpec(name=f"{arch}-{C:.0e}-d{d}l{L}".replace("+", ""), arch=arch, d_model=d,
                                    n_layers=L, n_heads=h, tokens=D, N=N, C=6 * N * D, group=f"C={C:.3g}",
                                    budget=float(C)))
    return SweepPlan("isoflop", runs, {"ctx": ctx, "batch": batch, **(common or {})}).check()


# ------------------------------------------------------------------------- ladder


def _check_ladder_options(sizes_N: list[float], horizons: list[float], schedule: str) -> None:
    if len(set(sizes_N)) < 2:
        raise RunError("--sizes: a ladder needs at least two distinct model sizes, e.g. 2e5,8e5,3e6")
    if any(not (math.isfinite(n) and 0 < n <= 1e12) for n in sizes_N):
        raise RunError(f"--sizes {','.join(f'{n:g}' for n in sizes_N)}: give positive parameter counts, e.g. 2e5,8e5")
    if schedule not in ("cosine", "wsd"):
        raise RunError(f"--schedule {schedule!r}: a ladder uses cosine or wsd")
    if not horizons or horizons[0] <= 0 or not all(math.isfinite(h) and h <= 1e6 for h in horizons):
        raise RunError("--tokens-per-param: give positive horizons, e.g. 10,20,40")


def plan_ladder(archs: list[str], sizes_N: list[float], tokens_per_param: list[float], ctx=128, batch=16,
                vocab=256, schedule="cosine", common: dict | None = None) -> SweepPlan:
    """Approach 1: several N, each trained for each horizon (tokens per parameter). With
    schedule=cosine each horizon is its own run (the Chinchilla correction: the cosine matches the
    horizon); with schedule=wsd one run per N reaches the longest horizon and the shorter ones are
    decay branches from its stable phase (Hägele et al. 2024), so one run yields several D. The
    training curves of all runs feed the envelope fit."""
    horizons = sorted(tokens_per_param)
    _check_ladder_options(sizes_N, horizons, schedule)
    check_common(archs, ctx, batch, common)
    runs = []
    for arch in archs:
        shapes = SH.family_ladder(arch, vocab, ctx)
        for target in sizes_N:
            d, L, h, N = SH.nearest(shapes, target)
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
    return SweepPlan("ladder", runs, {"ctx": ctx, "batch": batch, **(common or {})}).check()


# ------------------------------------------------------------------------- grid


GRID_RUN_KEYS = ("name", "group")  # besides TrainConfig's fields
RESERVED_NAMES = {LOGS, "slurm", PLAN, "fits"}
# a grid run's keys the RunSpec holds itself (the rest are its own TrainConfig options)
_SPEC_KEYS = {"arch", "size", "d_model", "n_layers", "n_heads", "tokens", "flops", "schedule", "branches"}


def check_run_name(name, where: str) -> str:
    """A run name is one path component inside the sweep folder (never `../x`, `a/b`, `.hidden`)."""
    if not isinstance(name, str) or not name.strip():
        raise RunError(f"{where}: name {name!r}: give a non-empty string")
    if ("/" in name or "\\" in name or name in (".", "..") or name.startswith(".") or "\0" in name
            or name in RESERVED_NAMES or len(name) > 200):
        raise RunError(f"{where}: name {name!r}: a run name is one folder name inside the sweep folder (no '/', "
                       f"no leading '.', not one of {', '.join(sorted(RESERVED_NAMES))}); e.g. name = \"llama-d64\"")
    return name


def _read_grid(path: Path, known: set[str]) -> dict:
    """The TOML document: [defaults] + [[run]] tables, unknown tables or keys refused by name."""
    import tomllib

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
    if not doc.get("run", []):
        raise RunError(f"--grid {path}: no [[run]] tables")
    return doc


def _grid_run(e: dict, defaults: dict, doc_defaults: dict, known: set[str], where: str) -> RunSpec:
    """One [[run]] table as a RunSpec, its values checked by TrainConfig and the spec builder."""
    bad = sorted(set(e) - known - set(GRID_RUN_KEYS))
    if bad:
        raise RunError(f"{where}: unknown key {', '.join(map(repr, bad))} (known: name, group and the options of "
                       "`llmhist train` with _ for -; not out)")
    if "arch" not in e and "arch" not in doc_defaults:
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
    name = check_run_name(e.get("name", f"{cfg.arch}-d{a.d_model}-l{a.n_layers}-D{D:.0e}".replace("+", "")), where)
    own = {k: v for k, v in e.items() if k not in _SPEC_KEYS and k not in GRID_RUN_KEYS}
    return RunSpec(name=name, arch=cfg.arch, d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads, tokens=D,
                   N=N, C=6 * N * D, group=str(e.get("group", "")), schedule=cfg.resolve().schedule, branches=cfg.branches or "",
                   options=own)


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
    path = Path(path)
    known = {f.name for f in fields(TrainConfig)} - {"out"}
    doc = _read_grid(path, known)
    defaults = {**(common or {}), **doc.get("defaults", {})}
    runs: list[RunSpec] = []
    for i, e in enumerate(doc["run"]):
        r = _grid_run(e, defaults, doc.get("defaults", {}), known, f"--grid {path}, run {i + 1}")
        if any(x.name == r.name for x in runs):
            raise RunError(f"--grid {path}: run names repeat ({r.name!r}); give each [[run]] a distinct name")
        runs.append(r)
    ctx, batch = int(defaults.get("ctx", 128)), int(defaults.get("batch", 16))
    common_out = {k: v for k, v in defaults.items() if k not in {"ctx", "batch"} | _SPEC_KEYS}
    return SweepPlan("grid", runs, {"ctx": ctx, "batch": batch, **common_out}).check()


def plan_sweep(archs: list[str], budgets: list[float] | None = None, points: int = 7, spread: float = 16.0,
               sizes: list[float] | None = None, horizons: list[float] | None = None, schedule: str = "cosine",
               grid: str | Path | None = None, ctx: int = 128, batch: int = 16, common: dict | None = None) -> SweepPlan:
    """The plan `llmhist sweep` asks for: a TOML grid, else a ladder of `sizes` x `horizons`, else
    isoFLOP at `budgets` (default_budgets when none are given)."""
    if grid:
        return plan_grid(grid, common)
    if sizes:
        return plan_ladder(archs, sizes, [20.0] if horizons is None else horizons, ctx, batch, schedule=schedule, common=common)
    if horizons is not None:  # first-hour W7: an option the plan would ignore is refused
        raise RunError(f"--tokens-per-param {','.join(f'{h:g}' for h in horizons)}: the horizons of a ladder "
                       "(with --sizes); an isoFLOP plan sets each run's D = C / 6N from its budget, so it takes none")
    check_common(archs, ctx, batch, common)
    chosen = budgets or default_budgets(archs, spread, ctx, batch)
    return plan_isoflop(archs, chosen, points, spread, ctx, batch, common=common)
