"""The run folder: the one definition of its files, their records (request, summary, progress)
with their keys, types and columns, how to read and write them, and the one vocabulary of a run's
state and exit codes. Everything that writes or reads a run folder goes through here (the training
loop, the worker, sweep status, the ablation report, the fit loader, export). No torch here, so
readers stay light.

Files (runs/README.md is generated from the same facts; `readme_table()` prints it):

    run.json           the run request (RunRequest): {"config": TrainConfig.to_dict()[, "sweep",
                       "plan_hash", "budget", "group"]}, written by whoever asks for the run (train CLI,
                       sweep, study, ablate); the worker reads it; `budget` is the plan's nominal
                       isoFLOP budget, which `llmhist fit` groups by
    config.json        what the run is: {"train", "resolved", "arch", "recipe", "data", "plan"[, "branch_of"]};
                       "resolved": every option's {"value", "source"} (llmhist.train.config.ResolvedRun)
    metrics.csv        one row per evaluation, columns METRIC_COLUMNS
    summary.json       written last (Summary): SUMMARY_KEYS; "status" is "finished" or "diverged"
    progress.json      (Progress) status, step, losses, pid/host and time of the last update
    trackers.json      with --logger: {TRACKER: {"run_id", "last_step"}} (read_trackers; llmhist.train.tracking),
                       so a resumed run continues the same tracker run; tb/ and wandb/ hold the trackers' files
    checkpoint/        model.safetensors + state.pt (step, optimizer, RNG, smoothed loss and every metrics
                       row so far): metrics.csv is rebuilt from it on resume, so the two cannot disagree
    model.safetensors  final weights
    branches/step-B/   WSD: the stable-phase state a decay branch starts from (a checkpoint)
    wsd-F/             WSD: the branch run ending at fraction F of the budget (a run folder itself)

Where a run stands (pending, running, interrupted, finished, diverged, failed) is read from these
files by llmhist.train.runstate.run_state, the one reader of state for sweep status, the ablation
report and the fit loader.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..core.files import atomic_write, write_json
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
TRACKERS = "trackers.json"

METRIC_COLUMNS = ["step", "tokens", "flops", "train_loss", "val_loss", "val_bpb", "lr", "tokens_per_s", "mfu", "wall_s"]
# columns and summary keys that depend on the machine and the moment, not on the run's numbers
TIMING_COLUMNS = ("tokens_per_s", "mfu", "wall_s")
# a diverged run's summary also has "error" (the message), "diverged_at_step" and "diverged_reason";
# a finished WSD main run's returned summary has "branches" (not written to its summary.json)
# entropy_eval_nats_per_token: the exact floor of the evaluated validation tokens (synthetic sources)
# peak_flops / mfu_note: the MFU denominator used and why it was re-measured or clamped (device.mfu)
# overhead_s: wall seconds of this process by phase (start-up, train steps, evaluation, checkpoints)
SUMMARY_TIMING_KEYS = ("tokens_per_s", "mfu", "peak_flops", "mfu_note", "wall_s", "environment", "overhead_s")
STATUSES = ("finished", "diverged")
# names a run folder may hold besides its own files (anything else means it is not a run folder)
KNOWN = {RUN, CONFIG, METRICS, SUMMARY, PROGRESS, CHECKPOINT, CHECKPOINT_OLD, WEIGHTS, BRANCHES, TRACKERS, "tb", "wandb"}



# ------------------------------------------------------------------------------ outcomes
# The worker's exit codes (the sweep's queue reads them; a sweep's own Ctrl-C exits with EXIT_INTERRUPTED)
EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXITS = (EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_DIVERGED)  # the worker's own; anything else: it was killed
FAILED = ".failed"  # LOG_DIR/NAME.failed: the worker's marker of a run that failed ({"exit", "error", "log_tail"})


class Interrupted(RunError):
    """Stopped by a signal (Ctrl-C, SIGTERM) with nothing half-written: resumable from the last checkpoint."""

    exit_code = EXIT_INTERRUPTED


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


def _check_types(doc: dict, types: dict[str, tuple], where: str) -> None:
    """Each key of `doc` that `types` names holds one of its types (None allowed; a bool is no number)."""
    for k, ok in types.items():
        v = doc.get(k)
        if v is not None and (not isinstance(v, ok) or (isinstance(v, bool) and bool not in ok)):
            want = " or ".join("a number" if t in (int, float) else f"a JSON {_JSON_NAMES[t]}" for t in dict.fromkeys(ok))
            raise RunError(f"{where}: {k!r} is {json.dumps(v)[:40]}, expected {want}; "
                           "this is not a file llmhist wrote (move it away and run again)")


_JSON_NAMES = {str: "string", dict: "object", list: "list", bool: "true/false", int: "number", float: "number"}
_NUM = (int, float)


def read_config(run_dir: str | Path) -> dict:
    """config.json: an object with a "train" object ("arch", "recipe", "data", "plan" objects where present)."""
    p = Path(run_dir) / CONFIG
    doc = read_json_object(p, "run config")
    if not isinstance(doc.get("train"), dict):
        raise RunError(f"{p}: no 'train' object; this is not a config.json llmhist wrote")
    _check_types(doc, {k: (dict,) for k in ("arch", "recipe", "data", "plan", "branch_of")}, str(p))
    return doc


def write_config(run_dir: str | Path, doc: dict) -> None:
    write_json(Path(run_dir) / CONFIG, doc)


@dataclass(frozen=True)
class RunRequest:
    """run.json: the run asked for (its whole TrainConfig as a dict), and, from a sweep, which sweep,
    plan and nominal budget it belongs to (what `llmhist fit` groups isoFLOP runs by)."""

    config: dict  # TrainConfig.to_dict()
    sweep: str | None = None  # the sweep folder
    plan_hash: str | None = None
    budget: float | None = None  # the isoFLOP budget C (FLOPs) the plan gave this run; None off a budget
    group: str | None = None  # the plan's group label: "C=1e+11" (isoFLOP) or "N=12,345" (ladder)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, doc, where: str) -> RunRequest:
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise RunError(f'{where}: expected {{"config": {{...}}}} with the run\'s options; write the request again '
                           "(run the sweep command again)")
        _check_types(doc, {"sweep": (str,), "plan_hash": (str,), "budget": _NUM, "group": (str,)}, where)
        return cls(doc["config"], doc.get("sweep"), doc.get("plan_hash"), doc.get("budget"), doc.get("group"))


def read_request(run_dir: str | Path) -> RunRequest:
    """RUN_DIR/run.json; RunError when missing, unreadable or of the wrong shape."""
    path = Path(run_dir) / RUN
    try:
        doc = read_json_object(path, "run request")
    except FileNotFoundError:
        raise RunError(f"{path}: no such file; a run folder to work on holds run.json "
                       "(written by `llmhist sweep`, `study` or `ablate`)") from None
    return RunRequest.from_json(doc, str(path))


def write_request(run_dir: str | Path, request: RunRequest) -> Path:
    path = Path(run_dir) / RUN
    write_json(path, request.to_json())
    return path


@dataclass
class Summary:
    """summary.json, written last (SUMMARY_KEYS; a diverged run adds error, diverged_at_step and
    diverged_reason). Read back with its keys' types checked: a wrong one is a RunError naming it."""

    status: str
    arch: str | None = None
    family: str | None = None
    objective: str | None = None
    d_model: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    N: float | None = None  # parameters (6N convention); floats allowed from other tools
    N_non_embedding: float | None = None
    N_active: float | None = None
    D: float | None = None  # tokens trained on
    C: float | None = None  # 6 N_active D
    C_counted: float | None = None
    steps: int | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    train_loss_smoothed: float | None = None
    val_bpb: float | None = None
    loss_units: str | None = None
    entropy_nats_per_token: float | None = None
    entropy_eval_nats_per_token: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    peak_flops: float | None = None
    mfu_note: str | None = None
    wall_s: float | None = None
    data_fingerprint: str | None = None
    tokenizer: str | None = None
    seed: int | None = None
    environment: dict | None = None
    overhead_s: dict | None = None
    error: str | None = None  # diverged runs only, from here on
    diverged_at_step: int | None = None
    diverged_reason: str | None = None
    extra: dict = field(default_factory=dict, repr=False)  # keys of an older or newer version, kept as read

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for k in DIVERGED_KEYS:
            if d[k] is None:
                del d[k]
        return {**self.extra, **d}

    @classmethod
    def from_json(cls, doc, where: str, strict: bool = False) -> Summary:
        """The record of a summary dict; strict (the writer): every key must be one of the schema's."""
        if not isinstance(doc, dict):
            raise RunError(f"{where}: run summary must be a JSON object, found {type(doc).__name__}; move it away "
                           "and run the same command again (a run with a checkpoint resumes from it)")
        names = [f.name for f in fields(cls) if f.name != "extra"]
        unknown = sorted(set(doc) - set(names))
        if strict and unknown:
            raise RunError(f"{where}: summary keys {', '.join(unknown)} are not in runfolder.Summary")
        if doc.get("status") not in STATUSES:
            raise RunError(f"{where}: unknown status {doc.get('status')!r} (expected one of {', '.join(STATUSES)}); "
                           "move it away and run the same command again")
        _check_types(doc, _SUMMARY_TYPES, where)
        return cls(**{k: doc[k] for k in names if k in doc}, extra={k: doc[k] for k in unknown})


