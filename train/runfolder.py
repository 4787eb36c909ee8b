"""The run folder: the one definition of its files, their keys and columns, and how to read and
write them. Everything that writes or reads a run folder goes through here (the training loop,
sweep status, the fit loader, export). No torch here, so readers stay light.

Files (runs/README.md is generated from the same facts; `readme_table()` prints it):

    run.json           the run request: {"config": TrainConfig.to_dict(), ...}, written by whoever asks
                       for the run (train CLI, sweep, study, ablate); the worker reads it
    config.json        what the run is: {"train", "arch", "recipe", "data", "plan"[, "branch_of"]}
    metrics.csv        one row per evaluation, columns METRIC_COLUMNS
    summary.json       written last: SUMMARY_KEYS; "status" is "finished" or "diverged"
    progress.json      status, step, losses, pid/host and time of the last update (for sweep status)
    checkpoint/        model.safetensors + state.pt (step, optimizer, RNG, smoothed loss and every metrics
                       row so far): metrics.csv is rebuilt from it on resume, so the two cannot disagree
    model.safetensors  final weights
    branches/step-B/   WSD: the stable-phase state a decay branch starts from (a checkpoint)
    wsd-F/             WSD: the branch run ending at fraction F of the budget (a run folder itself)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from pathlib import Path

from llmhist.files import atomic_write, write_json

from .config import RunError  # the one error class of a run (re-exported for readers)

RUN = "run.json"
CONFIG = "config.json"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
PROGRESS = "progress.json"
CHECKPOINT = "checkpoint"
CHECKPOINT_OLD = "checkpoint.old"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
LOCK = ".lock"
BRANCHES = "branches"

METRIC_COLUMNS = ["step", "tokens", "flops", "train_loss", "val_loss", "val_bpb", "lr", "tokens_per_s", "mfu", "wall_s"]
# columns and summary keys that depend on the machine and the moment, not on the run's numbers
TIMING_COLUMNS = ("tokens_per_s", "mfu", "wall_s")
SUMMARY_KEYS = [
    "status", "arch", "family", "objective", "d_model", "n_layers", "n_heads", "N", "N_non_embedding", "N_active",
    "D", "C", "C_counted", "steps", "val_loss", "train_loss", "train_loss_smoothed", "val_bpb", "loss_units",
    "entropy_nats_per_token", "entropy_eval_nats_per_token", "tokens_per_s", "mfu", "peak_flops", "mfu_note",
    "wall_s", "data_fingerprint", "tokenizer", "seed", "environment", "overhead_s",
]
# a diverged run's summary also has "error" (the message), "diverged_at_step" and "diverged_reason";
# a finished WSD main run's returned summary has "branches" (not written to its summary.json)
# entropy_eval_nats_per_token: the exact floor of the evaluated validation tokens (synthetic sources)
# peak_flops / mfu_note: the MFU denominator used and why it was re-measured or clamped (device.mfu)
# overhead_s: wall seconds of this process by phase (start-up, train steps, evaluation, checkpoints)
SUMMARY_TIMING_KEYS = ("tokens_per_s", "mfu", "peak_flops", "mfu_note", "wall_s", "environment", "overhead_s")
STATUSES = ("finished", "diverged")
# names a run folder may hold besides its own files (anything else means it is not a run folder)
KNOWN = {RUN, CONFIG, METRICS, SUMMARY, PROGRESS, CHECKPOINT, CHECKPOINT_OLD, WEIGHTS, BRANCHES}



# ------------------------------------------------------------------------------ JSON files


def read_json_object(path: str | Path, what: str = "") -> dict:
    """A JSON file that must hold an object; RunError naming the file otherwise."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{path}: unreadable {what or path.name} ({e}); "
                       "move it away (or give another --out) and run again") from e
    if not isinstance(doc, dict):
        raise RunError(f"{path}: {what or path.name} must be a JSON object, found {type(doc).__name__}; "
                       "move it away (or give another --out) and run again")
    return doc


