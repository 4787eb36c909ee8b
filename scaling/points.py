"""The points a fit reads, loaded once: N, D, C, loss, budget label, group and conventions.

`load(source, conventions, columns)` returns a list of `Points` (one per spec group for a runs
folder, one for a table). Budgets for Approach 2 are a sweep's nominal budgets (each run's
run.json names its own), a table's budget column, or else found by snapping C to the values it
clusters around (foreign folders, digitised or off-grid tables), see `assign_budgets`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import UserError


class FitError(UserError, ValueError):
    """Data that cannot support a fit, or cannot be read as fit points; the message names the cause."""


N_CONVENTIONS = {"auto": None, "total": "N", "non_embedding": "N_non_embedding", "active": "N_active"}
C_CONVENTIONS = ("6ND", "counted")
LOSS_CONVENTIONS = {"final": "val_loss", "smoothed": "train_loss_smoothed"}


@dataclass(frozen=True)
class Conventions:
    """What N, C and loss mean in a fit; validated once, recorded in every fit file.
    N: total, non_embedding, active, or auto (total for dense runs, active for MoE runs so that
    6ND is the compute actually spent); C: 6ND or the counted FLOPs (runs); loss: final validation
    loss or the smoothed training loss (runs)."""

    N: str = "auto"
    C: str = "6ND"
    loss: str = "final"

    def __post_init__(self):
        if self.N not in N_CONVENTIONS:
            raise FitError(f"--n-convention {self.N!r}: one of {', '.join(N_CONVENTIONS)}")
        if self.C not in C_CONVENTIONS:
            raise FitError(f"--c-convention {self.C!r}: one of {', '.join(C_CONVENTIONS)}")
        if self.loss not in LOSS_CONVENTIONS:
            raise FitError(f"--loss {self.loss!r}: one of {', '.join(LOSS_CONVENTIONS)}")

    def to_dict(self) -> dict:
        return {"N": self.N, "C": self.C, "loss": self.loss}


@dataclass(frozen=True)
class Columns:
    """Which table columns hold N, D or C, loss, and (optionally) the nominal budget."""

    n: str = "N"
    d: str | None = None
    c: str | None = None
    loss: str = "loss"
    budget: str | None = None


@dataclass
class Points:
    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    source: str
    fingerprint: str
    conventions: dict  # as applied (N "auto" resolved)
    budget: np.ndarray | None = None  # nominal C per point (NaN: off every budget), or None
    budget_note: str = ""  # how budgets were found (column / snapped / exact)
    group_key: str = ""
    group_label: str = ""
    curves: list = field(default_factory=list)
    left_out: list = field(default_factory=list)
    entropy: float | None = None  # the data's true entropy (nats/token) when known (synthetic sources)
    # entropy_eval (last field): the exact floor of the evaluated validation tokens (mean -log p_true
    # over exactly the tokens the final evaluation scores; summary.json's entropy_eval_nats_per_token)
    objective: str = "causal_lm"
    n_rows: int = 0
    entropy_eval: float | None = None

    @property
    def C(self) -> np.ndarray:
        return 6 * self.N * self.D

    def select(self, idx) -> Points:
        """The same points object restricted to (or resampled by) index array idx."""
        b = None if self.budget is None else self.budget[idx]
        return Points(self.N[idx], self.D[idx], self.loss[idx], self.source, self.fingerprint, self.conventions,
                      b, self.budget_note, self.group_key, self.group_label, self.curves, self.left_out,
                      self.entropy, self.objective, len(np.atleast_1d(idx)), self.entropy_eval)

    def fitted_range(self) -> dict:
        C = self.C
        return {"C": [float(C.min()), float(C.max())], "N": [float(self.N.min()), float(self.N.max())],
                "D": [float(self.D.min()), float(self.D.max())]}


# ------------------------------------------------------------------------------------ budgets
def group_exact(C: np.ndarray, rel_tol: float = 0.05) -> np.ndarray:
    """Nominal C per point by the old rule: C within rel_tol (in log) of the first C of its group."""
    order = np.argsort(C)
    out = np.empty(len(C))
    ref: float | None = None
    members: list[int] = []
    for i in order:
        if ref is None or abs(math.log(C[i] / ref)) > rel_tol:
            if members:
                out[members] = np.exp(np.log(C[members]).mean())
            ref, members = C[i], []
        members.append(i)
    if members:
        out[members] = np.exp(np.log(C[members]).mean())
    return out


def snap_budgets(C: np.ndarray, tol_dex: float = 0.05, min_points: int = 5) -> np.ndarray:
    """Nominal budgets where C values cluster: repeatedly take the window of +-tol_dex (log10) that
    holds the most unassigned points; if it holds at least min_points, they form one budget (its
    nominal C the median, to 2 significant digits), unless they spread evenly over the window
    (median distance from the centre above 0.4 tol: scattered runs). Points in no budget get NaN
    (off-budget: used by Approaches 1 and 3, not 2)."""
    lc = np.log10(C)
    out = np.full(len(C), np.nan)
    free = np.ones(len(C), bool)
    while free.sum() >= min_points:
        cand = lc[free]
        counts = np.array([(np.abs(cand - c) <= tol_dex).sum() for c in cand])
        best = int(np.argmax(counts))
        if counts[best] < min_points:
            break
        centre = cand[best]
        # recentre on the members' median, then take the members again
        members = free & (np.abs(lc - centre) <= tol_dex)
        centre = float(np.median(lc[members]))
        members = free & (np.abs(lc - centre) <= tol_dex)
        if np.median(np.abs(lc[members] - centre)) > 0.4 * tol_dex:
            # spread evenly over the window, not piled on one value: scattered runs, not a budget
            free[np.flatnonzero(free)[best]] = False
            continue
        nominal = float(f"{10 ** centre:.2g}")
        out[members] = nominal
        free &= ~members
    return out


def assign_budgets(C: np.ndarray, budget_col: np.ndarray | None = None, min_points: int = 5) -> tuple[np.ndarray, str]:
    """Nominal budget per point and a sentence saying how they were found."""
    if budget_col is not None:
        return budget_col.astype(float), f"budgets from the budget column: {len(np.unique(budget_col))} values"
    exact = group_exact(C)
    n_exact = len(np.unique(exact))
    sizes = np.unique(exact, return_counts=True)[1]
    if sizes[sizes >= 3].sum() >= 0.8 * len(C):  # the values already sit on budgets
        return exact, f"{n_exact} budgets (C values within 5%)"
    snapped = snap_budgets(C, min_points=min_points)
    n_snap = len(np.unique(snapped[np.isfinite(snapped)]))
    off = int((~np.isfinite(snapped)).sum())
    return snapped, (f"C values do not sit on budgets ({n_exact} groups within 5%, {int((sizes >= min_points).sum())} "
                     f"with >= {min_points} points): snapped to {n_snap} nominal budgets where C clusters "
                     f"(+-0.05 decade); {off} of {len(C)} points lie off every budget (not used by Approach 2)")


# -------------------------------------------------------------------------------------- tables
def load_table(path: str | Path, columns: Columns = Columns(), conventions: Conventions = Conventions(),
               min_points: int = 5) -> Points:
    """Points from a CSV or Parquet table: N, and D or C (D = C / 6N), loss, optionally a budget column."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FitError(f"{path}: no such file")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise FitError(f"{path}: cannot read as a table ({e})") from e
    cols = list(df.columns)

    def col(name, flag, check=True):
        if name not in df.columns:
            raise FitError(f"{path}: no column {name!r} (columns: {', '.join(map(str, cols))}); set it with {flag}")
        v = pd.to_numeric(df[name], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(v) | (v <= 0)
        if check and bad.any():  # named as the user sees the file: line 1 is the header
            i = int(np.flatnonzero(bad)[0])
            at = f"line {i + 2}" if path.suffix.lower() not in (".parquet", ".pq") else f"row {i + 1}"
            raise FitError(f"{path}: {int(bad.sum())} row(s) have a non-positive or non-finite {name} (first: {at}, "
                           f"`{df[name].iloc[i]}`); fix or drop them")
        return v

    N, L = col(columns.n, "--n-col"), col(columns.loss, "--loss-col")
    if columns.d:
        D = col(columns.d, "--d-col")
    elif columns.c:
        D = col(columns.c, "--c-col") / (6 * N)
    elif "D" in df.columns:
        D = col("D", "--d-col")
    elif "C" in df.columns:
        D = col("C", "--c-col") / (6 * N)
    else:
        raise FitError(f"{path}: need a tokens column (--d-col) or a compute column (--c-col); "
                        f"columns: {', '.join(map(str, cols))}")
    bcol = col(columns.budget, "--budget-col", check=False) if columns.budget else None
    if bcol is not None and (~np.isfinite(bcol) | (bcol <= 0)).any():
        i = int(np.flatnonzero(~np.isfinite(bcol) | (bcol <= 0))[0])
        raise FitError(f"{path}: --budget-col {columns.budget!r} has a non-positive or missing value (row {i})")
    check_values(N, D, L, where=str(path))
    budget, note = assign_budgets(6 * N * D, bcol, min_points)
    fp = hashlib.sha256(np.stack([N, D, L]).tobytes()).hexdigest()[:16]
    # a table's N is taken as total parameters unless --n-convention says otherwise
    conv = conventions.to_dict() | {"N": "total" if conventions.N == "auto" else conventions.N, "loss": "as given"}
    return Points(N, D, L, str(path), fp, conv, budget=budget, budget_note=note, n_rows=len(df))


def check_values(N, D, L, where="points"):
    for name, v in (("N", N), ("D", D), ("loss", L)):
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitError(f"{where}: {bad.sum()} row(s) have a non-positive or non-finite {name} "
                            f"(first: row {i}, value {v[i]}); fix or drop them")


# ---------------------------------------------------------------------------------- run folders
def _run_budget(run: Path) -> float:
    """The nominal isoFLOP budget the run's request names (a sweep's or an ablation's plan), NaN
    when it names none (a foreign folder, `llmhist train`, an older sweep)."""
    from ..train import runfolder as rf

    try:
        budget = rf.read_request(run).budget
    except (rf.RunError, OSError):
        return np.nan
    return np.nan if budget is None else float(budget)


def _read_run(run: Path, conventions: Conventions) -> tuple[dict | None, str | None]:
    """One finished causal-LM run's values ({N, D, loss, cfg, summary, n_conv}) or why it is left out
    (the run folder's one reader says where it stands; a damaged file is named)."""
    from ..train import runfolder as rf
    from ..train.runstate import run_state

    st = run_state(run)
    if st.state != "finished" or st.summary is None:
        return None, {"diverged": "diverged", "failed": st.error}.get(st.state) or "unfinished (no summary.json)"
    s = st.summary
    try:
        cfg = rf.read_config(run)
    except (rf.RunError, OSError) as e:
        return None, str(e)
    objective = s.objective or (cfg.get("recipe") or {}).get("objective") or "causal_lm"
    if objective != "causal_lm":
        return None, (f"objective {objective} (loss per target token of another task; fit such runs from their "
                      "own folder)")
    moe = bool((cfg.get("arch") or {}).get("moe"))
    n_conv = conventions.N if conventions.N != "auto" else ("active" if moe else "total")
    L = getattr(s, LOSS_CONVENTIONS[conventions.loss])
    N = getattr(s, N_CONVENTIONS[n_conv] or "N")
    for what, v in ((LOSS_CONVENTIONS[conventions.loss], L), (N_CONVENTIONS[n_conv] or "N", N), ("D", s.D)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0):
            return None, f"{run / rf.SUMMARY}: {what} is {v!r}, not a positive finite number"
    if L is None:
        return None, f"no finite {LOSS_CONVENTIONS[conventions.loss]}"
    need = "C_counted" if conventions.C == "counted" else "D"
    if N is None or s.D is None or getattr(s, need) is None:
        return None, f"{run / rf.SUMMARY}: no {N_CONVENTIONS[n_conv] if N is None else need}; not a summary llmhist wrote"
    D = float(s.D) if conventions.C == "6ND" else float(s.C_counted or 0.0) / (6 * float(N))
    return {"N": float(N), "D": D, "loss": float(L), "cfg": cfg, "summary": s, "n_conv": n_conv}, None


def _add_run(g: dict, run: Path, r: dict) -> None:
    """A run's point, data facts, nominal budget and training curve into its spec group."""
    from ..train.runfolder import check_metrics

    s, N, D = r["summary"], r["N"], r["D"]
    g["rows"].append((N, D, r["loss"]))
    g["fps"].add(s.data_fingerprint or "")
    g["n_conv"].add(r["n_conv"])
    g["ent"].add(None if s.entropy_nats_per_token is None else round(float(s.entropy_nats_per_token), 9))
    ent_eval = s.entropy_eval_nats_per_token
    g["ent_eval"].add(None if ent_eval is None else round(float(ent_eval), 9))
    g["budget"].append(_run_budget(run))
    scale = D / float(s.D)  # 1 for 6ND; counted / 6ND otherwise
    rows, problem = check_metrics(run / "metrics.csv")
    if problem:  # the final point stands (summary.json); the curve Approach 1 reads is damaged: say so
        g["notes"].append({"run": str(run), "reason": f"note: its training curve is damaged ({problem}); "
                           f"{'the readable rows are' if rows else 'no row is'} used by the envelope fit"})
    curve = [(m["tokens"] * scale, m["val_loss"]) for m in rows if m.get("val_loss") is not None]
    if len(curve) >= 2:
        g["curves"].append({"run": str(run), "N": N, "D": np.array([c[0] for c in curve]),
                            "loss": np.array([c[1] for c in curve])})


def _group_points(folder: Path, key: str, g: dict, label: str, left_out: list, conventions: Conventions,
                  min_points: int) -> Points:
    """One spec group's Points: budgets nominal where every run's request names one, else clustered."""
    arr = np.array(g["rows"])
    fps = sorted(g["fps"])
    lo = list(left_out) + g["notes"]
    if len(fps) > 1:
        lo.append({"run": "(all)", "reason": f"warning: runs span {len(fps)} data fingerprints"})
    fp = hashlib.sha256(arr.tobytes() + "".join(fps).encode()).hexdigest()[:16]
    ents = g["ent"] - {None}
    entropy = ents.pop() if len(ents) == 1 and None not in g["ent"] else None
    # one floor when every run scored the same tokens (same data, ctx and validation windows)
    floors = g["ent_eval"] - {None}
    entropy_eval = floors.pop() if entropy is not None and len(floors) == 1 and None not in g["ent_eval"] else None
    if entropy is not None and entropy_eval is None:
        lo.append({"run": "(all)", "reason": "note: the runs' evaluation floors differ or are missing (runs "
                   "with other --ctx or validation windows, or from before the floor was recorded); E is "
                   "compared with the entropy rate H"})
    C = 6 * arr[:, 0] * arr[:, 1]
    b = np.array(g["budget"])
    budget, note = assign_budgets(C, b if np.isfinite(b).all() else None, min_points)
    if np.isfinite(b).all():
        note = f"{len(np.unique(b))} budgets (the plan's nominal budgets, from each run's run.json)"
    conv = conventions.to_dict() | {"N": "/".join(sorted(g["n_conv"]))}
    return Points(arr[:, 0], arr[:, 1], arr[:, 2], str(folder), fp, conv, budget=budget, budget_note=note,
                  group_key=key, group_label=label, curves=g["curves"], left_out=lo, entropy=entropy,
                  n_rows=len(arr), entropy_eval=entropy_eval)


def load_runs(folder: str | Path, conventions: Conventions = Conventions(), min_points: int = 5) -> list[Points]:
    """Points (and training curves) from every run folder below `folder`, at any depth, one
    `Points` per spec group (scaling.runs.spec_key) and data (summary.json's data_fingerprint): runs
    of different architectures, recipes or data never share a law. Diverged, unfinished and
    unreadable runs (a damaged or wrong-shaped summary.json or config.json, a value that is not a
    positive number: each named, with the reason) are left out and listed, and so are runs of another
    objective than causal LM (T5's span corruption: its loss is per target token of another task).
    N follows the convention (auto: total for dense, active for MoE); with C "counted", D is
    replaced by C_counted / 6N so that 6ND equals the counted FLOPs. Budgets are the nominal ones
    of each run's request (a sweep's plan), clustered from C only where a run names none."""
    from .runs import spec_key

    folder = Path(folder)
    if not folder.exists():
        raise FitError(f"{folder}: no such folder")
    groups: dict[str, dict] = {}
    left_out: list[dict] = []
    for cfg_path in sorted(folder.rglob("config.json")):
        run = cfg_path.parent
        if (run / "plan.json").exists():
            continue  # a sweep folder's own config, not a run
        r, why = _read_run(run, conventions)
        if r is None:
            left_out.append({"run": str(run), "reason": why})
            continue
        key, label = spec_key(r["cfg"])
        # runs on different data never share a law either (W4): the data is part of the group
        data_fp = str(r["summary"].data_fingerprint or "")
        key = hashlib.sha256(f"{key}|{data_fp}".encode()).hexdigest()[:12] if data_fp else key
        data = str((r["cfg"].get("train") or {}).get("data") or data_fp[:8] or "?")
        _add_run(groups.setdefault(key, {"label": label, "rows": [], "curves": [], "fps": set(), "ent": set(),
                                         "ent_eval": set(), "n_conv": set(), "budget": [], "notes": [],
                                         "data": data}), run, r)
    if not groups:
        why = "; ".join(f"{Path(x['run']).name}: {x['reason']}" for x in left_out[:5])
        raise FitError(f"{folder}: no finished runs to fit" + (f" (left out: {why})" if why else
                        " (no run folders found; run `llmhist train` or `llmhist sweep`)"))
    on_several_data = {g["label"] for g in groups.values() for h in groups.values()
                       if h["label"] == g["label"] and h["data"] != g["data"]}
    for g in groups.values():  # one spec on several data: the data names the group
        if g["label"] in on_several_data:
            g["label"] = f"{g['label']} on {g['data']}"
    labels = [g["label"] for g in groups.values()]
    return [_group_points(folder, key, g, g["label"] if labels.count(g["label"]) == 1 else f"{g['label']}-{key[:6]}",
                          left_out, conventions, min_points) for key, g in groups.items()]


def load(source, conventions: Conventions = Conventions(), columns: Columns = Columns(), min_points: int = 5) -> list[Points]:
    """Points from a runs folder (one per spec group) or a table (one)."""
    if Path(source).is_dir():
        return load_runs(source, conventions, min_points)
    return [load_table(source, columns, conventions, min_points)]


def save_fit(path: str | Path, doc: dict) -> None:
    from ..core.files import write_json

    write_json(path, doc)
