"""Sweeps: plan the runs scaling laws are fitted to, run them (locally in parallel, or on Slurm
through submitit), stop and restart without losing work. One module per job:

    plan       the plan as data (RunSpec, SweepPlan and its hash), each run's TrainConfig, the
               folder's plan.json and run requests, and every run's state (status)
    shapes     model shapes, shared by sweeps and ablations; the isoFLOP centre
    planners   isoFLOP, ladder and TOML-grid plans
    estimate   the time model
    local      the local queue (worker processes, processes x threads, Ctrl-C, the folder lock)
    slurm      a Slurm job array through submitit

Both launchers start the worker (`python -m llmhist.train.worker`, or
`llmhist.train.worker.run_dirs` in a Slurm task), never the command line. The same command again
skips finished runs, resumes interrupted ones and retries failed ones when asked; a folder of
another plan is refused, and a folder another sweep is running is refused (its lock).
"""

from __future__ import annotations

from ..runfolder import EXIT_DIVERGED, EXIT_INTERRUPTED, Interrupted
from .estimate import estimate_seconds, measured_peak, run_seconds, time_model
from .local import (
    LAUNCHERS,
    SWEEP_LOCK,
    best_split,
    check_launch,
    check_workers,
    choose_split,
    queue_items,
    run_local,
)
from .plan import (
    MIN_STEPS,
    PLAN_VERSION,
    RunSpec,
    SweepPlan,
    check_common,
    check_folder,
    load_plan,
    prepare,
    run_config,
    runs_to_launch,
    status,
    write_requests,
)
from .planners import (
    DEFAULT_BUDGETS,
    check_run_name,
    default_budgets,
    isoflop_range,
    plan_grid,
    plan_isoflop,
    plan_ladder,
    plan_sweep,
)
from .shapes import family_ladder
from .slurm import submit_slurm

__all__ = [
    "measured_peak",
    "DEFAULT_BUDGETS", "EXIT_DIVERGED", "EXIT_INTERRUPTED", "LAUNCHERS", "MIN_STEPS", "PLAN_VERSION", "SWEEP_LOCK",
    "Interrupted", "RunSpec", "SweepPlan", "best_split", "check_common", "check_folder", "check_launch",
    "check_run_name",
    "check_workers", "choose_split", "default_budgets", "estimate_seconds", "family_ladder", "isoflop_range",
    "load_plan", "plan_grid", "plan_isoflop", "plan_ladder", "plan_sweep", "prepare", "queue_items", "run_config", "run_local",
    "run_seconds", "runs_to_launch", "status", "submit_slurm", "time_model", "write_requests",
]
