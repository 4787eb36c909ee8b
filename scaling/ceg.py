"""Compute-equivalent gain (CEG): what a change is worth, as a multiplier on compute.

A variant has CEG k at budget C when the reference needs k C compute to reach the loss the variant
reaches at C (Ho et al. 2024; Gundlach et al. 2025; see the reference note ablation.md):
    CEG(C) = L_ref^-1(L_var(C)) / C.
Estimator, step by step:
1. Each variant's frontier point at each budget: its isoFLOP minimum, the vertex of a parabola of
   loss in log N when that vertex is interior and the parabola convex, else the lowest run ("lowest").
2. The reference's frontier L_ref(C) through those points, and its inverse: with >= 4 budgets a
   power law plus floor L = E + A C^-alpha ("powerlaw_floor"); otherwise a monotone interpolation
   of log L in log C (isotonic, then piecewise linear; the end segments extend it) ("interp").
   `method` says which was used.
3. CEG at each budget of the variant, and the slope of log CEG against log C (scale dependence).
4. Intervals by bootstrap. With seed noise measured (`seed_sd`: the standard deviation of one
   configuration's final loss over seeds, from repeated reference runs), a parametric bootstrap:
   each replicate re-draws every run's loss with noise of sd max(seed_sd, its budget's parabola
   residual sd), Student-t with the seeds' degrees of freedom (`seed_dof`; else Gaussian), and
   recomputes the minima, i.e. a plausible re-run of both sweeps (`redraw`).
   (Resampling the 4-5 runs of a budget with replacement instead leaves fewer than 3 distinct
   sizes a third of the time at 4 runs, and then the "minimum" is whichever runs were drawn: the
   interval measures the isoFLOP curve's depth, not noise.) Without seed noise, runs are resampled
   within each budget (the fallback, and the method says so). Percentiles give the interval.
   An interval that contains 1x is reported as "no gain detectable at this scale".
5. A variant loss outside the reference's observed frontier range needs the reference frontier
   extended beyond its data: that budget is flagged `extrapolated`.

Also `allocation_ceg(law, C)`: the CEG of compute-optimal allocation against Kaplan et al.'s
N_opt = 1.3e9 (C / PF-day)^0.73, from any law that predicts loss (published or fitted): a recipe
change that needs no training.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .points import FitError
from .points import group_exact as group_budgets  # nominal C per point (C within 5% is one budget)

LEVEL = 0.90  # two-sided interval: 5th to 95th percentile of the bootstrap


# ----------------------------------------------------------------------- frontier points
def _parabola(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Loss against log N, least squares: coefficients (c2, c1, c0); needs >= 3 distinct sizes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a poorly conditioned fit is still the best one
        return np.polyfit(lx, ly, 2)


def budget_minima(C, N, L, budget=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per budget: (budget C, frontier loss, how) with how = 'parabola' or 'lowest'."""
    C, N, L = (np.asarray(x, float) for x in (C, N, L))
    if budget is None:
        labels = group_budgets(C)
        keys = np.unique(labels)
        Cs = np.array([np.exp(np.log(C[labels == k]).mean()) for k in keys])
    else:
        budget = np.asarray(budget, float)
        keys = np.unique(budget)
        labels = budget
        Cs = keys
    Ls, how = [], []
    for k in keys:
        sel = labels == k
        lx, ly = np.log(N[sel]), L[sel]
        best = float(ly.min())
        if len(np.unique(lx)) >= 3:
            c2, c1, c0 = _parabola(lx, ly)
            if c2 > 0:
                xm = -c1 / (2 * c2)
                if lx.min() < xm < lx.max():
                    Ls.append(float(min(best, c0 + c1 * xm + c2 * xm * xm)))
                    how.append("parabola")
                    continue
        Ls.append(best)
        how.append("lowest")
    order = np.argsort(Cs)
    return Cs[order], np.array(Ls)[order], [how[i] for i in order]


