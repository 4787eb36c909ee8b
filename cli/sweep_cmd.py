"""`llmhist sweep run` (plan, print, run; also plain `llmhist sweep ...`) and `llmhist sweep status`:
screens over llmhist.train.sweep (plan_sweep, estimate_seconds, run_local / submit_slurm, status)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    CpusPerJobOpt,
    DefaultGroup,
    GpusPerJobOpt,
    LauncherOpt,
    LoggerOpt,
    MaxConcurrentOpt,
    PartitionOpt,
    RetryFailedOpt,
    ThreadsOpt,
    TimeOpt,
    WorkersOpt,
    console,
    err_console,
    floats,
    print_json,
    say,
    user_errors,
)
from .runs_view import Progress, gpus, plan_table, status_table

app = typer.Typer()
sweep_app = typer.Typer(cls=DefaultGroup, help="Plan and run sweeps (isoFLOP grids, size ladders, TOML grids): "
                        "`sweep run` (the default: `llmhist sweep --arch gpt2` is `sweep run --arch gpt2`) and "
                        "`sweep status`.")
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("run")
def sweep_run(
    arch: Annotated[str, typer.Option("--arch", "-a", help="family, or several: gpt2,llama")] = "llama",
    budgets: Annotated[str | None, typer.Option(help="isoFLOP budgets C, comma-separated (default: three from "
                                                        "the smallest the family can plan, 1e11,3e11,1e12 for most)")] = None,
    points: Annotated[int, typer.Option(help="model sizes per budget (exactly this many distinct sizes)")] = 7,
    spread: Annotated[float, typer.Option(help="largest/smallest N per budget, centred on N ~ sqrt(C/120)")] = 16.0,
    sizes: Annotated[str | None, typer.Option(help="ladder (Approach 1): target N values, e.g. 2e5,8e5,3e6")] = None,
    tokens_per_param: Annotated[str | None, typer.Option(help="ladder horizons in tokens per parameter (with "
                                                                "--sizes; default 20)")] = None,
    schedule: Annotated[str, typer.Option(help="ladder: cosine (a run per horizon) or wsd (one run per size, "
                                               "shorter horizons as decay branches)")] = "cosine",
    grid: Annotated[Path | None, typer.Option(help="TOML file of arbitrary runs ([defaults] + [[run]])")] = None,
    ctx: Annotated[int, typer.Option(help="sequence length")] = 128,
    batch: Annotated[int, typer.Option(help="sequences per step")] = 16,
    data: Annotated[str, typer.Option(help="as for `llmhist train`")] = "stdlib",
    tokenizer: Annotated[str, typer.Option(help="as for `llmhist train`")] = "bytes",
    seed: Annotated[int, typer.Option(help="one seed for every run")] = 0,
    out: Annotated[Path | None, typer.Option(help="sweep folder (default runs/<kind>-<arch>)")] = None,
    logger: LoggerOpt = "none",
    launcher: LauncherOpt = "local",
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    retry_failed: RetryFailedOpt = False,
    partition: PartitionOpt = None,
    time_min: TimeOpt = 60,
    gpus_per_job: GpusPerJobOpt = 0,
    cpus_per_job: CpusPerJobOpt = None,
    max_concurrent: MaxConcurrentOpt = 8,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the plan only")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the plan / final status as JSON")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also print the time model behind the "
                                                                  "estimates")] = False,
) -> None:
    """Plan a sweep, print it, and run it (idempotent: the same command again resumes)."""
    from ..train import sweep as S

    with user_errors():
        S.check_launch(launcher, workers, threads)
        archs = [a.strip() for a in arch.split(",") if a.strip()]
        plan = S.plan_sweep(archs, floats(budgets, "--budgets") or None, points, spread, floats(sizes, "--sizes"),
                            floats(tokens_per_param, "--tokens-per-param") or None, schedule, grid, ctx, batch,
                            common={"data": data, "tokenizer": tokenizer, "seed": seed,
                                    **({"logger": logger} if logger != "none" else {})})
        folder = out or Path("runs") / f"{plan.kind}-{'-'.join(archs) if not grid else grid.stem}"
        S.check_folder(folder)
        secs, how = S.estimate_seconds(plan)
    if json_out and dry_run:
        return print_json({**plan.to_dict(), "est_seconds": secs, "out": str(folder)})
    _show_plan(plan, secs, how if verbose else None, folder, json_out)
    if dry_run:
        return
    if not yes and not typer.confirm("run this sweep?", default=True):
        raise typer.Exit(1)
    with user_errors():
        if launcher == "slurm":
            return _submit(folder, plan, partition, time_min, gpus_per_job, max_concurrent, cpus_per_job, retry_failed)
        rows = _run_here(folder, plan, secs, workers, threads, retry_failed, json_out)
    _show_done(rows, folder, json_out)


def _submit(folder: Path, plan, *slurm) -> None:
    """The plan's unfinished runs as one Slurm job array; `sweep status` follows them."""
    from ..train import sweep as S

    ids = S.submit_slurm(folder, plan, *slurm)
    say(f"submitted {len(ids)} runs as a Slurm job array ({', '.join(ids[:3])}{'...' if len(ids) > 3 else ''}); "
        f"watch with `llmhist sweep status {folder}`")


def _show_plan(plan, secs: list[float], how: str | None, folder: Path, json_out: bool) -> None:
    (err_console if json_out else console).print(plan_table(plan, secs, how))  # with --json, stdout holds the JSON
    finite = [s for s in secs if s == s]
    if finite:
        say(f"total compute {sum(r.C for r in plan.runs):.3g} FLOPs, about {sum(finite) / 60:.1f} min of one device "
            f"-> {folder}", err=json_out)
    if how:
        say(f"time model: {how}", err=json_out)


def _run_here(folder: Path, plan, secs: list[float], workers, threads, retry_failed: bool, json_out: bool) -> list:
    """The local queue at the measured (or given) processes x threads, with the live progress display."""
    from ..train import sweep as S

    w, t, note = S.choose_split(plan, workers, threads, gpus())
    if note != "given":
        say(note, err=json_out)
    est = {r.name: s for r, s in zip(plan.runs, secs) if s == s}
    with Progress(folder, err=json_out) as prog:
        return S.run_local(folder, plan, w, t, retry_failed, on_tick=prog.tick, gpus=gpus(), est=est)


def _show_done(rows: list[dict], folder: Path, json_out: bool) -> None:
    if json_out:
        return print_json(rows)
    console.print(status_table(rows, f"{folder}: done"))
    bad = [r for r in rows if r["state"] not in ("finished",)]
    if bad:
        say(f"{len(bad)} run(s) not finished; `llmhist sweep status {folder}` shows why; the same command resumes "
            "(add --retry-failed to rerun failures)", style="yellow")
        raise typer.Exit(1)


@sweep_app.command("status")
def sweep_status(
    folder: Annotated[Path, typer.Argument(help="a sweep folder")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every run's state, progress and error, whichever launcher ran it."""
    from ..train import sweep as S

    with user_errors():
        rows = S.status(folder)
    if json_out:
        return print_json(rows)
    console.print(status_table(rows, folder))
    c = Counter(r["state"] for r in rows)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
