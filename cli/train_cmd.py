"""`llmhist train`, `llmhist export`, `llmhist bench`: thin wrappers over llmhist.train."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..train import defaults as D
from .common import console, fail, print_json, say, user_errors


def _opt(name: str) -> Any:
    """The typer.Option of TrainConfig field `name`: its flag(s) and help text, declared once there
    (tests/test_config.py checks that these parameters are exactly the fields, with their defaults)."""
    from ..train.config import option_meta

    m = option_meta(name)
    return typer.Option(*([m["flag"]] + ([m["short"]] if m.get("short") else [])), help=m["help"])


def default_out(arch: str, size: str | None, d_model: int | None, n_layers: int | None, n_heads: int | None,
                seed: int, n_kv_heads: int | None = None, data: str = D.DATA) -> str:
    """runs/ARCH-SIZE-sSEED, with the data when it is not the default (first-hour C16: a run on
    other data gets its own folder instead of "holds a different run")."""
    import re

    shape = f"d{d_model}-l{n_layers}-h{n_heads}" + (f"-kv{n_kv_heads}" if n_kv_heads else "") if d_model else D.SIZE
    slug = "" if data == D.DATA else "-" + (re.sub(r"[^A-Za-z0-9.=]+", "-", data).strip("-.")[:40] or "data")
    return str(Path(D.OUT_ROOT) / f"{arch}-{size or shape}-s{seed}{slug}")


def train(
    arch: Annotated[str, _opt("arch")] = D.ARCH,
    size: Annotated[str | None, _opt("size")] = None,
    d_model: Annotated[int | None, _opt("d_model")] = None,
    n_layers: Annotated[int | None, _opt("n_layers")] = None,
    n_heads: Annotated[int | None, _opt("n_heads")] = None,
    n_kv_heads: Annotated[int | None, _opt("n_kv_heads")] = None,
    tokens: Annotated[float | None, _opt("tokens")] = None,
    flops: Annotated[float | None, _opt("flops")] = None,
    data: Annotated[str, _opt("data")] = D.DATA,
    tokenizer: Annotated[str, _opt("tokenizer")] = D.TOKENIZER,
    token_dtype: Annotated[str, _opt("token_dtype")] = D.TOKEN_DTYPE,
    vocab_size: Annotated[int | None, _opt("vocab_size")] = None,
    ctx: Annotated[int, _opt("ctx")] = D.CTX,
    batch: Annotated[int, _opt("batch")] = D.BATCH,
    micro_batch: Annotated[int | None, _opt("micro_batch")] = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    warmup: Annotated[float | None, _opt("warmup")] = None,
    schedule: Annotated[str | None, _opt("schedule")] = None,
    decay: Annotated[float, _opt("decay")] = D.WSD_DECAY,
    branches: Annotated[str | None, _opt("branches")] = None,
    seed: Annotated[int, _opt("seed")] = D.SEED,
    eval_every: Annotated[int | None, _opt("eval_every")] = None,
    eval_batches: Annotated[int, _opt("eval_batches")] = D.EVAL_BATCHES,
    device: Annotated[str, _opt("device")] = D.DEVICE,
    threads: Annotated[int | None, _opt("threads")] = None,
    compile: Annotated[bool | None, _opt("compile")] = None,
    remat: Annotated[bool, _opt("remat")] = False,
    peak_flops: Annotated[float | None, _opt("peak_flops")] = None,
    out: Annotated[str | None, _opt("out")] = None,
    logger: Annotated[str, _opt("logger")] = "none",
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Train one model with its family's recipe; resumable (the same command continues a killed run)."""
    opts = dict(locals())  # first: the options above, by name, which are TrainConfig's fields
    del opts["json_out"]
    from ..train.config import TrainConfig

    opts["out"] = out or default_out(arch, size, d_model, n_layers, n_heads, seed, n_kv_heads, data)
    with user_errors():
        cfg = TrainConfig(**opts)  # every check happens here, as for a grid or a Python caller
        from ..train.loop import Diverged
        from ..train.loop import train as run_train
        from ..train.runfolder import EXIT_DIVERGED, EXIT_INTERRUPTED

        try:
            summary = run_train(cfg, console=None if json_out else console)
        except Diverged as e:  # a run that diverged is a result, not a bug: its own exit code
            fail(str(e), code=EXIT_DIVERGED)
        except KeyboardInterrupt:
            fail(f"interrupted; {cfg.out} keeps its last checkpoint: the run is resumable, run the same command again",
                 code=EXIT_INTERRUPTED)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    if json_out:
        print_json(summary)
    elif not summary.get("already"):
        from ..train.worker import summary_line

        say(summary_line(cfg, summary), style="green")


