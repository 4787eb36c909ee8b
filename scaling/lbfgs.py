"""L-BFGS run independently on every row of a batch of parameter vectors, in numpy: the engine of
Approach 3's 4,500-start fit and of its bootstrap refits (scaling.fit), where one scipy call per
start would cost minutes. The objective is any fg(X, rows) -> (F, G) over rows of the batch.
"""

from __future__ import annotations

import numpy as np


def batched_lbfgs(fg, X, iters=200, m=8, gtol=1e-10, ftol=1e-14):
    """L-BFGS run independently per row of X (two-loop recursion and Armijo backtracking per row).
    fg(X, rows) evaluates rows `rows` of the batch. Rows that blow up become non-finite, are never
    accepted, and drop out. Returns X, F and `capped`: rows still improving when `iters` ran out."""
    with np.errstate(all="ignore"):
        return _batched_lbfgs_raw(fg, X, iters, m, gtol, ftol)


def _batched_lbfgs_raw(fg, X, iters, m, gtol, ftol):
    tiny = float(np.finfo(X.dtype).tiny)
    X = X.copy()
    F, G = fg(X, np.arange(len(X)))
    hist: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    active = np.ones(len(X), bool)
    for it in range(iters):
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
            Ft, Gt = fg(Xt, todo)
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
        done = (np.abs(F - Fn) <= ftol * np.maximum(np.abs(F), tiny)) | (np.abs(Gn).max(1) < gtol)
        if it < 3:  # the first steps are deliberately short (no curvature yet): never stop on them
            done[:] = False
        X, F, G = Xn, Fn, Gn
        active &= ~done
        if not active.any():
            break
    return X, F, active
