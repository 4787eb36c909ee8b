"""An ablation's analysis: each variant's frontier (isoFLOP minima with a band), the CEG of every
comparison with intervals (llmhist.scaling.ceg), the cumulative product along a ladder, the CEG of
compute-optimal allocation from published laws, and the fits written as JSON. It reads the runs
through the run folder's one reader (llmhist.train.runstate.run_state) and the plan through
llmhist.train.ablate.load; the plots are llmhist.scaling.ablation_plots.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..core.files import write_json
from ..train import runfolder as rf
from ..train.ablate import AblationError, load
from ..train.runstate import run_state
from .points import FitError


# ----------------------------------------------------------------------- the report
def _outcome(run_dir: Path) -> tuple[float | None, rf.Summary | None, str | None]:
    """(final validation loss, summary record, None) of a finished run, or (None, None, why it is left out)."""
    st = run_state(run_dir)
    if st.state != "finished" or st.summary is None:
        why = {"diverged": "diverged", "failed": st.error}.get(st.state) or "unfinished (no summary.json)"
        return None, None, why
    L = st.summary.val_loss
    if L is None or not math.isfinite(L):
        return None, None, "no finite val_loss"
    return float(L), st.summary, None


def _read_points(folder: Path, plan_doc: dict) -> tuple[dict, dict, list]:
    """Per variant its frontier runs' (C, N, loss, budget), the seed repeats' losses, and the runs left out."""
    pts: dict[str, dict] = {}
    seeds: dict[str, dict] = {}
    left: list[dict] = []
    for v in plan_doc["variants"]:
        P: dict[str, list[float]] = {"C": [], "N": [], "loss": [], "budget": []}
        for r in v["runs"]:
            L, s, why = _outcome(folder / r["name"])
            if L is None or s is None:
                left.append({"run": r["name"], "reason": why})
                continue
            if r["role"] == "seed_repeat":
                seeds.setdefault(r["repeat_of"], {"variant": v["id"], "losses": []})["losses"].append(L)
                continue
            P["C"].append(float(r["budget"] if s.C is None else s.C))
            P["N"].append(float(r["N"] if s.N is None else s.N))
            P["loss"].append(L)
            P["budget"].append(float(r["budget"]))
            if any(x.get("repeat_of") == r["name"] for x in v["runs"]):
                seeds.setdefault(r["name"], {"variant": v["id"], "losses": []})["losses"].append(L)
        pts[v["id"]] = P
    return pts, seeds, left


def frontier_band(P: dict, n_boot: int = 200, seed_sd: float = 0.0, rng_seed: int = 0, seed_dof: int | None = None
                  ) -> dict:
    """A variant's frontier points and a 90% band, drawn as the CEG intervals are
    (llmhist.scaling.ceg.ceg): with seed noise measured, every run's loss re-drawn with sd
    max(seed sd, its budget's parabola residual sd); without, runs resampled within budgets."""
    import numpy as np

    from .ceg import budget_minima, redraw, run_noise

    p = tuple(np.asarray(P[k], float) for k in ("C", "N", "loss", "budget"))
    if len(np.unique(p[3])) < 2:
        raise FitError(f"finished runs at {len(np.unique(p[3]))} budget(s); a frontier needs two")
    Cb, Lb, how = budget_minima(*p)
    rng = np.random.default_rng(rng_seed)
    sd = run_noise(p, seed_sd) if seed_sd else None
    minima = [budget_minima(*redraw(p, sd, rng, seed_dof))[1] for _ in range(n_boot)]
    samples = [m for m in minima if (m > 0).all()]  # as the CEG's bootstrap drops them (scaling.ceg.ceg)
    if not samples:
        raise FitError(f"every one of {n_boot} re-draws gave a frontier loss <= 0: seed noise {seed_sd:.3g} over "
                       f"{seed_dof} degree(s) of freedom is too wide to draw a band; run more seeds (--seeds)")
    reps = np.array(samples)
    return {"C": Cb.tolist(), "loss": Lb.tolist(), "how": how, "edge": grid_edges(p, how),
            "band": [np.percentile(reps, 5, 0).tolist(), np.percentile(reps, 95, 0).tolist()]}


def grid_edges(p: tuple, how: list[str]) -> list[str | None]:
    """Per budget (in budget order): "smallest" / "largest" where the frontier is the lowest run and
    that run is the grid's smallest or largest model (the grid does not bracket the minimum: the
    frontier loss there is an upper bound), else None (first-hour W9)."""
    import numpy as np

    C, N, L, budget = p
    out: list[str | None] = []
    for b, h in zip(np.unique(budget), how):
        sel = budget == b
        n_best = N[sel][int(np.argmin(L[sel]))]
        edge = "smallest" if n_best == N[sel].min() else "largest" if n_best == N[sel].max() else None
        out.append(edge if h == "lowest" else None)
    return out


def _spec_groups(folder: Path, doc: dict) -> list[dict]:
    """The runs of one variant must share one spec (scaling.runs.spec_key, as `llmhist fit` groups
    them); a variant whose runs span several is reported."""
    from .runs import spec_key

    warn = []
    for v in doc["variants"]:
        keys = set()
        for r in v["runs"]:
            try:
                keys.add(spec_key(rf.read_config(folder / r["name"]))[0])
            except (OSError, rf.RunError, KeyError, TypeError, ValueError):
                continue
        if len(keys) > 1:
            warn.append({"run": v["id"], "reason": f"warning: its runs span {len(keys)} specs (spec_key)"})
    return warn


def _check_started(folder: Path, doc: dict, pts: dict) -> None:
    """Refuse a report while some variant has no finished run at all (reliability F10): there is
    nothing to compare it with yet, and the same command finishes it."""
    empty = [v for v in doc["variants"] if not pts[v["id"]]["loss"]]
    if empty:
        said = "; ".join(f"{v['id']} has no finished runs yet (0 of {len(v['runs'])})" for v in empty)
        raise AblationError(f"{folder}: {said}; run the same command to finish them (`llmhist sweep status "
                            f"{folder}` shows where each run stands)")


def allocation_rows(budgets, laws_=("hoffmann2022", "epoch2024")) -> list[dict]:
    """CEG of compute-optimal allocation against Kaplan's at each budget, per law (no training)."""
    from . import laws as LW
    from .ceg import allocation_ceg

    rows = []
    for name in laws_:
        try:
            law = LW.get(name)
        except KeyError as e:
            raise AblationError(f"--law {name!r}: {e.args[0]}") from None
        except ValueError as e:
            raise AblationError(f"--law {name!r}: {e}") from None
        # first-hour W6: a law far outside the runs it was fitted on says so at each budget (the range check
        # laws.allocation_warning where it exists, else the fitted-range check every law has)
        check = getattr(LW, "allocation_warning", None) or (lambda lw, C: lw.extrapolation(C))
        rows.append({"law": law.name, "budgets": [{**allocation_ceg(law, C), "warning": check(law, C)}
                                                  for C in budgets]})
    return rows


def report(folder: str | Path, n_boot: int = 1000, level: float = 0.9, method: str = "auto",
           out: str | Path | None = None, seed: int = 0, laws=("hoffmann2022", "epoch2024")) -> dict:
    """Read a finished (or partly finished) ablation folder, fit each variant's frontier, compute the
    CEG of every comparison with intervals, the cumulative product along a ladder, and write the
    fits as JSON into OUT/fits (or `out`)."""
    from . import ceg as G

    folder = Path(folder)
    doc = load(folder)
    pts, seeds, left = _read_points(folder, doc)
    _check_started(folder, doc, pts)
    left += _spec_groups(folder, doc)
    seed_rows = [s for s in seeds.values() if len(s["losses"]) >= 2]
    seed_sd = G.seed_noise(seed_rows[0]["losses"]) if seed_rows else 0.0
    seed_dof = len(seed_rows[0]["losses"]) - 1 if seed_rows else None
    fits = Path(out) if out else folder / "fits"
    frontiers, paths = {}, []
    for v in doc["variants"]:
        P = pts[v["id"]]
        try:
            fb = frontier_band(P, 200, seed_sd, seed, seed_dof)
        except (FitError, ValueError) as e:
            frontiers[v["id"]] = {"error": str(e)}
            continue
        frontiers[v["id"]] = fb
        fj = {"law": "frontier", "variant": v["id"], "label": v["label"], "changes": v["changes"],
              "method": "isoFLOP minimum per budget (parabola vertex in log N, else the lowest run); band: 90% "
                        "bootstrap, every run's loss re-drawn with its noise (as the CEG intervals)", "points": fb, "data": str(folder),
              "n_points": len(P["loss"]), "conventions": {"N": "total", "C": "6ND, planned budget",
                                                          "loss": "final validation loss (nats/token)"}}
        p = fits / f"{v['id']}-frontier.json"
        write_json(p, fj)
        paths.append(str(p))
    rows = []
    for comp in doc["comparisons"]:
        row = {**comp}
        try:
            r = G.ceg(pts[comp["reference"]], pts[comp["variant"]], seed_sd=seed_sd, n_boot=n_boot, level=level,
                      method=method, seed=seed, seed_dof=seed_dof)
            row.update(r)
        except (FitError, ValueError) as e:
            row["error"] = str(e)
        rows.append(row)
    ladder = [r for r in rows if not r.get("total")] if doc["mode"] == "ladder" else []
    if ladder and all("budgets" in r for r in ladder):
        for r, cum in zip(ladder, G.combine(ladder)):
            r["cumulative"] = cum
    result = {"folder": str(folder), "base": doc["base"], "target": doc["target"], "mode": doc["mode"],
              "changes": doc["changes"], "comparisons": rows, "frontiers": frontiers, "seed_sd": seed_sd,
              "seed_runs": seed_rows, "left_out": left, "convention": doc["convention"],
              "budgets": doc["budgets"], "allocation": allocation_rows(doc["budgets"], laws) if laws else []}
    p = fits / "ablation-ceg.json"
    write_json(p, result)
    paths.append(str(p))
    result["paths"] = paths
    return result
