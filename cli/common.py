"""Shared CLI helpers: number formatting, JSON output, user text printed literally (`say`) or
wrapped on words (`note`), clean errors, the launch options sweep and ablate share, the group whose
default command is `run`, comma-separated numbers. No heavy imports."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from ..core.numbers import human, nbytes, sci  # noqa: F401  (re-exported for the commands)

# The launch options `sweep` and `ablate` share (each command keeps its own default); checked by
# llmhist.train.sweep.check_launch before any work.
LauncherOpt = Annotated[str, typer.Option(help="local (the sweep queue: worker processes on this machine) or slurm "
                                               "(a job array via submitit)")]
WorkersOpt = Annotated[int | None, typer.Option(help="local: worker processes at once (1 to the cores; default: "
                                                     "measured best split)")]
ThreadsOpt = Annotated[int | None, typer.Option(help="local: threads per process (default: measured best split)")]
RetryFailedOpt = Annotated[bool, typer.Option(help="run failed runs again")]
PartitionOpt = Annotated[str | None, typer.Option(help="slurm partition")]
TimeOpt = Annotated[int, typer.Option("--time", help="slurm time limit per run, minutes")]
GpusPerJobOpt = Annotated[int, typer.Option(help="slurm GPUs per run")]
CpusPerJobOpt = Annotated[int | None, typer.Option(help="slurm CPUs per run")]
MaxConcurrentOpt = Annotated[int, typer.Option(help="slurm array: runs at once")]
# --logger of train, sweep and ablate: the help text is TrainConfig's field (llmhist.train.config, no heavy imports)
LOGGER_HELP = ("mirror metrics to experiment trackers: none (default), tensorboard, wandb, trackio, or several joined "
               "by commas (extras of the same names; metrics.csv stays the record)")
LoggerOpt = Annotated[str, typer.Option(help=LOGGER_HELP)]
JSON_HELP = "print JSON only (no tables) on stdout"  # the one meaning of --json (main.py gives it to any bare --json)
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

console = Console()
err_console = Console(stderr=True)


class DefaultGroup(TyperGroup):
    """A command group whose first argument, when it names none of its commands, goes to its
    `run` command (`llmhist sweep --arch gpt2` is `llmhist sweep run --arch gpt2`)."""

    default = "run"

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def floats(s: str | None, what: str) -> list[float]:
    """Comma-separated numbers of option `what` ([] for none); a RunError naming the option otherwise."""
    import math

    from ..train.config import RunError

    if not s:
        return []
    try:
        out = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise RunError(f"{what} {s!r}: give comma-separated numbers, e.g. 1e11,3e11,1e12") from None
    if not out or any(not math.isfinite(x) for x in out):
        raise RunError(f"{what} {s!r}: give comma-separated finite numbers, e.g. 1e11,3e11,1e12")
    return out


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def say(msg: str, style: str | None = None, err: bool = False) -> None:
    """Print user text literally (a path holding `[/x]`, a hint `pip install 'llmhist[slurm]'`): never as markup."""
    (err_console if err else console).print(Text(msg, style=style or ""), soft_wrap=True)


def note(msg: str, style: str | None = None, err: bool = False) -> None:
    """Print a sentence (a note after a table, a FLAG) literally, wrapped on words at the console's
    width (80 columns in a pipe); a path goes on a line of its own, through `say`."""
    (err_console if err else console).print(Text(msg, style=style or ""), overflow="fold")


def fail(msg: str, code: int = 2) -> NoReturn:
    t = Text("error: ", style="bold red")
    t.append(msg)  # literal: user text is never parsed as markup
    err_console.print(t, soft_wrap=True)  # no hard line breaks inside paths
    raise typer.Exit(code)


def oserror_message(e: OSError) -> str:
    """One line for a failed read or write: which file, what the system said, and what to do."""
    import errno

    if e.errno is None:  # raised with a message of its own (e.g. "not a run folder ...")
        return str(e)
    where = e.filename or "a file"
    if e.filename2:
        where = f"{e.filename} -> {e.filename2}"
    if e.errno == errno.ENOSPC:
        dev = _device_of(e.filename)
        return (f"no space left on {dev} while writing {where}; the previous state is intact, free space and run "
                "the same command")
    if e.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {where}; the previous state is intact, free space and run again"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        kind = "a read-only file system" if e.errno == errno.EROFS else "not writable/readable by you"
        return f"{where}: {e.strerror} ({kind}); choose a folder you can write to (e.g. --out) or fix its permissions"
    if e.errno == errno.ENOENT:
        return f"{where}: no such file or folder"
    return f"{where}: {e.strerror or e}"


def _device_of(path) -> str:
    import os

    if not path:
        return "the device"
    p = os.path.abspath(os.fspath(path))
    best = ""
    try:
        with open("/proc/mounts") as f:
            for line in f:
                mnt = line.split()[1]
                if (p == mnt or p.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                    best = mnt
    except OSError:
        pass
    return f"the device holding {best}" if best else "the device"


def error_text(e: BaseException) -> str:
    """An error's message exactly as written: never trimmed, so a hint ending in a quote
    (`pip install -e '.[export]'`) can be pasted into a shell as printed."""
    return e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e)


@contextmanager
def user_errors():
    """Turn input errors (llmhist.core.errors.UserError, with its exit code) and failed file operations
    (OSError) into one clear line; anything else is a bug and keeps its traceback (exit 1)."""
    from ..core.errors import UserError

    try:
        yield
    except UserError as e:
        fail(error_text(e), getattr(e, "exit_code", 2))
    except OSError as e:
        fail(oserror_message(e))
