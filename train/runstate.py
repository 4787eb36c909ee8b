"""Where a run stands, in one vocabulary for every reader (sweep status, the ablation report, the
fit loader): pending, running, interrupted, finished, diverged or failed, read from the run folder's
files (llmhist.train.runfolder), its lock and the sweep worker's failure marker. No torch here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.files import lock_holder
from .config import RunError
from .runfolder import FAILED, Summary, read_progress, read_summary_record

STATES = ("pending", "running", "interrupted", "finished", "diverged", "failed")


@dataclass
class RunState:
    """Where a run stands (STATES), for every reader; `summary` is the record once the run ended."""

    state: str = "pending"
    step: int | None = 0
    steps: int | None = None
    val_loss: float | None = None
    error: str | None = None
    summary: Summary | None = None

    def row(self) -> dict:
        """The state as sweep status prints it."""
        return {"state": self.state, "step": self.step, "steps": self.steps, "val_loss": self.val_loss,
                "error": self.error}


def failed_marker(run_dir: str | Path) -> Path:
    """Where a sweep's worker marks a run it failed: SWEEP/logs/NAME.failed."""
    run_dir = Path(run_dir)
    return run_dir.parent / "logs" / f"{run_dir.name}{FAILED}"


def run_state(run_dir: str | Path) -> RunState:
    """Never raises. finished / diverged (summary.json says so; a damaged one is `failed`, naming it
    and how to recover), running (a live process holds the run's lock or reports progress here),
    interrupted (progress but no live process: resumes from its checkpoint), failed (the worker's
    marker), pending (nothing yet)."""
    run_dir = Path(run_dir)
    try:
        s = read_summary_record(run_dir)
    except (RunError, OSError) as e:
        return RunState("failed", error=f"{e} (the run's checkpoint, if any, is kept: move summary.json away and "
                                        "run the same command again to resume from it)")
    if s is not None:
        return RunState(s.status, s.steps, s.steps, s.val_loss, s.error, s)
    out = RunState()
    p = read_progress(run_dir)
    here = os.uname().nodename
    if p is not None:
        out.step, out.steps, out.val_loss = p.step, p.steps, p.val_loss
        alive = _alive(p.pid) and (p.host or here) == here
        out.state = "running" if (p.status == "running" and alive) else "interrupted"
    if lock_holder(run_dir) is not None:
        out.state = "running"
        return out
    fail = failed_marker(run_dir)
    if fail.exists():
        out.state, out.error = "failed", _failure(fail)
    return out


def _failure(marker: Path) -> str:
    """The error a worker's marker gives: its message, or the last line of the run's log."""
    try:
        m = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        m = None
    if not isinstance(m, dict):
        return marker.read_text(errors="replace").strip()[-500:]
    tail = str(m.get("log_tail", "")).strip().splitlines()
    return str(m.get("error") or (tail[-1] if tail else "failed (no output)"))


def _alive(pid) -> bool:
    """Whether the process is running. A killed process whose parent died stays a zombie until
    init reaps it; it answers signals but runs nothing, so it counts as dead."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, OverflowError):
        return False
    try:
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is
