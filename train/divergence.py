"""The divergence rule: when a run counts as diverged (checkable from metrics.csv), and the error
that says so (its own exit code: a diverged run is a result, kept out of fits, not a bug)."""

from __future__ import annotations

import math

from .runfolder import EXIT_DIVERGED, RunError

# the divergence rule (see diverged_reason)
DIVERGE_MARGIN_NATS = 1.0
DIVERGE_EVALS = 3


class Diverged(RunError):
    """The run diverged (see diverged_reason); its summary says so and it stays out of fits."""

    exit_code = EXIT_DIVERGED


def diverged_reason(val_losses: list[float], vocab_size: int, last: bool = False) -> str | None:
    """The divergence rule, checkable from metrics.csv: a run has diverged when a loss is not
    finite, or when its validation loss is more than DIVERGE_MARGIN_NATS (1 nat) above the lower of
    ln(vocab) (the loss of an untrained, uniform model) and its best validation loss so far, at
    DIVERGE_EVALS (3) consecutive evaluations or at the last evaluation. Returns why, or None."""
    if not val_losses:
        return None
    v = val_losses[-1]
    if not math.isfinite(v):
        return f"validation loss became {v}"
    ref = math.log(vocab_size)
    run = 0
    best = math.inf
    for x in val_losses:
        best = min(best, x)
        run = run + 1 if x > min(ref, best) + DIVERGE_MARGIN_NATS else 0
    if run >= DIVERGE_EVALS or (run and last):
        floor = min(ref, best)
        return (f"validation loss {v:.4g} is more than {DIVERGE_MARGIN_NATS:g} nat above min(ln vocab, best so far) "
                f"= {floor:.4g} at {run} consecutive evaluation{'s' if run > 1 else ''}"
                + (" including the last" if last and run < DIVERGE_EVALS else ""))
    return None
