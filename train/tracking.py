"""Experiment trackers (`--logger`): an optional mirror of a run's metrics rows to TensorBoard,
Weights & Biases or trackio, off by default. metrics.csv and summary.json stay the record of truth.

A tracker is a small protocol (Tracker: start(config, run_id) -> run_id, log(step, row), finish()),
one class per tracker, each importing its package only when asked for. `Mirror` is what the trainer
holds: it starts each tracker with the run's resolved config (config.json) and, for a run of a sweep
or an ablation, the sweep folder's name as the group; keeps each tracker's run id and the last step it
surely has (Tracker.durable) in the run folder (runfolder.TRACKERS), so a resumed run continues the
same tracker run and sends only the rows after that step (a row recomputed after a kill is not sent
twice to TensorBoard; W&B's own step rule drops the ones it has); and turns a
tracker's exception into a warning, that tracker disabled for the rest of the run (a local row is
never lost). A missing package is refused when the run config is built, before any work (`check`).
No heavy imports at module level.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from . import runfolder as rf
from .config import RunError

# name -> (module that must be importable, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "trackio": ("trackio", "trackio")}
NONE = "none"
TB_DIR = "tb"  # RUN/tb/: TensorBoard's event files


def check(spec: str) -> str:
    """`--logger` normalised ("none" or names joined by commas); RunError naming a bad value or a
    tracker whose package is missing, with the pip command that installs it."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if not names or names == [NONE]:
        return NONE
    bad = [n for n in names if n not in TRACKERS]
    if bad:
        raise RunError(f"--logger {spec!r}: unknown tracker {bad[0]!r}; use none, "
                       f"{', '.join(TRACKERS)}, or several joined by commas (e.g. tensorboard,wandb)")
    for n in names:
        module, extra = TRACKERS[n]
        if importlib.util.find_spec(module) is None:
            raise RunError(f"--logger {n}: the {module!r} package is not installed; "
                           f"pip install 'llmhist[{extra}]' (or leave --logger out)")
    return ",".join(dict.fromkeys(names))


class Tracker(Protocol):
    name: str
    # True: a row is on disk when log() returns (TensorBoard flushes each), so its step is recorded as sent
    # at once. False (W&B, trackio: a separate service process buffers it, and a SIGKILL loses the whole
    # segment, measured): the step is recorded only after finish(), so a killed run sends the rows again
    # on resume, and the tracker's own resume + step semantics drop any it already has (W&B drops a
    # step below the resumed run's step, online or at `wandb sync`)
    durable: bool

    def start(self, config: dict, run_id: str | None) -> str: ...

    def log(self, step: int, row: dict) -> None: ...

    def finish(self) -> None: ...


