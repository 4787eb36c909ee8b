"""Ablations: one isoFLOP sweep per variant (same budgets, data, seeds and model shapes), repeats of
the reference for seed noise, then per-variant frontiers and compute-equivalent gains.

A plan is data (JSON): the changes (name, year, introduced_by), the variants (which changes each
applies), the comparisons (variant against reference: one per change, plus the total along a
ladder), and every run as a dict of TrainConfig fields with `variant` = {"base", "target",
"changes"} that the training loop resolves through llmhist.archs.changes.variant_spec/_recipe.

Shapes: every variant trains at the SAME (d_model, n_layers, n_heads) at a budget, so a comparison
isolates its change: the candidates follow the sweep's shape ladder (llmhist.train.sweep.shapes) (head width 8 below
d_model 32, 16 below 128, 32 up to 256, 64 above; aspect d_model / n_layers 16..64; even head width),
with n_heads rounded down to whole GQA groups of the variants' largest ratio (4 heads for llama3's
4:1 at the smallest widths: one KV head there, see changes._set_kv_ratio; forcing two KV heads meant
8 heads 4 wide at d_model 32, where the attention kernel's per-head cost doubled the step). Sizes
per budget are log-spaced over `spread` around N = sqrt(C / (6 x centre_tokens_per_param)) of the reference
variant, and each variant's tokens are its own D = C / (6 N) (the 6N convention, N = all parameters
from the accounting: each run carries its tokens D, computed from its own variant's count).

Default plan, sized for a 2-core CPU in <= 20 minutes with fits: a LADDER OF TWO GROUPED STEPS,
base -> + the recipe changes -> + the architecture changes (= the target), isoFLOP sweeps at 3e11,
1e12 and 3e12 FLOPs with 4 sizes each, centred on 100 tokens per parameter, plus 5 more seeds of the
reference at 3e11 for seed noise: three variants, 41 runs, answering "what did the recipe buy, what
did the architecture buy, and the total". Why those numbers (measured on this machine, 2026-12-01):
at these budgets byte-level models are compute-optimal near 50-150 tokens per parameter (a scout
sweep at 3e11 and 1e12 found gpt2's isoFLOP minimum near N = 25-40k and llama3's near 45-90k at
1e12), so sizes centred on Chinchilla's 20 left every minimum at the smallest size, the frontier
points unbracketed and the intervals wide; small models are cheap per FLOP to plan but not to run
(1.4 us per token plus 0.6 us per layer x head whatever the width), so budgets above 3e12 cost more
than 20 minutes. Measured: 14 min 43 s wall (estimate 14.6 min), total gpt2 -> llama3 CEG 2.4x,
2.0x, 1.9x at the three budgets with 90% intervals excluding 1x; see the README's ablate section.
The plan is built once per command from a PlanRequest (every option, validated on construction);
`estimate` puts the time model's seconds on it (again with a measured peak before a local run).
Running is the sweep's (its local queue or Slurm); the report, frontiers and plots are analysis and
live in llmhist.scaling.ablation. Any finer ladder is one option away (`--changes all`, or e.g. `--changes recipe,norm+bias,
positions+rope_theta,mlp+mlp_width,attention,tied_embeddings`) and its estimated time is printed
before anything runs.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from ..archs import accounting
from ..archs import changes as CH
from ..archs.spec import SpecError
from ..core.errors import UserError
from . import sweep as S
from .config import TrainConfig, usable_cores
from .sweep import shapes as SH
from .tracking import check as check_logger

DEFAULT_BUDGETS = (3e11, 1e12, 3e12)
DEFAULT_POINTS = 4
DEFAULT_SPREAD = 16.0
DEFAULT_CENTRE_TOKENS_PER_PARAM = 100.0  # the sizes' centre: N = sqrt(C / (6 x this))
DEFAULT_SEEDS = 6  # the reference's seed-noise runs at the smallest budget: seed 0 + 5 more
DEFAULT_STEPS = {"ladder": "recipe,arch", "each": "all", "drop": "all"}
MODES = ("ladder", "each", "drop")
MIN_HEAD_DIM = 4  # below this RoPE rotates a single frequency pair; sweep's GQA rounding can reach 2
DEFAULT_EVAL_BATCHES = 16  # the one final evaluation: 16 x batch fixed validation windows

# wall-time model: llmhist.train.sweep.estimate.run_seconds (calibrated per token on this CPU)
ASSUMED_PEAK = 3.0e11  # FLOP/s for --dry-run (torch-free): about a 2-core Xeon's measured matmul peak
FIT_S = 15.0  # bootstrap fits and the report
START_S = 10.0  # the processes x threads probe (cached after the first time) and the CPU peak probe
CONVENTION = ("C = 6 N D, N = all parameters incl. embeddings (accounting.flops_per_token '6N'); each run of a "
              "variant trains D = C / 6N tokens with its own N")


class AblationError(UserError, ValueError):
    """An ablation plan that cannot work; the message says which option to change."""


# ----------------------------------------------------------------------- variants and comparisons
def _parse_steps(base: str, target: str, spec: str | None, mode: str) -> list[dict]:
    """--changes: comma-separated steps; a step joins changes with '+'; 'arch'/'recipe' are groups
    (one step in a ladder, their members one at a time in each/drop); 'all' = every change alone.
    Returns [{"names": [...], "label": str}]."""
    spec = spec if spec else DEFAULT_STEPS[mode]
    ch = CH.derive(base, target)
    order = {c.name: i for i, c in enumerate(ch)}
    steps = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":
            steps += [{"names": [c.name], "label": c.name} for c in ch]
            continue
        names = CH.check_names(base, target, [x for x in part.split("+") if x.strip()])
        if mode != "ladder" and part in CH.GROUPS:
            steps += [{"names": [n], "label": n} for n in names]
        elif names:
            steps.append({"names": names, "label": part})
    seen, out = set(), []
    for s in steps:
        names = sorted((n for n in s["names"] if n not in seen), key=order.__getitem__)
        if names:
            seen |= set(names)
            out.append({"names": names, "label": s["label"] if names == sorted(s["names"], key=order.__getitem__)
                        else "+".join(names)})
    if not out:
        raise AblationError("--changes: name at least one change (`--list` shows them)")
    return out


class _Variants:
    """The variants of an ablation as they are added (one per distinct set of changes), and its comparisons."""

    def __init__(self, base: str, target: str):
        self.ch = CH.derive(base, target)
        self.by = {c.name: c for c in self.ch}
        self.order = {c.name: i for i, c in enumerate(self.ch)}
        self.V: list[dict] = []
        self.comps: list[dict] = []

    def add(self, applied: list[str], label: str) -> str:
        applied = sorted(applied, key=self.order.__getitem__)
        for v in self.V:
            if v["changes"] == applied:
                return v["id"]
        short = label.split(" (")[0]
        short = short if len(short) <= 40 else short[:32] + f"-{len(applied)}ch"
        vid = f"v{len(self.V):02d}-" + ("base" if not applied else "target" if len(applied) == len(self.ch) else
                                        short.replace("+", "plus-", 1).replace("-", "minus-", 1 if short[0] == "-"
                                                                                else 0).replace("+", "_"))
        vid = re.sub(r"[^A-Za-z0-9_.-]+", "_", vid)
        self.V.append({"id": vid, "label": label, "changes": applied})
        return vid

    def meta(self, names: list[str]) -> list[dict]:
        return [{"name": n, "year": self.by[n].year, "introduced_by": self.by[n].introduced_by} for n in names]


def _ladder(W: _Variants, steps: list[dict], base: str, target: str) -> None:
    """Cumulative, in historical order: each step against the variant before it, then the total."""
    steps.sort(key=lambda s: (min(W.by[n].year for n in s["names"]), min(W.order[n] for n in s["names"])))
    applied: list[str] = []
    prev = W.add([], "base")
    for st in steps:
        s = st["names"]
        CH.require_closed(base, target, applied + s, "--changes")
        applied = applied + s
        cur = W.add(applied, "+" + st["label"])
        W.comps.append({"change": st["label"], "changes": W.meta(s), "variant": cur, "reference": prev})
        prev = cur
    if len(steps) > 1:
        W.comps.append({"change": "total", "changes": W.meta(applied), "variant": prev, "reference": W.V[0]["id"],
                        "total": True})


def _each(W: _Variants, steps: list[dict]) -> None:
    """BASE + one change (with what it depends on) against BASE + its dependencies."""
    W.add([], "base")
    for st in steps:
        s = st["names"]
        deps = [r for n in s for r in _closure(W.by, n) if r not in s]
        missing = [r for r in deps if not any(r in t["names"] for t in steps)]
        if missing:
            raise AblationError(f"--changes: {st['label']!r} cannot be applied alone: it depends on "
                                f"{', '.join(map(repr, missing))}; add {','.join(missing)} to --changes")
        ref = W.add(deps, "+" + "+".join(deps)) if deps else W.V[0]["id"]
        cur = W.add(deps + s, "+" + st["label"] + (f" (with {'+'.join(deps)})" if deps else ""))
        W.comps.append({"change": st["label"], "changes": W.meta(s), "variant": cur, "reference": ref,
                        **({"with": deps} if deps else {})})


def _drop(W: _Variants, steps: list[dict], base: str, target: str) -> None:
    """TARGET minus a change (and what depends on it); the change's gain = target vs that."""
    allc = [c.name for c in W.ch]
    W.add(allc, "target")
    for st in steps:
        s = st["names"]
        dropped = list(dict.fromkeys(s + [d for n in s for d in CH.dependents(base, target, n)]))
        ref = W.add([n for n in allc if n not in dropped], "-" + "-".join(dropped))
        W.comps.append({"change": st["label"], "changes": W.meta(s), "variant": W.V[0]["id"], "reference": ref,
                        **({"also_dropped": [d for d in dropped if d not in s]} if len(dropped) > len(s) else {})})