# ----------------------------------------------------------------------- a frontier and its inverse
def _isotonic_decreasing(y: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the closest non-increasing sequence (least squares)."""
    blocks = [[float(v), 1] for v in y]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] < blocks[i + 1][0]:  # violation: a later value above an earlier one
            v = (blocks[i][0] * blocks[i][1] + blocks[i + 1][0] * blocks[i + 1][1]) / (blocks[i][1] + blocks[i + 1][1])
            blocks[i] = [v, blocks[i][1] + blocks[i + 1][1]]
            del blocks[i + 1]
            i = max(0, i - 1)
        else:
            i += 1
    return np.concatenate([np.full(int(n), v) for v, n in blocks])


def fit_powerlaw_floor(C, L) -> dict:
    """L = E + A C^-alpha by a grid over the floor E in [0, min L) and least squares in log-log."""
    lc, L = np.log(np.asarray(C, float)), np.asarray(L, float)
    E = np.linspace(0, float(L.min()) * 0.999, 400)[:, None]
    y = np.log(L[None, :] - E)  # one least-squares line in (log C, log(L - E)) per floor E
    xc = lc - lc.mean()
    slope = (y * xc).sum(1) / (xc * xc).sum()
    icpt = y.mean(1) - slope * lc.mean()
    sse = ((icpt[:, None] + slope[:, None] * lc[None, :] - y) ** 2).sum(1)
    sse = np.where(slope < 0, sse, np.inf)
    i = int(np.argmin(sse))
    if not np.isfinite(sse[i]):
        raise FitError("the reference's loss does not fall with compute at these budgets; "
                       "a power law cannot describe its frontier")
    best = (sse[i], float(E[i, 0]), float(-slope[i]), float(math.exp(icpt[i])))
    return {"E": best[1], "alpha": best[2], "A": best[3]}


def _exp(x: float) -> float:
    """exp that saturates: an extrapolated frontier reaches some losses only at a compute beyond
    any float (inf), or at none worth counting (0)."""
    return math.inf if x > 709 else math.exp(x)


class Frontier:
    """L(C) through per-budget frontier points; `inverse(L)` -> (C, extrapolated)."""

    def __init__(self, C, L, method: str = "auto"):
        C, L = np.asarray(C, float), np.asarray(L, float)
        if len(C) < 2:
            raise FitError(f"a frontier needs at least two budgets; got {len(C)}. Plan two or more --budgets")
        if method == "auto":
            method = "powerlaw_floor" if len(C) >= 4 else "interp"
        if method not in ("interp", "powerlaw_floor"):
            raise FitError(f"frontier method {method!r}: use auto, interp or powerlaw_floor")
        self.method, self.C, self.L = method, C, L
        self.L_range = (float(L.min()), float(L.max()))
        if method == "powerlaw_floor":
            self.params = fit_powerlaw_floor(C, L)
        else:
            self.params = {}
            self.lc, self.ll = np.log(C), np.log(_isotonic_decreasing(L))

    def __call__(self, C):
        C = np.asarray(C, float)
        if self.method == "powerlaw_floor":
            p = self.params
            return p["E"] + p["A"] * C ** -p["alpha"]
        x = np.log(C)
        y = np.interp(x, self.lc, self.ll)
        s0 = (self.ll[1] - self.ll[0]) / (self.lc[1] - self.lc[0])
        s1 = (self.ll[-1] - self.ll[-2]) / (self.lc[-1] - self.lc[-2])
        y = np.where(x < self.lc[0], self.ll[0] + s0 * (x - self.lc[0]), y)
        y = np.where(x > self.lc[-1], self.ll[-1] + s1 * (x - self.lc[-1]), y)
        return np.exp(y)

    def inverse(self, loss: float) -> tuple[float, bool]:
        """The compute at which the frontier reaches `loss` (inf if never, 0 if always)."""
        extrap = not (self.L_range[0] <= loss <= self.L_range[1])
        if self.method == "powerlaw_floor":
            p = self.params
            if loss <= p["E"]:
                return math.inf, True
            return _exp(math.log(p["A"] / (loss - p["E"])) / p["alpha"]), extrap
        t = math.log(loss)
        lc, ll = self.lc, self.ll
        if t > ll[0]:  # above the smallest budget's loss: extend the first segment down in C
            return self._extend(t, lc[0], ll[0], lc[1], ll[1]), True
        if t < ll[-1]:
            return self._extend(t, lc[-1], ll[-1], lc[-2], ll[-2]), True
        for i in range(len(lc) - 1):  # a segment holding t (ll is non-increasing)
            if ll[i] >= t >= ll[i + 1]:
                if ll[i] == ll[i + 1]:
                    return float(math.exp((lc[i] + lc[i + 1]) / 2)), extrap
                f = (ll[i] - t) / (ll[i] - ll[i + 1])
                return float(math.exp(lc[i] + f * (lc[i + 1] - lc[i]))), extrap
        return float(math.exp(lc[-1])), extrap  # pragma: no cover

    @staticmethod
    def _extend(t, x0, y0, x1, y1) -> float:
        s = (y1 - y0) / (x1 - x0)
        if s >= 0:  # flat end: the loss is reached never (below) or immediately (above)
            return math.inf if t < y0 else 0.0
        return _exp(x0 + (t - y0) / s)

    def to_dict(self) -> dict:
        return {"method": self.method, "C": self.C.tolist(), "L": self.L.tolist(), "params": self.params}


# ----------------------------------------------------------------------- CEG with intervals
def _as_points(p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    C, N, L = (np.asarray(p[k], float) for k in ("C", "N", "loss"))
    if not (len(C) == len(N) == len(L)) or len(C) == 0:
        raise FitError("points need C, N and loss of equal, non-zero length")
    b = np.asarray(p["budget"], float) if p.get("budget") is not None else None
    if b is None:
        labels = group_budgets(C)
        b = np.array([np.exp(np.log(C[labels == k]).mean()) for k in labels])
    return C, N, L, b


def _resample(b: np.ndarray, rng) -> np.ndarray:
    return np.concatenate([rng.choice(np.flatnonzero(b == g), (b == g).sum()) for g in np.unique(b)])


def redraw(p: tuple, sd: np.ndarray | None, rng, dof: int | None = None) -> tuple:
    """One bootstrap replicate of a sweep's points (C, N, loss, budget): with `sd` (per run, from
    run_noise) every run's loss re-drawn with that noise, Student-t with `dof` degrees of freedom
    or Gaussian; without, the runs resampled with replacement within each budget."""
    if sd is None:
        i = _resample(p[3], rng)
        return tuple(x[i] for x in p)
    e = rng.standard_t(dof, len(p[2])) if dof else rng.standard_normal(len(p[2]))
    return (p[0], p[1], p[2] + e * sd, p[3])


def _slope(C: np.ndarray, k: np.ndarray) -> float:
    ok = np.isfinite(k) & (k > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(C[ok]), np.log(k[ok]), 1)[0])


def _ceg_once(ref, var, method):
    Cr, Lr, _ = budget_minima(ref[0], ref[1], ref[2], ref[3])
    Cv, Lv, _ = budget_minima(var[0], var[1], var[2], var[3])
    if not ((Lr > 0).all() and (Lv > 0).all()):  # only a re-draw can do this (see ceg)
        raise FitError("a frontier loss at or below 0")
    fr = Frontier(Cr, Lr, method)
    inv = [fr.inverse(float(l)) for l in Lv]
    k = np.array([c / C if C > 0 else math.nan for (c, _), C in zip(inv, Cv)])
    return Cv, k, [e for _, e in inv], fr, Lv


def run_noise(p: tuple, seed_sd: float) -> np.ndarray:
    """Per run, the sd of its final loss: max(seed_sd, its budget's parabola residual sd), the latter
    where the budget has more runs than the parabola's 3 coefficients at >= 3 sizes (so a misfit of
    the parabola counts as noise too)."""
    _, N, L, b = p
    sd = np.full(len(L), float(seed_sd))
    for g in np.unique(b):
        sel = b == g
        lx, ly = np.log(N[sel]), L[sel]
        if sel.sum() >= 4 and len(np.unique(lx)) >= 3:
            r = ly - np.polyval(_parabola(lx, ly), lx)
            sd[sel] = np.maximum(sd[sel], math.sqrt(float((r * r).sum()) / (sel.sum() - 3)))
    return sd


def _bootstrap(R, V, Cv, sds: tuple, rng, seed_dof: int | None, n_boot: int, method: str) -> tuple[list, list, int]:
    """n_boot replicates of the CEG (R's draws first, then V's, each replicate), their slopes, and how
    many were dropped. A replicate that cannot be inverted is dropped and counted: a frontier loss <= 0
    (Student-t draws with 1-2 degrees of freedom, i.e. seed noise from 2-3 seeds, have tails that long)
    or a reference frontier that no longer falls with compute."""
    boots, slopes, dropped = [], [], 0
    for _ in range(n_boot):
        Rb, Vb = redraw(R, sds[0], rng, seed_dof), redraw(V, sds[1], rng, seed_dof)
        try:
            _, kb, _, _, _ = _ceg_once(Rb, Vb, method)
        except FitError:
            dropped += 1
            continue
        boots.append(kb)
        slopes.append(_slope(Cv, kb))
    return boots, slopes, dropped


def _budget_row(C: float, k: float, col: np.ndarray, q: tuple, loss_variant: float, extrapolated: bool) -> dict:
    """One budget's CEG, its percentile interval from the replicates `col`, and the verdict."""
    col = col[~np.isnan(col)]
    lo, hi = (np.percentile(col, q) if len(col) else (math.nan, math.nan))
    lo, hi = float(lo), float(hi)
    return {"C": float(C), "ceg": float(k), "interval": [lo, hi], "loss_variant": float(loss_variant),
            "extrapolated": bool(extrapolated), "detectable": bool(lo > 1 or hi < 1), "verdict": _verdict(k, lo, hi)}


