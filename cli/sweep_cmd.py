"""`llmhist sweep` (plan and run) and `llmhist sweep status`: thin wrappers over llmhist.train.sweep."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

if TYPE_CHECKING:
    from rich.live import Live

from .common import (
    CpusPerJobOpt,
    GpusPerJobOpt,
    LauncherOpt,
    MaxConcurrentOpt,
    PartitionOpt,
    RetryFailedOpt,
    ThreadsOpt,
    TimeOpt,
    WorkersOpt,
    console,
    err_console,
    human,
    print_json,
    say,
    user_errors,
)

app = typer.Typer()
sweep_app = typer.Typer(help="Plan and run sweeps (isoFLOP grids, size ladders, TOML grids); see `sweep status`.",
                        invoke_without_command=True, no_args_is_help=False)
app.add_typer(sweep_app, name="sweep")


def floats(s: str | None, what: str) -> list[float]:
    from llmhist.train.config import RunError

    if not s:
        return []
    try:
        out = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise RunError(f"{what} {s!r}: give comma-separated numbers, e.g. 1e11,3e11,1e12") from None
    if not out or any(not math.isfinite(x) for x in out):
        raise RunError(f"{what} {s!r}: give comma-separated finite numbers, e.g. 1e11,3e11,1e12")
    return out


STATE_STYLE = {"finished": "green", "running": "cyan", "diverged": "red", "failed": "red", "interrupted": "yellow"}


def plan_table(plan, secs, how):
    from rich.table import Table

    t = Table(title=Text(f"{plan.kind} sweep: {len(plan.runs)} runs (time: {how})"), header_style="bold")
    for c in ("run", "group", "N", "D", "C", "tokens/param", "est. time"):
        t.add_column(c, justify="left" if c in ("run", "group") else "right", no_wrap=c == "run")
    for r, s in zip(plan.runs, secs):
        tpp = f"{r.tokens_per_param:.1f}"
        if r.branches:  # WSD decay branches end at these fractions of the run's tokens
            tpp += " (+" + ", ".join(f"{float(f) * r.tokens_per_param:.3g}" for f in r.branches.split(",")) + ")"
        t.add_row(Text(r.name), Text(r.group), human(r.N), human(r.tokens), f"{r.C:.3g}", tpp,
                  "n/a" if s != s else f"{s:.0f} s")
    return t


def status_table(rows, title):
    from rich.table import Table

    t = Table(title=Text(str(title)), header_style="bold")
    for c in ("run", "N", "D", "state", "progress", "val loss", "error"):
        t.add_column(c, justify="left" if c in ("run", "state", "error") else "right", no_wrap=c == "run")
    for r in rows:
        prog = f"{r['step'] or 0}/{r['steps']}" if r["steps"] else "-"
        err = str(r["error"] or "")
        t.add_row(Text(r["run"]), human(r["N"]), human(r["D"]), Text(r["state"], style=STATE_STYLE.get(r["state"], "")),
                  prog, "-" if r["val_loss"] is None else f"{r['val_loss']:.4f}", Text(err[:80]))
    return t


class Progress:
    """On a terminal a live table; piped, one line per run whose state changed."""

    def __init__(self, folder, err: bool = False):
        self.folder, self.err = folder, err  # err: stdout is kept for --json
        self.seen: dict[str, tuple] = {}
        self.live: Live | None = None

    def __enter__(self) -> Progress:
        from rich.live import Live

        out = err_console if self.err else console
        if out.is_terminal:
            self.live = Live(Text(f"starting {self.folder}"), console=out, refresh_per_second=2)
            self.live.__enter__()
        self.tick()
        return self

    def tick(self):
        from llmhist.errors import UserError
        from llmhist.train import sweep as S

        try:
            rows = S.status(self.folder)
        except UserError:  # no plan.json yet: the sweep writes it once it holds the folder
            return
        if self.live is not None:
            self.live.update(status_table(rows, self.folder))
            return
        done = sum(r["state"] in ("finished", "diverged", "failed") for r in rows)
        for r in rows:
            key = (r["state"], r["step"] if r["state"] == "running" else None)
            if self.seen.get(r["run"]) != key and (r["run"] in self.seen or r["state"] != "pending"):
                extra = f" val loss {r['val_loss']:.4f}" if r["val_loss"] is not None else ""
                extra += f" step {r['step']}/{r['steps']}" if r["state"] == "running" and r["steps"] else ""
                extra += f": {r['error']}" if r["error"] else ""
                say(f"[{done}/{len(rows)} done] {r['run']} {r['state']}{extra}", err=self.err)
            self.seen[r["run"]] = key

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False


@sweep_app.callback()
def sweep(
    ctx_: typer.Context,
    arch: Annotated[str, typer.Option("--arch", "-a", help="family, or several: gpt2,llama")] = "llama",
    budgets: Annotated[str | None, typer.Option(help="isoFLOP budgets C, comma-separated (default: three from "
                                                        "the smallest the family can plan, 1e11,3e11,1e12 for most)")] = None,
    points: Annotated[int, typer.Option(help="model sizes per budget (exactly this many distinct sizes)")] = 7,
    spread: Annotated[float, typer.Option(help="largest/smallest N per budget, centred on N ~ sqrt(C/120)")] = 16.0,
    sizes: Annotated[str | None, typer.Option(help="ladder (Approach 1): target N values, e.g. 2e5,8e5,3e6")] = None,
    tokens_per_param: Annotated[str, typer.Option(help="ladder horizons in tokens per parameter")] = "20",
    schedule: Annotated[str, typer.Option(help="ladder: cosine (a run per horizon) or wsd (one run per size, "
                                               "shorter horizons as decay branches)")] = "cosine",
    grid: Annotated[Path | None, typer.Option(help="TOML file of arbitrary runs ([defaults] + [[run]])")] = None,
    ctx: Annotated[int, typer.Option(help="sequence length")] = 128,
    batch: Annotated[int, typer.Option(help="sequences per step")] = 16,
    data: Annotated[str, typer.Option(help="as for `llmhist train`")] = "stdlib",
    tokenizer: Annotated[str, typer.Option(help="as for `llmhist train`")] = "bytes",
    seed: Annotated[int, typer.Option(help="one seed for every run")] = 0,
    out: Annotated[Path | None, typer.Option(help="sweep folder (default runs/<kind>-<arch>)")] = None,
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
) -> None:
    """Plan a sweep, print it, and run it (idempotent: the same command again resumes)."""
    if ctx_.invoked_subcommand is not None:
        return
    from llmhist.train import sweep as S

    with user_errors():
        S.check_launch(launcher, workers, threads)
        archs = [a.strip() for a in arch.split(",") if a.strip()]
        common = {"data": data, "tokenizer": tokenizer, "seed": seed}
        if grid:
            plan = S.plan_grid(grid, common)
        elif sizes:
            plan = S.plan_ladder(archs, floats(sizes, "--sizes"), floats(tokens_per_param, "--tokens-per-param"),
                                 ctx, batch, schedule=schedule, common=common)
        else:
            S.check_common(archs, ctx, batch, common)
            chosen = floats(budgets, "--budgets") if budgets else S.default_budgets(archs, spread, ctx, batch)
            plan = S.plan_isoflop(archs, chosen, points, spread, ctx, batch, common=common)
        folder = out or Path("runs") / f"{plan.kind}-{'-'.join(archs) if not grid else grid.stem}"
        secs, how = S.estimate_seconds(plan)
    if json_out and dry_run:
        return print_json({**plan.to_dict(), "est_seconds": secs, "out": str(folder)})
    out_ = err_console if json_out else console  # with --json, stdout holds only the JSON
    out_.print(plan_table(plan, secs, how))
    finite = [s for s in secs if s == s]
    if finite:
        say(f"total compute {sum(r.C for r in plan.runs):.3g} FLOPs, about {sum(finite) / 60:.1f} min of one device "
            f"-> {folder}", err=json_out)
    if dry_run:
        return
    if not yes and not typer.confirm("run this sweep?", default=True):
        raise typer.Exit(1)
    with user_errors():
        if launcher == "slurm":
            ids = S.submit_slurm(folder, plan, partition, time_min, gpus_per_job, max_concurrent, cpus_per_job,
                                 retry_failed)
            say(f"submitted {len(ids)} runs as a Slurm job array ({', '.join(ids[:3])}"
                f"{'...' if len(ids) > 3 else ''}); watch with `llmhist sweep status {folder}`")
            return
        w, t, note = S.choose_split(plan, workers, threads, _gpus())
        if note != "given":
            say(note, err=json_out)
        est = {r.name: s for r, s in zip(plan.runs, secs) if s == s}
        with Progress(folder, err=json_out) as prog:
            rows = S.run_local(folder, plan, w, t, retry_failed, on_tick=prog.tick, gpus=_gpus(), est=est)
    if json_out:
        return print_json(rows)
    console.print(status_table(rows, f"{folder}: done"))
    bad = [r for r in rows if r["state"] not in ("finished",)]
    if bad:
        say(f"{len(bad)} run(s) not finished; `llmhist sweep status {folder}` shows why; the same command resumes "
            "(add --retry-failed to rerun failures)", style="yellow")
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
    console.print(status_table(rows, folder))
    from collections import Counter

    c = Counter(r["state"] for r in rows)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
