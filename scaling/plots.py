"""Plots of fits: matplotlib PNG + SVG files, and the main plot in the terminal with plotext.

matplotlib is imported here only (Agg backend, no display needed), so `llmhist fit` without
plots never pays for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.files import atomic_path
from . import laws as L


def _registry_points() -> list[tuple[str, float, float]]:
    """(name, N, D) of the registry's flagship models with published N and D."""
    from ..archs.accounting import params
    from ..archs.registry import ENTRIES

    out = []
    for e in ENTRIES:  # catalogue entries: published figures, and .arch (None where unpublished)
        if e.train_tokens and e.flagship:
            N = e.published_params or (params(e.arch).total if e.arch is not None else None)
            if N:
                out.append((e.name, float(N), float(e.train_tokens)))
    return out


def _law_from(result: dict):
    p = result["params"]
    return L.Chinchilla("fit", p["E"], p["A"], p["B"], p["alpha"], p["beta"],
                        samples=tuple(tuple(r) for r in result.get("bootstrap_samples", ())))


def _save(fig, out: Path, name: str) -> list[str]:
    paths = []
    for ext in ("png", "svg"):
        p = out / f"{name}.{ext}"
        with atomic_path(p) as tmp:  # the temporary keeps the suffix matplotlib reads the format from
            fig.savefig(tmp, dpi=130, bbox_inches="tight")
        paths.append(str(p))
    return paths


def _legend_outside(ax) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _sparse_log_labels(ax) -> None:
    """An x axis on a log scale spanning about a decade labels every minor tick, and the labels
    collide (`3×10⁴4×10⁴`): label minors at 2 and 5 only there, and none on wider axes."""
    from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, NullFormatter

    lo, hi = ax.get_xlim()
    if np.log10(hi / lo) >= 2:
        ax.xaxis.set_minor_formatter(NullFormatter())
        return
    sci = LogFormatterSciNotation(labelOnlyBase=False)
    sci.set_axis(ax.xaxis)

    def label(x, pos=None):
        m = x / 10 ** np.floor(np.log10(x) + 1e-9)
        return sci(x, pos) if min(abs(m - 2), abs(m - 5)) < 1e-6 else ""
    ax.xaxis.set_minor_formatter(FuncFormatter(label))


def _budgets(pts):
    """(labels, groups): nominal budget per point (NaN: off-budget) and the budgets present."""
    from .points import group_exact

    b = pts.budget if pts.budget is not None else group_exact(pts.C)
    return b, np.unique(b[np.isfinite(b)])


def _plot_isoflop(plt, by: dict, pts, chin, out: Path) -> list[str]:
    """IsoFLOP curves with their parabolas and minima."""
    N, Lo = pts.N, pts.loss
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    labels, groups = _budgets(pts)
    cmap = plt.get_cmap("viridis")
    minima = {round(np.log10(m["C"]), 3): m for m in by["isoflop"]["minima"]}
    for i, g in enumerate(groups):
        sel = labels == g
        col = cmap(i / max(1, len(groups) - 1))
        Cg = float(g)
        m = minima.get(round(np.log10(Cg), 3))
        ax.scatter(N[sel], Lo[sel], color=col, s=18, label=f"C = {Cg:.2g} FLOPs" + ("" if m else " (refused)"),
                   alpha=1.0 if m else 0.35)
        if m:
            lo_, hi_ = m.get("window_N", [N[sel].min(), N[sel].max()])
            xs = np.linspace(np.log(lo_), np.log(hi_), 100)
            c2, c1, c0 = m["parabola"]
            ax.plot(np.exp(xs), c2 * xs**2 + c1 * xs + c0, color=col, lw=1)
            ax.scatter([m["N_opt"]], [m["loss_min"]], color=col, marker="*", s=120, edgecolor="k", zorder=3)
    ax.set_xscale("log")
    _sparse_log_labels(ax)
    ax.set(xlabel="parameters N", ylabel="loss (nats/token)",
           title="isoFLOP curves (Approach 2): local parabolas, minima starred")
    _legend_outside(ax)
    written = _save(fig, out, "isoflop")
    plt.close(fig)
    return written