def _json_types(annotation: str) -> tuple:
    kinds = {"str": (str,), "int": (int,), "float": _NUM, "dict": (dict,)}
    return next((v for k, v in kinds.items() if annotation.startswith(k)), (object,))


_SUMMARY_TYPES = {f.name: _json_types(str(f.type)) for f in fields(Summary) if f.name != "extra"}
DIVERGED_KEYS = ("error", "diverged_at_step", "diverged_reason")
SUMMARY_KEYS = [f.name for f in fields(Summary) if f.name not in DIVERGED_KEYS + ("extra",)]


def read_summary_record(run_dir: str | Path) -> Summary | None:
    """summary.json as a record, or None when the run has not ended; RunError when it is unreadable
    or of the wrong shape (the message names the file and the key)."""
    p = Path(run_dir) / SUMMARY
    if not p.exists():
        return None
    return Summary.from_json(read_json_object(p, "run summary"), str(p))


def read_summary(run_dir: str | Path) -> dict | None:
    """summary.json as a dict (checked as read_summary_record checks it), or None."""
    s = read_summary_record(run_dir)
    return None if s is None else s.to_json()


def write_summary(run_dir: str | Path, summary: Summary | dict) -> None:
    """Write summary.json; a dict is checked against the schema first (no key outside Summary)."""
    p = Path(run_dir) / SUMMARY
    rec = summary if isinstance(summary, Summary) else Summary.from_json(summary, str(p), strict=True)
    write_json(p, rec.to_json())