def variants(base: str, target: str, mode: str = "ladder", changes: str | None = None) -> dict:
    """The variants and comparisons of an ablation (no sizes yet)."""
    if mode not in MODES:
        raise AblationError(f"--mode {mode!r}: use ladder, each or drop")
    W = _Variants(base, target)
    steps = _parse_steps(base, target, changes, mode)
    if mode == "ladder":
        _ladder(W, steps, base, target)
    elif mode == "each":
        _each(W, steps)
    else:
        _drop(W, steps, base, target)
    return {"changes": [c.to_dict() for c in W.ch], "variants": W.V, "comparisons": W.comps,
            "reference": W.V[0]["id"], "steps": [st["names"] for st in steps]}


def _closure(by: dict, name: str) -> list[str]:
    out, todo = [], list(by[name].requires)
    while todo:
        n = todo.pop()
        if n not in out:
            out.append(n)
            todo += list(by[n].requires)
    return out




# ----------------------------------------------------------------------- the request
@dataclass(frozen=True)
class PlanRequest:
    """Every option of an ablation plan, validated on construction (before anything is measured
    or written); the CLI builds one from its options, tests from keywords."""

    base: str
    target: str
    mode: str = "ladder"
    changes: str | None = None
    budgets: tuple[float, ...] = DEFAULT_BUDGETS
    points: int = DEFAULT_POINTS
    spread: float = DEFAULT_SPREAD
    seeds: int = DEFAULT_SEEDS
    ctx: int = 128
    batch: int = 16
    vocab: int = 256
    data: str = "stdlib"
    tokenizer: str = "bytes"
    seed: int = 0
    out: str | None = None
    eval_batches: int = DEFAULT_EVAL_BATCHES
    centre_tokens_per_param: float = DEFAULT_CENTRE_TOKENS_PER_PARAM
    logger: str = "none"  # --logger of every run (llmhist.train.tracking)

    def __post_init__(self):
        budgets = tuple(sorted(float(c) for c in (self.budgets or DEFAULT_BUDGETS)))
        object.__setattr__(self, "budgets", budgets)
        object.__setattr__(self, "out", str(Path(self.out or f"runs/ablate-{self.base}-{self.target}")))
        object.__setattr__(self, "logger", check_logger(self.logger))  # llmhist.train.tracking
        if len(budgets) < 2 or any(not (c > 0 and math.isfinite(c)) for c in budgets):
            raise AblationError(f"--budgets {','.join(f'{c:g}' for c in budgets)}: give at least two positive FLOP "
                                "budgets (a frontier needs two), e.g. 1e12,3e12")
        if not 3 <= self.points <= 50:
            raise AblationError(f"--points {self.points}: an isoFLOP minimum needs at least 3 sizes per budget "
                                "(4-7 is usual; at most 50)")
        if self.spread < 2:
            raise AblationError(f"--spread {self.spread}: sizes must span at least a factor 2")
        if not isinstance(self.eval_batches, int) or self.eval_batches < 1:
            raise AblationError(f"--eval-batches {self.eval_batches}: give 1 or more")
        tpp = self.centre_tokens_per_param
        if not (math.isfinite(tpp) and 1 <= tpp <= 1e5):
            raise AblationError(f"--centre-tokens-per-param {tpp}: give the expected optimum's D/N, between 1 and "
                                f"1e5 ({DEFAULT_CENTRE_TOKENS_PER_PARAM:g} by default; Chinchilla's is about 20)")
        if self.seeds < 1:
            raise AblationError(f"--seeds {self.seeds}: give 1 (no seed-noise runs) or more (2+ measure seed noise)")

    def centre(self, C: float) -> float:
        """The sizes' centre at budget C: D / N = centre_tokens_per_param."""
        return SH.centre_N(C, self.centre_tokens_per_param)

    @property
    def step_tokens(self) -> int:
        return self.ctx * self.batch


