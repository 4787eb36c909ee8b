"""metrics.csv of a run folder: written by the training loop, read by resume and by `llmhist fit`.
No torch here, so fitting runs folders stays light."""

from __future__ import annotations

import csv
import io
from pathlib import Path

METRIC_COLUMNS = ["step", "tokens", "flops", "train_loss", "val_loss", "val_bpb", "lr", "tokens_per_s", "mfu", "wall_s"]


def metrics_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in METRIC_COLUMNS})
    return buf.getvalue()


def _value(key: str, v: str):
    if v == "":
        return None
    if key in ("step", "tokens"):
        try:
            return int(v)
        except ValueError:  # tables written by other tools may give token counts as floats
            return float(v)
    return float(v)


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        return [{k: _value(k, v) for k, v in r.items()} for r in csv.DictReader(f)]
