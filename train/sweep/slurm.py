"""Slurm: the sweep's unfinished runs as one job array through submitit, each task the worker on
one run folder (llmhist.train.worker.run_dirs); `llmhist sweep status` follows them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ...core.files import exclusive_lock, write_json
from ..config import RunError
from .local import owner
from .plan import LOGS, SweepPlan, prepare, runs_to_launch, write_requests


def submit_slurm(folder: Path, plan: SweepPlan, partition: str | None, time_min: int, gpus_per_job: int,
                 max_concurrent: int, cpus_per_job: int | None = None, retry_failed: bool = False) -> list[str]:
    """Submit the unfinished runs as one Slurm job array through submitit (each task calls
    llmhist.train.worker.run_dirs on one run folder); returns job ids."""
    try:
        import submitit
    except ImportError as e:
        raise RunError("--launcher slurm needs submitit: pip install 'llmhist[slurm]' "
                       "(from a checkout: pip install -e '.[slurm]')") from e
    for name, v, lo in (("--time", time_min, 1), ("--max-concurrent", max_concurrent, 1), ("--gpus-per-job",
                                                                                            gpus_per_job, 0)):
        if v < lo:
            raise RunError(f"{name} {v}: must be >= {lo}")
    if cpus_per_job is not None and cpus_per_job < 1:
        raise RunError(f"--cpus-per-job {cpus_per_job}: must be >= 1")
    folder = Path(folder)
    from ..worker import run_dirs

    with exclusive_lock(folder, f"{owner(plan)} --launcher slurm (pid {os.getpid()})"):
        prepare(folder, plan)
        todo = runs_to_launch(folder, plan, retry_failed)
        if not todo:
            return []
        dirs = write_requests(folder, plan, todo, cpus_per_job)
        ex = submitit.AutoExecutor(folder=str(folder / "slurm" / "%j"), cluster="slurm")
        params = {"timeout_min": time_min, "slurm_array_parallelism": max_concurrent, "name": f"llmhist-{folder.name}"}
        if partition:
            params["slurm_partition"] = partition
        if gpus_per_job:
            params["gpus_per_node"] = gpus_per_job
        if cpus_per_job:
            params["cpus_per_task"] = cpus_per_job
        ex.update_parameters(**params)
        jobs = ex.map_array(run_dirs, [[str(d)] for d in dirs], [str(folder / LOGS)] * len(dirs))
        ids = [j.job_id for j in jobs]
        write_json(folder / LOGS / "slurm.json", {"jobs": dict(zip([r.name for r in todo], ids)),
                                                    "submitted": time.time()})
        return ids
