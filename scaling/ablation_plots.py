"""An ablation's figures: the frontiers of all variants with their bands, the CEG of each comparison
along history (bars with intervals), and the frontiers in the terminal (plotext).
"""

from __future__ import annotations

from pathlib import Path

from ..train.ablate import AblationError


# ----------------------------------------------------------------------- plots
def write_plots(result: dict, out: str | Path, fmt: str = "png") -> list[str]:
    """Two figures: the frontiers of all variants with their bands on one loss-against-compute plot,
    and the CEG of each comparison along history (bars with intervals, log scale, 1x marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if fmt not in ("png", "svg"):
        raise AblationError(f"--plot {fmt!r}: png, svg or terminal")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for vid, f in result["frontiers"].items():
        if "error" in f:
            continue
        ax.plot(f["C"], f["loss"], marker="o", label=vid)
        ax.fill_between(f["C"], f["band"][0], f["band"][1], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("compute C = 6ND (FLOPs)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.set_title(f"frontiers: {result['base']} -> {result['target']} ({result['mode']})")
    ax.legend(fontsize=7)
    written.append(_save_fig(plt, fig, out / f"ablation-frontiers.{fmt}", fmt))
    rows = [r for r in result["comparisons"] if "budgets" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(rows) * len(result["budgets"])), 4.5))
        nb = max(len(r["budgets"]) for r in rows)
        w = 0.8 / nb
        for j in range(nb):
            xs, ys, lo, hi = [], [], [], []
            for i, r in enumerate(rows):
                if j < len(r["budgets"]):
                    b = r["budgets"][j]
                    xs.append(i + (j - (nb - 1) / 2) * w)
                    ys.append(b["ceg"])
                    lo.append(max(b["ceg"] - b["interval"][0], 0))
                    hi.append(max(b["interval"][1] - b["ceg"], 0))
            C = rows[0]["budgets"][j]["C"] if j < len(rows[0]["budgets"]) else None
            # bars grow from the 1x line (no gain), up for a gain and down for a loss (first-hour C17)
            ax.bar(xs, [y - 1 for y in ys], w, yerr=[lo, hi], capsize=3, label=f"C={C:.2g}" if C else None, bottom=1)
        ax.axhline(1, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([_row_label(r) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("compute-equivalent gain (x)")
        ax.set_title("CEG of each change, along history (90% intervals)")
        ax.legend(fontsize=7)
        written.append(_save_fig(plt, fig, out / f"ablation-ceg.{fmt}", fmt))
    return written


def _save_fig(plt, fig, p: Path, fmt: str) -> str:
    """Write one figure atomically (the temporary keeps the suffix) and close it."""
    from ..core.files import atomic_path

    with atomic_path(p) as tmp:
        fig.savefig(tmp, format=fmt, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return str(p)


def _row_label(r: dict) -> str:
    if r.get("total"):
        return "total"
    ys = sorted({c["year"] for c in r["changes"]})
    return f"{r['change']} ({ys[0]}{'-' + str(ys[-1]) if len(ys) > 1 else ''})"


def terminal_plot(result: dict) -> str:
    """The frontiers of every variant, drawn in the terminal with plotext."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(80, 22)
    plt.xscale("log")
    for vid, f in result["frontiers"].items():
        if "error" in f:
            continue
        plt.plot(f["C"], f["loss"], marker="dot", label=vid)
    plt.title(f"frontiers: {result['base']} -> {result['target']}")
    plt.xlabel("C (FLOPs)")
    plt.ylabel("loss")
    return plt.build()