def export(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder")],
    out_dir: Annotated[Path, typer.Argument(help="where to write the transformers folder")],
) -> None:
    """Write a folder transformers loads (config.json + model.safetensors): AutoModelForCausalLM.from_pretrained,
    or AutoModelForSeq2SeqLM for T5."""
    from ..train.export import export as do_export

    with user_errors():
        info = do_export(run_dir, out_dir)
    say(f"exported {run_dir} -> {out_dir} ({info['model_type']}, {info['params']:,} parameters); load it with "
        f"transformers.{info['loader']}.from_pretrained({str(out_dir)!r})", style="green")


def bench(
    arch: Annotated[str, _opt("arch")] = D.ARCH,
    size: Annotated[str | None, typer.Option(help="named size (nano, micro, mini, small, base) or a registry name; "
                                                  "replaces the shape")] = None,
    d_model: Annotated[int | None, _opt("d_model")] = D.BENCH_D_MODEL,
    n_layers: Annotated[int | None, _opt("n_layers")] = D.BENCH_N_LAYERS,
    n_heads: Annotated[int | None, _opt("n_heads")] = D.BENCH_N_HEADS,
    ctx: Annotated[int, typer.Option(help="sequence length T")] = D.CTX,
    batch: Annotated[int, typer.Option(help="sequences per step")] = D.BATCH,
    steps: Annotated[int, typer.Option(help="timed steps per repetition")] = D.BENCH_STEPS,
    repeats: Annotated[int, typer.Option(help="interleaved repetitions (median reported)")] = D.BENCH_REPEATS,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps")] = D.DEVICE,
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="also time torch.compile variants")] = False,
    hf: Annotated[bool, typer.Option("--hf/--no-hf", help="also time transformers' implementation")] = True,
    peak_flops: Annotated[float | None, typer.Option(help="override the MFU denominator (FLOP/s)")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: all usable cores)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Training-step tokens/s and MFU here, against transformers' implementation of the same model."""
    from ..train.bench import bench as do_bench

    with user_errors():  # every option is checked by the library before any work
        res = do_bench(arch, size=size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, ctx=ctx, batch=batch,
                       steps=steps, repeats=repeats, device=device, compile=compile, hf=hf, peak_flops=peak_flops,
                       threads=threads)
    if json_out:
        print_json(res)
        return
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(f"{res['arch']}: training step, T={ctx}, batch {batch}, {res['device_name']}, {res['dtype']}"))
    for c in ("implementation", "tokens/s", "ms/step", "MFU", "vs transformers eager"):
        t.add_column(c, justify="right" if c != "implementation" else "left")
    for r in res["results"]:
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}"
        ratio = "" if r.get("ratio_vs_hf") is None else f"{r['ratio_vs_hf']:.2f}x"
        t.add_row(r["impl"], f"{r['tokens_per_s']:,.0f}", f"{r['ms_per_step']:.1f}", mfu, ratio)
    console.print(t)
    console.print(f"peak {res['peak_flops']:.3g} FLOP/s ({res['peak_source']}); "
                  f"model FLOPs/token {res['flops_per_token']:.3g} (PaLM's 6N + 12LHQT)")
    if res.get("hf_skipped"):
        say(f"transformers not timed: {res['hf_skipped']}", style="yellow")


app = typer.Typer()
app.command()(train)
app.command()(export)
app.command()(bench)
