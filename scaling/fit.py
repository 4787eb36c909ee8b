"""Fitting scaling laws to (N, D, loss) points, with bootstrap uncertainty.

- chinchilla (Approach 3): L = E + A/N^alpha + B/D^beta, fitted in log space: minimise
  SUM_i Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log L_i), delta = 1e-3, by L-BFGS from
  the paper's 4,500-start grid (alpha, beta in 0..2 step 0.5; e in -1..1 step 0.5; a, b in 0..25 step 5).
  The starts run together as one batched L-BFGS in numpy with analytic gradients; the best few are
  polished with scipy's L-BFGS-B. (A loop of scipy minimisations with numerical gradients takes
  ~130 s on 2 cores.) The SUM matters: with a mean, L-BFGS-B stops after 1-2 iterations.
- isoflop (Approach 2): a parabola of loss in log N per compute budget; a budget whose minimum is
  not interior to its sampled N range is refused by name; then power laws N_opt ~ C^a, D_opt ~ C^b.
- envelope (Approach 1): the lower envelope of training curves over C, then the same power laws.
- kaplan: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D by least squares on log L; its
  compute-efficient frontier (minimum of L along C = 6ND) and N_opt ~ C^a from it.
Bootstrap: resample points (within budgets for isoflop, curves for envelope) with replacement,
refit, and report percentile intervals for every parameter and derived quantity.
"""

from __future__ import annotations

from llmhist.errors import UserError

import math
from dataclasses import dataclass, field

import numpy as np

HUBER_DELTA = 1e-3


class FitError(UserError, ValueError):
    """The data cannot support the fit; the message names the cause."""


# ------------------------------------------------------------------------------ Approach 3
def _grid() -> np.ndarray:
    al = np.arange(0, 2.01, 0.5)
    e = np.arange(-1, 1.01, 0.5)
    ab = np.arange(0, 25.1, 5)
    g = np.stack(np.meshgrid(ab, ab, e, al, al, indexing="ij"), -1).reshape(-1, 5)
    return g  # columns: a, b, e, alpha, beta  (6 * 6 * 5 * 5 * 5 = 4,500 starts)


def _objective(X: np.ndarray, x: np.ndarray, y: np.ndarray, logL: np.ndarray, delta=HUBER_DELTA, w=None):
    """Summed Huber loss and gradient for a batch of parameter rows X (S, 5)."""
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


def _batched_lbfgs(fg, X, iters=200, m=8, gtol=1e-10):
    """L-BFGS run independently per row of X (two-loop recursion and Armijo backtracking per row).
    Rows that blow up (far-off starts) become non-finite, are never accepted, and drop out."""
    with np.errstate(all="ignore"):
        return _batched_lbfgs_raw(fg, X, iters, m, gtol)


def _batched_lbfgs_raw(fg, X, iters, m, gtol):
    tiny = float(np.finfo(X.dtype).tiny)
    X = X.copy()
    F, G = fg(X)
    hist: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    active = np.ones(len(X), bool)
    for _ in range(iters):
        q = G.copy()
        alphas = []
        for s, yv, rho in reversed(hist):
            al = rho * (s * q).sum(1)
            q -= al[:, None] * yv
            alphas.append(al)
        if hist:
            s, yv, _ = hist[-1]
            gamma = (s * yv).sum(1) / np.maximum((yv * yv).sum(1), tiny)
            q *= np.where(gamma > 0, gamma, 1e-3)[:, None]
        else:
            q *= (1e-2 / np.maximum(np.linalg.norm(G, axis=1), tiny))[:, None]
        for (s, yv, rho), al in zip(hist, reversed(alphas)):
            be = rho * (yv * q).sum(1)
            q += s * (al - be)[:, None]
        d = -q
        bad = (d * G).sum(1) >= 0
        d[bad] = -G[bad] * 1e-3
        t = np.ones(len(X), X.dtype)  # keep the batch in its dtype (float32 screening)
        Xn, Fn, Gn = X.copy(), F.copy(), G.copy()
        todo = np.where(active)[0]
        slope = (d * G).sum(1)
        for _ls in range(30):
            if len(todo) == 0:
                break
            Xt = X[todo] + t[todo, None] * d[todo]
            Ft, Gt = fg(Xt)
            ok = np.isfinite(Ft) & (Ft <= F[todo] + 1e-4 * t[todo] * slope[todo])
            Xn[todo[ok]], Fn[todo[ok]], Gn[todo[ok]] = Xt[ok], Ft[ok], Gt[ok]
            t[todo[~ok]] *= 0.5
            todo = todo[~ok]
        if len(todo):  # no acceptable step: converged (or stuck) there
            active[todo] = False
        s, yv = Xn - X, Gn - G
        sy = (s * yv).sum(1)
        rho = np.where(sy > tiny, 1.0 / np.where(sy > tiny, sy, 1.0), 0.0)
        hist.append((s, yv, rho))
        if len(hist) > m:
            hist.pop(0)
        done = (np.abs(F - Fn) <= 1e-14 * np.maximum(1.0, np.abs(F))) | (np.abs(Gn).max(1) < gtol)
        X, F, G = Xn, Fn, Gn
        active &= ~done
        if not active.any():
            break
    return X, F


