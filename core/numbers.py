"""Numbers as people read them: 1.23M parameters, 3.1e+21 FLOPs, 4.5 GiB, RoPE 5e5, a 128k context.
Used by report rows (llmhist.core.report) and by the command line alike. No heavy imports."""

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


def short_sci(x: float) -> str:
    """500000 -> '5e5', 12500 -> '1.25e4', 64 -> '64' (up to 3 significant digits; no '+', no zeros)."""
    if x == 0 or 0.1 <= abs(x) < 1000:
        return f"{x:.3g}"
    mantissa, exp = f"{x:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"


def tokens_len(n: int | None) -> str:
    """A context length as people say it: 2048 -> '2k', 131072 -> '128k' (binary k), 10485760 -> '10M'
    (binary M), 512 -> '512'."""
    if n is None:
        return "n/a"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    return f"{n // 1024}k" if n >= 1024 and n % 1024 == 0 else f"{n:,}"
