"""`llmhist sweep` (plan and run) and `llmhist sweep status`: thin wrappers over llmhist.train.sweep."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, human, print_json, user_errors

sweep_app = typer.Typer(help="Plan and run sweeps (isoFLOP grids, size ladders, TOML grids); see `sweep status`.",
                        invoke_without_command=True, no_args_is_help=False)


def _floats(s: str | None, what: str) -> list[float]:
    if not s:
        return []
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} {s!r}: give comma-separated numbers, e.g. 1e13,3e13,1e14") from None


def estimate_seconds(plan) -> tuple[list[float], str]:
    """Estimated wall time per run on one device: the device's peak (the CPU's measured matmul probe)
    at 45% MFU, as llmhist's CPU runs reach at d_model 128 (see `llmhist bench`), plus a fixed cost
    per step that dominates the tiniest models (5 ms, measured on a 2-core CPU)."""
    from llmhist.archs import accounting
    from llmhist.archs.registry import build_spec
    from llmhist.train import device as devmod

    dev = devmod.pick("auto")
    dtype = devmod.setup(dev)
    peak = devmod.peak_flops(dev, dtype)
    if not peak:
        return [float("nan")] * len(plan.runs), "n/a (no known peak for this device)"
    out = []
    ctx, batch = int(plan.common.get("ctx", 128)), int(plan.common.get("batch", 16))
    step_s = 0.005 if dev.type == "cpu" else 0.02  # fixed cost per optimizer step (python, launch, eval share)
    for r in plan.runs:
        a = build_spec(r.arch, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads, ctx_len=ctx)
        steps = math.ceil(r.tokens / (ctx * batch))
        out.append(steps * step_s + r.tokens * accounting.flops_per_token(a, "palm", ctx) / (0.45 * peak))
    return out, f"{peak:.3g} FLOP/s peak x 45% MFU + {1e3 * step_s:.0f} ms/step"


def _plan_table(plan, secs, how):
    from rich.table import Table

    t = Table(title=f"{plan.kind} sweep: {len(plan.runs)} runs (time: {how})", header_style="bold")
    for c in ("run", "group", "N", "D", "C", "tokens/param", "est. time"):
        t.add_column(c, justify="left" if c in ("run", "group") else "right", no_wrap=c == "run")
    for r, s in zip(plan.runs, secs):
        tpp = f"{r.tokens_per_param:.1f}"
        if r.branches:  # WSD decay branches end at these fractions of the run's tokens
            tpp += " (+" + ", ".join(f"{float(f) * r.tokens_per_param:.3g}" for f in r.branches.split(",")) + ")"
        t.add_row(r.name, r.group, human(r.N), human(r.tokens), f"{r.C:.3g}", tpp,
                  "n/a" if s != s else f"{s:.0f} s")
    return t


def _status_table(rows, title):
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for c in ("run", "N", "D", "state", "progress", "val loss", "error"):
        t.add_column(c, justify="left" if c in ("run", "state", "error") else "right", no_wrap=c == "run")
    colour = {"finished": "green", "running": "cyan", "diverged": "red", "failed": "red", "interrupted": "yellow"}
    for r in rows:
        prog = f"{r['step'] or 0}/{r['steps']}" if r["steps"] else "-"
        err = r["error"] or ""
        t.add_row(r["run"], human(r["N"]), human(r["D"]), f"[{colour.get(r['state'], 'white')}]{r['state']}[/]", prog,
                  "-" if r["val_loss"] is None else f"{r['val_loss']:.4f}", err[:60])
    return t


@sweep_app.callback()
def sweep(
    ctx_: typer.Context,
    arch: Annotated[str, typer.Option("--arch", "-a", help="family, or several: gpt2,llama")] = "llama",
    budgets: Annotated[Optional[str], typer.Option(help="isoFLOP budgets C, comma-separated (e.g. 1e13,3e13,1e14)")] = None,
    points: Annotated[int, typer.Option(help="model sizes per budget")] = 7,
    spread: Annotated[float, typer.Option(help="largest/smallest N per budget, centred on N ~ sqrt(C/120)")] = 16.0,
    sizes: Annotated[Optional[str], typer.Option(help="ladder (Approach 1): target N values, e.g. 2e5,8e5,3e6")] = None,
    tokens_per_param: Annotated[str, typer.Option(help="ladder horizons in tokens per parameter")] = "20",
    schedule: Annotated[str, typer.Option(help="ladder: cosine (a run per horizon) or wsd (one run per size, "
                                               "shorter horizons as decay branches)")] = "cosine",
    grid: Annotated[Optional[Path], typer.Option(help="TOML file of arbitrary runs ([defaults] + [[run]])")] = None,
    ctx: Annotated[int, typer.Option(help="sequence length")] = 128,
    batch: Annotated[int, typer.Option(help="sequences per step")] = 16,
    data: Annotated[str, typer.Option(help="as for `llmhist train`")] = "stdlib",
    tokenizer: Annotated[str, typer.Option(help="as for `llmhist train`")] = "bytes",
    seed: Annotated[int, typer.Option(help="one seed for every run")] = 0,
    out: Annotated[Optional[Path], typer.Option(help="sweep folder (default runs/<kind>-<arch>)")] = None,
    launcher: Annotated[str, typer.Option(help="local or slurm")] = "local",
    workers: Annotated[Optional[int], typer.Option(help="local: runs at once (default: measured best split)")] = None,
    threads: Annotated[Optional[int], typer.Option(help="local: threads per run (default: measured best split)")] = None,
    retry_failed: Annotated[bool, typer.Option(help="run failed runs again")] = False,
    partition: Annotated[Optional[str], typer.Option(help="slurm partition")] = None,
    time_min: Annotated[int, typer.Option("--time", help="slurm time limit per run, minutes")] = 60,
    gpus_per_job: Annotated[int, typer.Option(help="slurm GPUs per run")] = 0,
    cpus_per_job: Annotated[Optional[int], typer.Option(help="slurm CPUs per run")] = None,
    max_concurrent: Annotated[int, typer.Option(help="slurm array: runs at once")] = 8,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan only")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the plan / final status as JSON")] = False,
) -> None:
    """Plan a sweep, print it, and run it (idempotent: the same command again resumes)."""
    if ctx_.invoked_subcommand is not None:
        return
    from llmhist.train import sweep as S

    with user_errors():
        if launcher not in ("local", "slurm"):
            raise ValueError(f"--launcher {launcher!r}: use local or slurm")
        archs = [a.strip() for a in arch.split(",") if a.strip()]
        common = {"data": data, "tokenizer": tokenizer, "seed": seed}
        if grid:
            plan = S.plan_grid(grid, common)
        elif sizes:
            plan = S.plan_ladder(archs, _floats(sizes, "--sizes"), _floats(tokens_per_param, "--tokens-per-param"),
                                 ctx, batch, schedule=schedule, common=common)
        else:
            plan = S.plan_isoflop(archs, _floats(budgets, "--budgets") or [1e13, 3e13, 1e14], points, spread, ctx,
                                  batch, common=common)
        folder = out or Path("runs") / f"{plan.kind}-{'-'.join(archs) if not grid else grid.stem}"
        secs, how = estimate_seconds(plan)
    if json_out and dry_run:
        return print_json({**plan.to_dict(), "est_seconds": secs, "out": str(folder)})
    console.print(_plan_table(plan, secs, how))
    finite = [s for s in secs if s == s]
    if finite:
        console.print(f"total compute {sum(r.C for r in plan.runs):.3g} FLOPs, about {sum(finite) / 60:.1f} "
                      f"min of one device -> {folder}")
    if dry_run:
        return
    if not yes and not typer.confirm("run this sweep?", default=True):
        raise typer.Exit(1)
    with user_errors():
        S.prepare(folder, plan)
        if launcher == "slurm":
            ids = S.submit_slurm(folder, plan, partition, time_min, gpus_per_job, max_concurrent, cpus_per_job,
                                 retry_failed)
            console.print(f"submitted {len(ids)} runs as a Slurm job array ({', '.join(ids[:3])}"
                          f"{'...' if len(ids) > 3 else ''}); watch with `llmhist sweep status {folder}`")
            return
        from llmhist.train.device import usable_cores

        gpus = _gpus()
        if gpus:
            w, t = len(gpus), None
        elif workers or threads:
            w = workers or max(1, usable_cores() // (threads or usable_cores()))
            t = threads or max(1, usable_cores() // w)
        else:
            mid = plan.runs[len(plan.runs) // 2]
            probe = ["--arch", mid.arch, "--d-model", str(mid.d_model), "--n-layers", str(mid.n_layers), "--n-heads",
                     str(mid.n_heads), "--ctx", str(plan.common["ctx"]), "--batch", str(plan.common["batch"]),
                     "--steps", "3", "--repeats", "1"]
            w, t, measured = S.best_split(usable_cores(), probe)
            console.print("processes x threads, total tokens/s measured: "
                          + ", ".join(f"{k}: {v:,.0f}" for k, v in measured.items()) + f" -> {w}x{t}")
        from rich.live import Live

        with Live(_status_table(S.status(folder), str(folder)), console=console, refresh_per_second=2,
                  transient=not console.is_terminal) as live:
            rows = S.run_local(folder, plan, w, t, retry_failed,
                               on_tick=lambda: live.update(_status_table(S.status(folder), str(folder))), gpus=gpus)
    if json_out:
        return print_json(rows)
    console.print(_status_table(rows, f"{folder}: done"))
    bad = [r for r in rows if r["state"] not in ("finished",)]
    if bad:
        console.print(f"[yellow]{len(bad)} run(s) not finished; `llmhist sweep status {folder}` shows why; "
                      "the same command resumes (add --retry-failed to rerun failures)[/]")
        raise typer.Exit(1)


def _gpus() -> list[int]:
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@sweep_app.command("status")
def sweep_status(
    folder: Annotated[Path, typer.Argument(help="a sweep folder")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every run's state, progress and error, whichever launcher ran it."""
    from llmhist.train import sweep as S

    with user_errors():
        rows = S.status(folder)
    if json_out:
        return print_json(rows)
    console.print(_status_table(rows, str(folder)))
    from collections import Counter

    c = Counter(r["state"] for r in rows)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(c.items())))


def register(app: typer.Typer) -> None:
    app.add_typer(sweep_app, name="sweep")
