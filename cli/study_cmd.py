"""`llmhist study`: the README's main job. A small real scaling study end to end: an isoFLOP sweep
of one family on the embedded corpus, the fits with intervals, the recommendation they give, and
the plots. It calls the library (sweep planning and running, fitting, recommending, plotting) and
checks every option before any work starts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from .common import console, say, user_errors

app = typer.Typer()
PLOTS = ("files", "terminal", "none")


def _rule(title: str) -> None:
    console.rule(Text(title, style="bold"))


@app.command()
def study(
    arch: Annotated[str, typer.Option("--arch", "-a", help="family to study")] = "llama",
    budgets: Annotated[str, typer.Option(help="isoFLOP budgets (FLOPs)")] = "1e11,3e11,1e12",
    points: Annotated[int, typer.Option(help="model sizes per budget")] = 5,
    ctx: Annotated[int, typer.Option(help="sequence length")] = 64,
    batch: Annotated[int, typer.Option(help="sequences per step")] = 32,
    data: Annotated[str, typer.Option(help="as for `llmhist train` (default: the stdlib corpus)")] = "stdlib",
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the fits")] = 200,
    flops: Annotated[float | None, typer.Option(help="budget to recommend for (default: 10x the largest)")] = None,
    out: Annotated[Path | None, typer.Option(help="sweep folder (default runs/study-<arch>)")] = None,
    plot: Annotated[str, typer.Option(help="files, terminal or none")] = "files",
    workers: Annotated[int | None, typer.Option(help="worker processes at once (default: measured best split)")] = None,
    threads: Annotated[int | None, typer.Option(help="threads per process (default: measured best split)")] = None,
) -> None:
    """A small scaling study end to end: sweep, fits, recommendation, plots (minutes on a laptop CPU)."""
    from llmhist.train import sweep as S
    from llmhist.train.config import RunError, usable_cores

    from .common import floats
    from .runs_view import Progress, plan_table, status_table
    from .runs_view import gpus as _gpus

    folder = out or Path("runs") / f"study-{arch}"
    fits_dir = folder / "fits"
    with user_errors():  # every option is checked here, before any run starts
        if plot not in PLOTS:
            raise RunError(f"--plot {plot!r}: use {', '.join(PLOTS)}")
        if bootstrap < 0:
            raise RunError(f"--bootstrap {bootstrap}: must be >= 0 (0: no intervals)")
        bs = floats(budgets, "--budgets")
        C = 10 * max(bs) if flops is None else flops
        if not (math.isfinite(C) and 0 < C <= 1e30):
            raise RunError(f"--flops {flops}: give a positive, finite compute budget in FLOPs, e.g. 1e13")
        S.check_workers(workers, threads, usable_cores())
        plan = S.plan_isoflop([arch], bs, points, 16.0, ctx, batch,
                              common={"data": data, "tokenizer": "bytes", "seed": 0})
        secs, how = S.estimate_seconds(plan)

    _rule(f"sweep: {arch} at {budgets} FLOPs -> {folder}")
    console.print(plan_table(plan, secs, how))
    finite = [s for s in secs if s == s]
    if finite:
        say(f"total compute {sum(r.C for r in plan.runs):.3g} FLOPs, about {sum(finite) / 60:.1f} min of one device")
    with user_errors():
        w, t, note = S.choose_split(plan, workers, threads, _gpus())
        if note != "given":
            say(note)
        with Progress(folder) as prog:
            rows = S.run_local(folder, plan, w, t, on_tick=prog.tick, gpus=_gpus(),
                               est={r.name: s for r, s in zip(plan.runs, secs) if s == s})
    console.print(status_table(rows, f"{folder}: done"))
    bad = [r for r in rows if r["state"] != "finished"]
    if bad:
        say(f"{len(bad)} run(s) not finished; `llmhist sweep status {folder}` shows why; the same command resumes",
            style="yellow")
        raise typer.Exit(1)

    _rule(f"fit: {folder}")
    from llmhist.scaling.pipeline import Options, run_fits

    from .scaling_cmd import _print_group

    with user_errors():
        opt = Options(bootstrap=bootstrap)
        fits = run_fits(str(folder), opt, out=str(fits_dir))
    plots: list[str] = []
    for x in fits[0].points.left_out:
        say(f"left out {x['run']}: {x['reason']}", style="yellow")
    for g in fits:
        _print_group(g, opt)
        done = [r.to_dict() for r in g.results]
        if plot != "none" and any(r.path for r in g.results):
            from llmhist.scaling.plots import write_plots

            plots += write_plots(done, g.points, g.out)
        if plot == "terminal" and any(r.path for r in g.results):
            import sys

            from llmhist.scaling.plots import terminal_plot

            sys.stdout.write(terminal_plot(done, g.points) + "\n")

    _rule(f"recommend: C = {C:g} FLOPs")
    from llmhist.scaling import laws as L
    from llmhist.scaling.recommend import recommend

    fit_files = [Path(r.path) for g in fits for r in g.results
                 if r.path and r.law in ("chinchilla", "isoflop", "envelope")]
    with user_errors():
        chosen = [L.get(n) for n in L.DEFAULT_LAWS] + [L.load(f) for f in fit_files]
        recs = [recommend(law, C=C) for law in chosen]
    _print_recommendations(recs)
    say("The published laws' losses are for their own data and tokenizer (MassiveText, 32k SentencePiece); only "
        "their N/D split carries over. " + _loss_note(data), style="dim")
    _rule("done")
    say(f"runs: {folder}   fits: {fits_dir}")
    pngs = [p for p in plots if p.endswith(".png")]
    if pngs:
        say("plots:\n" + "\n".join(f"  {p}" for p in pngs) + "\n  (SVG beside each)")


def _print_recommendations(rows: list[dict]) -> None:
    from rich.table import Table

    from .common import sci
    from .scaling_cmd import _iv

    t = Table(title="compute-optimal allocation", header_style="bold")
    for c in ("law", "C (FLOPs)", "N_opt", "D_opt", "tokens/param", "loss"):
        t.add_column(c, justify="left" if c == "law" else "right", no_wrap=c in ("law", "C (FLOPs)"))
    for r in rows:
        t.add_row(Text(r["law"]), sci(r["C"]), _iv(r, "N_opt"), _iv(r, "D_opt"),
                  _iv(r, "tokens_per_param", lambda v: f"{v:.1f}"), _iv(r, "loss", lambda v: f"{v:.3f}"))
    console.print(t)


def _loss_note(data: str) -> str:
    if data == "stdlib":
        return "This study's loss is in nats per byte of Python source (the standard library)."
    if data.startswith("markov"):
        return "This study's loss is in nats per token of a synthetic Markov source (its entropy is the floor)."
    return f"This study's loss is in nats per token of {data}."
