"""Checkpoint IO of a run folder: the model and optimizer state written whole or not at all, and read
back without unpickling code.

A checkpoint is a folder (model.safetensors + state.pt: step, optimizer, RNG, smoothed loss and
every metrics row so far). `staged_folder` is the one folder swap: files are written into a
temporary folder, fsynced, and renamed into place, the previous folder kept under another name
between the two renames; export.py writes its transformers folder the same way. `load` falls back
to that previous folder (a kill between the renames, a damaged checkpoint). state.pt is read with
torch.load(weights_only=True) only.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ..core.files import FILE_MODE, atomic_path, fault, fsync_path
from . import runfolder as rf
from .config import RunError

STATE_FORMAT = 2  # state.pt: 2 carries the metrics rows themselves (1 carried their count)


def unwrap(m: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper (the model itself otherwise)."""
    return getattr(m, "module", m)


@contextmanager
def staged_folder(dest: Path, tmp: Path, old: Path | None = None, event: str | None = None) -> Iterator[Path]:
    """Yield the empty folder `tmp` to write into; when the block ends, its files are fsynced and it
    replaces `dest` (which is `old`, default DEST.old, between the two renames, then removed). On
    an error tmp is removed and dest is left as it was (a kill between the renames leaves `old`).
    `event` names the fault-injection points."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ev = event or dest.name
    old = old or dest.with_name(dest.name + ".old")
    try:
        yield tmp
        fault(f"{ev}/before_fsync")
        for f in tmp.iterdir():
            if f.is_file():
                os.chmod(f, FILE_MODE)
                fsync_path(f)
        shutil.rmtree(old, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fault(f"{ev}/before_rename")
        if dest.exists():
            os.replace(dest, old)
        fault(f"{ev}/between_renames")
        os.replace(tmp, dest)
        fault(f"{ev}/after_rename")
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not dest.exists():  # failed between the renames: the previous folder back
            try:
                os.replace(old, dest)
            except OSError:
                pass  # left as `old`, which load() falls back to
        raise


def save(ck: Path, tmp: Path, model: torch.nn.Module, state: dict) -> None:
    """Write checkpoint `ck` (weights + state.pt holding `state`) through the temporary folder `tmp`."""
    from safetensors.torch import save_model

    with staged_folder(ck, tmp) as t:
        with disk_errors(t / rf.WEIGHTS):
            save_model(unwrap(model), str(t / rf.WEIGHTS), metadata={"step": str(state["step"])})
        with disk_errors(t / rf.STATE):
            torch.save({"format": STATE_FORMAT, **state}, t / rf.STATE)


def save_weights(path: Path, model: torch.nn.Module, step: int) -> None:
    """The final weights, written atomically."""
    from safetensors.torch import save_model

    with atomic_path(path) as tmp, disk_errors(tmp):
        save_model(unwrap(model), str(tmp), metadata={"step": str(step)})


def load(ck: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, own: bool = False,
         note: Callable[[str], None] = print) -> dict | None:
    """The state of checkpoint `ck` (or of ck.old, left by a kill between the two renames of a
    save, or when ck is damaged) loaded into the model and optimizer; None when neither exists.
    `own`: ck is this run's checkpoint, so a whole ck.old becomes it again. A damaged checkpoint
    with no whole fallback is a RunError naming the file."""
    old = ck.with_name(ck.name + ".old")
    tried = []
    for cand in (ck, old):
        if not (cand / rf.STATE).exists() and not (cand / rf.WEIGHTS).exists():
            continue
        try:
            state = _load_from(cand, model, opt)
        except RunError as e:
            tried.append(str(e))
            continue
        if own and cand == old:  # the whole one becomes the checkpoint again
            shutil.rmtree(ck, ignore_errors=True)
            os.replace(old, ck)
            if tried:
                note(f"{tried[0]}; resumed from the previous checkpoint (step {state['step']})")
        return state
    if tried:
        raise RunError(f"{tried[0]}. Nothing whole to resume from: delete {ck} to restart this run from "
                       f"step 0 (or give another --out)")
    return None


def _load_from(ck: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    import warnings

    from safetensors.torch import load_model

    try:
        with warnings.catch_warnings():  # a foreign pickle's weights_only UserWarning: the RunError below says it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(ck / rf.STATE, weights_only=True, map_location="cpu")
        if not isinstance(state, dict) or not {"step", "optimizer", "torch_rng"} <= state.keys():
            raise ValueError("not a checkpoint state")
    except Exception as e:  # a user file: truncated, garbage or foreign; never unpickled as code
        raise RunError(f"{ck / rf.STATE}: damaged or not an llmhist checkpoint ({type(e).__name__})") from e
    try:
        load_model(unwrap(model), str(ck / rf.WEIGHTS))
    except Exception as e:
        raise RunError(f"{ck / rf.WEIGHTS}: damaged or of another model ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200] if str(e) else ''})") from e
    try:
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    except Exception as e:
        raise RunError(f"{ck / rf.STATE}: its optimizer or RNG state does not fit this run ({e})") from e
    if "rows" not in state:  # format 1: the rows were only in metrics.csv
        path = (ck.parent.parent if ck.parent.name == rf.BRANCHES else ck.parent) / rf.METRICS
        rows = [r for r in rf.read_metrics(path) if r["step"] <= state["step"]]
        state["rows"] = rows[: state.get("metrics_rows", len(rows))]
    return state


class disk_errors:
    """safetensors and torch report a full disk with their own error types (SafetensorError,
    RuntimeError "file write failed"): turn those into OSError(ENOSPC), which the CLI explains."""

    MARKERS = ("no space", "os error 28", "storagefull", "errno 28", "file write failed", "disk quota")

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is None or isinstance(e, OSError) or not isinstance(e, Exception):
            return False
        if any(m in str(e).lower() for m in self.MARKERS) or _disk_full(self.path):
            raise OSError(errno.ENOSPC, f"No space left on device (writing {self.path.name}: "
                                        f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from e
        return False


def _disk_full(path: Path) -> bool:
    try:
        v = os.statvfs(path.parent)
        return v.f_bavail * v.f_frsize < (1 << 20)
    except OSError:
        return False
