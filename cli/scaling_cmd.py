"""`llmhist recommend` and `llmhist fit`: thin wrappers over llmhist.scaling."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import console, human, print_json, sci, user_errors


def _iv(r: dict, key: str, fmt=human) -> str:
    if r.get(key) is None:
        return "n/a"
    v = fmt(r[key])
    if key + "_interval" in r:
        lo, hi = r[key + "_interval"]
        v += f" [{fmt(lo)}, {fmt(hi)}]"
    return v


def register(app: typer.Typer) -> None:
    @app.command("recommend")
    def recommend_(
        flops: Annotated[Optional[float], typer.Option("--flops", help="Training compute C in FLOPs.")] = None,
        gpu_hours: Annotated[Optional[float], typer.Option("--gpu-hours", help="Budget in GPU-hours (with --gpu, --mfu).")] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="h100, a100, h200, ...")] = None,
        mfu: Annotated[float, typer.Option("--mfu", help="Model FLOPs utilisation for --gpu-hours.")] = 0.4,
        params_: Annotated[Optional[float], typer.Option("--params", help="Model size N: the budget at which N is optimal.")] = None,
        tokens: Annotated[Optional[float], typer.Option("--tokens", help="Data D: the budget at which D is optimal.")] = None,
        law: Annotated[Optional[list[str]], typer.Option("--law", help="Published law(s) to use (default: all).")] = None,
        fit: Annotated[Optional[list[str]], typer.Option("--fit", help="Fit JSON file(s) written by `llmhist fit`.")] = None,
        inference_tokens: Annotated[Optional[float], typer.Option("--inference-tokens", help="Tokens the model will serve (Sardana & Frankle 2023).")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ):
        """Compute-optimal N, D, tokens/param and predicted loss under each law, side by side."""
        from llmhist.scaling import laws as L
        from llmhist.scaling.recommend import budget_from, inference_aware, recommend

        with user_errors():
            chosen = [L.get(n) for n in (law or L.DEFAULT_LAWS)] + [L.load(f) for f in (fit or [])]
            C = None
            if params_ is None and tokens is None:
                C = budget_from(flops, gpu_hours, gpu, mfu)
            elif sum(x is not None for x in (flops, gpu_hours, params_, tokens)) > 1:
                raise ValueError("give one of --flops, --gpu-hours, --params, --tokens")
            rows = [recommend(l, C=C, N=params_, D=tokens) for l in chosen]
            inf = None
            if inference_tokens is not None:
                if inference_tokens < 0:
                    raise ValueError("--inference-tokens must be >= 0")
                inf = [inference_aware(l, r["C"], inference_tokens) for l, r in zip(chosen, rows) if l.kind == "chinchilla"]
        if as_json:
            return print_json({"recommendations": rows, "inference_aware": inf})
        t = Table(title="compute-optimal allocation", header_style="bold")
        for c in ("law", "C (FLOPs)", "N_opt", "D_opt", "tokens/param", "loss"):
            t.add_column(c, justify="left" if c == "law" else "right", no_wrap=c in ("law", "C (FLOPs)"))
        for r in rows:
            t.add_row(r["law"], sci(r["C"]), _iv(r, "N_opt"), _iv(r, "D_opt"),
                      _iv(r, "tokens_per_param", lambda v: f"{v:.1f}"), _iv(r, "loss", lambda v: f"{v:.3f}"))
        console.print(t)
        if inf:
            t = Table(title=f"inference-aware: same loss, serving {human(inference_tokens)} tokens", header_style="bold")
            for c in ("law", "N", "D_train", "tokens/param", "N vs Chinchilla", "total FLOPs saved"):
                t.add_column(c, justify="right")
            for r in inf:
                saved = 1 - r["total_flops"] / r["chinchilla_total_flops"]
                t.add_row(r["law"], human(r["N"]), human(r["D_train"]), f"{r['tokens_per_param']:.0f}",
                          f"{r['N_vs_chinchilla']:.2f}x", f"{saved:.1%}")
            console.print(t)


    @app.command("fit")
    def fit_(
        source: Annotated[str, typer.Argument(help="A runs folder (any depth) or a CSV/Parquet table of (N, D or C, loss).")],
        law: Annotated[Optional[list[str]], typer.Option("--law", help="chinchilla, isoflop, kaplan, envelope (default: all the data supports).")] = None,
        bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples (0: none).")] = 200,
        n_col: Annotated[str, typer.Option("--n-col")] = "N",
        d_col: Annotated[Optional[str], typer.Option("--d-col")] = None,
        c_col: Annotated[Optional[str], typer.Option("--c-col")] = None,
        loss_col: Annotated[str, typer.Option("--loss-col")] = "loss",
        n_convention: Annotated[str, typer.Option("--n-convention", help="What N counts: total, non_embedding, active.")] = "total",
        c_convention: Annotated[str, typer.Option("--c-convention", help="runs: C as 6ND or the counted FLOPs.")] = "6ND",
        loss: Annotated[str, typer.Option("--loss", help="runs: final validation loss or smoothed training loss.")] = "final",
        holdout: Annotated[float, typer.Option("--holdout", help="Fraction of largest-C points held out to measure extrapolation error.")] = 0.0,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        out: Annotated[str, typer.Option("--out", help="Folder for the fit JSON files and plots.")] = "fits",
        plot: Annotated[str, typer.Option("--plot", help="files (PNG + SVG), terminal (also draws the main plot here), or none.")] = "files",
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ):
        """Fit scaling laws to runs or a table, with bootstrap intervals; writes one JSON per law and plots."""
        from llmhist.scaling.fitting import run_fits

        with user_errors():
            if bootstrap < 0:
                raise ValueError("--bootstrap must be >= 0")
            if plot not in ("files", "terminal", "none"):
                raise ValueError(f"--plot {plot!r}: files, terminal or none")
            results, pts = run_fits(source, laws=law, bootstrap=bootstrap, n_col=n_col, d_col=d_col, c_col=c_col,
                                    loss_col=loss_col, n_convention=n_convention, c_convention=c_convention,
                                    loss=loss, seed=seed, out=out, holdout=holdout)
        plots = []
        if plot != "none":
            from llmhist.scaling.plots import write_plots

            plots = write_plots(results, pts, out)
        if as_json:
            return print_json({"fits": [{k: v for k, v in r.items() if k not in ("bootstrap_samples", "residuals")}
                                        for r in results], "left_out": pts["left_out"], "plots": plots})
        console.print(f"{pts['n_rows']} points from {pts['source']} (N: {n_convention}, C: {c_convention}"
                      + (f", loss: {loss}" if pts["curves"] else "") + ")")
        for x in pts["left_out"]:
            console.print(f"[yellow]left out[/] {x['run']}: {x['reason']}")
        for r in results:
            if "skipped" in r:
                console.print(f"[yellow]{r['law']} not fitted:[/] {r['skipped']}")
                continue
            t = Table(title=f"{r['law']} fit ({r['n_points']} points) -> {r['path']}", header_style="bold")
            for c in ("parameter", "value", "interval (10th-90th pct)"):
                t.add_column(c, justify="right")
            for k, v in r["params"].items():
                iv = r["intervals"].get(k)
                t.add_row(k, f"{v:.4g}", f"[{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "-")
            for k, v in r.get("goodness", {}).items():
                t.add_row(k, f"{v:.4g}", "")
            for k, v in r.get("held_out", {}).items():
                t.add_row(f"held-out {k}", f"{v:.4g}", "")
            console.print(t)
            for ref in r.get("refused", []):
                console.print(f"[yellow]budget C={ref['C']:.3g} left out: {ref['reason']}[/]")
        if plot == "terminal":
            from llmhist.scaling.plots import terminal_plot

            import sys

            sys.stdout.write(terminal_plot(results, pts) + "\n")  # plotext's own layout; rich would re-wrap it
        if plots:
            console.print("plots: " + ", ".join(p for p in plots if p.endswith(".png")) + " (and .svg)", soft_wrap=True)
