"""`llmhist ablate list|plan|run|report`: what each historical change bought, in compute-equivalent
gain. Each command a screen over one library call: llmhist.archs.changes.derive (list),
llmhist.train.ablate.plan (plan; run trains it through the sweep's queue) and
llmhist.scaling.ablation.report (report). `llmhist ablate BASE TARGET ...` is `ablate run`, whose
`--list`, `--dry-run` and `--report` are the other commands. `list` and `plan` import no torch."""

from __future__ import annotations

import math
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
    human,
    note,
    print_json,
    say,
    user_errors,
)
from .runs_view import Progress

DEFAULT_POINTS, DEFAULT_SEEDS = 4, 6  # llmhist.train.ablate's (not imported here: --help stays light)

HELP = """What each change from BASE to TARGET buys, in compute-equivalent gain (CEG): the compute BASE's frontier needs to reach the loss the variant reaches, over the variant's compute.

Default plan: a ladder of two grouped steps, BASE -> + the recipe changes -> + the architecture changes (= TARGET), isoFLOP sweeps at 3e11, 1e12 and 3e12 FLOPs with 4 sizes each centred on 100 tokens per parameter (where byte-level models this small are compute-optimal), and 5 more seeds of BASE at 3e11 for seed noise: 41 runs, measured 14 min 43 s on a quiet 2-core CPU, where gpt2 -> llama3 gave a total of about 2x with 90% intervals excluding 1x at every budget. A ladder of every change is `--changes all` (one sweep per change: about 70 minutes for gpt2 -> llama3, estimated); steps join changes with '+', e.g. --changes recipe,norm+bias,positions+rope_theta,mlp+mlp_width.
"""


def _iv(b: dict) -> str:
    lo, hi = b["interval"]

    def fmt(x: float) -> str:
        return "inf" if x == math.inf else f"{x:.3g}"

    if b["verdict"].startswith("no gain"):
        return f"{fmt(b['ceg'])}x, no gain detectable [{fmt(lo)}, {fmt(hi)}]" + \
            (" (extrap.)" if b["extrapolated"] else "")
    return f"{fmt(b['ceg'])}x [{fmt(lo)}, {fmt(hi)}]" + (" (extrap.)" if b["extrapolated"] else "")


def _changes_table(changes: list[dict], title: str):
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for col in ("change", "kind", "year", "introduced by", "from -> to", "needs"):
        t.add_column(col, justify="left", overflow="fold")  # values wrap, never cut with an ellipsis
    for c in changes:
        frm = ", ".join(f"{k}={v}" for k, v in c["from"].items())
        to = ", ".join(f"{k}={v}" for k, v in c["to"].items())
        t.add_row(c["name"], c["kind"], str(c["year"]), c["introduced_by"], f"{frm} -> {to}",
                  ", ".join(c["requires"]) or "-")
    return t


def _plan_table(p: dict):
    from rich.table import Table

    t = Table(title=f"ablation {p['base']} -> {p['target']} ({p['mode']}): {len(p['variants'])} variants, "
                    f"{p['n_runs']} runs, budgets {', '.join(f'{c:.3g}' for c in p['budgets'])}", header_style="bold")
    for c in ("variant", "step", "runs", "N range", "compute", "est. time"):
        t.add_column(c, justify="left" if c in ("variant", "step") else "right", no_wrap=c == "variant")
    for v in p["variants"]:
        Ns = [r["N"] for r in v["runs"]]
        seeds = sum(r["role"] == "seed_repeat" for r in v["runs"])
        t.add_row(v["id"], v["label"] if v["changes"] else "(base)",
                  f"{len(v['runs'])}" + (f" (incl. {seeds} seed repeat{'s' if seeds > 1 else ''})" if seeds else ""),
                  f"{human(min(Ns))}-{human(max(Ns))}", f"{v['flops']:.3g}", f"{v['estimated_wall_s']:.0f} s")
    return t


