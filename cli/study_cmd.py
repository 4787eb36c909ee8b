"""`llmhist study`: the README's main job. A small real scaling study end to end: an isoFLOP sweep
of one family on the embedded corpus, the fits with intervals, the recommendation they give, and
the plots. It composes the other commands (sweep, fit, recommend) exactly as a user would type them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console


def register(app: typer.Typer) -> None:
    def invoke(args: list[str]) -> None:
        from typer.main import get_command

        console.rule(f"[bold]llmhist {' '.join(args)}")
        rc = get_command(app).main(args=args, prog_name="llmhist", standalone_mode=False)
        if rc not in (None, 0):
            raise typer.Exit(rc)

    @app.command()
    def study(
        arch: Annotated[str, typer.Option("--arch", "-a", help="family to study")] = "llama",
        budgets: Annotated[str, typer.Option(help="isoFLOP budgets (FLOPs)")] = "1e11,3e11,1e12",
        points: Annotated[int, typer.Option(help="model sizes per budget")] = 5,
        ctx: Annotated[int, typer.Option(help="sequence length")] = 64,
        batch: Annotated[int, typer.Option(help="sequences per step")] = 32,
        data: Annotated[str, typer.Option(help="as for `llmhist train` (default: the stdlib corpus)")] = "stdlib",
        bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the fits")] = 200,
        flops: Annotated[Optional[float], typer.Option(help="budget to recommend for (default: 10x the largest)")] = None,
        out: Annotated[Optional[Path], typer.Option(help="sweep folder (default runs/study-<arch>)")] = None,
        plot: Annotated[str, typer.Option(help="files, terminal or none")] = "files",
    ) -> None:
        """A small scaling study end to end: sweep, fits, recommendation, plots (minutes on a laptop CPU)."""
        folder = out or Path("runs") / f"study-{arch}"
        fits = folder / "fits"
        invoke(["sweep", "--arch", arch, "--budgets", budgets, "--points", str(points), "--ctx", str(ctx),
                "--batch", str(batch), "--data", data, "--out", str(folder), "--yes"])
        invoke(["fit", str(folder), "--bootstrap", str(bootstrap), "--out", str(fits), "--plot", plot])
        C = flops or 10 * max(float(b) for b in budgets.split(","))
        fit_files = [str(p) for p in sorted(fits.glob(f"{folder.name}-*.json")) if not p.name.endswith("kaplan.json")]
        invoke(["recommend", "--flops", f"{C:g}", *[x for f in fit_files for x in ("--fit", f)]])
        console.print("[dim]The published laws' losses are for their own data and tokenizer (MassiveText, 32k "
                      "SentencePiece); only their N/D split carries over. This study's loss is nats per byte of "
                      "Python source.[/]")
        pngs = sorted(fits.glob("*.png"))
        console.rule("[bold]done")
        console.print(f"runs: {folder}   fits: {fits}", soft_wrap=True)
        if pngs:
            console.print("plots:\n" + "\n".join(f"  {p}" for p in pngs) + "\n  (SVG beside each)", soft_wrap=True)
