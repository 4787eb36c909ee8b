"""`llmhist bench`: training-step throughput of our model and of transformers' implementation of
the same architecture, measured the same way (shapes, batch, context, AdamW, dtype, threads),
interleaved so that drift in the machine's speed affects both alike. The median of the
repetitions is reported, with MFU against the device's dense peak (train/device.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..archs import accounting
from ..archs.registry import build_spec
from ..archs.spec import SpecError
from . import defaults as D
from . import device as devmod


def _step_fn(model, opt, x, y, amp, hf: bool):
    def step():
        with amp:
            out = model(x)
            logits = out.logits if hf else out
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def check(arch: str, size: str | None, d_model: int | None, n_layers: int | None, n_heads: int | None, ctx: int,
          batch: int, steps: int, repeats: int, device: str, threads: int | None, peak_flops: float | None) -> None:
    """Every option checked before any work: those bench shares with a run get the run's checks
    (shape, --ctx, --device, --threads, ...); a bad one raises a RunError/SpecError naming it."""
    from .config import RunError, TrainConfig

    TrainConfig(arch=arch, size=size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, ctx=ctx, batch=batch,
                device=device, threads=threads, peak_flops=peak_flops, out="bench")
    for name, v in (("--steps", steps), ("--repeats", repeats)):
        if v < 1:
            raise RunError(f"{name} {v}: must be >= 1")


def bench(arch: str, size: str | None = None, d_model: int | None = D.BENCH_D_MODEL,
          n_layers: int | None = D.BENCH_N_LAYERS, n_heads: int | None = D.BENCH_N_HEADS, ctx: int = D.CTX,
          batch: int = D.BATCH, steps: int = D.BENCH_STEPS, repeats: int = D.BENCH_REPEATS,
          device: str = D.DEVICE, compile: bool = False, hf: bool = True, peak_flops: float | None = None,
          vocab_size: int = 256, threads: int | None = None) -> dict:
    """Training-step time of our model (and transformers' of the same spec) on one device; with a
    named size the explicit shape is ignored."""
    if size:
        d_model = n_layers = n_heads = None
    check(arch, size, d_model, n_layers, n_heads, ctx, batch, steps, repeats, device, threads, peak_flops)
    dev = devmod.pick(device)
    dtype = devmod.setup(dev, threads)
    a = build_spec(arch, size, d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=vocab_size,
                   ctx_len=ctx) if not size else build_spec(arch, size)
    if a.is_encoder_decoder:
        raise SpecError(f"--arch {arch}: bench times decoder-only language models and {a.name} is an "
                        "encoder-decoder; pick a decoder-only --arch (gpt2, llama, ...)")
    from ..archs.model import build

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, a.vocab_size, (batch, ctx + 1), generator=g).to(dev)
    x, y = x[:, :-1], x[:, 1:]
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False))
    fused = {"fused": True} if dev.type in ("cuda", "cpu") else {}  # the training loop's optimizer, for both
    impls: dict[str, Callable[[], object]] = {}

    ours = build(a, dev)
    impls["llmhist eager"] = _step_fn(ours, torch.optim.AdamW(ours.parameters(), lr=1e-4, **fused), x, y, amp, False)
    if compile:
        ours_c = build(a, dev)
        impls["llmhist compiled"] = _step_fn(torch.compile(ours_c), torch.optim.AdamW(ours_c.parameters(), lr=1e-4, **fused),
                                             x, y, amp, False)
    skipped = _add_transformers(impls, a, dev, x, y, amp, fused, compile) if hf else None
    times = _time(impls, dev, steps, repeats)
    fpt = accounting.flops_per_token(a, "palm", ctx)
    peak = devmod.peak_flops(dev, dtype, peak_flops)
    res, peak = _results(times, batch * ctx, fpt, peak, dev, peak_flops)  # the peak as re-measured, if it was
    return {"arch": a.name, "d_model": a.d_model, "n_layers": a.n_layers, "n_heads": a.n_heads, "ctx": ctx,
            "batch": batch, "device": str(dev), "device_name": devmod.device_name(dev), "dtype": dtype,
            "flops_per_token": fpt, "peak_flops": peak,
            "peak_source": "override" if peak_flops else ("measured matmul probe" if dev.type == "cpu" else "datasheet"),
            "results": res, "hf_skipped": skipped, "torch": torch.__version__}


def _add_transformers(impls: dict, a, dev, x, y, amp, fused: dict, compile: bool) -> str | None:
    """Add transformers' implementation of `a` (sdpa attention; compiled too with `compile`) to
    impls; why it is skipped (not installed, no equivalent), or None."""
    try:
        from ..archs import hf as hfmap

        ref = hfmap.hf_model(a, str(dev))
        ref.config._attn_implementation = "sdpa"
        ref.train()
        impls["transformers eager (sdpa)"] = _step_fn(
            ref, torch.optim.AdamW(ref.parameters(), lr=1e-4, **fused), x, y, amp, True)
        if compile:
            ref_c = hfmap.hf_model(a, str(dev))
            ref_c.config._attn_implementation = "sdpa"
            ref_c.train()
            impls["transformers compiled"] = _step_fn(
                torch.compile(ref_c), torch.optim.AdamW(ref_c.parameters(), lr=1e-4, **fused), x, y, amp, True)
    except ImportError:
        return ("transformers is not installed: pip install 'llmhist[test]' "
                "(from a checkout: pip install -e '.[test]')")
    except ValueError as e:  # NoHFEquivalent
        return str(e)
    return None


def _time(impls: dict[str, Callable[[], object]], dev, steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each implementation, `repeats` times, interleaved (after 3 warm-up steps)."""
    for fn in impls.values():  # warm up (and compile)
        for _ in range(3):
            fn()
    _sync(dev)
    times: dict[str, list[float]] = {k: [] for k in impls}
    for _ in range(repeats):
        for k, fn in impls.items():
            _sync(dev)
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            _sync(dev)
            times[k].append((time.perf_counter() - t) / steps)
    return times


def _results(times: dict[str, list[float]], tokens_per_step: int, fpt: float, peak, dev,
             peak_flops: float | None) -> tuple[list[dict[str, Any]], float | None]:
    """(each implementation's median step, throughput, MFU and throughput against transformers', the
    peak used: an implausible MFU re-measures a CPU peak)."""
    res: list[dict[str, Any]] = []
    hf_tps = None
    for k, ts in times.items():
        s = statistics.median(ts)
        tps = tokens_per_step / s
        if k.startswith("transformers eager"):
            hf_tps = tps
        mfu, peak, note = devmod.mfu(tps * fpt, peak, dev, peak_flops)  # never above 1 (re-measures a CPU peak)
        res.append({"impl": k, "ms_per_step": 1e3 * s, "tokens_per_s": tps,
                    "mfu": mfu, "mfu_note": note, "all_ms": [1e3 * t for t in ts]})
    for r in res:
        r["ratio_vs_hf"] = r["tokens_per_s"] / hf_tps if hf_tps else None
    return res, peak
