"""Numbers as people read them: 1.23M parameters, 3.1e+21 FLOPs, 4.5 GiB. Used by report rows
(llmhist.archs.report) and by the command line alike. No heavy imports."""

from __future__ import annotations

import math


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
