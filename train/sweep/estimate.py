"""The time model: estimated wall seconds of a run on this device, for sweep, study and ablate
(one model, calibrated on this project's CPU; a GPU by its peak and a fixed cost per step).
"""

from __future__ import annotations

import math

from ...archs import accounting
from ...archs.registry import build_spec
from .plan import RunSpec, SweepPlan


def _spec_of(r: RunSpec, ctx: int, vocab: int = 256):
    """The spec a run trains: its family at its shape, or its ablation variant (options["variant"])."""
    if r.options.get("variant"):
        from ...archs.changes import variant_spec

        return variant_spec(r.options["variant"], r.d_model, r.n_layers, r.n_heads, vocab, ctx)
    return build_spec(r.arch, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads, vocab_size=vocab,
                      ctx_len=ctx)


# The CPU time model, calibrated on this project's 2-core Xeon (2026-12-01: 18 runs of gpt2- and
# llama3-like models at d_model 16-64, 1-2 layers, 4 heads, one thread each, 8-88 s; the fit's
# residuals are within 10%): per token, a fixed 1.44 us (embedding, loss over the vocabulary,
# optimizer share) + 0.63 us per layer x head at ctx 128 (the attention kernel's per-head work,
# growing with ctx) + the PaLM-convention FLOPs at 60% of a core's matmul peak. The fixed terms
# were measured on a core of 1.55e11 FLOP/s and scale with another CPU's per-core peak.
CPU_TOKEN_S = 1.44e-6
CPU_HEAD_TOKEN_S = 0.63e-6
CPU_MATMUL_EFF = 0.60
CPU_CALIB_CORE_PEAK = 1.55e11
GPU_MFU, GPU_STEP_S = 0.45, 0.02  # a fixed cost per optimizer step (launches, python, eval share)


def run_seconds(a, tokens: float, ctx: int, batch: int, peak: float, cores: int = 1, gpu: bool = False) -> float:
    """Estimated wall seconds of one run of spec `a` on a device of `peak` FLOP/s (a CPU's `cores`
    cores all busy: runs in parallel processes share them, so this is device-seconds)."""
    fpt = accounting.flops_per_token(a, "palm", ctx)
    if gpu:
        return math.ceil(tokens / (ctx * batch)) * GPU_STEP_S + tokens * fpt / (GPU_MFU * peak)
    core = peak / max(1, cores)
    fixed = (CPU_TOKEN_S + CPU_HEAD_TOKEN_S * a.n_layers * a.n_heads * ctx / 128) * CPU_CALIB_CORE_PEAK / core
    return tokens * (fixed + fpt / (CPU_MATMUL_EFF * core)) / max(1, cores)


def time_model(peak: float, gpu: bool = False) -> str:
    """One line saying how run_seconds estimates."""
    if gpu:
        return f"{peak:.3g} FLOP/s peak x {GPU_MFU:.0%} MFU + {1e3 * GPU_STEP_S:.0f} ms/step"
    return (f"{peak:.3g} FLOP/s CPU peak: per token {1e6 * CPU_TOKEN_S:.2f} us + {1e6 * CPU_HEAD_TOKEN_S:.2f} us per "
            f"layer x head (at a {CPU_CALIB_CORE_PEAK:.3g} FLOP/s core) + FLOPs at {CPU_MATMUL_EFF:.0%} of peak "
            "(calibrated on a 2-core Xeon)")


def estimate_seconds(plan: SweepPlan) -> tuple[list[float], str]:
    """Estimated wall time per run on one device (run_seconds, with the device's peak: the CPU's
    measured matmul probe or the GPU's datasheet)."""
    from .. import device as devmod

    dev = devmod.pick("auto")
    dtype = devmod.setup(dev)
    peak = devmod.peak_flops(dev, dtype)
    if not peak:
        return [float("nan")] * len(plan.runs), "n/a (no known peak for this device)"
    ctx, batch = int(plan.common.get("ctx", 128)), int(plan.common.get("batch", 16))
    gpu = dev.type != "cpu"
    cores = 1 if gpu else devmod.usable_cores()
    out = [run_seconds(_spec_of(r, ctx), r.tokens, ctx, batch, peak, cores, gpu) for r in plan.runs]
    return out, time_model(peak, gpu)


def measured_peak(threads: int | None = None) -> tuple[float, str]:
    """The CPU's float32 matmul peak with `threads` threads (all usable cores by default), measured
    and cached by llmhist.train.device (imports torch: call it only when a run is about to start)."""
    from .. import device

    threads = threads or device.usable_cores()
    pk = device.cpu_matmul_peak(threads)
    return pk, f"measured CPU peak {pk:.3g} FLOP/s ({threads} threads; {device.cpu_peak_cache_path()})"
