"""A sweep's plan as data: the runs (RunSpec), the plan (SweepPlan) with its hash, each run's full
TrainConfig, and the sweep folder's plan.json and run requests.

A sweep is a folder: plan.json (the plan and its hash), one run folder per run (its run.json is the
run's request, llmhist.train.runfolder.RunRequest: its full TrainConfig, the plan's hash, its
nominal budget and group) and logs/. The same options plan the same runs, so the same command on
the same folder resumes; a folder of another plan is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...core.files import write_json
from .. import runfolder as rf
from .. import runstate
from ..config import RunError, TrainConfig

PLAN_VERSION = 1  # of plan.json (and of an ablation's plan, its meta)
MIN_STEPS = 4  # optimizer steps every run of a plan gets at least
PLAN = "plan.json"
LOGS = "logs"


@dataclass(frozen=True)
class RunSpec:
    name: str
    arch: str
    d_model: int
    n_layers: int
    n_heads: int
    tokens: int
    N: int  # total parameters (6N convention, embeddings included)
    C: float  # 6 N D, this run's compute
    group: str = ""  # budget label (isoFLOP) or size label (ladder)
    schedule: str = "cosine"
    branches: str = ""  # wsd: extra horizons (fractions of tokens), each a decay branch of this run
    options: dict = field(default_factory=dict, hash=False, compare=False)  # a grid run's own TrainConfig options
    # the nominal isoFLOP budget this run belongs to (None off a budget): saved in plan.json and each
    # run's request, not hashed (the planner derives it from the same options as the runs)
    budget: float | None = None

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.N


def _spec_dict(r: RunSpec, hashed: bool = False) -> dict:
    d = asdict(r)
    if not d["options"]:
        del d["options"]  # plans without per-run options hash as they always did
    if hashed or d["budget"] is None:
        del d["budget"]  # plans hash as they did before the budget was recorded
    return d


@dataclass
class SweepPlan:
    kind: str  # isoflop | ladder | grid | ablation
    runs: list[RunSpec]
    common: dict = field(default_factory=dict)  # options every run shares (ctx, batch, data, seed, ...)
    # what a planner adds for its own reading (an ablation's variants and comparisons); saved in
    # plan.json, not hashed: the runs (with their options) are what identify a plan
    meta: dict = field(default_factory=dict)

    def hash(self) -> str:
        common = {k: v for k, v in self.common.items() if k != "logger"}  # --logger changes no number
        d = {"version": PLAN_VERSION, "kind": self.kind, "common": common,
             "runs": [_spec_dict(r, hashed=True) for r in self.runs]}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        d = {"version": PLAN_VERSION, "kind": self.kind, "common": self.common,
             "runs": [_spec_dict(r) for r in self.runs], "hash": self.hash()}
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = PLAN) -> SweepPlan:
        try:
            return cls(kind=d["kind"], runs=[RunSpec(**r) for r in d["runs"]], common=dict(d["common"]),
                       meta=dict(d.get("meta") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(f"{source}: not a sweep plan ({type(e).__name__}: {e}); give a folder `llmhist sweep` "
                           "wrote, or plan it again into a new --out") from None

    def config(self, folder: str | Path, r: RunSpec, threads: int | None = None) -> TrainConfig:
        """The full, validated TrainConfig of one run of this plan in `folder`."""
        return run_config(folder, r, self.common, threads)

    def check(self) -> SweepPlan:
        """Distinct run folders, and every run's TrainConfig valid (before anything runs)."""
        names = [r.name for r in self.runs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise RunError(f"two runs would share the folder {dup[0]}; give distinct budgets/sizes")
        for r in self.runs:
            self.config("sweep", r)
        return self


def run_config(folder: str | Path, r: RunSpec, common: dict, threads: int | None = None) -> TrainConfig:
    d = {k: v for k, v in common.items() if k != "vocab"}
    d.update(arch=r.arch, size=None, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads, tokens=r.tokens,
             flops=None, schedule=r.schedule, branches=r.branches or None)
    d.update(r.options)
    d["out"] = str(Path(folder) / r.name)
    if threads:
        d["threads"] = threads
    return TrainConfig.from_dict(d, source=f"run {r.name}")


def check_common(archs: list[str], ctx: int, batch: int, common: dict | None) -> None:
    """The options every run shares get TrainConfig's checks before any planning."""
    if not archs:
        raise RunError("--arch '': give a family, or several: gpt2,llama")
    for arch in archs:
        TrainConfig.from_dict({**{k: v for k, v in (common or {}).items() if k != "vocab"}, "arch": arch, "ctx": ctx,
                               "batch": batch, "out": "sweep"}, source="the sweep's options")


# ------------------------------------------------------------------------- the folder


def _read_plan_json(pj: Path) -> dict:
    """plan.json as an object. Damaged, it is refused with how to recover: the finished runs beside
    it are intact, so the advice is never to delete the folder."""
    try:
        doc = json.loads(pj.read_text())
        why = None if isinstance(doc, dict) else f"a JSON {type(doc).__name__}, not an object"
        if why is None and not {"hash", "runs"} <= set(doc):  # `{}` is a damaged plan, not another one
            why = "it lacks the plan's " + " and ".join(k for k in ("hash", "runs") if k not in doc)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        why = str(e)
    if why is None:
        return doc
    raise RunError(f"{pj}: unreadable ({why}); the run folders beside it are intact. Restore plan.json from a copy, "
                   f"or move it away and run the command that made the folder again with --out {pj.parent} (the same "
                   "options plan the same runs: the finished ones are kept and the rest resume)")


def prepare(folder: Path, plan: SweepPlan) -> dict:
    """Write plan.json, or check the folder holds this same plan."""
    folder = Path(folder)
    d = plan.to_dict()
    pj = folder / PLAN
    if pj.exists():
        old = _read_plan_json(pj)
        if old.get("hash") != d["hash"]:
            raise RunError(f"{folder} holds another sweep plan (hash {old.get('hash')}, this one {d['hash']}); "
                           "use another --out, or the same options as before")
    else:
        # without plan.json the folder may hold only this plan's own runs (a plan.json moved away)
        own = {r.name for r in plan.runs} | {LOGS, "slurm", "fits"}
        foreign = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name not in own) \
            if folder.exists() else []
        if foreign:
            raise RunError(f"{folder}: exists and holds files but no plan.json ({', '.join(foreign[:3])}); give a new "
                           "--out")
        write_json(pj, d)
    (folder / LOGS).mkdir(parents=True, exist_ok=True)
    return d


