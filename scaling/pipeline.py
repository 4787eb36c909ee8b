"""`llmhist fit` as a library function: load the points once (a table, or a runs folder grouped by
spec), fit each law, bootstrap each on its own random stream, flag what cannot be trusted, and save
one JSON per law in one output folder per input (a sub-folder per spec group)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import fit as F
from .points import Columns, Conventions, Points, load, save_fit
from .result import CHIN_SAMPLE, POWER_SAMPLE, FitResult

KNOWN = ("chinchilla", "isoflop", "kaplan", "envelope")
PLOTS = ("files", "terminal", "none")  # PNG + SVG files; also the main plot drawn in the terminal; none
GROUP_NOTE = "(all)"  # the `run` of a left_out entry that is a note on the whole group, not one run


@dataclass
class Options:
    """Every choice of one `llmhist fit` call, validated once."""

    laws: tuple = ()  # empty: every law the data support
    bootstrap: int = 200
    seed: int = 0
    holdout: float = 0.0
    min_points: int = 5  # per isoFLOP budget
    window: F.Window = field(default_factory=F.Window)
    plot: str = "files"  # one of PLOTS (used by write_group_plots and the command)

    def __post_init__(self):
        unknown = [l for l in self.laws if l not in KNOWN]
        if unknown:
            raise F.FitError(f"--law {unknown[0]!r}: unknown; one of {', '.join(KNOWN)}")
        if self.bootstrap < 0:
            raise F.FitError(f"--bootstrap {self.bootstrap}: give 0 (none) or a number of resamples")
        if not 0 <= self.holdout < 0.5:
            raise F.FitError(f"--holdout {self.holdout}: give a fraction of points in [0, 0.5)")
        if self.min_points < 3:
            raise F.FitError(f"--min-points {self.min_points}: a parabola needs at least 3 points per budget")
        if self.plot not in PLOTS:
            raise F.FitError(f"--plot {self.plot!r}: one of {', '.join(PLOTS)}")


@dataclass
class GroupFit:
    """The fits of one group of points (one spec of runs, or one table)."""

    points: Points
    results: list  # FitResult, one per law (skipped ones say why)
    out: Path


def holdout_error(N, D, L, frac: float) -> dict:
    """Fit Approach 3 without the largest-compute `frac` of the points, predict them: the error of
    extrapolating in compute, the use a scaling law is for."""
    C = 6 * N * D
    k = max(1, round(frac * len(N)))
    order = np.argsort(C)
    train, test = order[:-k], order[-k:]
    law = F.fit_chinchilla(N[train], D[train], L[train]).law
    pred = law.loss(N[test], D[test])
    err = pred - L[test]
    return {"held_out_points": int(k), "held_out_C_min": float(C[test].min()),
            "mae_loss": float(np.abs(err).mean()), "rmse_log_loss": float(np.sqrt(np.mean(np.log(pred / L[test]) ** 2))),
            "max_abs_error": float(np.abs(err).max())}


def _negative_exponent_flags(iv: dict) -> list[str]:
    return [f"the interval of {k} [{iv[k][0]:.3g}, {iv[k][1]:.3g}] includes a non-positive exponent"
            for k in ("a", "b") if k in iv and iv[k][0] <= 0]


def fit_chinchilla(pts: Points, opt: Options, base: dict) -> FitResult:
    N, D, L = pts.N, pts.D, pts.loss
    f = F.fit_chinchilla(N, D, L, name=base["name"])
    law, o = f.law, f.extra["optimum"]
    pred = np.log(law.loss(N, D))
    r = FitResult("chinchilla", params=law.params(), flags=list(f.flags), **base)
    r.details = {"method": {"loss": "summed Huber on log L", "delta": F.HUBER_DELTA, "starts": o.starts},
                 "goodness": {"rmse_log_loss": float(np.sqrt(np.mean((pred - np.log(L)) ** 2))),
                              "huber_sum": o.objective},
                 "residuals": (np.log(L) - pred).tolist()}
    if opt.holdout:
        r.details["held_out"] = holdout_error(N, D, L, opt.holdout)
    if opt.bootstrap:
        rows, rep = F.bootstrap_chinchilla(N, D, L, f, opt.bootstrap, F.law_rng(opt.seed, "chinchilla"))
        r.bootstrap = rep
        ok, flags = F.survival_flags(rep)
        r.flags += flags
        if ok:
            a, b = rows[:, 4] / (rows[:, 3] + rows[:, 4]), rows[:, 3] / (rows[:, 3] + rows[:, 4])
            cols = np.c_[rows, a, b]
            r.intervals = {k: F.interval(cols[:, i]) for i, k in enumerate(CHIN_SAMPLE + ("a", "b"))}
            r.samples = rows.tolist()
    if pts.entropy is not None:
        iv = r.intervals.get("E")
        # E estimates the loss floor of the tokens scored: the evaluated set's exact floor when the runs
        # recorded it (points.entropy_eval), else the source's entropy rate H
        ref = pts.entropy_eval if pts.entropy_eval is not None else pts.entropy
        r.details["entropy"] = {"H_nats_per_token": pts.entropy, "eval_floor_nats_per_token": pts.entropy_eval,
                                "compared_with": "eval_floor" if pts.entropy_eval is not None else "H",
                                "reference_nats_per_token": ref, "E": law.E, "E_interval": iv,
                                "E_minus_H": law.E - pts.entropy, "E_minus_reference": law.E - ref,
                                "H_in_E_interval": None if iv is None else bool(iv[0] <= pts.entropy <= iv[1]),
                                "reference_in_E_interval": None if iv is None else bool(iv[0] <= ref <= iv[1])}
    return r


def fit_power(kind: str, pts: Points, opt: Options, base: dict) -> FitResult:
    rng = F.law_rng(opt.seed, kind)
    if kind == "isoflop":
        from .points import group_exact

        budget = pts.budget if pts.budget is not None else group_exact(pts.C)
        f = F.fit_isoflop(pts.N, pts.D, pts.loss, budget, opt.min_points, opt.window, name=base["name"])
        labels = np.where(np.isfinite(budget), budget, -1.0)
        used = [np.flatnonzero(labels == g) for g in np.unique(labels) if g > 0]

        def refit():  # resample within each budget, so every budget keeps its points
            idx = np.concatenate([rng.choice(u, len(u)) for u in used])
            return F.fit_isoflop(pts.N[idx], pts.D[idx], pts.loss[idx], budget[idx],
                                 opt.min_points, opt.window).law
        details = {"minima": f.extra["minima"], "refused": f.extra["refused"], "window": f.extra["window"],
                   "budgets": pts.budget_note, "min_points": opt.min_points}
    else:
        curves = pts.curves
        f = F.fit_envelope(curves, name=base["name"])

        def refit():
            return F.fit_envelope([curves[i] for i in rng.integers(0, len(curves), len(curves))]).law
        fr = f.extra["frontier"]
        details = {"frontier": fr[:: max(1, len(fr) // 200)].tolist()}
    r = FitResult(kind, params=f.law.params(), flags=list(f.flags), details=details, **base)
    if opt.bootstrap:
        laws_, rep = F.bootstrap(refit, opt.bootstrap, (F.FitError, np.linalg.LinAlgError))
        r.bootstrap = rep
        ok, flags = F.survival_flags(rep)
        r.flags += flags
        if ok:
            rows = np.array([[getattr(l, k) for k in POWER_SAMPLE] for l in laws_])
            r.intervals = {k: F.interval(rows[:, i]) for i, k in enumerate(POWER_SAMPLE)}
            r.samples = rows.tolist()
            r.flags += _negative_exponent_flags(r.intervals)
    return r


def fit_kaplan(pts: Points, opt: Options, base: dict) -> FitResult:
    f = F.fit_kaplan(pts.N, pts.D, pts.loss, name=base["name"])
    k = f.law
    params = {"alpha_N": k.alpha_N, "alpha_D": k.alpha_D, "N_c": k.N_c, "D_c": k.D_c, "n_opt_coef": k.n_opt_coef,
              "a": k.a, "cost": f.extra["cost"]}
    return FitResult("kaplan", params=params, flags=list(f.flags),
                     details={"note": "N_opt = n_opt_coef (C/PF-day)^a along C = 6ND of this data (C_min = C)"},
                     **base)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", s).strip("-") or "group"


def fit_group(pts: Points, opt: Options, out: Path, stem: str) -> GroupFit:
    explicit = bool(opt.laws)
    wanted = list(opt.laws or [l for l in KNOWN if l != "envelope" or pts.curves])
    if "envelope" in wanted and not pts.curves:
        raise F.FitError("--law envelope needs training curves: give a runs folder, not a table")
    results = []
    for law in wanted:
        base: dict[str, Any] = {"name": f"{stem}-{law}", "conventions": pts.conventions, "data": pts.source,
                "data_fingerprint": pts.fingerprint, "n_points": len(pts.N), "seed": opt.seed,
                "group": {"key": pts.group_key, "label": pts.group_label} if pts.group_key else {},
                "fitted_range": pts.fitted_range()}
        try:
            if law == "chinchilla":
                r = fit_chinchilla(pts, opt, base)
            elif law == "kaplan":
                r = fit_kaplan(pts, opt, base)
            else:
                r = fit_power(law, pts, opt, base)
        except F.FitError as e:
            if explicit:  # asked for by name: say why not
                raise
            r = FitResult(law, skipped=str(e), **base)
        if pts.left_out:
            r.details["left_out"] = pts.left_out
        results.append(r)
    for r in results:
        if r.skipped is None:
            r.path = str(out / f"{stem}-{r.law}.json")
            save_fit(r.path, r.to_dict())
    return GroupFit(pts, results, out)


def output_folder(source, out: str | Path | None = None) -> Path:
    """Where a fit's files go, checked before any work: `out` as given; else, for a runs folder,
    RUNS/fits/ (beside the runs, where `study` and `ablate` write theirs), and for a table
    fits/<table name>/. A path that is (or lies below) a file is refused."""
    src = Path(source)
    root = Path(out) if out is not None else (src / "fits" if src.is_dir() else Path("fits") / src.stem)
    flag = "--out " if out is not None else "the default output folder "
    for p in (root, *root.parents):
        if p.exists():
            if not p.is_dir():
                raise F.FitError(f"{flag}{root}: {'is' if p == root else f'lies below {p}, which is'} a file, not a "
                                 "folder; give a new or empty folder with --out")
            if not os.access(p, os.W_OK | os.X_OK):  # a read-only runs folder: say so before the work
                raise F.FitError(f"{flag}{root}: {p} is not writable by you; give a folder you can write to with "
                                 "--out")
            break
    return root


def usable_curves(pts: Points) -> None:
    """Leave out the rows of training curves the envelope cannot use (a damaged metrics.csv: tokens
    or loss not positive and finite), naming each run; a curve left with < 2 rows is dropped."""
    kept = []
    for c in pts.curves:
        bad = F.unusable_rows(c)
        if bad.any():
            what = f"{int(bad.sum())} of {len(bad)} metrics.csv row(s) have a non-positive or non-finite tokens or loss"
            if (~bad).sum() < 2:
                pts.left_out.append({"run": c["run"], "reason": f"training curve left out of the envelope: {what}"})
                continue
            pts.left_out.append({"run": c["run"], "reason": f"{what}; left out of its training curve (envelope)"})
            c = {**c, "D": np.asarray(c["D"])[~bad], "loss": np.asarray(c["loss"])[~bad]}
        kept.append(c)
    pts.curves = kept


def run_fits(source, opt: Options | None = None, conventions: Conventions | None = None,
             columns: Columns | None = None, out: str | Path | None = None) -> list[GroupFit]:
    """Fit every law to every group of points in `source`. Output folder: see output_folder; with
    several spec groups, one sub-folder per group."""
    opt, conventions, columns = opt or Options(), conventions or Conventions(), columns or Columns()
    root = output_folder(source, out)
    groups = load(source, conventions, columns, opt.min_points)
    stem = Path(source).name if Path(source).is_dir() else Path(source).stem
    if not any(len(p.N) for p in groups):
        raise F.FitError(f"{source}: no rows (a header and no data); give one row per run: N, D or C, and loss")
    fits, errors = [], []
    for pts in groups:
        usable_curves(pts)
        where = root if len(groups) == 1 else root / _slug(pts.group_label)
        try:
            fits.append(fit_group(pts, opt, where, stem))
        except F.FitError as e:
            if len(groups) == 1:
                raise
            errors.append(f"{pts.group_label}: {e}")
            fits.append(GroupFit(pts, [FitResult(l, name=l, skipped=str(e)) for l in (opt.laws or ("chinchilla",))],
                                 where))
    if not any(r.path for g in fits for r in g.results):
        raise F.FitError("no law could be fitted: " + "; ".join(
            f"{g.points.group_label or stem} {r.law}: {r.skipped}" for g in fits for r in g.results))
    return fits


def comparison(fits: list[GroupFit], law: str = "chinchilla") -> list[dict]:
    """Side by side across spec groups: each group's law parameters (with intervals) and, on the
    loss-predicting law, the loss at the groups' common largest budget."""
    rows: list[dict[str, Any]] = []
    for g in fits:
        r = next((x for x in g.results if x.law == law and x.skipped is None), None)
        if r is None:
            r = next((x for x in g.results if x.skipped is None), None)
        if r is None:
            rows.append({"group": g.points.group_label, "skipped": "; ".join(x.skipped or "" for x in g.results)})
            continue
        rows.append({"group": g.points.group_label, "law": r.law, "n_points": r.n_points, "a": r.params.get("a"),
                     "a_interval": r.intervals.get("a"), "E": r.params.get("E"), "E_interval": r.intervals.get("E"),
                     "C_range": r.fitted_range.get("C"), "flags": len(r.flags), "path": r.path})
    return rows


