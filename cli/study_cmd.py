"""`llmhist study`: the README's main job, a screen over llmhist.scaling.study. A small real scaling
study end to end: an isoFLOP sweep of one family on the embedded corpus, the fits with intervals,
the recommendation they give, and the plots. Every option is checked (by the library's Study)
before any work starts; defaults are llmhist.train.defaults'.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from ..train import defaults as D
from .common import console, say, user_errors

app = typer.Typer()
BUDGETS = ",".join(f"{b:.0e}".replace("e+", "e") for b in D.STUDY_BUDGETS)  # 1e11,3e11,1e12


def _rule(title: str) -> None:
    console.rule(Text(title, style="bold"))


@app.command()
def study(
    arch: Annotated[str, typer.Option("--arch", "-a", help="family to study")] = D.ARCH,
    budgets: Annotated[str, typer.Option(help="isoFLOP budgets (FLOPs)")] = BUDGETS,
    points: Annotated[int, typer.Option(help="model sizes per budget")] = D.STUDY_POINTS,
    ctx: Annotated[int, typer.Option(help="sequence length")] = D.STUDY_CTX,
    batch: Annotated[int, typer.Option(help="sequences per step")] = D.STUDY_BATCH,
    data: Annotated[str, typer.Option(help="as for `llmhist train` (default: the stdlib corpus)")] = D.DATA,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the fits")] = D.STUDY_BOOTSTRAP,
    flops: Annotated[float | None, typer.Option(help=f"budget to recommend for (default: "
                                                     f"{D.STUDY_RECOMMEND_FACTOR}x the largest)")] = None,
    out: Annotated[Path | None, typer.Option(help=f"sweep folder (default {D.OUT_ROOT}/study-<arch>)")] = None,
    plot: Annotated[str, typer.Option(help=", ".join(D.PLOTS[:-1]) + f" or {D.PLOTS[-1]}")] = D.PLOTS[0],
    workers: Annotated[int | None, typer.Option(help="worker processes at once (default: measured best split)")] = None,
    threads: Annotated[int | None, typer.Option(help="threads per process (default: measured best split)")] = None,
) -> None:
    """A small scaling study end to end: sweep, fits, recommendation, plots (minutes on a laptop CPU)."""
    from ..scaling import study as lib
    from .common import floats

    with user_errors():  # every option is checked here, before any run starts
        s = lib.Study(arch=arch, budgets=tuple(floats(budgets, "--budgets")), points=points, ctx=ctx, batch=batch,
                      data=data, bootstrap=bootstrap, flops=flops, out=out, plot=plot, workers=workers,
                      threads=threads)
    _sweep(lib, s, budgets)
    _rule(f"fit: {s.folder}")
    fits, plots = _fits(lib, s)
    _rule(f"recommend: C = {s.C:g} FLOPs")
    with user_errors():
        recs, refused = lib.recommend(s, fits)
    _print_recommendations(recs, refused)
    say("The published laws' losses are for their own data and tokenizer (MassiveText, 32k SentencePiece); only "
        "their N/D split carries over. " + lib.loss_note(data), style="dim")
    _rule("done")
    say(f"runs: {s.folder}   fits: {s.fits_dir}")
    pngs = [p for p in plots if p.endswith(".png")]
    if pngs:
        say("plots:\n" + "\n".join(f"  {p}" for p in pngs) + "\n  (SVG beside each)")


def _sweep(lib, s, budgets: str) -> None:
    """The plan with its time estimate, then the runs (a run not finished ends the study, exit 1)."""
    from .runs_view import Progress, plan_table, status_table
    from .runs_view import gpus as _gpus

    with user_errors():
        sweep_plan, secs, how = lib.plan(s)
    _rule(f"sweep: {s.arch} at {budgets} FLOPs -> {s.folder}")
    console.print(plan_table(sweep_plan, secs, how))
    finite = [x for x in secs if x == x]
    if finite:
        say(f"total compute {sum(r.C for r in sweep_plan.runs):.3g} FLOPs, about {sum(finite) / 60:.1f} min of one "
            "device")
    with user_errors():
        gpus = _gpus()
        workers, threads, note = lib.split(s, sweep_plan, gpus)
        if note != "given":
            say(note)
        with Progress(s.folder) as prog:
            rows = lib.run(s, sweep_plan, secs, workers, threads, gpus, on_tick=prog.tick)
    console.print(status_table(rows, f"{s.folder}: done"))
    bad = [r for r in rows if r["state"] != "finished"]
    if bad:
        say(f"{len(bad)} run(s) not finished; `llmhist sweep status {s.folder}` shows why; the same command resumes",
            style="yellow")
        raise typer.Exit(1)


def _fits(lib, s) -> tuple[list, list[str]]:
    """Every group's fits, printed, with its plots; (the groups, the plot files)."""
    from ..scaling.pipeline import left_out_runs
    from .fits_view import print_group

    with user_errors():
        opt, fits = lib.fit(s)
    plots: list[str] = []
    for x in left_out_runs(fits):
        say(f"left out {x['run']}: {x['reason']}", style="yellow")
    for g in fits:
        print_group(g, opt)  # with the group's notes (scaling.pipeline.group_notes)
        files, terminal = lib.plots(s, g)
        plots += files
        if terminal is not None:
            sys.stdout.write(terminal + "\n")
    return fits, plots


def _print_recommendations(rows: list[dict], refused: list[str]) -> None:
    """The allocation table, each fitted law refused (it goes on without it), and the FLAG when the
    fitted recommendations disagree beyond their intervals."""
    from ..scaling.agreement import disagreement_flag
    from .common import note
    from .fits_view import recommendation_table

    for why in refused:
        note(f"left out of the recommendation: {why}", style="yellow")
    console.print(recommendation_table(rows, as_written=False))
    flag = disagreement_flag(rows)
    if flag:
        note(f"FLAG {flag}", style="bold red")