def _interval_method(level: float, n_boot: int, seed_sd: float, seed_dof: int | None, sd_r, sd_v, dropped: int) -> str:
    """How the intervals were drawn, as the report prints it."""
    if sd_r is None or sd_v is None:
        return (f"{round(100 * level)}% bootstrap percentile, {n_boot} resamples of runs within budgets (seed noise "
                "not measured)")
    return (f"{round(100 * level)}% parametric bootstrap, {n_boot} re-draws of every run's loss "
            f"({f'Student-t, {seed_dof} dof' if seed_dof else 'Gaussian'}) with sd max(seed sd {seed_sd:.3g}, its "
            f"budget's parabola residual sd, {max(sd_r.max(), sd_v.max()):.3g} at most)"
            + (f"; {dropped} re-draws that no frontier inverts dropped" if dropped else ""))


def ceg(ref: dict, var: dict, seed_sd: float = 0.0, n_boot: int = 1000, level: float = LEVEL,
        method: str = "auto", seed: int = 0, seed_dof: int | None = None) -> dict:
    """CEG of `var` against `ref` at each of the variant's budgets, with bootstrap intervals.

    ref, var: {"C": [...], "N": [...], "loss": [...], "budget": [...] (optional planned budget per
    run; else runs are grouped by C within 5%)}. seed_sd: standard deviation of one run's final loss
    across seeds (0 = not measured: the interval then comes from resampling runs, and says so).
    seed_dof: its degrees of freedom (seeds - 1): the re-draws are then Student-t with that many, so an
    sd measured from a handful of seeds widens the interval as a t-interval would (None: Gaussian).
    """
    R, V = _as_points(ref), _as_points(var)
    if not (0 < level < 1):
        raise FitError(f"level {level}: give a fraction in (0, 1), e.g. 0.9")
    if seed_sd < 0 or not math.isfinite(seed_sd):
        raise FitError(f"seed_sd {seed_sd}: give a standard deviation >= 0")
    Cv, k, extrap, fr, Lv = _ceg_once(R, V, method)
    rng = np.random.default_rng(seed)
    if seed_dof is not None and seed_dof < 1:
        raise FitError(f"seed_dof {seed_dof}: the seed noise needs at least 2 seeds (1 degree of freedom)")
    sd_r, sd_v = (run_noise(R, seed_sd), run_noise(V, seed_sd)) if seed_sd else (None, None)
    boots, slopes, dropped = _bootstrap(R, V, Cv, (sd_r, sd_v), rng, seed_dof, n_boot, fr.method)
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    B = np.array(boots) if boots else np.full((1, len(Cv)), math.nan)
    rows = [_budget_row(C, k[i], B[:, i], q, Lv[i], extrap[i]) for i, C in enumerate(Cv)]
    sl = np.array([s for s in slopes if np.isfinite(s)])
    slope = _slope(Cv, k)
    slope_iv = [float(x) for x in np.percentile(sl, q)] if len(sl) else [math.nan, math.nan]
    return {
        "budgets": rows,
        "slope": slope if math.isfinite(slope) else None,
        "slope_interval": slope_iv if len(sl) else None,
        "scale_dependent": bool(len(sl) and (slope_iv[0] > 0 or slope_iv[1] < 0)),
        "method": {"frontier": fr.method, "points": "isoFLOP minimum per budget (parabola vertex in log N, "
                                                    "else the lowest run)",
                   "interval": _interval_method(level, n_boot, seed_sd, seed_dof, sd_r, sd_v, dropped)},
        "reference_frontier": fr.to_dict(),
        "seed_sd": seed_sd, "n_boot": len(boots), "n_dropped": dropped, "level": level,
    }


