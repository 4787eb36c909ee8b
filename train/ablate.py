"""Ablations: one isoFLOP sweep per variant (same budgets, data, seeds and model shapes), repeats of
the reference for seed noise, then per-variant frontiers and compute-equivalent gains.

A plan is data (JSON): the changes (name, year, introduced_by), the variants (which changes each
applies), the comparisons (variant against reference: one per change, plus the total along a
ladder), and every run as a dict of TrainConfig fields with `variant` = {"base", "target",
"changes"} that the training loop resolves through llmhist.archs.changes.variant_spec/_recipe.

Shapes: every variant trains at the SAME (d_model, n_layers, n_heads) at a budget, so a comparison
isolates its change: the candidates follow llmhist.train.sweep's shape ladder (head width 8 below
d_model 32, 16 below 128, 32 up to 256, 64 above; aspect d_model / n_layers 16..64; even head width),
with n_heads rounded down to whole GQA groups of the variants' largest ratio (4 heads for llama3's
4:1 at the smallest widths: one KV head there, see changes._set_kv_ratio; forcing two KV heads meant
8 heads 4 wide at d_model 32, where the attention kernel's per-head cost doubled the step). Sizes
per budget are log-spaced over `spread` around N = sqrt(C / (6 x tokens_per_param)) of the reference
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
Any finer ladder is one option away (`--changes all`, or e.g. `--changes recipe,norm+bias,
positions+rope_theta,mlp+mlp_width,attention,tied_embeddings`) and its estimated time is printed
before anything runs.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import fields
from pathlib import Path

from llmhist.archs import accounting
from llmhist.archs import changes as CH
from llmhist.archs.spec import SpecError
from llmhist.errors import UserError
from llmhist.files import write_json

from .config import usable_cores
from .sweep import run_seconds, time_model

PLAN_VERSION = 1
DEFAULT_BUDGETS = (3e11, 1e12, 3e12)
DEFAULT_POINTS = 4
DEFAULT_SPREAD = 16.0
DEFAULT_TOKENS_PER_PARAM = 100.0  # the sizes' centre: N = sqrt(C / (6 x this))
DEFAULT_SEEDS = 6  # the reference's seed-noise runs at the smallest budget: seed 0 + 5 more
DEFAULT_STEPS = {"ladder": "recipe,arch", "each": "all", "drop": "all"}
MIN_STEPS_PER_RUN = 4
MIN_HEAD_DIM = 4  # below this RoPE rotates a single frequency pair; sweep's GQA rounding can reach 2
DEFAULT_EVAL_BATCHES = 16  # the one final evaluation: 16 x batch fixed validation windows

# wall-time model: llmhist.train.sweep.run_seconds (calibrated per token on this CPU)
ASSUMED_PEAK = 3.0e11  # FLOP/s for --dry-run (torch-free): about a 2-core Xeon's measured matmul peak
FIT_S = 15.0  # bootstrap fits and the report
START_S = 10.0  # the processes x threads probe (cached after the first time) and the CPU peak probe


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


def variants(base: str, target: str, mode: str = "ladder", changes: str | None = None) -> dict:
    """The variants and comparisons of an ablation (no sizes yet)."""
    if mode not in ("ladder", "each", "drop"):
        raise AblationError(f"--mode {mode!r}: use ladder, each or drop")
    ch = CH.derive(base, target)
    by = {c.name: c for c in ch}
    steps = _parse_steps(base, target, changes, mode)
    order = {c.name: i for i, c in enumerate(ch)}
    V: list[dict] = []
    comps: list[dict] = []

    def add(applied: list[str], label: str) -> str:
        applied = sorted(applied, key=order.__getitem__)
        for v in V:
            if v["changes"] == applied:
                return v["id"]
        short = label.split(" (")[0]
        short = short if len(short) <= 40 else short[:32] + f"-{len(applied)}ch"
        vid = f"v{len(V):02d}-" + ("base" if not applied else "target" if len(applied) == len(ch) else
                                   short.replace("+", "plus-", 1).replace("-", "minus-", 1 if short[0] == "-" else 0)
                                   .replace("+", "_"))
        vid = re.sub(r"[^A-Za-z0-9_.-]+", "_", vid)
        V.append({"id": vid, "label": label, "changes": applied})
        return vid

    def meta(names):
        return [{"name": n, "year": by[n].year, "introduced_by": by[n].introduced_by} for n in names]

    if mode == "ladder":
        steps.sort(key=lambda s: (min(by[n].year for n in s["names"]), min(order[n] for n in s["names"])))
        applied: list[str] = []
        prev = add([], "base")
        for st in steps:
            s = st["names"]
            CH.require_closed(base, target, applied + s, "--changes")
            applied = applied + s
            cur = add(applied, "+" + st["label"])
            comps.append({"change": st["label"], "changes": meta(s), "variant": cur, "reference": prev})
            prev = cur
        if len(steps) > 1:
            comps.append({"change": "total", "changes": meta(applied), "variant": prev, "reference": V[0]["id"],
                          "total": True})
    elif mode == "each":
        add([], "base")
        for st in steps:
            s = st["names"]
            deps = [r for n in s for r in _closure(by, n) if r not in s]
            missing = [r for r in deps if not any(r in t["names"] for t in steps)]
            if missing:
                raise AblationError(f"--changes: {st['label']!r} cannot be applied alone: it depends on "
                                    f"{', '.join(map(repr, missing))}; add {','.join(missing)} to --changes")
            ref = add(deps, "+" + "+".join(deps)) if deps else V[0]["id"]
            cur = add(deps + s, "+" + st["label"] + (f" (with {'+'.join(deps)})" if deps else ""))
            comps.append({"change": st["label"], "changes": meta(s), "variant": cur, "reference": ref,
                          **({"with": deps} if deps else {})})
    else:  # drop: TARGET minus a change (and what depends on it); the change's gain = target vs that
        allc = [c.name for c in ch]
        add(allc, "target")
        for st in steps:
            s = st["names"]
            dropped = list(dict.fromkeys(s + [d for n in s for d in CH.dependents(base, target, n)]))
            ref = add([n for n in allc if n not in dropped], "-" + "-".join(dropped))
            comps.append({"change": st["label"], "changes": meta(s), "variant": V[0]["id"], "reference": ref,
                          **({"also_dropped": [d for d in dropped if d not in s]} if len(dropped) > len(s) else {})})
    return {"changes": [c.to_dict() for c in ch], "variants": V, "comparisons": comps,
            "reference": V[0]["id"], "steps": [st["names"] for st in steps]}


def _closure(by: dict, name: str) -> list[str]:
    out, todo = [], list(by[name].requires)
    while todo:
        n = todo.pop()
        if n not in out:
            out.append(n)
            todo += list(by[n].requires)
    return out


# ----------------------------------------------------------------------- shapes (sweep's ladder, per variant)
def _max_ratio(base: str, target: str) -> int:
    rs = [CH.arch_value(CH.resolve(x), "kv_ratio") for x in (base, target)]
    return math.lcm(*[r for r in rs if isinstance(r, int)], 1)


def shape_candidates(base: str, target: str, n_max: float, vocab: int = 256, ctx: int = 128) -> list[tuple]:
    """(d_model, n_layers, n_heads, N of the base variant) in sweep.shape_ladder's proportions,
    every head count a multiple of both GQA ratios and heads at least MIN_HEAD_DIM wide, up to N ~ n_max."""
    ratio = _max_ratio(base, target)
    ref = {"base": base, "target": target, "changes": []}
    full = {**ref, "changes": [c.name for c in CH.derive(base, target)]}
    out = []
    for d in [16, 24] + list(range(32, 257, 16)) + list(range(288, 1025, 32)):
        hd = 8 if d < 32 else 16 if d < 128 else (32 if d <= 256 else 64)
        if d % hd:
            continue
        h0 = d // hd
        # whole GQA groups: one KV head at the narrowest shapes (changes._set_kv_ratio), two where a
        # family that is GQA itself keeps two (spec.resize)
        heads = dict.fromkeys([ratio * max(1, h0 // ratio), ratio * max(2, h0 // ratio)] if ratio > 1 else [h0])
        smallest = None
        for h in heads:
            if d % h or (d // h) % 2 or d // h < MIN_HEAD_DIM:
                continue
            try:
                for v in (ref, full):
                    CH.variant_spec(v, d, max(1, math.ceil(d / 64)), h, vocab, ctx)
            except SpecError:
                continue
            for L in range(max(1, math.ceil(d / 64)), min(48, d // 16) + 1):
                try:
                    a = CH.variant_spec(ref, d, L, h, vocab, ctx)
                except SpecError:
                    continue
                N = accounting.params(a).active
                smallest = N if smallest is None else smallest
                if N > 4 * n_max:
                    break
                out.append((d, L, h, N))
            break
        if smallest is not None and smallest > 4 * n_max:
            break
    return sorted(out, key=lambda s: s[3])


def _nearest(ladder, target_N, tol=0.08):
    best = min(ladder, key=lambda s: abs(math.log(s[3] / target_N)))
    close = [s for s in ladder if abs(math.log(s[3] / target_N)) <= abs(math.log(best[3] / target_N)) + tol]
    return min(close, key=lambda s: abs(math.log(s[0] / s[1] / 32)))


# ----------------------------------------------------------------------- time
def measured_peak(threads: int | None = None) -> tuple[float, str]:
    """The CPU's float32 matmul peak with `threads` threads (all usable cores by default), measured
    and cached by llmhist.train.device (imports torch: call it only when a run is about to start)."""
    from . import device

    threads = threads or device.usable_cores()
    pk = device.cpu_matmul_peak(threads)
    return pk, f"measured CPU peak {pk:.3g} FLOP/s ({threads} threads; {device.cpu_peak_cache_path()})"


def estimate_run_s(a, tokens: int, ctx: int, batch: int, peak: float) -> float:
    """Device-seconds of one run on this CPU (all its cores busy with the plan's runs):
    llmhist.train.sweep.run_seconds, the one time model."""
    return run_seconds(a, tokens, ctx, batch, peak, usable_cores())


# ----------------------------------------------------------------------- the plan
def plan(base: str, target: str, mode: str = "ladder", changes: str | None = None, budgets=None,
         points: int = DEFAULT_POINTS, spread: float = DEFAULT_SPREAD, seeds: int = DEFAULT_SEEDS,
         ctx: int = 128, batch: int = 16, vocab: int = 256, data: str = "stdlib", tokenizer: str = "bytes",
         seed: int = 0, out: str | Path | None = None, peak: float | None = None, peak_how: str | None = None,
         eval_batches: int = DEFAULT_EVAL_BATCHES, tokens_per_param: float = DEFAULT_TOKENS_PER_PARAM) -> dict:
    """Plan an ablation: variants x budgets x shapes, plus seed repeats of the reference."""
    from llmhist.archs import registry
    from llmhist.train.config import TrainConfig

    budgets = sorted(float(c) for c in (budgets or DEFAULT_BUDGETS))
    if len(budgets) < 2 or any(not (c > 0 and math.isfinite(c)) for c in budgets):
        raise AblationError(f"--budgets {budgets}: give at least two positive FLOP budgets (a frontier needs two), "
                            "e.g. 1e12,3e12")
    if points < 3:
        raise AblationError(f"--points {points}: an isoFLOP minimum needs at least 3 sizes per budget")
    if spread < 2:
        raise AblationError(f"--spread {spread}: sizes must span at least a factor 2")
    if not isinstance(eval_batches, int) or eval_batches < 1:
        raise AblationError(f"--eval-batches {eval_batches}: give 1 or more")
    if not (math.isfinite(tokens_per_param) and 1 <= tokens_per_param <= 1e5):
        raise AblationError(f"--tokens-per-param {tokens_per_param}: give the expected optimum's D/N, between 1 and "
                            f"1e5 ({DEFAULT_TOKENS_PER_PARAM:g} by default; Chinchilla's is about 20)")
    if seeds < 1:
        raise AblationError(f"--seeds {seeds}: give 1 (no seed-noise runs) or more (2+ measure seed noise)")
    V = variants(base, target, mode, changes)
    out = Path(out or f"runs/ablate-{base}-{target}")
    base_name, target_name = registry.get(base).name, registry.get(target).name

    def n_centre(C: float) -> float:  # the sizes' centre at budget C: D / N = tokens_per_param
        return math.sqrt(C / (6 * tokens_per_param))

    n_max = n_centre(max(budgets)) * math.sqrt(spread) * 2
    ladder = shape_candidates(base, target, n_max, vocab, ctx)
    if len(ladder) < 3:
        ratio = _max_ratio(base, target)
        raise AblationError(
            f"{base} -> {target}: only {len(ladder)} model shape(s) up to N~{4 * n_max:,.0f} fit both (every variant "
            f"trains the same shapes: n_heads a multiple of {ratio}, the least common multiple of their GQA ratios, "
            f"with heads at least {MIN_HEAD_DIM} wide and each family's own rules). Raise the budgets (--budgets; the "
            "largest sets the biggest size) or compare entries with fewer query heads per KV head")
    tps = ctx * batch
    pk, how = (peak, peak_how or f"given peak {peak:.3g} FLOP/s") if peak else (
        ASSUMED_PEAK, f"assumed peak {ASSUMED_PEAK:.3g} FLOP/s (a run measures this CPU's before it starts)")
    known = {f.name for f in fields(TrainConfig)}
    common = {"data": data, "tokenizer": tokenizer, "ctx": ctx, "batch": batch, "eval_batches": eval_batches}
    shapes: dict[float, list] = {}
    for C in budgets:
        n_mid = n_centre(C)
        chosen = []
        for i in range(points):
            s = _nearest(ladder, n_mid * spread ** (i / (points - 1) - 0.5))
            if s not in chosen:
                chosen.append(s)
        if len(chosen) < 3 or not chosen[0][3] < n_mid < chosen[-1][3]:
            raise AblationError(
                f"--budgets: C={C:.3g} is too small to bracket: its expected optimum N~{n_mid:,.0f} (sqrt(C / (6 x {tokens_per_param:g}))) needs "
                f"sizes on both sides, and the shapes available here give {len(chosen)} distinct size(s) "
                f"({', '.join(f'{x[3]:,}' for x in chosen)}; the smallest model has N={ladder[0][3]:,}). "
                f"Raise the budgets (from about {6 * tokens_per_param * (2 * ladder[0][3]) ** 2:.1g} for these "
                "shapes), lower --tokens-per-param, or widen --spread")
        shapes[C] = chosen
    runs_by_variant: dict[str, list[dict]] = {v["id"]: [] for v in V["variants"]}
    for v in V["variants"]:
        var = {"base": base, "target": target, "changes": v["changes"]}
        for C in budgets:
            kept = []
            for d, L, h, _ in shapes[C]:
                a = CH.variant_spec(var, d, L, h, vocab, ctx)
                N = accounting.params(a).active
                D = C / (6 * N)
                if D < MIN_STEPS_PER_RUN * tps:
                    continue
                kept.append((d, L, h, a, N, D))
            if len(kept) < 3:
                d0, L0, h0 = ladder[0][:3]
                smallest = accounting.params(CH.variant_spec(var, d0, L0, h0, vocab, ctx)).active
                raise AblationError(
                    f"--budgets: C={C:.3g} is too small for variant {v['label']!r}: only {len(kept)} of its sizes get "
                    f"{MIN_STEPS_PER_RUN} optimizer steps of {tps} tokens; the smallest model here has "
                    f"N={smallest:,}, which alone needs C >= {6 * smallest * MIN_STEPS_PER_RUN * tps:.2g}. "
                    "Raise the budgets, or lower --batch/--ctx")
            for d, L, h, a, N, D in kept:
                name = f"{v['id']}-C{C:.0e}-d{d}l{L}h{h}".replace("+", "")
                runs_by_variant[v["id"]].append(_run(a, name, C, N, D, var, d, L, h, seed, tps, ctx, pk, base,
                                                     "frontier"))
    # seed repeats: the reference variant at the smallest budget, the size nearest the expected optimum
    ref_id = V["reference"]
    if seeds > 1:
        C0 = budgets[0]
        cands = [r for r in runs_by_variant[ref_id] if r["budget"] == C0]
        mid = min(cands, key=lambda r: abs(math.log(r["N"] / n_centre(C0))))
        var = mid["config"]["variant"]
        for s in range(seed + 1, seed + seeds):
            a = CH.variant_spec(var, mid["config"]["d_model"], mid["config"]["n_layers"], mid["config"]["n_heads"],
                                vocab, ctx)
            runs_by_variant[ref_id].append(_run(a, f"{mid['name']}-seed{s}", C0, mid["N"], mid["D"], var,
                                                mid["config"]["d_model"], mid["config"]["n_layers"],
                                                mid["config"]["n_heads"], s, tps, ctx, pk, base, "seed_repeat",
                                                repeat_of=mid["name"]))
    for rs in runs_by_variant.values():
        for r in rs:
            bad = [k for k in r["config"] if k not in known]
            assert not bad, bad  # every key is a TrainConfig field
    for v in V["variants"]:
        v["runs"] = runs_by_variant[v["id"]]
        v["estimated_wall_s"] = round(sum(r["estimated_wall_s"] for r in v["runs"]), 1)
        v["flops"] = sum(r["budget"] for r in v["runs"])
    total = sum(v["estimated_wall_s"] for v in V["variants"]) + FIT_S + START_S
    doc = {
        "version": PLAN_VERSION, "base": base, "target": target, "base_entry": base_name, "target_entry": target_name,
        "mode": mode, "budgets": budgets, "points": points, "spread": spread, "tokens_per_param": tokens_per_param, "seeds": seeds, "seed": seed,
        "common": common, "vocab": vocab, "out": str(out), **V,
        "convention": "C = 6 N D, N = all parameters incl. embeddings (accounting.flops_per_token '6N'); each run "
                      "of a variant trains D = C / 6N tokens with its own N",
        "estimate": {"how": f"{how}; {time_model(pk)}; + {FIT_S:g} s for the fits and "
                            f"{START_S:g} s to start",
                     "peak_flops": pk},
        "estimated_wall_s": round(total, 1),
        "n_runs": sum(len(v["runs"]) for v in V["variants"]),
    }
    doc["hash"] = sweep_plan(doc).to_dict()["hash"]
    return doc


def _run(a, name, C, N, D, var, d, L, h, seed, tps, ctx, peak, arch, role, repeat_of=None) -> dict:
    steps = max(1, math.ceil(D / tps))
    # one evaluation, at the end, on the fixed validation windows every run shares (eval_batches x
    # batch of them): the final loss is all a frontier needs, and 20 evaluations per run cost a
    # tenth of a tiny run's time
    cfg = {"arch": arch, "d_model": d, "n_layers": L, "n_heads": h, "tokens": int(D), "seed": seed,
           "variant": var, "eval_every": steps}
    r = {"name": name, "role": role, "budget": C, "N": N, "D": int(D), "steps": steps, "config": cfg,
         "estimated_wall_s": round(estimate_run_s(a, steps * tps, ctx, tps // ctx, peak), 2)}
    if repeat_of:
        r["repeat_of"] = repeat_of
    return r


def sweep_plan(doc: dict):
    """The ablation as a sweep plan (llmhist.train.sweep.SweepPlan, kind "ablation"): one RunSpec per
    run, its variant, seed and evaluation settings as per-run TrainConfig options, grouped by budget
    (the local queue trains the runs of one budget in one worker process); the ablation's own
    description (variants, comparisons, changes) rides along as the plan's meta."""
    from .sweep import RunSpec, SweepPlan

    mapped = ("arch", "d_model", "n_layers", "n_heads", "tokens")
    runs = []
    for v in doc["variants"]:
        for r in v["runs"]:
            c = r["config"]
            runs.append(RunSpec(name=r["name"], arch=c["arch"], d_model=c["d_model"], n_layers=c["n_layers"],
                                n_heads=c["n_heads"], tokens=c["tokens"], N=r["N"], C=6 * r["N"] * c["tokens"],
                                group=f"C={r['budget']:.3g}", options={k: x for k, x in c.items() if k not in mapped}))
    meta = {"ablation": {k: x for k, x in doc.items() if k != "hash"}}
    return SweepPlan("ablation", runs, dict(doc["common"]), meta)


def load(folder: str | Path) -> dict:
    """The ablation plan an ablation folder (a sweep folder of kind "ablation") holds."""
    from .sweep import load_plan

    folder = Path(folder)
    if not (folder / "plan.json").exists():
        raise AblationError(f"{folder}: no plan.json; give a folder `llmhist ablate` wrote (--out)")
    sp = load_plan(folder)
    if sp.kind != "ablation" or "ablation" not in sp.meta:
        raise AblationError(f"{folder}: a {sp.kind} sweep, not an ablation; `llmhist fit {folder}` fits it")
    return {**sp.meta["ablation"], "hash": sp.to_dict()["hash"]}


# ----------------------------------------------------------------------- running
def prepare(plan_doc: dict, out: str | Path, threads: int | None = None) -> list[Path]:
    """Write plan.json (or check the folder holds this plan, as `llmhist sweep` does) and each
    unfinished run's run.json; return those run folders."""
    from .sweep import exclusive_lock, runs_to_launch, write_requests
    from .sweep import prepare as sweep_prepare

    out = Path(out)
    sp = sweep_plan(plan_doc)
    with exclusive_lock(out, f"llmhist ablate (pid {os.getpid()})"):
        sweep_prepare(out, sp)
        return write_requests(out, sp, runs_to_launch(out, sp), threads)


def run_plan(plan_doc: dict, out: str | Path, workers: int | None = None, threads: int | None = None,
             launcher: str = "local", slurm: dict | None = None, retry_failed: bool = False,
             on_tick=None) -> list[dict]:
    """Train what is not finished, through the sweep machinery: the local queue (llmhist.train.sweep.
    run_local: the folder's lock, one worker process per group of runs of one budget, processes x
    threads as the sweep decides, children that die with this process, resumable) or Slurm
    (sweep.submit_slurm; returns at once). Returns `llmhist sweep status` rows."""
    from . import sweep as S

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
    from .sweep import status as sweep_status

    role = {r["name"]: (v["id"], r["role"]) for v in plan_doc["variants"] for r in v["runs"]}
    rows = sweep_status(Path(out))
    return [{**x, "variant": role.get(x["run"], ("?", "?"))[0], "role": role.get(x["run"], ("?", "?"))[1]}
            for x in rows]


# ----------------------------------------------------------------------- the report
def _read_points(folder: Path, plan_doc: dict) -> tuple[dict, dict, list]:
    pts: dict[str, dict] = {}
    seeds: dict[str, dict] = {}
    left: list[dict] = []
    for v in plan_doc["variants"]:
        P: dict[str, list[float]] = {"C": [], "N": [], "loss": [], "budget": []}
        for r in v["runs"]:
            d = folder / r["name"]
            try:
                s = json.loads((d / "summary.json").read_text())
            except (OSError, json.JSONDecodeError):
                left.append({"run": r["name"], "reason": "unfinished (no summary.json)"})
                continue
            L = s.get("val_loss")
            if s.get("status") != "finished" or L is None or not math.isfinite(L):
                left.append({"run": r["name"], "reason": s.get("status", "no status")})
                continue
            if r["role"] == "seed_repeat":
                seeds.setdefault(r["repeat_of"], {"variant": v["id"], "losses": []})["losses"].append(float(L))
                continue
            P["C"].append(float(s.get("C", r["budget"])))
            P["N"].append(float(s.get("N", r["N"])))
            P["loss"].append(float(L))
            P["budget"].append(float(r["budget"]))
            if any(x.get("repeat_of") == r["name"] for x in v["runs"]):
                seeds.setdefault(r["name"], {"variant": v["id"], "losses": []})["losses"].append(float(L))
        pts[v["id"]] = P
    return pts, seeds, left


def frontier_band(P: dict, n_boot: int = 200, seed_sd: float = 0.0, rng_seed: int = 0, seed_dof: int | None = None
                  ) -> dict:
    """A variant's frontier points and a 90% band, drawn as the CEG intervals are
    (llmhist.scaling.ceg.ceg): with seed noise measured, every run's loss re-drawn with sd
    max(seed sd, its budget's parabola residual sd); without, runs resampled within budgets."""
    import numpy as np

    from llmhist.scaling.ceg import budget_minima, redraw, run_noise
    from llmhist.scaling.points import FitError

    p = tuple(np.asarray(P[k], float) for k in ("C", "N", "loss", "budget"))
    if len(np.unique(p[3])) < 2:
        raise FitError(f"finished runs at {len(np.unique(p[3]))} budget(s); a frontier needs two")
    Cb, Lb, how = budget_minima(*p)
    rng = np.random.default_rng(rng_seed)
    sd = run_noise(p, seed_sd) if seed_sd else None
    minima = [budget_minima(*redraw(p, sd, rng, seed_dof))[1] for _ in range(n_boot)]
    samples = [m for m in minima if (m > 0).all()]  # as the CEG's bootstrap drops them (scaling.ceg.ceg)
    if not samples:
        raise FitError(f"every one of {n_boot} re-draws gave a frontier loss <= 0: seed noise {seed_sd:.3g} over "
                       f"{seed_dof} degree(s) of freedom is too wide to draw a band; run more seeds (--seeds)")
    reps = np.array(samples)
    return {"C": Cb.tolist(), "loss": Lb.tolist(), "how": how, "band": [np.percentile(reps, 5, 0).tolist(),
                                                                      np.percentile(reps, 95, 0).tolist()]}


def _spec_groups(folder: Path, doc: dict) -> list[dict]:
    """The runs of one variant must share one spec (scaling.runs.spec_key, as `llmhist fit` groups
    them); a variant whose runs span several is reported."""
    from llmhist.scaling.runs import spec_key

    warn = []
    for v in doc["variants"]:
        keys = set()
        for r in v["runs"]:
            cj = folder / r["name"] / "config.json"
            try:
                keys.add(spec_key(json.loads(cj.read_text()))[0])
            except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        if len(keys) > 1:
            warn.append({"run": v["id"], "reason": f"warning: its runs span {len(keys)} specs (spec_key)"})
    return warn


def allocation_rows(budgets, laws_=("hoffmann2022", "epoch2024")) -> list[dict]:
    """CEG of compute-optimal allocation against Kaplan's at each budget, per law (no training)."""
    from llmhist.scaling import laws as LW
    from llmhist.scaling.ceg import allocation_ceg

    rows = []
    for name in laws_:
        try:
            law = LW.get(name)
        except KeyError as e:
            raise AblationError(f"--law {name!r}: {e.args[0]}") from None
        except ValueError as e:
            raise AblationError(f"--law {name!r}: {e}") from None
        rows.append({"law": law.name, "budgets": [allocation_ceg(law, C) for C in budgets]})
    return rows


def report(folder: str | Path, n_boot: int = 1000, level: float = 0.9, method: str = "auto",
           out: str | Path | None = None, seed: int = 0, laws=("hoffmann2022", "epoch2024")) -> dict:
    """Read a finished (or partly finished) ablation folder, fit each variant's frontier, compute the
    CEG of every comparison with intervals, the cumulative product along a ladder, and write the
    fits as JSON into OUT/fits (or `out`)."""
    from llmhist.scaling import ceg as G
    from llmhist.scaling.points import FitError

    folder = Path(folder)
    doc = load(folder)
    pts, seeds, left = _read_points(folder, doc)
    left += _spec_groups(folder, doc)
    seed_rows = [s for s in seeds.values() if len(s["losses"]) >= 2]
    seed_sd = G.seed_noise(seed_rows[0]["losses"]) if seed_rows else 0.0
    seed_dof = len(seed_rows[0]["losses"]) - 1 if seed_rows else None
    fits = Path(out) if out else folder / "fits"
    frontiers, paths = {}, []
    for v in doc["variants"]:
        P = pts[v["id"]]
        try:
            fb = frontier_band(P, 200, seed_sd, seed, seed_dof)
        except (FitError, ValueError) as e:
            frontiers[v["id"]] = {"error": str(e)}
            continue
        frontiers[v["id"]] = fb
        fj = {"law": "frontier", "variant": v["id"], "label": v["label"], "changes": v["changes"],
              "method": "isoFLOP minimum per budget (parabola vertex in log N, else the lowest run); band: 90% "
                        "bootstrap, every run's loss re-drawn with its noise (as the CEG intervals)", "points": fb, "data": str(folder),
              "n_points": len(P["loss"]), "conventions": {"N": "total", "C": "6ND, planned budget",
                                                          "loss": "final validation loss (nats/token)"}}
        p = fits / f"{v['id']}-frontier.json"
        write_json(p, fj)
        paths.append(str(p))
    rows = []
    for comp in doc["comparisons"]:
        row = {**comp}
        try:
            r = G.ceg(pts[comp["reference"]], pts[comp["variant"]], seed_sd=seed_sd, n_boot=n_boot, level=level,
                      method=method, seed=seed, seed_dof=seed_dof)
            row.update(r)
        except (FitError, ValueError) as e:
            row["error"] = str(e)
        rows.append(row)
    ladder = [r for r in rows if not r.get("total")] if doc["mode"] == "ladder" else []
    if ladder and all("budgets" in r for r in ladder):
        for r, cum in zip(ladder, G.combine(ladder)):
            r["cumulative"] = cum
    result = {"folder": str(folder), "base": doc["base"], "target": doc["target"], "mode": doc["mode"],
              "changes": doc["changes"], "comparisons": rows, "frontiers": frontiers, "seed_sd": seed_sd,
              "seed_runs": seed_rows, "left_out": left, "convention": doc["convention"],
              "budgets": doc["budgets"], "allocation": allocation_rows(doc["budgets"], laws) if laws else []}
    p = fits / "ablation-ceg.json"
    write_json(p, result)
    paths.append(str(p))
    result["paths"] = paths
    return result


# ----------------------------------------------------------------------- plots
def write_plots(result: dict, out: str | Path, fmt: str = "png") -> list[str]:
    """Two figures: the frontiers of all variants with their bands on one loss-against-compute plot,
    and the CEG of each comparison along history (bars with intervals, log scale, 1x marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if fmt not in ("png", "svg"):
        raise AblationError(f"--plot {fmt!r}: png, svg or terminal")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for vid, f in result["frontiers"].items():
        if "error" in f:
            continue
        ax.plot(f["C"], f["loss"], marker="o", label=vid)
        ax.fill_between(f["C"], f["band"][0], f["band"][1], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("compute C = 6ND (FLOPs)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.set_title(f"frontiers: {result['base']} -> {result['target']} ({result['mode']})")
    ax.legend(fontsize=7)
    written.append(_save_fig(plt, fig, out / f"ablation-frontiers.{fmt}", fmt))
    rows = [r for r in result["comparisons"] if "budgets" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(rows) * len(result["budgets"])), 4.5))
        nb = max(len(r["budgets"]) for r in rows)
        w = 0.8 / nb
        for j in range(nb):
            xs, ys, lo, hi = [], [], [], []
            for i, r in enumerate(rows):
                if j < len(r["budgets"]):
                    b = r["budgets"][j]
                    xs.append(i + (j - (nb - 1) / 2) * w)
                    ys.append(b["ceg"])
                    lo.append(max(b["ceg"] - b["interval"][0], 0))
                    hi.append(max(b["interval"][1] - b["ceg"], 0))
            C = rows[0]["budgets"][j]["C"] if j < len(rows[0]["budgets"]) else None
            ax.bar(xs, ys, w, yerr=[lo, hi], capsize=3, label=f"C={C:.2g}" if C else None, bottom=0)
        ax.axhline(1, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([_row_label(r) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("compute-equivalent gain (x)")
        ax.set_title("CEG of each change, along history (90% intervals)")
        ax.legend(fontsize=7)
        written.append(_save_fig(plt, fig, out / f"ablation-ceg.{fmt}", fmt))
    return written


def _save_fig(plt, fig, p: Path, fmt: str) -> str:
    """Write one figure atomically (the temporary keeps the suffix) and close it."""
    from llmhist.files import atomic_path

    with atomic_path(p) as tmp:
        fig.savefig(tmp, format=fmt, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return str(p)


def _row_label(r: dict) -> str:
    if r.get("total"):
        return "total"
    ys = sorted({c["year"] for c in r["changes"]})
    return f"{r['change']} ({ys[0]}{'-' + str(ys[-1]) if len(ys) > 1 else ''})"


def terminal_plot(result: dict) -> str:
    """The frontiers of every variant, drawn in the terminal with plotext."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(80, 22)
    plt.xscale("log")
    for vid, f in result["frontiers"].items():
        if "error" in f:
            continue
        plt.plot(f["C"], f["loss"], marker="dot", label=vid)
    plt.title(f"frontiers: {result['base']} -> {result['target']}")
    plt.xlabel("C (FLOPs)")
    plt.ylabel("loss")
    return plt.build()
