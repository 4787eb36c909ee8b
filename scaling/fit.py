"""Fitters: (N, D, loss) points in, law objects (scaling.laws) out, with what the optimiser said.

- chinchilla (Approach 3): L = E + A/N^alpha + B/D^beta, fitted in log space: minimise
  SUM_i Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log L_i), delta = 1e-3, by L-BFGS from
  the paper's 4,500-start grid (alpha, beta in 0..2 step 0.5; e in -1..1 step 0.5; a, b in 0..25 step 5).
  The starts run together as one batched L-BFGS (scaling.lbfgs) with analytic gradients; the best few are
  polished with scipy's L-BFGS-B. The SUM matters: with a mean, L-BFGS-B stops after 1-2 iterations.
  Bootstrap refits are one batched L-BFGS too: a resample is a vector of point weights (counts), every
  refit warm-starts from the full fit, iterations are capped and tolerances loose (1e-10 relative),
  and a refit that does not converge gets one capped scipy polish or is counted as failed.
- isoflop (Approach 2): per budget, a parabola of loss in log N fitted LOCALLY around the budget's
  sampled minimum (a window in decades or points); a budget with too few points, whose sampled
  minimum is at an edge, or whose vertex leaves the window is refused by name; then N_opt ~ C^a.
- envelope (Approach 1): the lower envelope of training curves over C, then the same power laws.
- kaplan: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (laws.kaplan_loss) by least squares
  on log L; its compute-efficient frontier along C = 6ND and N_opt ~ C^a from it.
Every fitter returns a `Fitted`: the law, the flags that say when it cannot be trusted, and extras.
"""

from __future__ import annotations

import math
import re
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np

from . import laws
from .lbfgs import batched_lbfgs
from .points import FitError, check_values

__all__ = ["FitError", "Fitted", "bootstrap", "fit_chinchilla", "fit_envelope", "fit_isoflop", "fit_kaplan"]

HUBER_DELTA = 1e-3
GRID_RANGE = {"a": (0.0, 25.0), "b": (0.0, 25.0), "e": (-1.0, 1.0), "alpha": (0.0, 2.0), "beta": (0.0, 2.0)}
MIN_SURVIVAL = 0.8  # below this share of surviving bootstrap refits, no interval is reported
# above this share of failed refits the interval is FLAGged: a rare failure (1 in 200: a resample
# that drew one budget's points only) is reported as a count, so that a FLAG keeps meaning "look"
MAX_QUIET_FAILURES = 0.05


LawT = TypeVar("LawT", laws.Chinchilla, laws.Kaplan, laws.PowerLaw)


@dataclass
class Fitted(Generic[LawT]):
    """A fitter's result: the law object, flags (each a sentence: why not to trust it), extras
    (isoFLOP minima and refused budgets, the envelope's frontier, the optimiser's state)."""

    law: LawT
    flags: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def law_rng(seed: int, law: str) -> np.random.Generator:
    """The random stream of one law's bootstrap: from the one seed and the law's name, so a law's
    intervals do not depend on which other laws ran before it."""
    return np.random.default_rng([int(seed), zlib.crc32(law.encode())])


def _points(N, D, L, need, what="points"):
    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    if not (len(N) == len(D) == len(L)):
        raise FitError("N, D and loss columns differ in length")
    check_values(N, D, L)
    if len(N) < need:
        raise FitError(f"too few {what}: {len(N)} (this fit needs at least {need})")
    return N, D, L


# ------------------------------------------------------------------------------ Approach 3
def _grid() -> np.ndarray:
    al = np.arange(0, 2.01, 0.5)
    e = np.arange(-1, 1.01, 0.5)
    ab = np.arange(0, 25.1, 5)
    g = np.stack(np.meshgrid(ab, ab, e, al, al, indexing="ij"), -1).reshape(-1, 5)
    return g  # columns: a, b, e, alpha, beta  (6 * 6 * 5 * 5 * 5 = 4,500 starts)


def _objective(X, x, y, logL, delta=HUBER_DELTA, w=None):
    """Summed Huber loss and gradient for a batch of parameter rows X (S, 5); w: point weights,
    (n,) or one row per parameter row (S, n)."""
    with np.errstate(over="ignore", invalid="ignore"):  # far-off starts overflow; they get inf and lose
        return _objective_raw(X, x, y, logL, delta, w)


