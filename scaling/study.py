"""`llmhist study` as a library: a small real scaling study end to end, in four steps a screen (or
a notebook) calls in turn.

A `Study` is the request (family, isoFLOP budgets, sizes per budget, context, batch, data,
bootstrap resamples, the budget to recommend for, the folder, plots, worker split), checked whole
on construction before any run starts; its defaults are llmhist.train.defaults'. Then:
`plan` (the isoFLOP sweep and its time estimate, llmhist.train.sweep), `split` and `run` (the
local queue; resumable), `fit` (every law the points support, with intervals: llmhist.scaling.pipeline), `plots`
and `recommend` (the compute-optimal allocation of the published laws and of the fitted ones; a
fitted law with no allocation, its exponent a <= 0, is left out and the refusal returned).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..train import defaults as D
from ..train.config import RunError

MAX_FLOPS = 1e30  # a typo guard for --flops


@dataclass(frozen=True)
class Study:
    arch: str = D.ARCH
    budgets: tuple[float, ...] = D.STUDY_BUDGETS
    points: int = D.STUDY_POINTS
    ctx: int = D.STUDY_CTX
    batch: int = D.STUDY_BATCH
    data: str = D.DATA
    bootstrap: int = D.STUDY_BOOTSTRAP
    flops: float | None = None  # the budget to recommend for; None: STUDY_RECOMMEND_FACTOR x the largest
    out: Path | None = None  # None: runs/study-<arch>
    plot: str = "files"
    workers: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        from ..train import sweep as S
        from ..train.config import usable_cores

        if self.plot not in D.PLOTS:
            raise RunError(f"--plot {self.plot!r}: use {', '.join(D.PLOTS)}")
        if self.bootstrap < 0:
            raise RunError(f"--bootstrap {self.bootstrap}: must be >= 0 (0: no intervals)")
        if not self.budgets:
            raise RunError("--budgets: give comma-separated numbers, e.g. 1e11,3e11,1e12")
        if not (math.isfinite(self.C) and 0 < self.C <= MAX_FLOPS):
            raise RunError(f"--flops {self.flops}: give a positive, finite compute budget in FLOPs, e.g. 1e13")
        S.check_workers(self.workers, self.threads, usable_cores())

    @property
    def folder(self) -> Path:
        return self.out or Path(D.OUT_ROOT) / f"study-{self.arch}"

    @property
    def fits_dir(self) -> Path:
        return self.folder / "fits"

    @property
    def C(self) -> float:
        """The compute budget the recommendation is for."""
        return D.STUDY_RECOMMEND_FACTOR * max(self.budgets) if self.flops is None else self.flops


def plan(study: Study) -> tuple[Any, list[float], str]:
    """(the isoFLOP sweep plan, estimated seconds per run, how they were estimated)."""
    from ..train import sweep as S

    p = S.plan_isoflop([study.arch], list(study.budgets), study.points, D.STUDY_SPREAD, study.ctx, study.batch,
                       common={"data": study.data, "tokenizer": D.TOKENIZER, "seed": D.SEED})
    secs, how = S.estimate_seconds(p)
    return p, secs, how


def split(study: Study, sweep_plan: Any, gpus: list[int]) -> tuple[int, int | None, str]:
    """(worker processes, threads each, how they were chosen) for the local queue."""
    from ..train import sweep as S

    return S.choose_split(sweep_plan, study.workers, study.threads, gpus)


def run(study: Study, sweep_plan: Any, secs: list[float], workers: int, threads: int | None, gpus: list[int],
        on_tick=None) -> list[dict]:
    """Run (or resume) the sweep on this machine; every run's status row."""
    from ..train import sweep as S

    return S.run_local(study.folder, sweep_plan, workers, threads, on_tick=on_tick, gpus=gpus,
                       est={r.name: s for r, s in zip(sweep_plan.runs, secs) if s == s})


def fit(study: Study) -> tuple[Any, list]:
    """(the fit options, the fitted groups) of the study's folder, written under fits/."""
    from .pipeline import Options, run_fits

    opt = Options(bootstrap=study.bootstrap)
    return opt, run_fits(str(study.folder), opt, out=str(study.fits_dir))


def plots(study: Study, group: Any) -> tuple[list[str], str | None]:
    """(plot files written, a terminal plot or None) of one fitted group, as --plot asks."""
    if study.plot == "none" or not any(r.path for r in group.results):
        return [], None
    from .plots import terminal_plot, write_plots

    done = [r.to_dict() for r in group.results]
    files = write_plots(done, group.points, group.out)
    return files, terminal_plot(done, group.points) if study.plot == "terminal" else None


def recommend(study: Study, fits: list) -> tuple[list[dict], list[str]]:
    """(the compute-optimal allocation at study.C of the published laws and of the fitted ones, the
    refusals): a fitted law that is no law (its N_opt exponent a <= 0, say) is left out, saying why."""
    from . import laws as L
    from .recommend import recommend as rec

    fit_files = [Path(r.path) for g in fits for r in g.results
                 if r.path and r.law in ("chinchilla", "isoflop", "envelope")]
    chosen, refused = [L.get(n) for n in L.DEFAULT_LAWS], []
    for f in fit_files:
        try:
            chosen.append(L.load(f))
        except L.LawError as e:
            refused.append(str(e))
    return [rec(law, C=study.C) for law in chosen], refused


def loss_note(data: str) -> str:
    """What the study's loss is a loss of."""
    if data == "stdlib":
        return "This study's loss is in nats per byte of Python source (the standard library)."
    if data.startswith("markov"):
        return "This study's loss is in nats per token of a synthetic Markov source (its entropy is the floor)."
    return f"This study's loss is in nats per token of {data}."
