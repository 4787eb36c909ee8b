"""`llmhist recommend` and `llmhist fit`: thin wrappers over llmhist.scaling."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from ..core.numbers import human, nbytes
from .common import JsonOpt, console, note, print_json, say, user_errors
from .fits_view import print_group, recommendation_table, value_interval

app = typer.Typer()
NUM = "Numbers as 1e21, 2.5e20 or 1_000e18."


@app.command("recommend")
def recommend_(
    flops: Annotated[str | None, typer.Option("--flops", metavar="C", help=f"Training compute C in FLOPs. {NUM}")] = None,
    gpu_hours: Annotated[str | None, typer.Option("--gpu-hours", metavar="H", help="Budget in GPU-hours (with --gpu, --mfu).")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="Device of --gpu-hours (and of --gpus): h100, a100, h200, ... (the hardware table's names; the peak used is printed).")] = None,
    mfu: Annotated[float, typer.Option("--mfu", help="Model FLOPs utilisation for --gpu-hours.")] = 0.4,
    params_: Annotated[str | None, typer.Option("--params", metavar="N", help="Model size N: the budget at which N is optimal.")] = None,
    tokens: Annotated[str | None, typer.Option("--tokens", metavar="D", help="Data D: the budget at which D is optimal.")] = None,
    law: Annotated[list[str] | None, typer.Option("--law", help="Published law(s) to use (default: all).")] = None,
    fit: Annotated[list[str] | None, typer.Option("--fit", help="Fit JSON file(s) written by `llmhist fit`.")] = None,
    inference_tokens: Annotated[str | None, typer.Option("--inference-tokens", metavar="D_INF", help="Tokens the model will serve (Sardana & Frankle 2023).")] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="Spread N_opt over this many --gpu devices: model state per GPU, days.")] = None,
    tp: Annotated[int | None, typer.Option("--tp", help="With --gpus: tensor-parallel degree (default 1).")] = None,
    pp: Annotated[int | None, typer.Option("--pp", help="With --gpus: pipeline stages (default 1).")] = None,
    zero: Annotated[int | None, typer.Option("--zero", help="With --gpus: ZeRO stage 0-3 (default 0).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Compute-optimal N, D, tokens/param and predicted loss under each law, side by side; a law used
    far outside the runs it was fitted on says so."""
    from ..archs.parallel import layout_from
    from ..scaling.recommend import loss_data_note, recommendations

    with user_errors():
        layout = layout_from(gpus, tp, pp, zero)
        rows, inf = recommendations(law, fit, flops=flops, gpu_hours=gpu_hours, gpu=gpu, mfu=mfu, N=params_,
                                    D=tokens, inference_tokens=inference_tokens, layout=layout)
    if as_json:
        return print_json({"recommendations": rows, "inference_aware": inf})
    if rows and "budget" in rows[0]:
        note(rows[0]["budget"]["note"])
    console.print(recommendation_table(rows))
    _print_law_notes(rows)
    if rows and "per_gpu" in rows[0]:
        _print_per_gpu(rows)
    data_note = loss_data_note(rows)
    if data_note:
        note(data_note)
    if inf:
        _print_inference(inf)


def _print_law_notes(rows: list[dict]) -> None:
    """Under the table: how each Kaplan row reads its formula, and every law's extrapolation warning."""
    for r in rows:
        if "convention" in r:
            note(f"{r['law']}: {r['convention']}; the (C_min = C) row reads Kaplan's formula as written"
                 + (" for the same fixed N or D." if r["as_written"]["C"] != r["C"] else "."))
        for w in (r.get("warning"), r.get("as_written", {}).get("warning")):
            if w:
                note(f"warning: {w}", "yellow")


def _print_inference(inf: list[dict]) -> None:
    """The inference-aware table (Sardana & Frankle 2023): the same loss with a smaller N trained longer."""
    t = Table(title=f"inference-aware: same loss, serving {human(inf[0]['inference_tokens'])} tokens",
              header_style="bold")
    for c in ("law", "N", "D_train", "tokens/param", "N vs Chinchilla", "total FLOPs saved"):
        t.add_column(c, justify="right")
    for r in inf:
        saved = 1 - r["total_flops"] / r["chinchilla_total_flops"]
        t.add_row(r["law"], human(r["N"]), human(r["D_train"]), f"{r['tokens_per_param']:.0f}",
                  f"{r['N_vs_chinchilla']:.2f}x", f"{saved:.1%}")
    console.print(t)


def _print_per_gpu(rows: list[dict]) -> None:
    g = rows[0]["per_gpu"]
    t = Table(title=f"N_opt on {g['gpus']:,} x {g['gpu']} (dp {g['dp']} x tp {g['tp']} x pp {g['pp']}, ZeRO-{g['zero']})",
              header_style="bold")
    for c in ("law", "N_opt", "model state / GPU", "GPU memory", "fits", "days"):
        t.add_column(c, justify="left" if c == "law" else "right")
    for r in rows:
        p = r["per_gpu"]
        t.add_row(r["law"], human(r["N_opt"]), nbytes(p["model_state"]), nbytes(p["memory"]),
                  "yes" if p["fits_model_state"] else "NO", f"{p['days']:.3g}")
    console.print(t)
    note(f"how: {g['how']}")
    note(f"FLAG {g['flag']}", style="yellow")