def _verdict(k, lo, hi) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)) and not (lo > 1 or hi < 1):
        return "no gain detectable at this scale"
    if lo <= 1 <= hi:
        return "no gain detectable at this scale"
    return f"{k:.3g}x" if k >= 1 else f"{k:.3g}x (a loss)"


def seed_noise(losses) -> float:
    """Standard deviation (n-1) of one configuration's final loss over seeds; needs >= 2."""
    x = np.asarray([v for v in losses if v is not None and math.isfinite(v)], float)
    if len(x) < 2:
        raise FitError(f"seed noise needs the same run with at least 2 seeds; got {len(x)}")
    return float(x.std(ddof=1))


def combine(cegs: list[dict]) -> list[list[float]]:
    """Cumulative product along a ladder, per budget (point estimates; intervals are not combined,
    the direct base -> end comparison carries its own)."""
    out = []
    run = None
    for c in cegs:
        ks = np.array([r["ceg"] for r in c["budgets"]])
        run = ks if run is None else run * ks
        out.append([float(x) for x in run])
    return out


# ----------------------------------------------------------------------- from a law: allocation
def optimal_loss(law, C: float) -> tuple[float, float]:
    """min over N of law.loss(N, C / 6N) -> (loss, N_opt), numerically (any law that predicts loss)."""
    lo, hi = math.log(max(1.0, C ** 0.5 * 1e-5)), math.log(C / 6)  # D >= 1 token
    xs = np.linspace(lo, hi, 400)
    ys = np.array([law.loss(math.exp(x), C / (6 * math.exp(x))) for x in xs])
    i = int(np.nanargmin(ys))
    a, b = xs[max(0, i - 1)], xs[min(len(xs) - 1, i + 1)]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # golden-section refinement
        c, d = b - g * (b - a), a + g * (b - a)
        if law.loss(math.exp(c), C / (6 * math.exp(c))) < law.loss(math.exp(d), C / (6 * math.exp(d))):
            b = d
        else:
            a = c
    x = (a + b) / 2
    return float(law.loss(math.exp(x), C / (6 * math.exp(x)))), float(math.exp(x))


