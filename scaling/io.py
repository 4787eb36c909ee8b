"""Reading (N, D, loss) points and writing fit files atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from llmhist.files import write_json


def load_table(path: str | Path, n_col="N", d_col=None, c_col=None, loss_col="loss") -> dict:
    """Points from a CSV or Parquet table: N, and D or C (D = C / 6N), and loss."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; runs folders are read once `llmhist train` writes them (give a CSV/Parquet table)")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise ValueError(f"{path}: cannot read as a table ({e})") from e
    cols = list(df.columns)

    def col(name, flag):
        if name not in df.columns:
            raise ValueError(f"{path}: no column {name!r} (columns: {', '.join(map(str, cols))}); set it with {flag}")
        return pd.to_numeric(df[name], errors="coerce").to_numpy(float)

    N, L = col(n_col, "--n-col"), col(loss_col, "--loss-col")
    if d_col:
        D = col(d_col, "--d-col")
    elif c_col:
        D = col(c_col, "--c-col") / (6 * N)
    elif "D" in df.columns:
        D = col("D", "--d-col")
    elif "C" in df.columns:
        D = col("C", "--c-col") / (6 * N)
    else:
        raise ValueError(f"{path}: need a tokens column (--d-col) or a compute column (--c-col); columns: {', '.join(map(str, cols))}")
    fp = hashlib.sha256(np.stack([N, D, L]).tobytes()).hexdigest()[:16]
    return {"N": N, "D": D, "loss": L, "source": str(path), "fingerprint": fp, "n_rows": len(df)}


def save_fit(path: str | Path, fit: dict) -> None:
    write_json(path, fit)


N_CONVENTIONS = {"total": "N", "non_embedding": "N_non_embedding", "active": "N_active"}
C_CONVENTIONS = ("6ND", "counted")
LOSS_CONVENTIONS = {"final": "val_loss", "smoothed": "train_loss_smoothed"}


def load_runs(folder: str | Path, n_convention="total", c_convention="6ND", loss="final") -> dict:
    """Points (and training curves) from every run folder below `folder`, at any depth.

    Finished runs are used; diverged, unfinished and unreadable runs are left out and listed.
    N follows n_convention; loss is the final validation loss or the smoothed training loss; with
    c_convention "counted", D is replaced by C_counted / 6N so that 6ND equals the counted FLOPs
    (every law is then in counted compute). T5's span-corruption runs are kept apart: their loss
    is per target token of another objective, so mixing them with causal-LM runs is refused."""
    from llmhist.train.metrics import read_metrics

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    if n_convention not in N_CONVENTIONS:
        raise ValueError(f"--n-convention {n_convention!r}: one of {', '.join(N_CONVENTIONS)}")
    if c_convention not in C_CONVENTIONS:
        raise ValueError(f"--c-convention {c_convention!r}: one of {', '.join(C_CONVENTIONS)}")
    if loss not in LOSS_CONVENTIONS:
        raise ValueError(f"--loss {loss!r}: one of {', '.join(LOSS_CONVENTIONS)}")
    rows, curves, left_out, objectives, fps = [], [], [], set(), set()
    for cfg in sorted(folder.rglob("config.json")):
        run = cfg.parent
        if (run / "plan.json").exists():
            continue  # a sweep folder's own config, not a run
        summ = run / "summary.json"
        if not summ.exists():
            left_out.append({"run": str(run), "reason": "unfinished (no summary.json)"})
            continue
        try:
            s = json.loads(summ.read_text())
        except (OSError, json.JSONDecodeError) as e:
            left_out.append({"run": str(run), "reason": f"unreadable summary.json ({e})"})
            continue
        if s.get("status") != "finished":
            left_out.append({"run": str(run), "reason": s.get("status", "no status")})
            continue
        N = float(s[N_CONVENTIONS[n_convention]])
        L = s.get(LOSS_CONVENTIONS[loss])
        if L is None or not np.isfinite(L):
            left_out.append({"run": str(run), "reason": f"no finite {LOSS_CONVENTIONS[loss]}"})
            continue
        D = float(s["D"]) if c_convention == "6ND" else float(s["C_counted"]) / (6 * N)
        rows.append((N, D, float(L)))
        objectives.add(s.get("objective", "causal_lm"))
        fps.add(s.get("data_fingerprint", ""))
        scale = D / float(s["D"])  # 1 for 6ND; counted / 6ND otherwise
        curve = [(r["tokens"] * scale, r["val_loss"]) for r in read_metrics(run / "metrics.csv")
                 if r.get("val_loss") is not None]
        if len(curve) >= 2:
            curves.append({"run": str(run), "N": N, "D": np.array([c[0] for c in curve]),
                           "loss": np.array([c[1] for c in curve])})
    if not rows:
        why = "; ".join(f"{Path(x['run']).name}: {x['reason']}" for x in left_out[:5])
        raise ValueError(f"{folder}: no finished runs to fit" + (f" (left out: {why})" if why else
                                                                  " (no run folders found; run `llmhist train` or `llmhist sweep`)"))
    if len(objectives) > 1:
        raise ValueError(f"{folder}: runs of different objectives ({', '.join(sorted(objectives))}) cannot share one law; "
                         "fit them from separate folders")
    if len(fps) > 1:
        left_out.append({"run": "(all)", "reason": f"warning: runs span {len(fps)} data fingerprints"})
    arr = np.array(rows)
    fp = hashlib.sha256(arr.tobytes() + "".join(sorted(fps)).encode()).hexdigest()[:16]
    return {"N": arr[:, 0], "D": arr[:, 1], "loss": arr[:, 2], "source": str(folder), "fingerprint": fp,
            "n_rows": len(arr), "curves": curves, "left_out": left_out, "objective": objectives.pop(),
            "data_fingerprints": sorted(fps)}