@app.command("fit")
def fit_(
    source: Annotated[str, typer.Argument(help="A runs folder (any depth; runs grouped by spec and data) or a CSV/Parquet table of (N, D or C, loss).")],
    law: Annotated[list[str] | None, typer.Option("--law", help="chinchilla, isoflop, kaplan, envelope (default: all the data supports).")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples (0: none).")] = 200,
    n_col: Annotated[str, typer.Option("--n-col", help="Table column of parameters N.")] = "N",
    d_col: Annotated[str | None, typer.Option("--d-col", help="Table column of tokens D (default: D, else C / 6N).")] = None,
    c_col: Annotated[str | None, typer.Option("--c-col", help="Table column of compute C in FLOPs (D = C / 6N).")] = None,
    loss_col: Annotated[str, typer.Option("--loss-col", help="Table column of the loss.")] = "loss",
    budget_col: Annotated[str | None, typer.Option("--budget-col", help="Table column holding each point's nominal isoFLOP budget (default: C snapped to where it clusters).")] = None,
    min_points: Annotated[int, typer.Option("--min-points", help="Approach 2: fewest model sizes a budget needs.")] = 5,
    window: Annotated[str, typer.Option("--window", help="Approach 2: points each parabola sees around its budget's sampled minimum: decades of N (1dec), a number of points (7), or all.")] = "1dec",
    n_convention: Annotated[str, typer.Option("--n-convention", help="What N counts: auto (total; active for MoE runs), total, non_embedding, active.")] = "auto",
    c_convention: Annotated[str, typer.Option("--c-convention", help="runs: C as 6ND or the counted FLOPs.")] = "6ND",
    loss: Annotated[str, typer.Option("--loss", help="runs: final validation loss or smoothed training loss.")] = "final",
    holdout: Annotated[float, typer.Option("--holdout", help="Fraction of largest-C points held out to measure extrapolation error.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resamples (each law its own stream).")] = 0,
    out: Annotated[str | None, typer.Option("--out", help="Folder for the fit JSON files and plots (default: RUNS/fits/ for a runs folder, fits/<table name>/ for a table).")] = None,
    plot: Annotated[str, typer.Option("--plot", help="files (PNG + SVG), terminal (also draws the main plot here), or none.")] = "files",
    as_json: JsonOpt = False,
) -> None:
    """Fit scaling laws to runs or a table, with bootstrap intervals and flags; one JSON per law, and plots."""
    from ..scaling.fit import Window
    from ..scaling.pipeline import Options, left_out_runs, report, run_fits, terminal_plots, write_group_plots
    from ..scaling.points import Columns, Conventions

    with user_errors():
        opt = Options(laws=tuple(law or ()), bootstrap=bootstrap, seed=seed, holdout=holdout,
                      min_points=min_points, window=Window.parse(window, min_points), plot=plot)
        conv = Conventions(n_convention, c_convention, loss)
        cols = Columns(n_col, d_col, c_col, loss_col, budget_col)
        fits = run_fits(source, opt, conv, cols, out)
        plots = write_group_plots(fits, opt)
    if as_json:
        return print_json(report(fits, plots))
    for x in left_out_runs(fits):
        say(f"left out {x['run']}: {x['reason']}", style="yellow")
    if len(fits) > 1:
        note(f"{len(fits)} groups in {source}: each is fitted on its own (runs of different architectures, "
             "recipes or data never share a law)", style="bold")
    for g in fits:
        print_group(g, opt)
    if len(fits) > 1:
        _print_comparison(fits)
    if plot == "terminal":
        for text in terminal_plots(fits):
            sys.stdout.write(text + "\n")
    pngs = [p for p in plots if p.endswith(".png")]
    if pngs:
        say("plots (and .svg beside each):\n" + "\n".join(f"  {p}" for p in pngs))


def _print_comparison(fits) -> None:
    from ..scaling.pipeline import comparison

    t = Table(title="comparison across groups", header_style="bold")
    for c in ("group", "law", "points", "a [10-90%]", "E [10-90%]", "C range", "flags"):
        t.add_column(c, justify="left" if c == "group" else "right")
    for row in comparison(fits):
        if "skipped" in row:
            t.add_row(row["group"], "-", "-", "-", "-", "-", row["skipped"][:60])
            continue
        cr = row["C_range"]
        t.add_row(row["group"], row["law"], str(row["n_points"]), value_interval(row["a"], row["a_interval"]),
                  value_interval(row["E"], row["E_interval"]), f"{cr[0]:.2g}-{cr[1]:.2g}" if cr else "", str(row["flags"]))
    console.print(t)
