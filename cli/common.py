"""Shared CLI helpers: number formatting, JSON output, clean errors. No heavy imports."""

from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def human(x: float | None, unit: str = "") -> str:
    """1234567 -> '1.23M'; None -> 'n/a'."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    for div, suf in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suf}{unit}"
    return f"{x:.3g}{unit}"


def sci(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def nbytes(x: float | None) -> str:
    if x is None:
        return "n/a"
    for div, suf in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if x >= div:
            return f"{x / div:.3g} {suf}"
    return f"{x:.0f} B"


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def fail(msg: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {msg}", soft_wrap=True)  # no hard line breaks inside paths
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """Turn the library's input errors into a clear message and exit code 2 (no traceback)."""
    from llmhist.archs.registry import UnknownArch
    from llmhist.archs.spec import SpecError

    from llmhist.errors import UserError

    try:
        yield
    except (UserError, UnknownArch, SpecError, ValueError, FileNotFoundError, KeyError) as e:  # FitError is a ValueError
        fail(str(e).strip("'\""), code=getattr(e, "exit_code", 2))