def read_trackers(run_dir: str | Path) -> dict[str, dict]:
    """trackers.json: {TRACKER: {"run_id": str, "last_step": int | None}}; {} when there is none yet."""
    path = Path(run_dir) / TRACKERS
    try:
        doc = read_json_object(path, "tracker record")
    except FileNotFoundError:
        return {}
    for name, rec in doc.items():
        if not isinstance(rec, dict):
            raise RunError(f"{path}: {name!r} must be an object; this is not a file llmhist wrote (move it away)")
        _check_types(rec, {"run_id": (str,), "last_step": (int,)}, f"{path} ({name})")
    return doc


def write_trackers(run_dir: str | Path, doc: dict[str, dict]) -> None:
    write_json(Path(run_dir) / TRACKERS, doc)


@dataclass
class Progress:
    """progress.json: advisory, rewritten at every evaluation (sweep status reads it)."""

    status: str  # running | interrupted (Ctrl-C) | finished | diverged
    step: int = 0
    steps: int | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    updated: float | None = None  # time.time() of the write

    @classmethod
    def from_json(cls, doc, where: str) -> Progress:
        if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
            raise RunError(f"{where}: not a progress record")
        _check_types(doc, {f.name: _json_types(str(f.type)) for f in fields(cls)}, where)
        return cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})