def _report_table(res: dict):
    from rich.table import Table

    budgets = res["budgets"]
    t = Table(title=f"compute-equivalent gain, {res['base']} -> {res['target']} ({res['mode']}); seed sd "
                    f"{res['seed_sd']:.3g}", header_style="bold")
    for c in ["change", "year", "introduced by"] + [f"CEG @ {c:.2g} [90%]" for c in budgets] + ["slope [90%]"] + \
            (["cumulative"] if res["mode"] == "ladder" else []):
        t.add_column(c, justify="left" if c in ("change", "introduced by") else "right", overflow="fold",
                     no_wrap=c in ("change", "year"))
    for r in res["comparisons"]:
        ys = sorted({c["year"] for c in r["changes"]})
        who = ", ".join(dict.fromkeys(c["introduced_by"] for c in r["changes"]))
        if r.get("total"):
            who = "-"
        cells = [r["change"], f"{ys[0]}" + (f"-{ys[-1]}" if len(ys) > 1 else ""), who]  # folded, never cut (C2)
        if "error" in r:
            cells += [r["error"]] + [""] * len(budgets)
        else:
            by = {round(math.log10(b["C"]), 2): b for b in r["budgets"]}
            cells += [_iv(by[round(math.log10(c), 2)]) if round(math.log10(c), 2) in by else "-" for c in budgets]
            cells.append("n/a" if r["slope"] is None else
                         f"{r['slope']:+.2f} [{r['slope_interval'][0]:+.2f}, {r['slope_interval'][1]:+.2f}]")
        if res["mode"] == "ladder":
            cells.append(" ".join(f"{x:.3g}x" for x in r["cumulative"]) if r.get("cumulative") else "")
        t.add_row(*cells)
    return t


app = typer.Typer()
ablate_app = typer.Typer(cls=DefaultGroup, help="What each change from BASE to TARGET buys, in compute-equivalent "
                         "gain: `ablate run BASE TARGET` (the default: `llmhist ablate gpt2 llama3` is `ablate run "
                         "gpt2 llama3`), `ablate list`, `ablate plan`, `ablate report`.")
app.add_typer(ablate_app, name="ablate")

# the options of a plan (`plan` and `run`), each declared once
BaseArg = Annotated[str, typer.Argument(help="registry entry or family, e.g. gpt2")]
TargetArg = Annotated[str, typer.Argument(help="registry entry or family, e.g. llama3")]
ModeOpt = Annotated[str, typer.Option(help="ladder (cumulative, in historical order), each (BASE + one change), drop "
                                           "(TARGET - one change)")]
ChangesOpt = Annotated[str | None, typer.Option(help="steps, comma-separated; '+' joins changes into one step; groups "
                                                     "arch, recipe; all = every change (default: ladder recipe,arch; "
                                                     "each/drop all)")]
BudgetsOpt = Annotated[str | None, typer.Option(help="isoFLOP budgets in FLOPs (default 3e11,1e12,3e12)")]
PointsOpt = Annotated[int, typer.Option(help="model sizes per budget")]
SpreadOpt = Annotated[float, typer.Option(help="largest/smallest N per budget")]
CentreOpt = Annotated[float, typer.Option(help="the sizes' centre at each budget: N = sqrt(C / (6 x this)), the "
                                               "expected optimum's D/N")]
OldTppOpt = Annotated[float | None, typer.Option("--tokens-per-param", hidden=True)]  # refused with the new name
SeedsOpt = Annotated[int, typer.Option(help="runs of the reference at the smallest budget, seed 0 included, to "
                                            "measure seed noise (1 = none)")]
CtxOpt = Annotated[int, typer.Option(help="sequence length")]
BatchOpt = Annotated[int, typer.Option(help="sequences per step")]
EvalBatchesOpt = Annotated[int, typer.Option(help="each run's one final evaluation: this x batch fixed validation "
                                                  "windows")]
