"""Reading (N, D, loss) points and writing fit files atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    atomic_write_text(path, json.dumps(fit, indent=2, default=float) + "\n")
