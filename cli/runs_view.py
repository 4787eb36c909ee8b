"""What the commands that run sweeps show (sweep, study, ablate): the plan table, the status table
and the live progress display, and the GPUs a local queue may use. Shared CLI views, no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from .common import console, err_console, human, say

if TYPE_CHECKING:
    from rich.live import Live


STATE_STYLE = {"finished": "green", "running": "cyan", "diverged": "red", "failed": "red", "interrupted": "yellow"}


def plan_table(plan, secs, how):
    from rich.table import Table

    finite = [x for x in secs if x == x]  # the time model (`how`) is the sweep's --verbose line (first-hour K1)
    est = f", est. {sum(finite) / 60:.1f} min" if finite else ""
    t = Table(title=Text(f"{plan.kind} sweep: {len(plan.runs)} runs{est}"), header_style="bold")
    for c in ("run", "group", "N", "D", "C", "tokens/param", "est. time"):
        t.add_column(c, justify="left" if c in ("run", "group") else "right", no_wrap=c == "run")
    for r, s in zip(plan.runs, secs):
        tpp = f"{r.tokens_per_param:.1f}"
        if r.branches:  # WSD decay branches end at these fractions of the run's tokens
            tpp += " (+" + ", ".join(f"{float(f) * r.tokens_per_param:.3g}" for f in r.branches.split(",")) + ")"
        t.add_row(Text(r.name), Text(r.group), human(r.N), human(r.tokens), f"{r.C:.3g}", tpp,
                  "n/a" if s != s else f"{s:.0f} s")
    return t


def status_table(rows, title):
    from rich.table import Table

    t = Table(title=Text(str(title)), header_style="bold")
    for c in ("run", "N", "D", "state", "progress", "val loss", "error"):
        t.add_column(c, justify="left" if c in ("run", "state", "error") else "right", no_wrap=c == "run")
    for r in rows:
        prog = f"{r['step'] or 0}/{r['steps']}" if r["steps"] else "-"
        err = str(r["error"] or "")
        t.add_row(Text(r["run"]), human(r["N"]), human(r["D"]), Text(r["state"], style=STATE_STYLE.get(r["state"], "")),
                  prog, "-" if r["val_loss"] is None else f"{r['val_loss']:.4f}", Text(err[:80]))
    return t


class Progress:
    """On a terminal a live table; piped, one line per run whose state changed."""

    def __init__(self, folder, err: bool = False):
        self.folder, self.err = folder, err  # err: stdout is kept for --json
        self.seen: dict[str, tuple] = {}
        self.live: Live | None = None

    def __enter__(self) -> Progress:
        from rich.live import Live

        out = err_console if self.err else console
        if out.is_terminal:
            self.live = Live(Text(f"starting {self.folder}"), console=out, refresh_per_second=2)
            self.live.__enter__()
        self.tick()
        return self

    def tick(self):
        from ..core.errors import UserError
        from ..train import sweep as S

        try:
            rows = S.status(self.folder)
        except UserError:  # no plan.json yet: the sweep writes it once it holds the folder
            return
        if self.live is not None:
            self.live.update(status_table(rows, self.folder))
            return
        done = sum(r["state"] in ("finished", "diverged", "failed") for r in rows)
        for r in rows:
            key = (r["state"], r["step"] if r["state"] == "running" else None)
            if self.seen.get(r["run"]) != key and (r["run"] in self.seen or r["state"] != "pending"):
                extra = f" val loss {r['val_loss']:.4f}" if r["val_loss"] is not None else ""
                extra += f" step {r['step']}/{r['steps']}" if r["state"] == "running" and r["steps"] else ""
                extra += f": {r['error']}" if r["error"] else ""
                say(f"[{done}/{len(rows)} done] {r['run']} {r['state']}{extra}", err=self.err)
            self.seen[r["run"]] = key

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False


def gpus() -> list[int]:
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