def _plot_frontier(plt, by: dict, pts, chin, out: Path) -> list[str]:
    """Loss against compute, with the fitted frontier and its bootstrap band."""
    N, D, Lo = pts.N, pts.D, pts.loss
    C = 6 * N * D
    crange = (C.min(), C.max())
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.axvspan(*crange, color="0.92", zorder=0, label="fitted range of C")
    ax.scatter(C, Lo, s=14, color="0.5", label="runs")
    cg = np.geomspace(C.min() / 3, C.max() * 30, 80)
    ax.plot(cg, [chin.optimum(c)["loss"] for c in cg], color="C3", label="Approach 3 frontier L(N_opt, D_opt)")
    if chin.samples:
        sm = np.array([[L.Chinchilla("s", *s).optimum(c)["loss"] for c in cg] for s in chin.samples[:300]])
        lo, hi = np.percentile(sm, [10, 90], axis=0)
        ax.fill_between(cg, lo, hi, color="C3", alpha=0.2, label="10-90% bootstrap band")
    ax.axhline(chin.E, color="k", ls=":", lw=1, label=f"E = {chin.E:.3f}")
    ent = getattr(pts, "entropy", None)
    if ent is not None:
        iv = by["chinchilla"].get("intervals", {}).get("E")
        ax.axhline(ent, color="C2", ls="--", lw=1.2, label=f"true entropy H = {ent:.3f}")
        if iv:
            ax.axhspan(iv[0], iv[1], color="k", alpha=0.08, label="E 10-90% interval")
    ax.set_xscale("log")
    ax.set(xlabel="compute C = 6ND (FLOPs)", ylabel="loss (nats/token)", title="loss against compute")
    _legend_outside(ax)
    written = _save(fig, out, "frontier")
    plt.close(fig)
    return written


def _plot_optimal(plt, by: dict, pts, chin, out: Path) -> list[str]:
    """N_opt and D_opt against C, with the registry's historical models placed on it. This data's
    fitted lines stop FIT_REACH decades past its compute (an extrapolation beyond that is not drawn);
    the published laws span the whole axis."""
    N, D = pts.N, pts.D
    C = 6 * N * D
    crange = (C.min(), C.max())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    reg = _registry_points()
    cg = np.geomspace(min(C.min(), 1e10), 1e26, 100)
    cf = np.geomspace(C.min() / 10, min(C.max() * 10**FIT_REACH, 1e26), 60)
    for ax, key, idx, ylab in ((axes[0], "N_opt", 1, "parameters N"), (axes[1], "D_opt", 2, "tokens D")):
        for name, law in (("Hoffmann et al. 2022", L.get("hoffmann2022")), ("Epoch AI 2024", L.get("epoch2024"))):
            ax.plot(cg, [law.optimum(c)[key] for c in cg], lw=1, ls="--", label=name)
        if chin is not None:
            ax.plot(cf, [chin.optimum(c)[key] for c in cf], color="C3", lw=2, label="this fit (Approach 3)")
        for law_name, colour in (("isoflop", "C4"), ("envelope", "C5")):
            if law_name in by:
                p = by[law_name]["params"]
                e, k = (p["a"], p["k_N"]) if key == "N_opt" else (p["b"], p["k_D"])
                ax.plot(cf, k * cf**e, color=colour, lw=1.5, label=f"this fit ({law_name})")
        if "isoflop" in by:
            ms = by["isoflop"]["minima"]
            ax.scatter([m["C"] for m in ms], [m[key] for m in ms], marker="*", s=80, color="C4", zorder=3)
        _place_models(ax, [(name, 6 * Nr * Dr, (Nr, Nr, Dr)[idx]) for name, Nr, Dr in reg])
        ax.axvspan(*crange, color="0.9", zorder=0, label="fitted range of C")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(xlabel="compute C (FLOPs)", ylabel=ylab, title=f"{key} against compute")
    h, lab = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(h, lab, fontsize=7, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0), frameon=False)
    written = _save(fig, out, "optimal")
    plt.close(fig)
    return written


FIT_REACH = 3  # decades past the data's largest C that a fitted line is drawn


