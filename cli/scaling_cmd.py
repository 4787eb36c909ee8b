"""`llmhist recommend` and `llmhist fit`: thin wrappers over llmhist.scaling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..core.numbers import human, nbytes, sci
from .common import JsonOpt, console, note, print_json, say, user_errors

app = typer.Typer()


def _iv(r: dict, key: str, fmt: Callable[[float], str] = human) -> str:
    if r.get(key) is None:
        return "n/a"
    v = fmt(r[key])
    if key + "_interval" in r:
        lo, hi = r[key + "_interval"]
        v += f" [{fmt(lo)}, {fmt(hi)}]"
    return v


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
    t = Table(title="compute-optimal allocation", header_style="bold")
    for c in ("law", "C (FLOPs)", "N_opt", "D_opt", "tokens/param", "loss"):
        t.add_column(c, justify="left" if c == "law" else "right", no_wrap=c in ("law", "C (FLOPs)"))
    for r in rows:
        t.add_row(r["law"], sci(r["C"]), _iv(r, "N_opt"), _iv(r, "D_opt"),
                  _iv(r, "tokens_per_param", lambda v: f"{v:.1f}"), _iv(r, "loss", lambda v: f"{v:.3f}"))
        if "as_written" in r:
            w = r["as_written"]
            t.add_row(f"  {r['law']} (C_min = C)", sci(w["C"]) if w["C"] != r["C"] else "", human(w["N_opt"]),
                      human(w["D_opt"]), f"{w['D_opt'] / w['N_opt']:.1f}", "")
    if rows and "budget" in rows[0]:
        _note(rows[0]["budget"]["note"])
    console.print(t)
    for r in rows:
        if "convention" in r:
            _note(f"{r['law']}: {r['convention']}; the (C_min = C) row reads Kaplan's formula as written"
                  + (" for the same fixed N or D." if r["as_written"]["C"] != r["C"] else "."))
        for w in (r.get("warning"), r.get("as_written", {}).get("warning")):
            if w:
                _note(f"warning: {w}", "yellow")
    if rows and "per_gpu" in rows[0]:
        _print_per_gpu(rows)
    note = loss_data_note(rows)
    if note:
        _note(note)
    if inf:
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
    say(f"how: {g['how']}")
    say(f"FLAG {g['flag']}", style="yellow")


def _note(text: str, style: str = "") -> None:
    """A line under a table, wrapped between words at the terminal's width (never inside a word)."""
    console.print(Text(text, style=style))


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
        _print_group(g, opt)
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
        t.add_row(row["group"], row["law"], str(row["n_points"]), _with_iv(row["a"], row["a_interval"]),
                  _with_iv(row["E"], row["E_interval"]), f"{cr[0]:.2g}-{cr[1]:.2g}" if cr else "", str(row["flags"]))
    console.print(t)


def _with_iv(v: float | None, iv: list | tuple | None) -> str:
    return "n/a" if v is None else f"{v:.3g}" + (f" [{iv[0]:.3g}, {iv[1]:.3g}]" if iv else "")


def _print_group(g, opt) -> None:
    """One group's fits: where they come from and go, each law's table (its file on a line of its
    own), why a table has no intervals, and every FLAG; sentences wrap on words."""
    from ..scaling.pipeline import group_notes

    pts = g.points
    head = f"{pts.group_label}: " if pts.group_label else ""
    note(f"{head}{len(pts.N)} points (N: {pts.conventions['N']}, C: {pts.conventions['C']}"
         + (f", loss: {pts.conventions['loss']}" if pts.curves else "") + ")", style="bold")
    say(f"  from {pts.source}")
    say(f"  -> {g.out}")
    for n in group_notes(g):
        note(f"note: {n}", style="yellow")
    note(f"budgets: {pts.budget_note}")
    for r in g.results:
        if r.skipped is not None:
            note(f"{r.law} not fitted: {r.skipped}", style="yellow")
            continue
        console.print(_law_table(r))
        say(f"  -> {r.path}")
        if r.interval_note():
            note(f"{r.law}: {r.interval_note()}", style="dim")
        _print_entropy(r)
        if r.law == "isoflop":
            note(f"isoFLOP: {len(r.details['minima'])} budget(s) kept, {len(r.details['refused'])} refused; "
                 f"parabola window: {r.details['window']}")
            for ref in r.details.get("refused", []):
                note(f"budget C={ref['C']:.3g} ({ref['n_points']} points) left out: {ref['reason']}", style="yellow")
        for fl in r.flags:
            note(f"FLAG {r.law}: {fl}", style="bold red")


def _law_table(r) -> Table:
    bs = r.bootstrap
    surv = f", bootstrap {bs['survived']}/{bs['requested']} refits" if bs else ""
    t = Table(title=f"{r.law} fit ({r.n_points} points{surv})", header_style="bold")
    # no interval column where there are none (a note under the table says why)
    for c in ("parameter", "value", "interval (10th-90th pct)")[:3 if r.intervals else 2]:
        t.add_column(c, justify="right")
    for k, v in r.params.items():
        iv = r.intervals.get(k)
        t.add_row(k, f"{v:.4g}", *([f"[{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "-"] if r.intervals else []))
    for k, v in r.details.get("goodness", {}).items():
        t.add_row(k, f"{v:.4g}")
    for k, v in r.details.get("held_out", {}).items():
        t.add_row(f"held-out {k}", f"{v:.4g}")
    ent = r.details.get("entropy")
    if ent:
        iv = ent["E_interval"]
        t.add_row("true entropy H", f"{ent['H_nats_per_token']:.4g}",
                  *(["inside E's interval" if ent["H_in_E_interval"] else "OUTSIDE E's interval"] if iv else []))
        if ent.get("eval_floor_nats_per_token") is not None:
            t.add_row("eval-set floor", f"{ent['eval_floor_nats_per_token']:.4g}",
                      *(["inside E's interval" if ent["reference_in_E_interval"] else "OUTSIDE E's interval"]
                        if iv else []))
    return t


def _print_entropy(r) -> None:
    ent = r.details.get("entropy")
    if not ent:
        return
    iv = ent["E_interval"]
    note(f"E = {ent['E']:.4f}" + (f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "")
         + f" against the source's true entropy H = {ent['H_nats_per_token']:.4f} nats/token "
         f"(E - H = {ent['E_minus_H']:+.4f})"
         + (f" and the evaluated tokens' exact floor {ent['eval_floor_nats_per_token']:.4f} "
            f"(E - floor = {ent['E_minus_reference']:+.4f}; E is compared with the floor)"
            if ent.get("compared_with") == "eval_floor" else ""))