def read_progress(run_dir: str | Path) -> Progress | None:
    """progress.json, or None when missing, unreadable or of the wrong shape (it is advisory)."""
    p = Path(run_dir) / PROGRESS
    try:
        return Progress.from_json(json.loads(p.read_text()), str(p))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RunError):
        return None


def write_progress(run_dir: str | Path, **kw) -> None:
    """progress.json with this process's pid, host and the time: `kw` are Progress's other fields."""
    import time

    rec = Progress(**kw, pid=os.getpid(), host=os.uname().nodename, updated=time.time())
    # advisory and rewritten often: atomic (never half a file) but not fsynced
    doc = {k: v for k, v in asdict(rec).items() if v is not None}
    atomic_write(Path(run_dir) / PROGRESS, json.dumps(doc, indent=2) + "\n", durable=False)


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


def curve_damaged(run_dir: str | Path, summary: dict) -> bool:
    """Whether a finished run's metrics.csv lost rows or holds damaged ones (its last row is not the
    summary's last step): the training loop rebuilds it from the final checkpoint (reliability F8)."""
    rows, problem = check_metrics(Path(run_dir) / METRICS)
    return bool(problem) or not rows or rows[-1].get("step") != summary.get("steps")


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
    `.NAME.PID.tmp.SUFFIX` (llmhist.core.files.atomic_path), and (old=True) `checkpoint.old/` when
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
        (RUN, ("the run request, `{\"config\": TrainConfig.to_dict()[, \"sweep\", \"plan_hash\", \"budget\", "
              "\"group\"]}`, written by whoever asks for the run (train, sweep, study, ablate); `python -m "
              "llmhist.train.worker RUN_DIR` reads it. `budget` is the plan's nominal isoFLOP budget (FLOPs), "
              "which `llmhist fit` groups the runs by; `group` the plan's label")),
        (CONFIG, ("what the run is: `train` (the options as given), `resolved` (every option but out as "
                 "{\"value\", \"source\"}: the value the run used and where it came from, \"given\", \"default\" "
                 "or \"recipe: <citation>\"), `arch` (the full spec), `recipe`, `data` (name, fingerprint, "
                 "sizes, tokenizer), `plan` (steps, batch, warmup, peak LR), `branch_of` for a WSD branch")),
        (METRICS, (f"one row per evaluation; columns {cols} (losses in nats/token; {', '.join(TIMING_COLUMNS)} "
                  "depend on the machine)")),
        (SUMMARY, f"written last; keys {keys}; a diverged run adds error, diverged_at_step, diverged_reason"),
        (PROGRESS, ("status, step, steps, val_loss, train_loss, error, pid, host and updated (the time of the "
                     "last update; advisory, for sweep status)")),
        (CHECKPOINT + "/", ("the last checkpoint: model.safetensors and state.pt (step, optimizer, RNG, smoothed "
                           "loss and every metrics row so far; loaded with weights_only=True). Written to a "
                           "temporary folder and renamed; the previous one is kept as checkpoint.old/ until then")),
        (WEIGHTS, "final weights"),
        (TRACKERS, ("with `--logger`: each tracker's run id and the last step it surely has (llmhist.train.tracking), so "
                    "a resumed run continues the same tracker run; `tb/` and `wandb/` hold TensorBoard's and W&B's files")),
        (BRANCHES + "/step-B/", "WSD: the stable-phase checkpoint a decay branch starts from"),
        ("wsd-F/", "WSD: the branch ending at fraction F of the budget, itself a run folder"),
    ]
    lines = ["| file | what |", "| --- | --- |"] + [f"| `{a}` | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"


def finite_or_none(x):
    return x if (x is None or (isinstance(x, (int, float)) and math.isfinite(x))) else None