def _objective_raw(X, x, y, logL, delta, w):
    # log L_hat = LSE(a - alpha log N, b - beta log D, e); written to keep temporaries few (this
    # runs on 4,500 x n arrays) and the reductions as matrix products.
    a, b, e, al, be = (X[:, i:i + 1] for i in range(5))
    t1 = a - al * x
    t2 = b - be * y
    m = np.maximum(np.maximum(t1, t2), e)
    t1 -= m
    t2 -= m
    e1, e2 = np.exp(t1, out=t1), np.exp(t2, out=t2)
    e3 = np.exp(e - m)
    s = e1 + e2
    s += e3
    r = np.log(s)
    r += m
    r -= logL
    dh = np.clip(r, -delta, delta)
    h = dh * (r - 0.5 * dh)  # Huber: r^2/2 inside |r| <= delta, delta (|r| - delta/2) outside
    if w is not None:
        h, dh = h * w, dh * w
    q = dh / s
    w1, w2, w3 = q * e1, q * e2, q * e3
    ones = np.ones(len(x), r.dtype)
    G = np.stack([w1 @ ones, w2 @ ones, w3 @ ones, -(w1 @ x), -(w2 @ y)], 1)
    return h @ ones, G


def _polish(x0, x, y, logL, w=None, strict=True):
    """scipy's L-BFGS-B from x0 -> (theta, objective, success, message). Strict for the full fit;
    loose and capped for bootstrap refits (1e-15 there made ill-conditioned data take minutes)."""
    from scipy.optimize import minimize

    def fg(p):
        f, g = _objective(p[None], x, y, logL, w=w)
        return f[0], g[0]

    opts = ({"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-11} if strict else {"maxiter": 300, "ftol": 1e-10, "gtol": 1e-9})
    res = minimize(fg, x0, jac=True, method="L-BFGS-B", options=opts)
    return res.x, float(res.fun), bool(res.success), str(res.message)


def _law_from_theta(th, name="fit", **kw) -> laws.Chinchilla:
    a, b, e, al, be = (float(v) for v in th)
    return laws.Chinchilla(name, E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=al, beta=be, **kw)


def chinchilla_flags(theta, L, polish_ok: bool, polish_msg: str) -> list[str]:
    """Sentences that say why an Approach-3 optimum should not be trusted."""
    flags = []
    E = math.exp(theta[2])
    if E < 0.02 * float(np.min(L)):
        flags.append(f"E fitted to ~0 (E = {E:.3g} against losses >= {np.min(L):.3g}): the data show no floor; "
                     "A, alpha and the allocation absorb it")
    for name, v in zip(("a", "b", "e", "alpha", "beta"), theta):
        lo, hi = GRID_RANGE[name]
        if v <= lo + 1e-6 or v >= hi - 1e-6:
            flags.append(f"{name} = {v:.4g} is at or beyond the edge of the start grid [{lo:g}, {hi:g}]: "
                         "the optimum may lie outside what the grid explores")
    if not polish_ok:
        flags.append(f"the final L-BFGS-B polish did not report success ({polish_msg})")
    return flags


@dataclass
class Optimum:
    """The Approach-3 optimiser's state beside the law: for warm-started refits and diagnostics."""

    theta: np.ndarray  # (a, b, e, alpha, beta)
    objective: float
    starts: int
    shortlist: list  # distinct optima, for warm-starting refits
    converged: bool
    message: str


def fit_chinchilla(N, D, L, starts: np.ndarray | None = None, keep: int = 4, name: str = "fit") -> Fitted[laws.Chinchilla]:
    N, D, L = _points(N, D, L, need=6)
    if len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
        raise FitError("the parametric law needs points at two or more model sizes and token counts")
    x, y, logL = np.log(N), np.log(D), np.log(L)
    X0 = _grid() if starts is None else starts
    # Every start takes 10 L-BFGS iterations (float32: ranking needs no more precision); the best
    # 256 continue to convergence in float64; the best `keep` are polished by scipy.
    x32, y32, l32 = x.astype(np.float32), y.astype(np.float32), logL.astype(np.float32)
    X, F, _ = batched_lbfgs(lambda X, rows: _objective(X, x32, y32, l32), X0.astype(np.float32), iters=10)
    F = np.where(np.isfinite(F), F, np.inf)
    lead = np.argsort(F)[:256]
    X, F, _ = batched_lbfgs(lambda X, rows: _objective(X, x, y, logL), X[lead].astype(float), iters=60)
    F = np.where(np.isfinite(F), F, np.inf)
    best, short = None, []
    for i in np.argsort(F)[:keep]:
        th, f, ok, msg = _polish(X[i], x, y, logL)
        short.append((f, th))
        if np.isfinite(f) and (best is None or f < best[1]):
            best = (th, f, ok, msg)
    if best is None:
        raise FitError("the Approach-3 fit did not converge from any of the starts")
    th, f, ok, msg = best
    # scipy stops on a line search that cannot improve at machine precision; that is convergence
    ok = ok or "ABNORMAL" in msg
    short.sort(key=lambda r: r[0])
    distinct: list = []
    for _f, t in short:
        if all(np.abs(t - o).max() > 1e-3 for o in distinct):
            distinct.append(t)
    al, be = th[3], th[4]
    if al <= 0 or be <= 0:
        raise FitError(f"the fit converged to a non-positive exponent (alpha={al:.3g}, beta={be:.3g}): the data "
                       "do not show loss falling with both N and D")
    opt = Optimum(th, f, len(X0), distinct[:2], ok, msg)
    return Fitted(_law_from_theta(th, name), chinchilla_flags(th, L, ok, msg), {"optimum": opt})


def bootstrap_chinchilla(N, D, L, fitted: Fitted, n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """n resamples of the points (as weights), refitted together from the full fit's optimum.
    Returns (rows of surviving (E, A, B, alpha, beta), report {requested, survived, failed})."""
    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    x, y, logL = np.log(N), np.log(D), np.log(L)
    opt: Optimum = fitted.extra["optimum"]
    W = np.stack([np.bincount(rng.integers(0, len(N), len(N)), minlength=len(N)) for _ in range(n)]).astype(float)
    X0 = np.repeat(opt.theta[None], n, 0)
    X, F, capped = batched_lbfgs(lambda X, rows: _objective(X, x, y, logL, w=W[rows]), X0, iters=150,
                                  gtol=1e-9, ftol=1e-10)
    failed: dict[str, int] = {}
    ok = np.isfinite(F) & np.isfinite(X).all(1)
    for i in np.flatnonzero(capped & ok):  # still improving at the cap: one capped scipy polish
        th, _f, success, msg = _polish(X[i], x, y, logL, w=W[i], strict=False)
        if success or "ABNORMAL" in msg:
            X[i] = th
        else:
            ok[i] = False
            failed["did not converge"] = failed.get("did not converge", 0) + 1
    failed["non-finite"] = int((~(np.isfinite(F) & np.isfinite(X).all(1))).sum())
    neg = ok & ((X[:, 3] <= 0) | (X[:, 4] <= 0))
    failed["non-positive exponent"] = int(neg.sum())
    ok &= ~neg
    th = X[ok]
    rows = np.c_[np.exp(th[:, 2]), np.exp(th[:, 0]), np.exp(th[:, 1]), th[:, 3], th[:, 4]]
    return rows, {"requested": n, "survived": int(ok.sum()), "failed": {k: v for k, v in failed.items() if v}}


def refit_chinchilla(N, D, L, warm: list[np.ndarray]) -> np.ndarray:
    """One refit from warm starts (the loose, capped polish): theta (a, b, e, alpha, beta)."""
    x, y, logL = np.log(N), np.log(D), np.log(L)
    return min((_polish(th, x, y, logL, strict=False) for th in warm), key=lambda r: r[1])[0]


# -------------------------------------------------------------------------- power laws on C
def power_law(C, Y) -> tuple[float, float]:
    """Least squares of log Y = log k + e log C -> (e, k)."""
    lc, ly = np.log(C), np.log(Y)
    e, logk = np.polyfit(lc, ly, 1)
    return float(e), float(math.exp(logk))


# ------------------------------------------------------------------------------ Approach 2
@dataclass(frozen=True)
class Window:
    """Which points of a budget the parabola sees: `decades` wide around the sampled minimum (in
    log10 N), at least `points` nearest points; or the whole range ("all")."""

    decades: float | None = 1.0
    points: int = 5

    @classmethod
    def parse(cls, text: str | None, min_points: int = 5) -> Window:
        t = (text or "1dec").strip().lower()
        if t == "all":
            return cls(None, min_points)
        m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*dec(?:ades?)?", t)
        if m and float(m.group(1)) > 0:
            return cls(float(m.group(1)), min_points)
        if t.isdigit() and int(t) >= 3:
            return cls(0.0, int(t))
        raise FitError(f"--window {text!r}: give decades of N around each budget's minimum (e.g. 1dec), a number "
                       "of points (>= 3, e.g. 7), or all")

    def describe(self) -> str:
        if self.decades is None:
            return "whole sampled range"
        if self.decades == 0:
            return f"{self.points} points nearest each budget's sampled minimum"
        return f"{self.decades:g} decade(s) of N around each budget's sampled minimum (at least {self.points} points)"


def _local(lx: np.ndarray, L: np.ndarray, win: Window) -> np.ndarray:
    """Indices of the points the parabola sees."""
    if win.decades is None:
        return np.arange(len(lx))
    i0 = int(np.argmin(L))
    dist = np.abs(lx - lx[i0]) / math.log(10)
    sel = np.flatnonzero(dist <= win.decades / 2)
    if len(sel) < win.points:
        sel = np.sort(np.argsort(dist, kind="stable")[:win.points])
    return sel


def isoflop_minima(N, D, L, budget=None, min_points: int = 5, window: Window = Window()):
    """Per budget: a local parabola of L in log N around the sampled minimum; its vertex.
    budget: nominal C per point (NaN: off every budget); None groups C within 5%.
    Returns (kept, refused) lists of dicts."""
    from .points import group_exact

    N, D, L = _points(N, D, L, need=3)
    C = 6 * N * D
    budget = group_exact(C) if budget is None else np.asarray(budget, float)
    kept, refused = [], []
    for Cg in np.unique(budget[np.isfinite(budget)]):
        sel = np.flatnonzero(budget == Cg)
        Cg = float(Cg)
        n_distinct = len(np.unique(N[sel]))
        if len(sel) < min_points or n_distinct < 3:
            refused.append({"C": Cg, "n_points": len(sel),
                            "reason": f"only {len(sel)} point(s) at {n_distinct} model size(s); at least {min_points} "
                                      "points (--min-points) at 3 or more sizes required"})
            continue
        order = sel[np.argsort(N[sel])]
        lx, Lg = np.log(N[order]), L[order]
        loc = _local(lx, Lg, window)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.RankWarning)
            c2, c1, c0 = np.polyfit(lx[loc], Lg[loc], 2)
        if c2 <= 0:
            refused.append({"C": Cg, "n_points": len(sel), "reason": "loss is not convex in log N at this budget"})
            continue
        xm = -c1 / (2 * c2)
        if not (lx[loc].min() < xm < lx[loc].max()):
            edge = "below the smallest" if xm <= lx[loc].min() else "above the largest"
            refused.append({"C": Cg, "n_points": len(sel),
                            "reason": f"no interior minimum: the parabola's vertex lies {edge} model it was fitted to"})
            continue
        Nopt = float(math.exp(xm))
        kept.append({"C": Cg, "N_opt": Nopt, "D_opt": Cg / (6 * Nopt), "loss_min": float(c0 + c1 * xm + c2 * xm * xm),
                     "parabola": [float(c2), float(c1), float(c0)], "n_points": len(sel),
                     "n_window": len(loc), "window_N": [float(math.exp(lx[loc].min())), float(math.exp(lx[loc].max()))]})
    return kept, refused


def fit_isoflop(N, D, L, budget=None, min_points: int = 5, window: Window = Window(), name: str = "fit") -> Fitted[laws.PowerLaw]:
    kept, refused = isoflop_minima(N, D, L, budget, min_points, window)
    if len(kept) < 2:
        names = "; ".join(f"C={r['C']:.3g}: {r['reason']}" for r in refused[:8]) or "none"
        more = f" (and {len(refused) - 8} more)" if len(refused) > 8 else ""
        raise FitError(f"Approach 2 needs at least two budgets with an interior minimum; got {len(kept)} "
                       f"(refused: {names}{more})")
    C = np.array([k["C"] for k in kept])
    a, kN = power_law(C, [k["N_opt"] for k in kept])
    b, kD = power_law(C, [k["D_opt"] for k in kept])
    flags = []
    if len(refused) > len(kept):
        flags.append(f"MOST BUDGETS WERE REFUSED: {len(refused)} of {len(kept) + len(refused)} (the exponent rests "
                     f"on {len(kept)} budgets); see the refused list, or give --budget-col / lower --min-points")
    if a <= 0 or b <= 0:
        flags.append(f"a non-positive exponent (a = {a:.3g}, b = {b:.3g})")
    law = laws.PowerLaw(name, a, kN, b, kD, method="isoflop")
    return Fitted(law, flags, {"minima": kept, "refused": refused, "window": window.describe()})


# ------------------------------------------------------------------------------ Approach 1
def unusable_rows(curve: dict) -> np.ndarray:
    """Mask of a training curve's rows the envelope cannot use: tokens or loss non-finite or not
    positive (a damaged metrics.csv)."""
    d, l = np.asarray(curve["D"], float), np.asarray(curve["loss"], float)
    return ~(np.isfinite(d) & np.isfinite(l) & (d > 0) & (l > 0))


def envelope(curves: list[dict], n_grid: int = 1500):
    """Lower envelope over C of training curves [{N, D: array, loss: array}] -> rows (C, N, D, loss)."""
    for c in curves:
        if not (math.isfinite(c["N"]) and c["N"] > 0) or unusable_rows(c).any():
            raise FitError(f"{c.get('run', 'a training curve')}: a non-positive or non-finite N, tokens or loss; "
                           "leave the run out or fix its metrics.csv")
    if len({c["N"] for c in curves}) < 2:
        raise FitError("Approach 1 needs training curves of at least two model sizes")
    cmin = min(6 * c["N"] * np.min(c["D"]) for c in curves)
    cmax = max(6 * c["N"] * np.max(c["D"]) for c in curves)
    grid = np.geomspace(cmin, cmax, n_grid)
    rows = []
    for Cg in grid:
        best = None
        for c in curves:
            Dg = Cg / (6 * c["N"])
            d = np.asarray(c["D"], float)
            if Dg < d.min() or Dg > d.max():
                continue
            lg = float(np.interp(math.log(Dg), np.log(d), np.asarray(c["loss"], float)))
            if best is None or lg < best[3]:
                best = (Cg, c["N"], Dg, lg)
        if best:
            rows.append(best)
    return np.array(rows)


def fit_envelope(curves: list[dict], name: str = "fit") -> Fitted[laws.PowerLaw]:
    rows = envelope(curves)
    if len(rows) < 2 or len(np.unique(rows[:, 1])) < 2:
        raise FitError("the envelope of the training curves spans fewer than two model sizes")
    a, kN = power_law(rows[:, 0], rows[:, 1])
    b, kD = power_law(rows[:, 0], rows[:, 2])
    flags = [] if a > 0 and b > 0 else [f"a non-positive exponent (a = {a:.3g}, b = {b:.3g})"]
    horizons = Counter(c["N"] for c in curves)
    if max(horizons.values()) < 2:
        # a cosine run's curve before its end is not a run of that length (its LR has not decayed), so
        # with one horizon per size the envelope favours small, long-trained models
        flags.append(f"one training horizon per model size ({len(horizons)} sizes): Approach 1 needs several "
                     "horizons per size (Chinchilla trained each with 4); expect a biased exponent, and use a "
                     "ladder (sweep --sizes ... --tokens-per-param 10,20,40) or WSD branches")
    return Fitted(laws.PowerLaw(name, a, kN, b, kD, method="envelope"), flags, {"frontier": rows})


# ----------------------------------------------------------------------------------- Kaplan
KAPLAN_BOUNDS = ([1e-3, 1e-3, 0.0, 0.0], [3.0, 3.0, 80.0, 80.0])  # alpha_N, alpha_D, log N_c, log D_c
KAPLAN_MIN_SPAN = 2.0  # the frontier's C range: at least this factor (a single budget gives a zero range)


def fit_kaplan(N, D, L, name: str = "fit") -> Fitted[laws.Kaplan]:
    from scipy.optimize import least_squares

    N, D, L = _points(N, D, L, need=5)
    if len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
        what = "model size" if len(np.unique(N)) < 2 else "token count"
        raise FitError(f"Kaplan's L(N, D) needs points at two or more model sizes and token counts; every row has "
                       f"the same {what}, so alpha_N/alpha_D is not determined")
    logL = np.log(L)

    def res(p):
        with np.errstate(all="ignore"):
            v = np.log(laws.kaplan_loss(N, D, p[0], p[1], np.exp(p[2]), np.exp(p[3]))) - logL
        return np.where(np.isfinite(v), v, 1e3)

    best = None
    for aN in (0.05, 0.1, 0.3):
        for aD in (0.05, 0.1, 0.3):
            for lNc in (15.0, 25.0, 35.0):
                for lDc in (15.0, 25.0, 35.0):
                    r = least_squares(res, [aN, aD, lNc, lDc], bounds=KAPLAN_BOUNDS)
                    if best is None or r.cost < best.cost:
                        best = r
    assert best is not None  # the start grid above is never empty
    aN, aD, lNc, lDc = (float(v) for v in best.x)
    flags = []
    for nm, v, lo, hi in zip(("alpha_N", "alpha_D", "log N_c", "log D_c"), best.x, *KAPLAN_BOUNDS):
        if v - lo <= 1e-6 * max(1.0, abs(lo)) or hi - v <= 1e-6 * max(1.0, abs(hi)):
            flags.append(f"{nm} = {v:.4g} is at its bound [{lo:g}, {hi:g}]")
    if not best.success:
        flags.append(f"least squares did not report success ({best.message})")
    law = laws.Kaplan(name, aN, aD, math.exp(lNc), math.exp(lDc), c_min_over_c=1.0, source="fitted",
                      loss_data="as fitted")
    cmin, cmax = float((6 * N * D).min()), float((6 * N * D).max())
    if cmax < KAPLAN_MIN_SPAN * cmin:  # one budget: the frontier's slope is read off L(N, D) around it
        flags.append(f"the points span C = {cmin:.3g}-{cmax:.3g} FLOPs (less than {KAPLAN_MIN_SPAN:g}x): N_opt's "
                     "exponent a is extrapolated from the fitted L(N, D), not measured across budgets")
        mid = math.sqrt(cmin * cmax)
        cmin, cmax = mid / KAPLAN_MIN_SPAN, mid * KAPLAN_MIN_SPAN
    fr = kaplan_frontier(law, cmin, cmax)
    if fr["a"] <= 0:
        flags.append(f"a non-positive N_opt exponent (a = {fr['a']:.3g}): the compute-optimal model shrinks as "
                     "compute grows, so no recommendation follows from this fit; fit points from several budgets")
    law = replace(law, n_opt_coef=fr["n_opt_coef"], a=fr["a"])
    return Fitted(law, flags, {"cost": float(best.cost)})


def kaplan_frontier(law: laws.Kaplan, cmin: float, cmax: float) -> dict:
    """Numerical minimum of Kaplan's L(N, D) along C = 6ND; power law N_opt = coef (C/PF-day)^a."""
    Cs = np.geomspace(cmin, cmax, 24)
    Ns = []
    for C in Cs:
        n = np.geomspace(1e2, C / 6 / 1e2, 4000)
        Ns.append(n[np.argmin(laws.kaplan_loss(n, C / (6 * n), law.alpha_N, law.alpha_D, law.N_c, law.D_c))])
    a, coef = power_law(Cs / laws.PF_DAY, Ns)
    return {"a": a, "n_opt_coef": coef}


# -------------------------------------------------------------------------------- bootstrap
def interval(values: np.ndarray, q=(10, 90)) -> list[float]:
    return [float(np.percentile(values, q[0])), float(np.percentile(values, q[1]))]


def bootstrap(refit, n: int, errors=(FitError,)) -> tuple[list, dict]:
    """n calls of refit() (each on its own resample) -> (list of results, report). A resample the
    method cannot fit is counted by reason, never dropped silently."""
    out: list = []
    failed: dict[str, int] = {}
    with warnings.catch_warnings():  # resamples repeat points: a parabola may be exact
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        for _ in range(n):
            try:
                out.append(refit())
            except errors as e:
                why = str(e).split(";")[0].split(" (")[0][:80]
                failed[why] = failed.get(why, 0) + 1
    return out, {"requested": n, "survived": len(out), "failed": failed}


def survival_flags(report: dict) -> tuple[bool, list[str]]:
    """(report intervals?, flags) from a bootstrap report."""
    n, k = report["requested"], report["survived"]
    if n == 0:
        return False, []
    if k < MIN_SURVIVAL * n:
        return False, [(f"bootstrap: only {k} of {n} resamples could be refitted (< {MIN_SURVIVAL:.0%}); no interval "
                        f"is reported (failures: {report['failed']})")]
    if n - k > MAX_QUIET_FAILURES * n:
        return True, [f"bootstrap: {k} of {n} resamples refitted; {n - k} failed ({report['failed']})"]
    return True, []  # a few failures: counted in the report (and the table's title), not a FLAG