def _place_models(ax, models: list[tuple[str, float, float]], dx: float = 1.8, dy: float = 0.4) -> None:
    """Each model a dot; its name only where no name already sits within dx decades of C and dy
    decades of the value (the 1e23-1e25 cluster would pile names on each other)."""
    placed: list[tuple[float, float]] = []
    for name, x, y in sorted(models, key=lambda m: -m[2]):  # largest first: the flagships keep their names
        ax.scatter([x], [y], s=12, color="k", zorder=3)
        lx, ly = np.log10(x), np.log10(y)
        if all(abs(lx - px) > dx or abs(ly - py) > dy for px, py in placed):
            ax.annotate(name, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
            placed.append((lx, ly))


def _plot_contours(plt, by: dict, pts, chin, out: Path) -> list[str]:
    """Approach 3 loss contours over (N, D), the compute-optimal line and isoFLOP lines."""
    N, D = pts.N, pts.D
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    n = np.geomspace(N.min() / 4, N.max() * 4, 120)
    d = np.geomspace(D.min() / 4, D.max() * 4, 120)
    NN, DD = np.meshgrid(n, d)
    # scales and limits first: clabel cuts each label's gap in the line in display space, and a
    # later switch to log axes moves the labels off their gaps (labels struck through)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(n.min(), n.max())
    ax.set_ylim(d.min(), d.max())
    cs = ax.contour(NN, DD, chin.loss(NN, DD), levels=14, cmap="magma", linewidths=0.8)
    ax.clabel(cs, fontsize=6, inline=True, inline_spacing=4, fmt="%.2f")
    cg = np.geomspace(6 * n.min() * d.min(), 6 * n.max() * d.max(), 50)
    ax.plot([chin.n_opt(c) for c in cg], [chin.d_opt(c) for c in cg], color="C0", lw=2, label="compute-optimal")
    ax.scatter(N, D, s=10, color="0.3", label="runs")
    ax.set(xlabel="parameters N", ylabel="tokens D", title="Approach 3: loss contours (nats/token)")
    _legend_outside(ax)
    written = _save(fig, out, "contours")
    plt.close(fig)
    return written


def write_plots(results: list[dict], pts, out: str | Path) -> list[str]:
    """The fit's plots as PNG + SVG in out: isoFLOP curves, loss against compute, N_opt and D_opt
    against compute (with the registry's models), and Approach 3's loss contours; the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by = {r["law"]: r for r in results if r.get("params")}
    chin = _law_from(by["chinchilla"]) if "chinchilla" in by else None
    written: list[str] = []
    if "isoflop" in by:
        written += _plot_isoflop(plt, by, pts, chin, out)
    if chin is not None:
        written += _plot_frontier(plt, by, pts, chin, out)
    if by:
        written += _plot_optimal(plt, by, pts, chin, out)
    if chin is not None:
        written += _plot_contours(plt, by, pts, chin, out)
    return written


def log_ticks(values) -> list[float]:
    """Tick positions for a log axis over values: the powers of ten inside their range, or 1-2-5
    steps where fewer than two decades fit (plotext's own ticks print 13431200.0)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    for steps in ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)):
        ticks = [m * 10.0**k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                 for m in steps if lo <= m * 10.0**k <= hi]
        if len(ticks) >= 3:
            return ticks[:: max(1, len(ticks) // 7)]
    return [lo, hi]


def terminal_plot(results: list[dict], pts) -> str:
    """The main plot drawn in the terminal: isoFLOP curves if fitted, else loss against compute."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")  # no background colours: readable on any terminal and in logs
    plt.plotsize(80, 22)
    N, D, Lo = pts.N, pts.D, pts.loss
    C = 6 * N * D
    by = {r["law"]: r for r in results if r.get("params")}
    plt.xscale("log")
    if "isoflop" in by:
        labels, groups = _budgets(pts)
        for g in groups:
            sel = labels == g
            order = np.argsort(N[sel])
            plt.plot(N[sel][order].tolist(), Lo[sel][order].tolist(), marker="dot", label=f"C={g:.2g}")
        ms = by["isoflop"]["minima"]
        plt.scatter([m["N_opt"] for m in ms], [m["loss_min"] for m in ms], marker="x", label="minima")
        plt.title("isoFLOP curves: loss against N (log)")
        plt.xlabel("N")
    else:
        plt.scatter(C.tolist(), Lo.tolist(), label="runs")
        if "chinchilla" in by:
            law = _law_from(by["chinchilla"])
            cg = np.geomspace(C.min(), C.max(), 40)
            plt.plot(cg.tolist(), [law.optimum(c)["loss"] for c in cg], label="frontier")
        plt.title("loss against compute C (log)")
        plt.xlabel("C")
    plt.ylabel("loss")
    ticks = log_ticks(N if "isoflop" in by else C)
    plt.xticks(ticks, [f"{t:.0e}".replace("e+0", "e").replace("e+", "e") for t in ticks])
    return plt.uncolorize(plt.build())  # no escape codes in a pipe or a log