# ----------------------------------------------------------------------- shapes (the sweep's ladder, per variant)
def _max_ratio(base: str, target: str) -> int:
    rs = [CH.arch_value(CH.resolve(x), "kv_ratio") for x in (base, target)]
    return math.lcm(*[r for r in rs if isinstance(r, int)], 1)


def shape_candidates(base: str, target: str, n_max: float, vocab: int = 256, ctx: int = 128) -> list[SH.Shape]:
    """(d_model, n_layers, n_heads, N of the base variant) in the sweep's shape ladder, every head
    count a multiple of both GQA ratios (one KV head at the narrowest shapes, changes._set_kv_ratio;
    two where a family that is GQA itself keeps two, spec.resize), heads at least MIN_HEAD_DIM wide,
    the base and the full variant both building, up to N ~ n_max."""
    ratio = _max_ratio(base, target)
    ref = {"base": base, "target": target, "changes": []}
    full = {**ref, "changes": [c.name for c in CH.derive(base, target)]}

    def heads(h0: int) -> list[int]:
        return list(dict.fromkeys([ratio * max(1, h0 // ratio), ratio * max(2, h0 // ratio)])) if ratio > 1 else [h0]

    def probe(d: int, h: int) -> bool:
        try:
            for v in (ref, full):
                CH.variant_spec(v, d, max(1, math.ceil(d / 64)), h, vocab, ctx)
        except SpecError:
            return False
        return True

    return SH.ladder(lambda d, L, h: CH.variant_spec(ref, d, L, h, vocab, ctx), heads, MIN_HEAD_DIM, n_max, probe)


def _shapes(req: PlanRequest) -> tuple[SH.Shape, dict[float, list[SH.Shape]]]:
    """The smallest candidate shape, and per budget the sizes every variant trains: nearest the
    log-spaced targets around its centre."""
    n_max = req.centre(max(req.budgets)) * math.sqrt(req.spread) * 2
    ladder = shape_candidates(req.base, req.target, n_max, req.vocab, req.ctx)
    if len(ladder) < 3:
        raise AblationError(
            f"{req.base} -> {req.target}: only {len(ladder)} model shape(s) up to N~{4 * n_max:,.0f} fit both (every "
            f"variant trains the same shapes: n_heads a multiple of {_max_ratio(req.base, req.target)}, the least "
            f"common multiple of their GQA ratios, with heads at least {MIN_HEAD_DIM} wide and each family's own "
            "rules). Raise the budgets (--budgets; the largest sets the biggest size) or compare entries with fewer "
            "query heads per KV head")
    out = {}
    for C in req.budgets:
        n_mid = req.centre(C)
        chosen = SH.pick_nearest(ladder, SH.targets(n_mid, req.spread, req.points))
        if len(chosen) < 3 or not chosen[0].N < n_mid < chosen[-1].N:
            raise AblationError(
                f"--budgets: C={C:.3g} is too small to bracket: its expected optimum N~{n_mid:,.0f} (sqrt(C / (6 x "
                f"{req.centre_tokens_per_param:g}))) needs sizes on both sides, and the shapes available here give "
                f"{len(chosen)} distinct size(s) ({', '.join(f'{x.N:,}' for x in chosen)}; the smallest model has "
                f"N={ladder[0].N:,}). Raise the budgets (from about "
                f"{SH.budget_at(2 * ladder[0].N, req.centre_tokens_per_param):.1g} for these shapes), lower "
                "--centre-tokens-per-param, or widen --spread")
        if len(chosen) < req.points:  # reliability F15: never fewer sizes than asked for without a word
            raise AblationError(
                f"--points {req.points} at C={C:.3g}: only {len(chosen)} distinct shapes lie within --spread "
                f"{req.spread:g} of N~{n_mid:,.0f} for these architectures; give --points {len(chosen)} or fewer, "
                "or widen --spread")
        out[C] = chosen
    return ladder[0], out


# ----------------------------------------------------------------------- the plan
def _run(req: PlanRequest, var: dict, name: str, C: float, shape: tuple, N: int, D: float, seed: int, role: str,
         repeat_of: str | None = None) -> dict:
    """One run of the plan: its TrainConfig fields (`config`) and what the report reads."""
    d, L, h = shape
    steps = max(1, math.ceil(D / req.step_tokens))
    # one evaluation, at the end, on the fixed validation windows every run shares (eval_batches x
    # batch of them): the final loss is all a frontier needs, and 20 evaluations per run cost a
    # tenth of a tiny run's time
    cfg = {"arch": req.base, "d_model": d, "n_layers": L, "n_heads": h, "tokens": int(D), "seed": seed,
           "variant": var, "eval_every": steps}
    r = {"name": name, "role": role, "budget": C, "N": N, "D": int(D), "steps": steps, "config": cfg,
         "estimated_wall_s": None}
    if repeat_of:
        r["repeat_of"] = repeat_of
    return r


def _frontier_runs(req: PlanRequest, v: dict, shapes: dict[float, list[SH.Shape]], first: SH.Shape) -> list[dict]:
    """A variant's runs at every budget: each shape with D = C / 6N of its own N, at least MIN_STEPS steps."""
    var = {"base": req.base, "target": req.target, "changes": v["changes"]}
    runs = []
    for C in req.budgets:
        kept = []
        for d, L, h, _ in shapes[C]:
            N = accounting.params(CH.variant_spec(var, d, L, h, req.vocab, req.ctx)).active
            if C / (6 * N) >= S.MIN_STEPS * req.step_tokens:
                kept.append(((d, L, h), N, C / (6 * N)))
        if len(kept) < 3:
            smallest = accounting.params(CH.variant_spec(var, *first[:3], req.vocab, req.ctx)).active
            raise AblationError(
                f"--budgets: C={C:.3g} is too small for variant {v['label']!r}: only {len(kept)} of its sizes get "
                f"{S.MIN_STEPS} optimizer steps of {req.step_tokens} tokens; the smallest model here has "
                f"N={smallest:,}, which alone needs C >= {6 * smallest * S.MIN_STEPS * req.step_tokens:.2g}. "
                "Raise the budgets, or lower --batch/--ctx")
        for shape, N, D in kept:
            name = f"{v['id']}-C{C:.0e}-d{shape[0]}l{shape[1]}h{shape[2]}".replace("+", "")
            runs.append(_run(req, var, name, C, shape, N, D, req.seed, "frontier"))
    return runs


def _seed_repeats(req: PlanRequest, ref_runs: list[dict]) -> list[dict]:
    """The reference variant at the smallest budget, the size nearest the expected optimum, other seeds."""
    if req.seeds <= 1:
        return []
    C0 = req.budgets[0]
    mid = min((r for r in ref_runs if r["budget"] == C0), key=lambda r: abs(math.log(r["N"] / req.centre(C0))))
    c = mid["config"]
    shape = (c["d_model"], c["n_layers"], c["n_heads"])
    return [_run(req, c["variant"], f"{mid['name']}-seed{s}", C0, shape, mid["N"], mid["D"], s, "seed_repeat",
                 repeat_of=mid["name"]) for s in range(req.seed + 1, req.seed + req.seeds)]


def plan(req: PlanRequest, peak: float | None = None, peak_how: str | None = None) -> dict:
    """Plan an ablation: variants x budgets x shapes, plus seed repeats of the reference; its time
    estimated at `peak` FLOP/s (ASSUMED_PEAK without one; `estimate` again with a measured one)."""
    from ..archs import registry

    V = variants(req.base, req.target, req.mode, req.changes)
    first, shapes = _shapes(req)
    known = {f.name for f in fields(TrainConfig)}
    for v in V["variants"]:
        v["runs"] = _frontier_runs(req, v, shapes, first)
        if v["id"] == V["reference"]:
            v["runs"] += _seed_repeats(req, v["runs"])
        assert all(k in known for r in v["runs"] for k in r["config"])  # every key is a TrainConfig field
        v["estimated_wall_s"] = None
        v["flops"] = sum(r["budget"] for r in v["runs"])
    doc = {
        "version": S.PLAN_VERSION, "base": req.base, "target": req.target, "base_entry": registry.get(req.base).name,
        "target_entry": registry.get(req.target).name, "mode": req.mode, "budgets": list(req.budgets),
        "points": req.points, "spread": req.spread, "centre_tokens_per_param": req.centre_tokens_per_param,
        "seeds": req.seeds, "seed": req.seed,
        "common": {"data": req.data, "tokenizer": req.tokenizer, "ctx": req.ctx, "batch": req.batch,
                   "eval_batches": req.eval_batches, **({"logger": req.logger} if req.logger != "none" else {})},
        "vocab": req.vocab, "out": req.out, **V, "convention": CONVENTION, "estimate": None, "estimated_wall_s": None,
        "n_runs": sum(len(v["runs"]) for v in V["variants"]),
    }
    doc["hash"] = sweep_plan(doc).hash()
    return estimate(doc, peak, peak_how)


def estimate(doc: dict, peak: float | None = None, peak_how: str | None = None) -> dict:
    """Put the time model's device-seconds on every run and variant of the plan and its total
    (llmhist.train.sweep.estimate.run_seconds at `peak` FLOP/s, ASSUMED_PEAK without one)."""
    pk, how = (peak, peak_how or f"given peak {peak:.3g} FLOP/s") if peak else (
        ASSUMED_PEAK, f"assumed peak {ASSUMED_PEAK:.3g} FLOP/s (a run measures this CPU's before it starts)")
    ctx, batch, vocab = doc["common"]["ctx"], doc["common"]["batch"], doc["vocab"]
    cores = usable_cores()
    for v in doc["variants"]:
        for r in v["runs"]:
            c = r["config"]
            a = CH.variant_spec(c["variant"], c["d_model"], c["n_layers"], c["n_heads"], vocab, ctx)
            r["estimated_wall_s"] = round(S.run_seconds(a, r["steps"] * ctx * batch, ctx, batch, pk, cores), 2)
        v["estimated_wall_s"] = round(sum(r["estimated_wall_s"] for r in v["runs"]), 1)
    total = sum(v["estimated_wall_s"] for v in doc["variants"]) + FIT_S + START_S
    doc["estimate"] = {"how": f"{how}; {S.time_model(pk)}; + {FIT_S:g} s for the fits and {START_S:g} s to start",
                       "peak_flops": pk}
    doc["estimated_wall_s"] = round(total, 1)
    return doc


# ----------------------------------------------------------------------- as a sweep
def sweep_plan(doc: dict) -> S.SweepPlan:
    """The ablation as a sweep plan (kind "ablation"): one RunSpec per run, its variant, seed and
    evaluation settings as per-run TrainConfig options, grouped by budget (the local queue trains
    the runs of one budget in one worker process) with the nominal budget; the ablation's own
    description (variants, comparisons, changes) rides along as the plan's meta."""
    mapped = ("arch", "d_model", "n_layers", "n_heads", "tokens")
    runs = []
    for v in doc["variants"]:
        for r in v["runs"]:
            c = r["config"]
            runs.append(S.RunSpec(name=r["name"], arch=c["arch"], d_model=c["d_model"], n_layers=c["n_layers"],
                                  n_heads=c["n_heads"], tokens=c["tokens"], N=r["N"], C=6 * r["N"] * c["tokens"],
                                  group=f"C={r['budget']:.3g}", options={k: x for k, x in c.items() if k not in mapped},
                                  budget=float(r["budget"])))
    meta = {"ablation": {k: x for k, x in doc.items() if k != "hash"}}
    return S.SweepPlan("ablation", runs, dict(doc["common"]), meta)


def load(folder: str | Path) -> dict:
    """The ablation plan an ablation folder (a sweep folder of kind "ablation") holds."""
    folder = Path(folder)
    if not (folder / "plan.json").exists():
        raise AblationError(f"{folder}: no plan.json; give a folder `llmhist ablate` wrote (--out)")
    sp = S.load_plan(folder)
    if sp.kind != "ablation" or "ablation" not in sp.meta:
        raise AblationError(f"{folder}: a {sp.kind} sweep, not an ablation; `llmhist fit {folder}` fits it")
    return {**sp.meta["ablation"], "hash": sp.hash()}


# ----------------------------------------------------------------------- running
def prepare(plan_doc: dict, out: str | Path, threads: int | None = None) -> list[Path]:
    """Write plan.json (or check the folder holds this plan, as `llmhist sweep` does) and each
    unfinished run's run.json; return those run folders."""
    from ..core.files import exclusive_lock

    out = Path(out)
    sp = sweep_plan(plan_doc)
    with exclusive_lock(out, f"llmhist ablate (pid {os.getpid()})"):
        S.prepare(out, sp)
        return S.write_requests(out, sp, S.runs_to_launch(out, sp), threads)


def run_plan(plan_doc: dict, out: str | Path, workers: int | None = None, threads: int | None = None,
             launcher: str = "local", slurm: dict | None = None, retry_failed: bool = False,
             on_tick=None) -> list[dict]:
    """Train what is not finished, through the sweep machinery: the local queue (llmhist.train.sweep.
    run_local: the folder's lock, one worker process per group of runs of one budget, processes x
    threads as the sweep decides, children that die with this process, resumable) or Slurm
    (sweep.submit_slurm; returns at once). Returns `llmhist sweep status` rows."""
    S.check_launch(launcher, workers, threads)
    out = Path(out)
    sp = S.SweepPlan.from_dict(sweep_plan(plan_doc).to_dict())
    if launcher == "slurm":
        S.submit_slurm(out, sp, retry_failed=retry_failed, **(slurm or {}))
        return S.status(out)
    w, t, _ = S.choose_split(sp, workers, threads)
    est = {r["name"]: r["estimated_wall_s"] for v in plan_doc["variants"] for r in v["runs"]}
    return S.run_local(out, sp, w, t, retry_failed=retry_failed, on_tick=on_tick, est=est)


def status(plan_doc: dict, out: str | Path) -> list[dict]:
    """`llmhist sweep status` rows of the ablation folder, with each run's variant and role."""
    role = {r["name"]: (v["id"], r["role"]) for v in plan_doc["variants"] for r in v["runs"]}
    rows = S.status(Path(out))
    return [{**x, "variant": role.get(x["run"], ("?", "?"))[0], "role": role.get(x["run"], ("?", "?"))[1]}
            for x in rows]
