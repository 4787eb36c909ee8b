"""Ctrl-C during training: the first one asks the loop to stop at the next step boundary, where the
run's state is whole and is written as a checkpoint (so a run stopped before its first timed
checkpoint loses nothing); a second one stops at once. And the command that resumes the run, as
the messages of an interrupted run give it. No torch here."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any


class StopAtStepEnd:
    """The first Ctrl-C (in the main thread) asks the loop to stop at the end of the step, where it
    writes a checkpoint; a second one stops at once (KeyboardInterrupt, the last checkpoint kept)."""

    def __init__(self, note) -> None:
        self.note, self.asked = note, False
        self.old: Any = None

    def __enter__(self) -> StopAtStepEnd:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        self.note("interrupted: stopping at the end of this step with a checkpoint (Ctrl-C again to stop at once)")

    def __exit__(self, *exc) -> None:
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


def resume_command() -> str:
    """The command line that started this process, as a user would type it again."""
    argv = sys.argv[:]
    if not argv or not argv[0] or argv[0] == "-c":
        return "the same command"
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:  # python -m MODULE
        head = ["python", "-m", spec.name.removesuffix(".__main__")]
    else:
        head = [Path(argv[0]).name if Path(argv[0]).name == "llmhist" else argv[0]]
    return shlex.join(head + argv[1:])