def write_group_plots(fits: list[GroupFit], opt: Options) -> list[str]:
    """Each fitted group's plots in its output folder (none with plot="none"); the files written."""
    if opt.plot == "none":
        return []
    from .plots import write_plots

    out: list[str] = []
    for g in fits:
        if any(r.path for r in g.results):
            out += write_plots([r.to_dict() for r in g.results], g.points, g.out)
    return out


def terminal_plots(fits: list[GroupFit]) -> list[str]:
    """Each fitted group's main plot drawn as text."""
    from .plots import terminal_plot

    return [terminal_plot([r.to_dict() for r in g.results], g.points) for g in fits if any(r.path for r in g.results)]


def left_out_runs(fits: list[GroupFit]) -> list[dict]:
    """Every run left out (unfinished, diverged, unreadable, part of a curve damaged), each once."""
    seen, out = set(), []
    for g in fits:
        for x in g.points.left_out:
            if x["run"] != GROUP_NOTE and (x["run"], x["reason"]) not in seen:
                seen.add((x["run"], x["reason"]))
                out.append(x)
    return out


def group_notes(g: GroupFit) -> list[str]:
    """What a group's points have in common that a reader must know (evaluation floors that differ...)."""
    return [x["reason"] for x in g.points.left_out if x["run"] == GROUP_NOTE]


def report(fits: list[GroupFit], plots: list[str]) -> dict:
    """`llmhist fit --json`: the groups, each law's fit (without samples and residuals), what was left
    out, the plots, and the comparison across groups when there are several."""
    return {"groups": [{"group": g.points.group_label, "out": str(g.out), "budgets": g.points.budget_note,
                        "notes": group_notes(g), "left_out": g.points.left_out} for g in fits],
            "fits": [{k: v for k, v in r.to_dict().items() if k not in ("bootstrap_samples", "residuals", "left_out")}
                     for g in fits for r in g.results],
            "left_out": left_out_runs(fits), "plots": plots,
            "comparison": comparison(fits) if len(fits) > 1 else None}


__all__ = ["KNOWN", "PLOTS", "GroupFit", "Options", "comparison", "group_notes", "holdout_error", "left_out_runs",
           "output_folder", "report", "run_fits", "terminal_plots", "usable_curves", "write_group_plots"]