def read_config(run_dir: str | Path) -> dict:
    doc = read_json_object(Path(run_dir) / CONFIG, "run config")
    if not isinstance(doc.get("train"), dict):
        raise RunError(f"{Path(run_dir) / CONFIG}: no 'train' object; this is not a config.json llmhist wrote")
    return doc


def write_config(run_dir: str | Path, doc: dict) -> None:
    write_json(Path(run_dir) / CONFIG, doc)


def read_run_request(run_dir: str | Path) -> dict:
    doc = read_json_object(Path(run_dir) / RUN, "run request")
    if not isinstance(doc.get("config"), dict):
        raise RunError(f"{Path(run_dir) / RUN}: no 'config' object; write {{\"config\": TrainConfig.to_dict()}}")
    return doc


def write_run_request(run_dir: str | Path, config: dict, **extra) -> None:
    write_json(Path(run_dir) / RUN, {"config": config, **extra})


def read_summary(run_dir: str | Path) -> dict | None:
    """summary.json, or None when the run has not ended; RunError when it is unreadable."""
    p = Path(run_dir) / SUMMARY
    if not p.exists():
        return None
    doc = read_json_object(p, "run summary")
    if doc.get("status", "finished") not in STATUSES:
        raise RunError(f"{p}: unknown status {doc.get('status')!r} (expected one of {', '.join(STATUSES)})")
    return doc


def write_summary(run_dir: str | Path, summary: dict) -> None:
    write_json(Path(run_dir) / SUMMARY, summary)


def read_progress(run_dir: str | Path) -> dict:
    """progress.json, or {} when missing or unreadable (it is advisory)."""
    try:
        doc = json.loads((Path(run_dir) / PROGRESS).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_progress(run_dir: str | Path, **kw) -> None:
    import time

    kw.update(pid=os.getpid(), host=os.uname().nodename, updated=time.time())
    # advisory and rewritten often: atomic (never half a file) but not fsynced
    atomic_write(Path(run_dir) / PROGRESS, json.dumps(kw, indent=2) + "\n", durable=False)


def run_status(run_dir: str | Path) -> dict:
    """Never raises: {"state": pending|running|resumable|finished|diverged|corrupt, "step", "steps",
    "val_loss", "error"} for sweep status. "running" only means progress.json says so; whether its
    process is alive is the caller's to check (pid, host)."""
    run_dir = Path(run_dir)
    out = {"state": "pending", "step": 0, "steps": None, "val_loss": None, "error": None}
    try:
        s = read_summary(run_dir)
    except RunError as e:
        out.update(state="corrupt", error=str(e))
        return out
    if s is not None:
        out.update(state=s.get("status", "finished"), step=s.get("steps"), steps=s.get("steps"),
                   val_loss=s.get("val_loss"), error=s.get("error"))
        return out
    p = read_progress(run_dir)
    if p:
        out.update(step=p.get("step", 0), steps=p.get("steps"), val_loss=p.get("val_loss"),
                   state="running" if p.get("status") == "running" else "resumable",
                   pid=p.get("pid"), host=p.get("host"))
    return out


# ------------------------------------------------------------------------------ metrics.csv


def metrics_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in METRIC_COLUMNS})
    return buf.getvalue()


def write_metrics(run_dir: str | Path, rows: list[dict], durable: bool = True) -> None:
    atomic_write(Path(run_dir) / METRICS, metrics_csv(rows), durable=durable)


def _value(key: str, v: str | None):
    if v is None:
        raise ValueError("missing value")
    if v == "":
        return None
    if key in ("step", "tokens"):
        try:
            return int(v)
        except ValueError:  # tables written by other tools may give token counts as floats
            return float(v)
    return float(v)


def check_metrics(path: str | Path) -> tuple[list[dict], str | None]:
    """(the whole rows of metrics.csv, what was wrong or None). Rows that are short, have extra
    fields or hold non-numbers are left out, and the problem is named; never raises for content."""
    path = Path(path)
    if not path.exists():
        return [], f"{path} is missing"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return [], f"{path} is unreadable ({e})"
    if not text.strip():
        return [], f"{path} is empty"
    rows, bad = [], []
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "step" not in reader.fieldnames:
        return [], f"{path} has no header with a 'step' column"
    for i, r in enumerate(reader, start=2):
        try:
            if None in r:  # more fields than columns
                raise ValueError("extra fields")
            row = {k: _value(k, v) for k, v in r.items()}
            if row.get("step") is None:
                raise ValueError("no step")
            rows.append(row)
        except ValueError:
            bad.append(i)
    problem = None
    if bad:
        problem = f"{path}: line{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))} short or malformed"
    return rows, problem


