"""What the commands that fit and recommend show (fit, recommend, study): each fitted group with its
laws' tables, notes and FLAGs, and the compute-optimal allocation table. Shared CLI views, no work.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table
from rich.text import Text

from ..core.numbers import human, sci
from .common import console, note, say


def with_interval(r: dict, key: str, fmt: Callable[[float], str] = human) -> str:
    """r[key] formatted, with r[key + "_interval"] in brackets where r has one; n/a without a value."""
    if r.get(key) is None:
        return "n/a"
    v = fmt(r[key])
    if key + "_interval" in r:
        lo, hi = r[key + "_interval"]
        v += f" [{fmt(lo)}, {fmt(hi)}]"
    return v


def recommendation_table(rows: list[dict], as_written: bool = True) -> Table:
    """The compute-optimal allocation under each law (with its interval where it has one); with
    as_written, each Kaplan row's (C_min = C) reading under it."""
    t = Table(title="compute-optimal allocation", header_style="bold")
    for c in ("law", "C (FLOPs)", "N_opt", "D_opt", "tokens/param", "loss"):
        t.add_column(c, justify="left" if c == "law" else "right", no_wrap=c in ("law", "C (FLOPs)"))
    for r in rows:
        t.add_row(Text(r["law"]), sci(r["C"]), with_interval(r, "N_opt"), with_interval(r, "D_opt"),
                  with_interval(r, "tokens_per_param", lambda v: f"{v:.1f}"),
                  with_interval(r, "loss", lambda v: f"{v:.3f}"))
        if as_written and "as_written" in r:
            w = r["as_written"]
            t.add_row(f"  {r['law']} (C_min = C)", sci(w["C"]) if w["C"] != r["C"] else "", human(w["N_opt"]),
                      human(w["D_opt"]), f"{w['D_opt'] / w['N_opt']:.1f}", "")
    return t


def value_interval(v: float | None, iv: list | tuple | None) -> str:
    """v with its interval in brackets (n/a for no value)."""
    return "n/a" if v is None else f"{v:.3g}" + (f" [{iv[0]:.3g}, {iv[1]:.3g}]" if iv else "")


def print_group(g, opt) -> None:
    """One group's fits: where they come from and go, each law's table (its file on a line of its
    own), why a table has no intervals, and every FLAG; sentences wrap on words."""
    from ..scaling.pipeline import group_notes

    pts = g.points
    head = f"{pts.group_label}: " if pts.group_label else ""
    note(f"{head}{len(pts.N)} points (N: {pts.conventions['N']}, C: {pts.conventions['C']}"
         + (f", loss: {pts.conventions['loss']}" if pts.curves else "") + ")", style="bold")
    say(f"  from {pts.source}")
    say(f"  -> {g.out}")
    for n in group_notes(g):
        note(f"note: {n}", style="yellow")
    note(f"budgets: {pts.budget_note}")
    for r in g.results:
        if r.skipped is not None:
            note(f"{r.law} not fitted: {r.skipped}", style="yellow")
            continue
        console.print(_law_table(r))
        say(f"  -> {r.path}")
        if r.interval_note():
            note(f"{r.law}: {r.interval_note()}", style="dim")
        _print_entropy(r)
        if r.law == "isoflop":
            note(f"isoFLOP: {len(r.details['minima'])} budget(s) kept, {len(r.details['refused'])} refused; "
                 f"parabola window: {r.details['window']}")
            for ref in r.details.get("refused", []):
                note(f"budget C={ref['C']:.3g} ({ref['n_points']} points) left out: {ref['reason']}", style="yellow")
        for fl in r.flags:
            note(f"FLAG {r.law}: {fl}", style="bold red")


def _law_table(r) -> Table:
    bs = r.bootstrap
    surv = f", bootstrap {bs['survived']}/{bs['requested']} refits" if bs else ""
    t = Table(title=f"{r.law} fit ({r.n_points} points{surv})", header_style="bold")
    # no interval column where there are none (a note under the table says why)
    for c in ("parameter", "value", "interval (10th-90th pct)")[:3 if r.intervals else 2]:
        t.add_column(c, justify="right")
    for k, v in r.params.items():
        iv = r.intervals.get(k)
        t.add_row(k, f"{v:.4g}", *([f"[{iv[0]:.4g}, {iv[1]:.4g}]" if iv else "-"] if r.intervals else []))
    for k, v in r.details.get("goodness", {}).items():
        t.add_row(k, f"{v:.4g}")
    for k, v in r.details.get("held_out", {}).items():
        t.add_row(f"held-out {k}", f"{v:.4g}")
    ent = r.details.get("entropy")
    if ent:
        iv = ent["E_interval"]
        t.add_row("true entropy H", f"{ent['H_nats_per_token']:.4g}",
                  *(["inside E's interval" if ent["H_in_E_interval"] else "OUTSIDE E's interval"] if iv else []))
        if ent.get("eval_floor_nats_per_token") is not None:
            t.add_row("eval-set floor", f"{ent['eval_floor_nats_per_token']:.4g}",
                      *(["inside E's interval" if ent["reference_in_E_interval"] else "OUTSIDE E's interval"]
                        if iv else []))
    return t


def _print_entropy(r) -> None:
    ent = r.details.get("entropy")
    if not ent:
        return
    iv = ent["E_interval"]
    note(f"E = {ent['E']:.4f}" + (f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "")
         + f" against the source's true entropy H = {ent['H_nats_per_token']:.4f} nats/token "
         f"(E - H = {ent['E_minus_H']:+.4f})"
         + (f" and the evaluated tokens' exact floor {ent['eval_floor_nats_per_token']:.4f} "
            f"(E - floor = {ent['E_minus_reference']:+.4f}; E is compared with the floor)"
            if ent.get("compared_with") == "eval_floor" else ""))
