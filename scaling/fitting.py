"""`llmhist fit` as a library function: load points (a table or a runs folder), fit each law,
bootstrap, measure held-out error when asked, save one JSON per law."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from . import fit as F
from .io import load_runs, load_table, save_fit

KNOWN = ("chinchilla", "isoflop", "kaplan", "envelope")


def _intervals(samples: np.ndarray, names, q=(10, 90)) -> dict:
    return {n: [float(np.percentile(samples[:, i], q[0])), float(np.percentile(samples[:, i], q[1]))]
            for i, n in enumerate(names)}


POWER_PARAMS = ("a", "k_N", "b", "k_D")  # N_opt = k_N C^a, D_opt = k_D C^b (Approaches 1 and 2)
POWER_SAMPLE = ("a", "b", "k_N", "k_D")  # column order of saved samples, which laws.load reads


def _bootstrap_power(r: dict, n: int, refit, errors) -> None:
    """Intervals and samples of a power-law fit from n refits on resampled data; a resample the
    method cannot fit (e.g. a budget left without an interior minimum) is skipped."""
    samples = []
    for _ in range(n):
        try:
            s = refit()
        except errors:
            continue
        samples.append([s[k] for k in POWER_SAMPLE])
    if samples:
        r["intervals"] = _intervals(np.array(samples), POWER_SAMPLE)
        r["bootstrap_samples"] = samples


def load_points(source, n_col="N", d_col=None, c_col=None, loss_col="loss", n_convention="total",
                c_convention="6ND", loss="final") -> dict:
    if Path(source).is_dir():
        return load_runs(source, n_convention, c_convention, loss)
    pts = load_table(source, n_col, d_col, c_col, loss_col)
    pts.update(curves=[], left_out=[])
    return pts


def holdout_error(N, D, L, frac: float) -> dict:
    """Fit Approach 3 without the largest-compute `frac` of the points, predict them: the error of
    extrapolating in compute, the use a scaling law is for."""
    C = 6 * N * D
    k = max(1, int(round(frac * len(N))))
    order = np.argsort(C)
    train, test = order[:-k], order[-k:]
    f = F.fit_chinchilla(N[train], D[train], L[train])
    pred = f.E + f.A / N[test] ** f.alpha + f.B / D[test] ** f.beta
    err = pred - L[test]
    return {"held_out_points": int(k), "held_out_C_min": float(C[test].min()),
            "mae_loss": float(np.abs(err).mean()), "rmse_log_loss": float(np.sqrt(np.mean(np.log(pred / L[test]) ** 2))),
            "max_abs_error": float(np.abs(err).max())}


def run_fits(source, laws=None, bootstrap=200, n_col="N", d_col=None, c_col=None, loss_col="loss",
             n_convention="total", c_convention="6ND", loss="final", seed=0, out="fits",
             holdout: float = 0.0) -> list[dict]:
    pts = load_points(source, n_col, d_col, c_col, loss_col, n_convention, c_convention, loss)
    N, D, L = pts["N"], pts["D"], pts["loss"]
    unknown = [l for l in (laws or []) if l not in KNOWN]
    if unknown:
        raise ValueError(f"unknown --law {unknown[0]!r}; one of {', '.join(KNOWN)}")
    if "envelope" in (laws or []) and not pts["curves"]:
        raise ValueError("--law envelope needs training curves: give a runs folder, not a table")
    if not 0 <= holdout < 0.5:
        raise ValueError(f"--holdout {holdout}: give a fraction of points in [0, 0.5)")
    rng = np.random.default_rng(seed)
    conventions = {"N": n_convention, "C": c_convention, "loss": loss if pts["curves"] else "as given"}
    stem = Path(source).name if Path(source).is_dir() else Path(source).stem
    base = {"data": pts["source"], "data_fingerprint": pts["fingerprint"], "conventions": conventions,
            "n_points": int(len(N)), "bootstrap": bootstrap, "seed": seed, "left_out": pts["left_out"]}
    results = []
    explicit = bool(laws)
    wanted = list(laws or [l for l in KNOWN if l != "envelope" or pts["curves"]])

    def attempt(name, fn):
        try:
            r = fn()
        except F.FitError as e:
            if explicit:  # asked for by name: say why not
                raise
            r = {**base, "law": name, "skipped": str(e)}
        results.append(r)

    if "chinchilla" in wanted:
        def chin():
            f = F.fit_chinchilla(N, D, L)
            r = {**base, "law": "chinchilla", "params": f.params(),
                 "method": {"loss": "summed Huber on log L", "delta": F.HUBER_DELTA, "starts": f.starts}}
            pred = np.log(f.E + f.A / N**f.alpha + f.B / D**f.beta)
            r["goodness"] = {"rmse_log_loss": float(np.sqrt(np.mean((pred - np.log(L)) ** 2))),
                             "huber_sum": f.objective}
            r["residuals"] = (np.log(L) - pred).tolist()
            if holdout:
                r["held_out"] = holdout_error(N, D, L, holdout)
            r["intervals"] = {}
            if bootstrap:
                th = np.array([F.refit_chinchilla(N[i], D[i], L[i], f.shortlist)
                               for i in (rng.integers(0, len(N), len(N)) for _ in range(bootstrap))])
                rows = np.c_[np.exp(th[:, 2]), np.exp(th[:, 0]), np.exp(th[:, 1]), th[:, 3], th[:, 4]]
                a, b = rows[:, 4] / (rows[:, 3] + rows[:, 4]), rows[:, 3] / (rows[:, 3] + rows[:, 4])
                r["intervals"] = _intervals(np.c_[rows, a, b], ["E", "A", "B", "alpha", "beta", "a", "b"])
                r["bootstrap_samples"] = rows.tolist()
            return r
        attempt("chinchilla", chin)
    if "isoflop" in wanted:
        def iso():
            fit = F.fit_isoflop(N, D, L)
            r = {**base, "law": "isoflop", "params": {k: fit[k] for k in POWER_PARAMS},
                 "minima": fit["minima"], "refused": fit["refused"], "intervals": {}}
            labels = F.group_budgets(6 * N * D)

            def refit():  # resample within each budget, so every budget keeps its points
                idx = np.concatenate([rng.choice(np.flatnonzero(labels == g), (labels == g).sum())
                                      for g in np.unique(labels)])
                with warnings.catch_warnings():  # resamples repeat points: a parabola may be exact
                    warnings.simplefilter("ignore", np.exceptions.RankWarning)
                    return F.fit_isoflop(N[idx], D[idx], L[idx])

            _bootstrap_power(r, bootstrap, refit, (F.FitError, np.linalg.LinAlgError))
            return r
        attempt("isoflop", iso)
    if "envelope" in wanted:
        def env():
            e = F.fit_envelope(pts["curves"])
            r = {**base, "law": "envelope", "params": {k: e[k] for k in POWER_PARAMS},
                 "frontier": e["frontier"][:: max(1, len(e["frontier"]) // 200)].tolist(), "intervals": {}}
            curves = pts["curves"]
            _bootstrap_power(r, bootstrap, lambda: F.fit_envelope(
                [curves[i] for i in rng.integers(0, len(curves), len(curves))]), F.FitError)
            return r
        attempt("envelope", env)
    if "kaplan" in wanted:
        attempt("kaplan", lambda: {**base, "law": "kaplan", "params": F.fit_kaplan(N, D, L), "intervals": {}})
    for r in results:
        if "skipped" in r:
            continue
        r["path"] = str(Path(out) / f"{stem}-{r['law']}.json")
        save_fit(r["path"], r)
    if not any("path" in r for r in results):
        raise F.FitError("no law could be fitted: " + "; ".join(f"{r['law']}: {r['skipped']}" for r in results))
    return results, pts