def _scalars(row: dict) -> dict[str, float]:
    """The finite numbers of a metrics row, the step left out (it is the x axis)."""
    return {k: float(v) for k, v in row.items() if k != "step" and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


class TensorBoard:
    """Event files in RUN/tb/ (one folder: a resumed run appends to the same TensorBoard run). The run
    id is ours (TensorBoard has none); the config goes in as text at the start of a fresh run."""

    name = "tensorboard"
    durable = True

    def __init__(self, out: Path, group: str | None):
        self.out, self.group, self.writer = out, group, None

    def start(self, config: dict, run_id: str | None) -> str:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = writer = SummaryWriter(log_dir=str(self.out / TB_DIR))
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            writer.add_text("config", "```\n" + json.dumps(config, indent=1, default=str) + "\n```")
            if self.group:
                writer.add_text("group", self.group)
        return run_id

    def log(self, step: int, row: dict) -> None:
        assert self.writer is not None
        for k, v in _scalars(row).items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()  # on disk before the step is recorded as sent

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WandB:
    """A W&B run (project $WANDB_PROJECT or "llmhist", name = the run folder's name, files under RUN/wandb/);
    resumed by id (resume="allow"). WANDB_MODE=offline keeps it on this machine (`wandb sync` later)."""

    name = "wandb"
    module = "wandb"
    durable = False

    def __init__(self, out: Path, group: str | None):
        self.out, self.group, self.run, self.floor = out, group, None, 0

    def start(self, config: dict, run_id: str | None) -> str:
        lib = importlib.import_module(self.module)
        self.run = run = lib.init(project=os.environ.get("WANDB_PROJECT", "llmhist"), name=self.out.name,
                                  group=self.group, id=run_id, resume="allow", config=config, dir=str(self.out))
        self.floor = int(getattr(run, "step", 0) or 0)  # resumed online: the steps it has are below this
        return str(run.id)

    def log(self, step: int, row: dict) -> None:
        assert self.run is not None
        if step >= self.floor:
            self.run.log(_scalars(row), step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()


class Trackio(WandB):
    """trackio (W&B's API, local-first): project $TRACKIO_PROJECT or "llmhist", resumed by run name."""

    name = "trackio"
    module = "trackio"

    def start(self, config: dict, run_id: str | None) -> str:
        lib = importlib.import_module(self.module)
        self.run = lib.init(project=os.environ.get("TRACKIO_PROJECT", "llmhist"), name=run_id or self.out.name,
                            group=self.group, config=config, resume="allow")
        return str(getattr(self.run, "name", None) or run_id or self.out.name)


CLASSES: dict[str, type] = {"tensorboard": TensorBoard, "wandb": WandB, "trackio": Trackio}


class Mirror:
    """The trackers of one run folder, with their run ids and last steps sent (runfolder.TRACKERS)."""

    def __init__(self, out: Path, trackers: list, note: Callable[[str], None]):
        self.out, self.trackers, self.note = out, trackers, note
        self.record = rf.read_trackers(out)  # what trackers.json says: the steps each tracker surely has
        self.sent: dict[str, int | None] = {}  # the last step sent in this process

    def start(self, config: dict) -> None:
        for t in list(self.trackers):
            had = self.record.get(t.name, {})
            run_id = self._call(t, "start", config, had.get("run_id"))
            if run_id is not None:
                self.record[t.name] = {"run_id": run_id, "last_step": had.get("last_step")}
                self.sent[t.name] = had.get("last_step")
        self._save()

    def log(self, rows: list[dict]) -> None:
        """Send each tracker the rows after the last step it has (all rows at a start or resume)."""
        durable = False
        for t in list(self.trackers):
            last = self.sent[t.name]
            for row in rows:
                if (last is None or row["step"] > last) and t in self.trackers:
                    if self._call(t, "log", row["step"], row) is not False:
                        self.sent[t.name] = last = row["step"]
                        durable |= t.durable
        if durable:
            self._save()

    def finish(self) -> None:
        """Each tracker's finish; then every step sent is recorded as had."""
        for t in list(self.trackers):
            if self._call(t, "finish") is not False:
                self.record[t.name]["last_step"] = self.sent[t.name]
        self.trackers = []
        self._save()

    def _call(self, t, what: str, *args):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # trackio prints banners; stdout may hold --json
                got = getattr(t, what)(*args)
            return True if got is None else got
        except Exception as e:  # a tracker's failure never stops the run or loses a local row
            self.trackers.remove(t)
            self.note(f"--logger {t.name}: {what} failed ({type(e).__name__}: {e}); this tracker is off for the "
                      f"rest of the run; {rf.METRICS} and {rf.SUMMARY} are complete")
            return False

    def _save(self) -> None:
        for t in self.trackers:
            if t.durable:
                self.record[t.name]["last_step"] = self.sent[t.name]
        if self.record:
            rf.write_trackers(self.out, self.record)


class NoMirror:
    """--logger none: nothing is sent."""

    def log(self, rows: list[dict]) -> None:
        pass

    def finish(self) -> None:
        pass


def open_mirror(out: Path, spec: str, config: dict, note: Callable[[str], None]) -> Mirror | NoMirror:
    """The started trackers of run folder `out` for `--logger spec` (NoMirror for none); a run of a sweep
    or ablation (run.json names its folder) is grouped under that folder's name."""
    if spec == NONE:
        return NoMirror()
    group = None
    if (out / rf.RUN).exists():
        sweep = rf.read_request(out).sweep
        group = Path(sweep).name if sweep else None
    mirror = Mirror(out, [CLASSES[n](out, group) for n in spec.split(",")], note)
    mirror.start(config)
    return mirror