def check_folder(folder: Path) -> None:
    """A sweep's --out, checked before any work (reliability F14): a folder, or a path not there yet."""
    if Path(folder).exists() and not Path(folder).is_dir():
        raise RunError(f"--out {folder}: a file, not a folder; give a new folder (or a sweep folder to resume)")


def load_plan(folder: Path) -> SweepPlan:
    pj = Path(folder) / PLAN
    if not Path(folder).is_dir():
        raise RunError(f"{folder}: no such folder; give a folder `llmhist sweep` (or `ablate`, `study`) wrote")
    if not pj.exists():
        raise RunError(f"{folder}: no plan.json; give a folder `llmhist sweep` wrote")
    return SweepPlan.from_dict(_read_plan_json(pj), source=str(pj))


def write_requests(folder: Path, plan: SweepPlan, runs: list[RunSpec], threads: int | None = None) -> list[Path]:
    """Each run's run.json (its full TrainConfig, nominal budget and group) in its folder; returns the run folders."""
    h = plan.hash()
    dirs = []
    for r in runs:
        cfg = plan.config(folder, r, threads)
        rf.write_request(folder / r.name, rf.RunRequest(cfg.to_dict(), sweep=str(folder), plan_hash=h, budget=r.budget,
                                                        group=r.group or None))
        dirs.append(folder / r.name)
    return dirs


def status(folder: Path) -> list[dict]:
    """Every run's row: name, arch, N, D, C, group and its state (runfolder.run_state)."""
    folder = Path(folder)
    plan = load_plan(folder)
    return [{"run": r.name, "arch": r.arch, "N": r.N, "D": r.tokens, "C": r.C, "group": r.group,
             **runstate.run_state(folder / r.name).row()} for r in plan.runs]


def runs_to_launch(folder: Path, plan: SweepPlan, retry_failed: bool = False) -> list[RunSpec]:
    """What either launcher starts: runs not finished, diverged or running elsewhere (a live
    process holds the run's lock or reports progress); failed runs only when asked (their marker is
    cleared then). Interrupted runs resume from their checkpoint."""
    todo = []
    for r in plan.runs:
        state = runstate.run_state(folder / r.name).state
        if state in ("finished", "diverged", "running") or (state == "failed" and not retry_failed):
            continue
        runstate.failed_marker(folder / r.name).unlink(missing_ok=True)
        todo.append(r)
    return todo