DataOpt = Annotated[str, typer.Option(help="as for `llmhist train`")]
TokenizerOpt = Annotated[str, typer.Option(help="as for `llmhist train`")]
SeedOpt = Annotated[int, typer.Option(help="seed of every frontier run")]
OutOpt = Annotated[Path | None, typer.Option(help="ablation folder, a sweep folder (default runs/ablate-BASE-TARGET)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="the changes, the plan or the report as JSON")]
# the report's
BootstrapOpt = Annotated[int, typer.Option(help="bootstrap resamples for the intervals")]
LawOpt = Annotated[list[str] | None, typer.Option("--law", help="laws (published names or fit JSON) for the CEG of "
                                                               "compute-optimal allocation against Kaplan's at each "
                                                               "budget (default: hoffmann2022, epoch2024)")]
PlotOpt = Annotated[str | None, typer.Option(help="png, svg or terminal")]


def _request(o: dict, folder: Path):
    """The PlanRequest of a command's options (click's parameter dict), validated on construction."""
    from ..train import ablate as A

    if o.get("old_tokens_per_param") is not None:
        raise A.AblationError(f"--tokens-per-param {o['old_tokens_per_param']:g}: in `ablate` the sizes' centre is "
                              f"--centre-tokens-per-param {o['old_tokens_per_param']:g} (`sweep --tokens-per-param` "
                              "is a ladder's list of horizons)")
    return A.PlanRequest(o["base"], o["target"], mode=o["mode"], changes=o["changes"],
                         budgets=tuple(floats(o["budgets"], "--budgets")), points=o["points"], spread=o["spread"],
                         seeds=o["seeds"], ctx=o["ctx"], batch=o["batch"], data=o["data"], tokenizer=o["tokenizer"],
                         seed=o["seed"], out=str(folder), eval_batches=o["eval_batches"],
                         centre_tokens_per_param=o["centre_tokens_per_param"], logger=o.get("logger") or "none")


def _folder(out: Path | None, base: str, target: str) -> Path:
    return out or Path("runs") / f"ablate-{base}-{target}"


@ablate_app.command("list")
def ablate_list(base: BaseArg, target: TargetArg, json_out: JsonOpt = False) -> None:
    """The changes from BASE to TARGET, in historical order (year, introduced by, from -> to)."""
    from ..archs import changes as CH

    with user_errors():
        ch = [c.to_dict() for c in CH.derive(base, target)]
    if json_out:
        return print_json([{k: c[k] for k in ("name", "kind", "year", "introduced_by", "description", "from", "to",
                                              "requires")} for c in ch])
    console.print(_changes_table(ch, f"changes from {base} to {target}, in historical order"))


@ablate_app.command("plan")
def ablate_plan(
    ctx_: typer.Context, base: BaseArg, target: TargetArg, mode: ModeOpt = "ladder", changes: ChangesOpt = None,
    budgets: BudgetsOpt = None, points: PointsOpt = DEFAULT_POINTS, spread: SpreadOpt = 16.0,
    centre_tokens_per_param: CentreOpt = 100.0, old_tokens_per_param: OldTppOpt = None, seeds: SeedsOpt = DEFAULT_SEEDS,
    ctx: CtxOpt = 128, batch: BatchOpt = 16, eval_batches: EvalBatchesOpt = 16, data: DataOpt = "stdlib",
    tokenizer: TokenizerOpt = "bytes", seed: SeedOpt = 0, out: OutOpt = None, json_out: JsonOpt = False,
) -> None:
    """The plan (variants, runs, estimated time at an assumed CPU peak) without running anything."""
    from ..train import ablate as A

    folder = _folder(out, base, target)
    with user_errors():
        p = A.plan(_request(ctx_.params, folder))
    _show_plan(p, folder, json_out, dry_run=True)


@ablate_app.command("run", help=HELP)
def ablate_run(
    ctx_: typer.Context, base: BaseArg, target: TargetArg, mode: ModeOpt = "ladder", changes: ChangesOpt = None,
    budgets: BudgetsOpt = None, points: PointsOpt = DEFAULT_POINTS, spread: SpreadOpt = 16.0,
    centre_tokens_per_param: CentreOpt = 100.0, old_tokens_per_param: OldTppOpt = None, seeds: SeedsOpt = DEFAULT_SEEDS,
    ctx: CtxOpt = 128, batch: BatchOpt = 16, eval_batches: EvalBatchesOpt = 16, data: DataOpt = "stdlib",
    tokenizer: TokenizerOpt = "bytes", seed: SeedOpt = 0, out: OutOpt = None,
    logger: LoggerOpt = "none", launcher: LauncherOpt = "local", workers: WorkersOpt = None, threads: ThreadsOpt = None,
    retry_failed: RetryFailedOpt = False, partition: PartitionOpt = None, time_min: TimeOpt = 60,
    gpus_per_job: GpusPerJobOpt = 0, cpus_per_job: CpusPerJobOpt = None, max_concurrent: MaxConcurrentOpt = 32,
    bootstrap: BootstrapOpt = 1000, law: LawOpt = None, plot: PlotOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="`ablate list`: print the changes and exit")] = False,
    report_only: Annotated[bool, typer.Option("--report", help="`ablate report`: only report the finished runs in "
                                                               "--out")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    dry_run: Annotated[bool, typer.Option(help="`ablate plan`: print the plan only")] = False,
    json_out: JsonOpt = False,
) -> None:
    from ..train import ablate as A
    from ..train.sweep import check_folder, check_launch, measured_peak

    folder = _folder(out, base, target)
    with user_errors():
        _check_report_options(plot, bootstrap)
        check_launch(launcher, workers, threads)
        check_folder(folder)
    if list_:
        return ablate_list(base, target, json_out)
    if report_only:
        return _report(folder, bootstrap, plot, json_out, law)
    with user_errors():
        p = A.plan(_request(ctx_.params, folder))  # validates every option before anything is measured or written
        if not dry_run and launcher == "local":
            A.estimate(p, *measured_peak(threads * (workers or 1) if threads else None))
    if _show_plan(p, folder, json_out, dry_run):
        return
    if not yes and not typer.confirm("run this ablation?", default=True):
        raise typer.Exit(1)
    slurm = {"partition": partition, "time_min": time_min, "gpus_per_job": gpus_per_job,
             "max_concurrent": max_concurrent, "cpus_per_job": cpus_per_job}
    with user_errors(), Progress(folder, err=json_out) as prog:  # a live table on a terminal, a line per run piped
        rows = A.run_plan(p, folder, workers=workers, threads=threads, launcher=launcher, slurm=slurm,
                          retry_failed=retry_failed, on_tick=prog.tick)
    if launcher == "slurm":
        return note(f"submitted to Slurm; `llmhist sweep status {folder}` follows it, and `llmhist ablate "
                    f"report {folder}` reports once the runs are done", err=json_out)
    bad = [r for r in rows if r["state"] != "finished"]
    if bad:
        (err_console if json_out else console).print(
            f"[yellow]{len(bad)} run(s) not finished ({', '.join(r['run'] for r in bad[:3])}...); "
            "the same command resumes; the report uses the finished runs[/]")
    _report(folder, bootstrap, plot, json_out, law)


@ablate_app.command("report")
def ablate_report(
    folder: Annotated[Path, typer.Argument(help="an ablation folder (`ablate run --out`)")],
    bootstrap: BootstrapOpt = 1000, law: LawOpt = None, plot: PlotOpt = None, json_out: JsonOpt = False,
) -> None:
    """Report the finished runs of an ablation folder: frontiers, CEG with intervals, the ladder's product."""
    with user_errors():
        _check_report_options(plot, bootstrap)
    _report(folder, bootstrap, plot, json_out, law)


def _check_report_options(plot: str | None, bootstrap: int) -> None:
    from ..train.ablate import AblationError

    if plot not in (None, "png", "svg", "terminal"):
        raise AblationError(f"--plot {plot!r}: png, svg or terminal")
    if bootstrap < 50:
        raise AblationError(f"--bootstrap {bootstrap}: give at least 50 resamples (1000 is usual)")


def _show_plan(p: dict, folder: Path, json_out: bool, dry_run: bool) -> bool:
    """Print the plan (as JSON with --json on a dry run); True when that is all there is to do."""
    if json_out and dry_run:
        print_json({
            "base": p["base"], "target": p["target"], "mode": p["mode"], "budgets": p["budgets"],
            "changes": [{"name": c["name"], "year": c["year"], "introduced_by": c["introduced_by"]}
                        for c in p["changes"]],
            "variants": [{"id": v["id"], "label": v["label"], "changes": v["changes"], "runs": v["runs"],
                          "estimated_wall_s": v["estimated_wall_s"]} for v in p["variants"]],
            "comparisons": p["comparisons"], "convention": p["convention"], "estimate": p["estimate"],
            "estimated_wall_s": p["estimated_wall_s"], "out": str(folder)})
        return True
    (err_console if json_out else console).print(_plan_table(p))  # with --json, stdout holds the JSON only
    note(f"FLOP convention: {p['convention']}", err=json_out)
    note(f"estimated wall time {p['estimated_wall_s'] / 60:.1f} min ({p['estimate']['how']})", err=json_out)
    say(f"  -> {folder}", err=json_out)  # a path on a line of its own
    return dry_run


def _report(folder: Path, bootstrap: int, plot: str | None, json_out: bool, laws=None) -> None:
    """The report of the finished runs in `folder` (llmhist.scaling.ablation.report), printed or as JSON."""
    from ..scaling import ablation, ablation_plots

    with user_errors():
        res = ablation.report(folder, n_boot=bootstrap, laws=tuple(laws or ("hoffmann2022", "epoch2024")))
        plots = ablation_plots.write_plots(res, Path(folder) / "fits", plot) if plot in ("png", "svg") else []
    if json_out:
        return print_json({**{k: v for k, v in res.items() if k != "frontiers"}, "frontiers": res["frontiers"],
                           "plots": plots})
    for x in res["left_out"]:
        console.print(f"[yellow]left out[/] {x['run']}: {x['reason']}")
    console.print(_report_table(res))
    for a in res["allocation"]:
        cells = []
        for b in a["budgets"]:
            iv = f" [{b['interval'][0]:.3g}, {b['interval'][1]:.3g}]" if b["interval"] else ""
            cells.append(f"{b['ceg']:.3g}x{iv} at {b['C']:.2g}")
        note(f"compute-optimal allocation vs Kaplan's (N ~ C^0.73), under {a['law']}: " + ", ".join(cells)
             + " (a recipe change; from the law, no training)")
        for w in dict.fromkeys(b["warning"] for b in a["budgets"] if b.get("warning")):
            note(f"FLAG {w}", style="yellow")
    for vid, fb in res["frontiers"].items():  # first-hour W9: a frontier at the grid's edge is said
        for C, edge in zip(fb.get("C", []), fb.get("edge") or []):
            if edge:
                note(f"FLAG {vid}: at C={C:.2g} the frontier is the {edge} run (the grid's edge, not a bracketed "
                     "minimum): its loss is an upper bound and the CEG there is uncertain; "
                     f"{'lower' if edge == 'smallest' else 'raise'} --centre-tokens-per-param or widen --spread",
                     style="yellow")
    r0 = next((r for r in res["comparisons"] if "method" in r), None)
    if r0:
        note(f"frontier: {r0['method']['frontier']} ({r0['method']['points']}); interval: "
             f"{r0['method']['interval']}")
    note("small scale, byte-level code corpus: a gain here is a gain at these sizes on this data, "
         "not a measurement of what the change bought at scale")
    console.print("fits: " + ", ".join(res["paths"]), soft_wrap=True)
    if plot == "terminal":
        import sys

        sys.stdout.write(ablation_plots.terminal_plot(res) + "\n")
    if plots:
        console.print("plots: " + ", ".join(plots), soft_wrap=True)
