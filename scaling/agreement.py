"""Whether recommendations from several fits of one data set agree within their intervals.

Approaches 1, 2 and 3 fitted on the same runs each give N_opt (and D_opt) with a bootstrap
interval. Each interval measures only its own method's noise, so two that do not overlap say the
methods disagree by more than that noise: a systematic difference (a biased envelope, a budget at
the grid's edge, a parametric form that does not fit) that no single interval shows. Pure Python.
"""

from __future__ import annotations

from ..core.numbers import human


def disjoint_pairs(rows: list[dict], key: str = "N_opt") -> list[tuple[dict, dict]]:
    """Pairs of rows (recommend.recommend's dicts, one budget) whose `key` intervals do not overlap;
    rows without an interval for `key` (published laws, fits without a bootstrap) take no part."""
    with_iv = [r for r in rows if r.get(f"{key}_interval")]
    out = []
    for i, a in enumerate(with_iv):
        for b in with_iv[i + 1:]:
            (alo, ahi), (blo, bhi) = a[f"{key}_interval"], b[f"{key}_interval"]
            if ahi < blo or bhi < alo:
                out.append((a, b))
    return out


def disagreement_flag(rows: list[dict], keys: tuple[str, ...] = ("N_opt", "D_opt")) -> str | None:
    """One FLAG sentence when any two fitted recommendations disagree beyond their intervals, naming
    each pair with its values; None when every pair overlaps (or fewer than two carry intervals)."""
    parts = []
    for key in keys:
        for a, b in disjoint_pairs(rows, key):
            parts.append(f"{key} {a['law']} {_iv(a, key)} vs {b['law']} {_iv(b, key)}")
    if not parts:
        return None
    return ("the fitted recommendations disagree beyond their intervals (" + "; ".join(parts) + "): each "
            "interval is its own method's noise only, so the methods differ systematically on this data; "
            "read each fit's FLAGs, and take the spread between methods, not one interval, as the uncertainty")


def _iv(r: dict, key: str) -> str:
    lo, hi = r[f"{key}_interval"]
    return f"{human(r[key])} [{human(lo)}, {human(hi)}]"