def allocation_ceg(law, C: float, kaplan=None) -> dict:
    """CEG of compute-optimal allocation (under `law`) against Kaplan et al.'s allocation
    N = 1.3e9 (C / PF-day)^0.73, D = C / 6N, both scored by `law`: the compute Kaplan's allocation
    needs to reach the optimal loss at C, over C. Intervals from the law's bootstrap samples when
    it carries them (fitted Chinchilla-form laws)."""
    from . import laws as LW

    kaplan = kaplan or LW.PUBLISHED["kaplan2020"]
    if not (C > 0 and math.isfinite(C)):
        raise FitError(f"--flops {C}: give a positive budget")
    if law.kind == "power" or law.loss(1e6, 1e8) is None:
        raise FitError(f"{law.name}: a {law.kind} law says how to split a budget but predicts no loss; "
                       "use a Chinchilla- or Kaplan-form law (published, or `llmhist fit --law chinchilla`)")

    def one(lw) -> tuple[float, dict]:
        L_opt, N_opt = optimal_loss(lw, C)

        def L_k(c):
            n = kaplan.n_opt(c)
            return lw.loss(n, c / (6 * n))

        if L_k(C) <= L_opt:
            return 1.0, {"N_opt": N_opt, "loss_opt": L_opt, "N_kaplan": kaplan.n_opt(C), "loss_kaplan": L_k(C)}
        a, b = math.log(C), math.log(C) + math.log(1e12)
        if L_k(math.exp(b)) > L_opt:
            k = math.inf
        else:
            for _ in range(100):
                m = (a + b) / 2
                a, b = (m, b) if L_k(math.exp(m)) > L_opt else (a, m)
            k = math.exp((a + b) / 2) / C
        return k, {"N_opt": N_opt, "loss_opt": L_opt, "N_kaplan": kaplan.n_opt(C), "loss_kaplan": L_k(C)}

    k, detail = one(law)
    out = {"law": law.name, "C": C, "ceg": k, **detail, "interval": None,
           "note": "Kaplan's N counts non-embedding parameters; here it is scored by the law's own N convention "
                   f"({getattr(law, 'n_convention', 'total')})"}
    samples = getattr(law, "samples", ())
    if samples and law.kind == "chinchilla":
        from .laws import Chinchilla

        ks = []
        for row in samples[:200]:
            E, A, B, al, be = row[:5]
            try:
                ks.append(one(Chinchilla("sample", E, A, B, al, be))[0])
            except (OverflowError, ZeroDivisionError, ValueError):
                continue
        if ks:
            out["interval"] = [float(np.percentile(ks, 5)), float(np.percentile(ks, 95))]
    return out
