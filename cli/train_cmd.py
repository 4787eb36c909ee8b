"""`llmhist train`, `llmhist export`, `llmhist bench`: thin wrappers over llmhist.train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, fail, print_json, user_errors

Arch_ = Annotated[str, typer.Option("--arch", "-a", help="family or registry name (llama, gpt2, mixtral, t5, ...)")]
Size = Annotated[Optional[str], typer.Option(help="named size: nano (train's default), micro, mini, small, base, "
                                                 "or a registry name")]
DModel = Annotated[Optional[int], typer.Option("--d-model", help="explicit width (with --n-layers, --n-heads)")]
NLayers = Annotated[Optional[int], typer.Option("--n-layers", help="explicit depth")]
NHeads = Annotated[Optional[int], typer.Option("--n-heads", help="explicit head count")]


def _runerrors():
    from llmhist.train.data import DataError
    from llmhist.train.loop import RunError

    return (DataError, RunError)


def train(
    arch: Arch_ = "llama",
    size: Size = None,
    d_model: DModel = None,
    n_layers: NLayers = None,
    n_heads: NHeads = None,
    tokens: Annotated[Optional[float], typer.Option(help="training tokens D (default: 20 per parameter)")] = None,
    flops: Annotated[Optional[float], typer.Option(help="compute budget C; D = C / 6N")] = None,
    data: Annotated[str, typer.Option(help="stdlib (default), prose (extra 'prose'), markov[:order=2,alphabet=16,...], a text file/folder, "
                                           "or token files (train.bin/val.bin)")] = "stdlib",
    tokenizer: Annotated[str, typer.Option(help="bytes, or bpeN (BPE with N tokens trained on the data)")] = "bytes",
    token_dtype: Annotated[str, typer.Option(help="dtype of .bin token files: uint16 or uint32")] = "uint16",
    vocab_size: Annotated[Optional[int], typer.Option(help="vocabulary of token files (default: meta.json or max id + 1)")] = None,
    ctx: Annotated[int, typer.Option(help="sequence length T")] = 128,
    batch: Annotated[int, typer.Option(help="sequences per optimizer step (global)")] = 16,
    micro_batch: Annotated[Optional[int], typer.Option(help="sequences per forward pass (gradient accumulation)")] = None,
    lr: Annotated[Optional[float], typer.Option(help="peak learning rate (default: 6e-4 x 768/d_model, max 3e-3)")] = None,
    warmup: Annotated[float, typer.Option(help="warmup as a fraction of steps")] = 0.02,
    schedule: Annotated[str, typer.Option(help="cosine (length = the run), wsd (warmup-stable-decay) or constant")] = "cosine",
    decay: Annotated[float, typer.Option(help="wsd: fraction of steps in the final decay")] = 0.2,
    branches: Annotated[Optional[str], typer.Option(help="wsd: also end at these fractions of the budget (e.g. "
                                                         "0.25,0.5), each a decay branch from the stable phase")] = None,
    seed: Annotated[int, typer.Option(help="the one seed every other is derived from")] = 0,
    eval_every: Annotated[Optional[int], typer.Option(help="steps between evaluations (default: 20 per run)")] = None,
    eval_batches: Annotated[int, typer.Option(help="validation windows = this x batch")] = 4,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N, mps")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (default: all usable cores)")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile (default: on CUDA)")] = None,
    remat: Annotated[bool, typer.Option(help="activation checkpointing per block")] = False,
    peak_flops: Annotated[Optional[float], typer.Option(help="override the MFU denominator (FLOP/s)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder (default: runs/<arch>-<size>-s<seed>)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Train one model with its family's recipe; resumable (the same command continues a killed run)."""
    from llmhist.train.loop import DEFAULT_SIZE, EXIT_DIVERGED, Diverged, TrainConfig, train as run_train

    name = f"{arch}-{size or (f'd{d_model}-l{n_layers}-h{n_heads}' if d_model else DEFAULT_SIZE)}-s{seed}"
    cfg = TrainConfig(
        arch=arch, size=size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
        tokens=int(tokens) if tokens is not None else None, flops=flops, data=data, tokenizer=tokenizer,
        token_dtype=token_dtype, vocab_size=vocab_size, ctx=ctx, batch=batch, micro_batch=micro_batch, lr=lr,
        warmup=warmup, schedule=schedule, decay=decay, branches=branches, seed=seed, eval_every=eval_every, eval_batches=eval_batches,
        device=device, threads=threads, compile=compile, remat=remat, peak_flops=peak_flops,
        out=str(out or Path("runs") / name),
    )
    if schedule not in ("cosine", "wsd", "constant"):
        fail(f"--schedule {schedule!r}: use cosine, wsd or constant")
    try:
        with user_errors():
            summary = run_train(cfg, console=None if json_out else console)
    except Diverged as e:
        fail(str(e), code=EXIT_DIVERGED)
    except OSError as e:  # e.g. no space left: the atomic writes left the previous state intact
        fail(f"{cfg.out}: {e.strerror or e}; the run's last checkpoint is intact, free space and run the same command")
    import os

    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    if json_out:
        print_json(summary)
    elif not summary.get("already"):
        bpb = summary.get("val_bpb")
        console.print(f"[green]done[/] {cfg.out}: val loss {summary['val_loss']:.4f} nats/token"
                      + (f" ({bpb:.3f} bits/byte)" if bpb else "")
                      + f", N {summary['N']:,}, D {summary['D']:,}, {summary['wall_s']:.1f} s")


def export(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder")],
    out_dir: Annotated[Path, typer.Argument(help="where to write the transformers folder")],
) -> None:
    """Write a folder transformers' AutoModelForCausalLM.from_pretrained loads (config.json + model.safetensors)."""
    from llmhist.train.export import export as do_export

    with user_errors():
        info = do_export(run_dir, out_dir)
    console.print(f"[green]exported[/] {run_dir} -> {out_dir} ({info['model_type']}, {info['params']:,} parameters)")


def bench(
    arch: Arch_ = "llama",
    size: Size = None,
    d_model: DModel = 128,
    n_layers: NLayers = 4,
    n_heads: NHeads = 4,
    ctx: Annotated[int, typer.Option(help="sequence length T")] = 128,
    batch: Annotated[int, typer.Option(help="sequences per step")] = 16,
    steps: Annotated[int, typer.Option(help="timed steps per repetition")] = 10,
    repeats: Annotated[int, typer.Option(help="interleaved repetitions (median reported)")] = 3,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps")] = "auto",
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="also time torch.compile variants")] = False,
    hf: Annotated[bool, typer.Option("--hf/--no-hf", help="also time transformers' implementation")] = True,
    peak_flops: Annotated[Optional[float], typer.Option(help="override the MFU denominator (FLOP/s)")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (default: all usable cores)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Training-step tokens/s and MFU here, against transformers' implementation of the same model."""
    from llmhist.train.bench import bench as do_bench

    if size:
        d_model = n_layers = n_heads = None
    with user_errors():
        res = do_bench(arch, size=size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, ctx=ctx, batch=batch,
                       steps=steps, repeats=repeats, device=device, compile=compile, hf=hf, peak_flops=peak_flops,
                       threads=threads)
    if json_out:
        print_json(res)
        return
    from rich.table import Table

    t = Table(title=f"{res['arch']}: training step, T={ctx}, batch {batch}, {res['device_name']}, {res['dtype']}")
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
        console.print(f"[yellow]transformers not timed:[/] {res['hf_skipped']}")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(export)
    app.command()(bench)