def _polish(x0, x, y, logL, w=None):
    from scipy.optimize import minimize

    def fg(p):
        f, g = _objective(p[None], x, y, logL, w=w)
        return f[0], g[0]

    res = minimize(fg, x0, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
    return res.x, res.fun


@dataclass
class ChinchillaFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    theta: np.ndarray  # (a, b, e, alpha, beta)
    starts: int = 4500
    shortlist: list = field(default_factory=list)  # distinct optima, for warm-starting refits

    def params(self) -> dict:
        a, b = self.beta / (self.alpha + self.beta), self.alpha / (self.alpha + self.beta)
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": a, "b": b}


def _check_points(N, D, L, need=5, what="points"):
    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    if not (len(N) == len(D) == len(L)):
        raise FitError("N, D and loss columns differ in length")
    for name, v in (("N", N), ("D", D), ("loss", L)):
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitError(f"{bad.sum()} row(s) have a non-positive or non-finite {name} (first: row {i}, value {v[i]}); "
                           "fix or drop them")
    if len(N) < need:
        raise FitError(f"too few {what}: {len(N)} (this fit needs at least {need})")
    return N, D, L


def fit_chinchilla(N, D, L, starts: np.ndarray | None = None, keep: int = 8) -> ChinchillaFit:
    N, D, L = _check_points(N, D, L, need=6)
    if len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
        raise FitError("the parametric law needs points at two or more model sizes and token counts")
    x, y, logL = np.log(N), np.log(D), np.log(L)
    X0 = _grid() if starts is None else starts
    fg = lambda X: _objective(X, x, y, logL)  # noqa: E731
    # Every start takes 10 L-BFGS iterations; the best 256 continue to convergence (starts far
    # behind after 10 iterations sit in worse basins: on Chinchilla's points this finds the same
    # optimum as running all 4,500 to the end, at a quarter of the time); the best `keep` are polished.
    # The screening runs in float32 (half the time of the exp/log over 4,500 x n; ranking starts
    # needs no more precision); the survivors continue in float64.
    x32, y32, l32 = x.astype(np.float32), y.astype(np.float32), logL.astype(np.float32)
    fg32 = lambda X: _objective(X, x32, y32, l32)  # noqa: E731
    X, F = _batched_lbfgs(fg32, X0.astype(np.float32), iters=10)
    F = np.where(np.isfinite(F), F, np.inf)
    lead = np.argsort(F)[:256]
    X, F = _batched_lbfgs(fg, X[lead].astype(float), iters=60)
    F = np.where(np.isfinite(F), F, np.inf)
    order = np.argsort(F)[:keep]
    best_theta, best_f, short = None, math.inf, []
    for i in order:
        th, f = _polish(X[i], x, y, logL)
        short.append((f, th))
        if f < best_f:
            best_theta, best_f = th, f
    if best_theta is None or not np.isfinite(best_f):
        raise FitError("the Approach-3 fit did not converge from any of the starts")
    short.sort(key=lambda r: r[0])
    distinct = []
    for f, th in short:
        if all(np.abs(th - o).max() > 1e-3 for o in distinct):
            distinct.append(th)
    a, b, e, al, be = best_theta
    if al <= 0 or be <= 0:
        raise FitError(f"the fit converged to a non-positive exponent (alpha={al:.3g}, beta={be:.3g}): the data "
                       "do not show loss falling with both N and D")
    return ChinchillaFit(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=al, beta=be, objective=best_f,
                         theta=best_theta, starts=len(X0), shortlist=distinct[:2])


def refit_chinchilla(N, D, L, warm: list[np.ndarray]) -> np.ndarray:
    x, y, logL = np.log(N), np.log(D), np.log(L)
    best = min((_polish(th, x, y, logL) for th in warm), key=lambda r: r[1])
    return best[0]


# -------------------------------------------------------------------------- power laws on C
def power_law(C, Y) -> tuple[float, float]:
    """Least squares of log Y = log k + e log C -> (e, k)."""
    lc, ly = np.log(C), np.log(Y)
    e, logk = np.polyfit(lc, ly, 1)
    return float(e), float(math.exp(logk))


# ------------------------------------------------------------------------------ Approach 2
def group_budgets(C: np.ndarray, rel_tol: float = 0.05) -> np.ndarray:
    """Label points by compute budget: C values within rel_tol (in log) belong to one budget."""
    order = np.argsort(C)
    labels = np.empty(len(C), int)
    cur, ref = -1, None
    for i in order:
        if ref is None or abs(math.log(C[i] / ref)) > rel_tol:
            cur, ref = cur + 1, C[i]
        labels[i] = cur
    return labels


def isoflop_minima(N, D, L, budget=None):
    """Per budget: parabola of L in log N; its interior minimum. Returns (kept, refused)."""
    N, D, L = _check_points(N, D, L, need=3)
    C = 6 * N * D
    labels = group_budgets(C) if budget is None else np.unique(np.asarray(budget), return_inverse=True)[1]
    kept, refused = [], []
    for g in np.unique(labels):
        sel = labels == g
        Cg = float(np.exp(np.log(C[sel]).mean()))
        if sel.sum() < 3:
            refused.append({"C": Cg, "reason": f"only {sel.sum()} point(s); a parabola needs 3"})
            continue
        lx = np.log(N[sel])
        c2, c1, c0 = np.polyfit(lx, L[sel], 2)
        if c2 <= 0:
            refused.append({"C": Cg, "reason": "loss is not convex in log N at this budget"})
            continue
        xm = -c1 / (2 * c2)
        if not (lx.min() < xm < lx.max()):
            edge = "smallest" if xm <= lx.min() else "largest"
            refused.append({"C": Cg, "reason": f"minimum at or beyond the {edge} model sampled (no interior optimum)"})
            continue
        Nopt = float(math.exp(xm))
        kept.append({"C": Cg, "N_opt": Nopt, "D_opt": Cg / (6 * Nopt), "loss_min": float(c0 + c1 * xm + c2 * xm * xm),
                     "parabola": [float(c2), float(c1), float(c0)], "n_points": int(sel.sum())})
    return kept, refused


def fit_isoflop(N, D, L, budget=None) -> dict:
    kept, refused = isoflop_minima(N, D, L, budget)
    if len(kept) < 2:
        names = "; ".join(f"C={r['C']:.3g}: {r['reason']}" for r in refused) or "none"
        raise FitError(f"Approach 2 needs at least two budgets with an interior minimum; got {len(kept)} "
                       f"(refused: {names})")
    C = np.array([k["C"] for k in kept])
    a, kN = power_law(C, [k["N_opt"] for k in kept])
    b, kD = power_law(C, [k["D_opt"] for k in kept])
    return {"a": a, "k_N": kN, "b": b, "k_D": kD, "minima": kept, "refused": refused}


# ------------------------------------------------------------------------------ Approach 1
def envelope(curves: list[dict], n_grid: int = 1500):
    """Lower envelope over C of training curves [{N, D: array, loss: array}] -> rows (C, N, D, loss)."""
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


def fit_envelope(curves: list[dict]) -> dict:
    rows = envelope(curves)
    if len(rows) < 2 or len(np.unique(rows[:, 1])) < 2:
        raise FitError("the envelope of the training curves spans fewer than two model sizes")
    a, kN = power_law(rows[:, 0], rows[:, 1])
    b, kD = power_law(rows[:, 0], rows[:, 2])
    return {"a": a, "k_N": kN, "b": b, "k_D": kD, "frontier": rows}


# ----------------------------------------------------------------------------------- Kaplan
def kaplan_loss(p, N, D):
    aN, aD, lNc, lDc = p
    return ((np.exp(lNc) / N) ** (aN / aD) + np.exp(lDc) / D) ** aD


def fit_kaplan(N, D, L) -> dict:
    from scipy.optimize import least_squares

    N, D, L = _check_points(N, D, L, need=5)
    logL = np.log(L)

    def res(p):
        with np.errstate(all="ignore"):
            v = np.log(kaplan_loss(p, N, D)) - logL
        return np.where(np.isfinite(v), v, 1e3)

    best = None
    for aN in (0.05, 0.1, 0.3):
        for aD in (0.05, 0.1, 0.3):
            for lNc in (15.0, 25.0, 35.0):
                for lDc in (15.0, 25.0, 35.0):
                    r = least_squares(res, [aN, aD, lNc, lDc], bounds=([1e-3, 1e-3, 0, 0], [3, 3, 80, 80]))
                    if best is None or r.cost < best.cost:
                        best = r
    aN, aD, lNc, lDc = best.x
    out = {"alpha_N": float(aN), "alpha_D": float(aD), "N_c": float(math.exp(lNc)), "D_c": float(math.exp(lDc)),
           "cost": float(best.cost)}
    out.update(kaplan_frontier(out, float((6 * N * D).min()), float((6 * N * D).max())))
    return out


def kaplan_frontier(p: dict, cmin: float, cmax: float) -> dict:
    """Numerical minimum of the Kaplan L(N, D) along C = 6ND; power law N_opt = coef (C/PF-day)^a."""
    from .laws import PF_DAY

    Cs = np.geomspace(cmin, cmax, 24)
    Ns = []
    for C in Cs:
        n = np.geomspace(1e2, C / 6 / 1e2, 4000)
        l = ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / (C / (6 * n))) ** p["alpha_D"]
        Ns.append(n[np.argmin(l)])
    a, coef = power_law(Cs / PF_DAY, Ns)
    return {"a": a, "n_opt_coef": coef}
