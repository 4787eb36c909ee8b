"""The learning-rate schedule and the evaluation schedule of a run, as pure functions of the step.

One vocabulary (`Schedule`): what a recipe may name (llmhist.archs.catalogue's Recipe.schedule,
checked by the resolve step) is what `lr_at` runs. Linear warmup, then cosine to min_ratio x peak
at the last step (its length = the run's: the Chinchilla correction), warmup-stable-decay (WSD:
linear decay over the last `decay` of the steps, with branches that leave the stable phase to end
a shorter run), or constant. No torch.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

Schedule = Literal["cosine", "wsd", "constant"]
SCHEDULES: tuple[str, ...] = typing.get_args(Schedule)
# evaluation (issue 10: it was ~a quarter of a nano run's wall time): EVAL_POINTS geometric points by
# default, each scoring every EVAL_SUBSET-th validation window; the last scores all of them
EVAL_POINTS = 10
EVAL_SUBSET = 4


def lr_at(step: int, steps: int, peak: float, warmup: int, schedule: str, min_ratio: float, decay: float) -> float:
    """Linear warmup, then cosine to min_ratio*peak at the last step (its length = the run's: the
    Chinchilla correction), or warmup-stable-decay (linear decay over the last `decay` of steps)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    if schedule == "wsd":
        start = steps - max(1, round(decay * steps))
        if step < start:
            return peak
        frac = (step - start + 1) / max(1, steps - start)
        return peak * (1 - (1 - min_ratio) * frac)
    frac = (step - warmup) / max(1, steps - 1 - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def warmup_steps(warmup_frac: float, steps: int) -> int:
    """Warmup as steps: a fraction of the run, at least one step when there is any."""
    return max(1, round(warmup_frac * steps)) if warmup_frac > 0 else 0


def branch_points(fractions: list[float], steps: int, warmup: int, decay: float) -> list[tuple[float, int, int]]:
    """(fraction f, horizon steps S_f, branch step b_f) per WSD branch: the branch leaves the stable
    phase at b_f and decays over the last `decay` of its own horizon S_f, so b_f must come after the
    warmup. The fractions are TrainConfig.branch_fractions(), already checked to lie in (0, 1)."""
    from .config import RunError  # config imports this module's vocabulary

    out = []
    for f in fractions:
        S = round(f * steps)
        b = S - max(1, round(decay * S))
        if b < max(1, warmup):
            raise RunError(f"--branches {f:g}: a branch must be a fraction in (0, 1) whose decay starts after "
                           f"the warmup ({warmup} steps); this one would start at step {b}")
        out.append((f, S, b))
    return out


def eval_schedule(steps: int, every: int | None = None, points: int = EVAL_POINTS) -> list[int]:
    """The steps after which the run evaluates: every `every` steps when given, otherwise `points`
    steps spaced geometrically (dense early, where the loss moves, sparse late; evenly spaced in
    log D, as the envelope fit reads the curves); the last step always."""
    if every:
        got = set(range(every, steps + 1, every))
    else:
        got = {max(1, round(steps ** (i / points))) for i in range(1, points + 1)}
    return sorted(got | {steps})
