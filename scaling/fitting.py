"""`llmhist fit` as a library function: load points, fit each law, bootstrap, save JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import fit as F
from .io import load_table, save_fit

KNOWN = ("chinchilla", "isoflop", "kaplan")


def _intervals(samples: np.ndarray, names, q=(10, 90)) -> dict:
    return {n: [float(np.percentile(samples[:, i], q[0])), float(np.percentile(samples[:, i], q[1]))]
            for i, n in enumerate(names)}


def run_fits(source, laws=None, bootstrap=200, n_col="N", d_col=None, c_col=None, loss_col="loss",
             n_convention="total", seed=0, out="fits") -> list[dict]:
    pts = load_table(source, n_col, d_col, c_col, loss_col)
    N, D, L = pts["N"], pts["D"], pts["loss"]
    unknown = [l for l in (laws or []) if l not in KNOWN]
    if unknown:
        raise ValueError(f"unknown --law {unknown[0]!r}; one of {', '.join(KNOWN)} (envelope needs training curves from runs/)")
    rng = np.random.default_rng(seed)
    conventions = {"N": n_convention, "C": "6ND", "loss": "as given"}
    base = {"data": pts["source"], "data_fingerprint": pts["fingerprint"], "conventions": conventions,
            "n_points": int(len(N)), "bootstrap": bootstrap, "seed": seed}
    results, wanted = [], list(laws or KNOWN)
    if "chinchilla" in wanted:
        f = F.fit_chinchilla(N, D, L)
        p = f.params()
        r = {**base, "law": "chinchilla", "params": p,
             "method": {"loss": "summed Huber on log L", "delta": F.HUBER_DELTA, "starts": f.starts}}
        pred = np.log(f.E + f.A / N**f.alpha + f.B / D**f.beta)
        r["goodness"] = {"rmse_log_loss": float(np.sqrt(np.mean((pred - np.log(L)) ** 2))), "huber_sum": f.objective}
        if bootstrap:
            th = np.array([F.refit_chinchilla(N[i], D[i], L[i], f.shortlist)
                           for i in (rng.integers(0, len(N), len(N)) for _ in range(bootstrap))])
            rows = np.c_[np.exp(th[:, 2]), np.exp(th[:, 0]), np.exp(th[:, 1]), th[:, 3], th[:, 4]]
            a, b = rows[:, 4] / (rows[:, 3] + rows[:, 4]), rows[:, 3] / (rows[:, 3] + rows[:, 4])
            r["intervals"] = _intervals(np.c_[rows, a, b], ["E", "A", "B", "alpha", "beta", "a", "b"])
            r["bootstrap_samples"] = rows.tolist()
        else:
            r["intervals"] = {}
        results.append(r)
    if "isoflop" in wanted:
        try:
            iso = F.fit_isoflop(N, D, L)
        except F.FitError:
            if laws:  # asked for by name: say why not
                raise
            iso = None
        if iso:
            r = {**base, "law": "isoflop", "params": {"a": iso["a"], "k_N": iso["k_N"], "b": iso["b"], "k_D": iso["k_D"]},
                 "minima": iso["minima"], "refused": iso["refused"], "intervals": {}}
            if bootstrap:
                C = 6 * N * D
                labels = F.group_budgets(C)
                samples = []
                for _ in range(bootstrap):
                    idx = np.concatenate([rng.choice(np.flatnonzero(labels == g), (labels == g).sum())
                                          for g in np.unique(labels)])
                    try:
                        s = F.fit_isoflop(N[idx], D[idx], L[idx])
                        samples.append([s["a"], s["b"]])
                    except F.FitError:
                        continue
                if samples:
                    r["intervals"] = _intervals(np.array(samples), ["a", "b"])
            results.append(r)
    if "kaplan" in wanted:
        k = F.fit_kaplan(N, D, L)
        results.append({**base, "law": "kaplan", "params": k, "intervals": {},
                        "conventions": {**conventions, "N": n_convention}})
    for r in results:
        r["path"] = str(Path(out) / f"{Path(source).stem}-{r['law']}.json")
        save_fit(r["path"], r)
    return results