def read_metrics(path: str | Path) -> list[dict]:
    """The whole rows of metrics.csv ([] when missing); short or malformed rows are left out."""
    return check_metrics(path)[0]


def comparable_row(row: dict) -> dict:
    """A metrics row without the timing columns (what an identical run must reproduce exactly)."""
    return {k: v for k, v in row.items() if k not in TIMING_COLUMNS}


def comparable_summary(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in SUMMARY_TIMING_KEYS}


# ------------------------------------------------------------------------------ leftovers


def stale_temporaries(run_dir: str | Path, old: bool = True) -> list[Path]:
    """Temporary files and folders a killed writer left behind: `.checkpoint.PID.tmp/`,
    `.NAME.PID.tmp.SUFFIX` (llmhist.files.atomic_path), and (old=True) `checkpoint.old/` when
    `checkpoint/` exists (call that only once the checkpoint has been loaded or superseded: a damaged
    checkpoint falls back to it). Only call this while holding the folder's lock (then no live
    process owns them)."""
    run_dir = Path(run_dir)
    out: list[Path] = []
    for base in (run_dir, run_dir / BRANCHES):
        if not base.is_dir():
            continue
        for p in base.iterdir():
            n = p.name
            if n.startswith(".") and n != LOCK and ".tmp" in n:
                parts = n[1:].split(".")
                if any(x.isdigit() for x in parts) and any(x.startswith("tmp") for x in parts):
                    out.append(p)
            elif old and n.endswith(".old") and (base / n[: -len(".old")] / STATE).exists():
                out.append(p)
    return out


def remove_stale(run_dir: str | Path, old: bool = True) -> list[Path]:
    gone = stale_temporaries(run_dir, old)
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return gone


# ------------------------------------------------------------------------------ the README


def readme_table() -> str:
    """The table of runs/README.md."""
    cols = ", ".join(METRIC_COLUMNS)
    keys = ", ".join(SUMMARY_KEYS)
    rows = [
        (RUN, ("the run request, `{\"config\": TrainConfig.to_dict(), ...}`, written by whoever asks for the run "
              "(train, sweep, study, ablate); `python -m llmhist.train.worker RUN_DIR` reads it")),
        (CONFIG, ("what the run is: `train` (the options), `arch` (the full spec), `recipe`, `data` (name, "
                 "fingerprint, sizes, tokenizer), `plan` (steps, batch, warmup, peak LR), `branch_of` for a WSD branch")),
        (METRICS, (f"one row per evaluation; columns {cols} (losses in nats/token; {', '.join(TIMING_COLUMNS)} "
                  "depend on the machine)")),
        (SUMMARY, f"written last; keys {keys}; a diverged run adds error, diverged_at_step, diverged_reason"),
        (PROGRESS, "status, step, losses, pid, host and time of the last update (advisory, for sweep status)"),
        (CHECKPOINT + "/", ("the last checkpoint: model.safetensors and state.pt (step, optimizer, RNG, smoothed "
                           "loss and every metrics row so far; loaded with weights_only=True). Written to a "
                           "temporary folder and renamed; the previous one is kept as checkpoint.old/ until then")),
        (WEIGHTS, "final weights"),
        (BRANCHES + "/step-B/", "WSD: the stable-phase checkpoint a decay branch starts from"),
        ("wsd-F/", "WSD: the branch ending at fraction F of the budget, itself a run folder"),
    ]
    lines = ["| file | what |", "| --- | --- |"] + [f"| `{a}` | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"


def finite_or_none(x):
    return x if (x is None or (isinstance(x, (int, float)) and math.isfinite(x))) else None
