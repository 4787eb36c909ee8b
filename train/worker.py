"""The worker: trains the runs requested in run folders, one after another in one process.

    python -m llmhist.train.worker RUN_DIR [RUN_DIR ...] [--log-dir DIR]

Each RUN_DIR holds run.json = {"config": TrainConfig.to_dict(), ...}, written by whoever asked for
the run (`llmhist train`, a sweep, `llmhist study`, `llmhist ablate`). The sweep's local queue and
its Slurm array both start this module (never the command line), so the small runs of one budget
share one process start-up and one loaded corpus. A run resumes from its own folder.

Exit code: 0 every run finished (or is held by another live process), 3 a run diverged,
2 a run was refused (bad request: the message says which and why), 1 a bug (traceback kept),
130 interrupted (Ctrl-C): the worker stops at once and the run is resumable, not failed.
With --log-dir, each run's output goes to DIR/NAME.log and a run that fails leaves DIR/NAME.failed
({"exit", "error", "log_tail"}), which `llmhist sweep status` shows; an interrupted run leaves none.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.files import Locked, write_json
from . import runfolder as rf
from .config import TrainConfig
from .runfolder import EXIT_BUG, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER, Interrupted


def write_request(run_dir: str | Path, cfg: TrainConfig, **extra) -> Path:
    """Write RUN_DIR/run.json asking for `cfg` (its `out` is the run folder); `extra`: the other
    fields of runfolder.RunRequest (sweep, plan_hash, budget, group)."""
    return rf.write_request(run_dir, rf.RunRequest(cfg.to_dict(), **extra))


def read_request(run_dir: str | Path) -> TrainConfig:
    """The validated TrainConfig of RUN_DIR/run.json; a missing, unreadable or wrong file is a RunError."""
    req = rf.read_request(run_dir)
    return TrainConfig.from_dict(req.config, source=str(Path(run_dir) / rf.RUN))


def summary_line(cfg: TrainConfig, summary: dict) -> str:
    """The one line a finished run reports (train CLI and worker logs alike): the loss (and, on
    synthetic data, its floor and the gap to it), N (and the active N of an MoE), D, the time and
    one throughput: the median tok/s and MFU of the run's evaluations."""
    s = summary
    bpb, floor = s.get("val_bpb"), s.get("entropy_eval_nats_per_token") or s.get("entropy_nats_per_token")
    active = s.get("N_active")
    tps, mfu = s.get("tokens_per_s"), s.get("mfu")
    return (f"done {cfg.out}: val loss {s['val_loss']:.4f} nats/token"
            + (f" ({bpb:.3f} bits/byte)" if bpb else "")
            + (f", floor {floor:.3f}, gap {s['val_loss'] - floor:.2f}" if floor else "")
            + f", N {s['N']:,}" + (f" ({active:,} active)" if active and active != s["N"] else "")
            + f", D {s['D']:,}, {s['wall_s']:.1f} s"
            + (f", {tps:,.0f} tok/s" if tps else "") + (f", MFU {mfu:.1%}" if mfu else ""))


class _CorpusCache:
    """Keep each loaded corpus for the life of the process, keyed by its data settings, so the runs
    of one group load their data once. Installed around llmhist.train.data.load (the loop calls
    it through the module). TODO(h2): a corpus hook in the loop would make this patch unnecessary."""

    def __init__(self) -> None:
        self.cache: dict = {}
        self.orig: Any = None

    def __enter__(self):
        from . import data

        self.orig = data.load

        def load(data_="stdlib", tokenizer="bytes", token_dtype="uint16", vocab_size=None):
            key = (data_, tokenizer, token_dtype, vocab_size)
            if key not in self.cache:
                self.cache[key] = self.orig(data_, tokenizer, token_dtype, vocab_size)
            return self.cache[key]

        setattr(data, "load", load)  # noqa: B010 (the same signature, memoised; mypy sees a Callable swap)
        return self

    def __exit__(self, *exc):
        from . import data

        data.load = self.orig
        return False


def _run_one(run_dir: Path, log_dir: Path | None) -> int:
    from rich.console import Console

    from . import loop

    log = None
    name = run_dir.name
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "a", buffering=1)
        console = Console(file=log, width=160, force_terminal=False, soft_wrap=True)
    else:
        console = Console(soft_wrap=True)

    def failed(code: int, msg: str) -> int:
        console.print(msg, markup=False, highlight=False)
        if log_dir is not None and log is not None:
            log.flush()
            tail = (log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
            write_json(log_dir / f"{name}{rf.FAILED}", {"exit": code, "error": msg.strip().splitlines()[-1],
                                                    "log_tail": tail})
        return code

    try:
        if log_dir is not None:
            (log_dir / f"{name}{rf.FAILED}").unlink(missing_ok=True)
        cfg = read_request(run_dir)
        summary = loop.train(cfg, console=console)
        if not summary.get("already"):
            console.print(summary_line(cfg, summary), markup=False, highlight=False)
        return EXIT_OK
    except Locked as e:  # another live process trains this run: it is running, not failed
        console.print(f"skipped: {e}", markup=False, highlight=False)
        return EXIT_OK
    except (Interrupted, KeyboardInterrupt) as e:  # stopped by a signal: resumable, so no failure marker
        console.print(f"interrupted: {str(e) or 'before training started'}", markup=False, highlight=False)
        return EXIT_INTERRUPTED
    except loop.Diverged as e:
        console.print(f"diverged: {e}", markup=False, highlight=False)  # summary.json says so; not a failure
        return EXIT_DIVERGED
    except UserError as e:
        if getattr(e, "exit_code", EXIT_USER) == EXIT_DIVERGED:
            console.print(f"diverged: {e}", markup=False, highlight=False)
            return EXIT_DIVERGED
        return failed(getattr(e, "exit_code", EXIT_USER), f"error: {e}")
    except Exception:  # a bug: keep the whole traceback in the run's log
        return failed(EXIT_BUG, traceback.format_exc())
    finally:
        if log is not None:
            log.close()


def run_dirs(dirs: list[str] | list[Path], log_dir: str | Path | None = None) -> int:
    """Train each requested run in turn in this process; returns the worker's exit code (0 ok,
    3 a run diverged, 2 a run was refused, 1 a bug, 130 interrupted: the runs after it are left
    pending). What a Slurm array task calls (submitit pickles it)."""
    codes = []
    with _CorpusCache():
        for d in dirs:
            codes.append(_run_one(Path(d), Path(log_dir) if log_dir is not None else None))
            if codes[-1] == EXIT_INTERRUPTED:
                return EXIT_INTERRUPTED
    for code in (EXIT_BUG, EXIT_USER, EXIT_DIVERGED):
        if code in codes:
            return code
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m llmhist.train.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="+", help="run folders, each holding run.json")
    p.add_argument("--log-dir", default=None, help="write each run's output to DIR/NAME.log")
    a = p.parse_args(argv)
    return run_dirs(a.run_dirs, a.log_dir)


if __name__ == "__main__":
    sys.exit(main())
