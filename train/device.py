"""Devices, precision and the MFU denominator.

MFU = model FLOPs per second / the device's dense peak for the dtype in use. GPU peaks come from
vendors' datasheets (dense, no sparsity); the CPU's is measured once by a short matmul probe and
cached; anything else is "n/a", never a guess.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from llmhist.files import write_json

from .data import cache_dir

# dense peak FLOP/s by (device name fragment, dtype); datasheets, no structured sparsity
GPU_PEAK = {
    ("h100", "bf16"): 989e12, ("h100", "fp32"): 67e12,  # SXM; tf32 tensor cores 495e12
    ("h200", "bf16"): 989e12, ("h200", "fp32"): 67e12,
    ("a100", "bf16"): 312e12, ("a100", "fp32"): 19.5e12,
    ("l4", "bf16"): 121e12, ("l4", "fp32"): 30.3e12,
    ("a10g", "bf16"): 70e12, ("a10g", "fp32"): 31.2e12,
    ("v100", "fp16"): 125e12, ("v100", "fp32"): 15.7e12,
    ("4090", "bf16"): 165e12, ("4090", "fp32"): 82.6e12,
    ("mi300x", "bf16"): 1307e12,
}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def pick(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"--device {device!r}: {e}; use auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: no Apple GPU is available; use --device cpu or auto")
    return dev


def setup(dev: torch.device, threads: int | None = None) -> str:
    """Set threads / matmul precision for the device; returns the training dtype's name."""
    if dev.type == "cpu":
        torch.set_num_threads(threads or usable_cores())
        return "fp32"
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"  # mps: float32 (bf16 autocast on MPS is not reliable across torch versions)


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "cpu":
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"{name} ({torch.get_num_threads()} threads)"
    return dev.type


def cpu_matmul_peak(threads: int | None = None, refresh: bool = False) -> float:
    """The CPU's float32 matmul FLOP/s with `threads` threads: the best of repeated 1024^3 and 2048^3
    products (the denominator of CPU MFU), measured once per (CPU, threads, torch) and cached in
    ~/.cache/llmhist/cpu_peak.json (delete it to measure again)."""
    threads = threads or torch.get_num_threads()
    key = f"{device_name(torch.device('cpu')).split(' (')[0]}|{threads}|{torch.__version__}"
    path = cache_dir() / "cpu_peak.json"
    cache = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    if key in cache and not refresh:
        return float(cache[key])
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    best = 0.0
    for n in (1024, 2048):  # the best of several sizes and repetitions: a peak, robust to a busy moment
        a, b = torch.randn(n, n), torch.randn(n, n)
        reps = max(1, int(4e9 / (2 * n**3)))
        a @ b
        for _ in range(6):
            t = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = max(best, reps * 2 * n**3 / (time.perf_counter() - t))
    torch.set_num_threads(old)
    cache[key] = best
    write_json(path, cache)
    return best


def peak_flops(dev: torch.device, dtype: str, override: float | None = None) -> float | None:
    """Dense peak FLOP/s for MFU; None (shown as n/a) where unknown."""
    if override:
        return override
    if dev.type == "cpu":
        return cpu_matmul_peak()
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev).lower()
        for (frag, dt), v in GPU_PEAK.items():
            if frag in name and dt == dtype:
                return v
    return None


def environment(dev: torch.device) -> dict:
    import numpy as np

    from llmhist import __version__

    return {
        "device": str(dev), "device_name": device_name(dev), "threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "llmhist": __version__, "platform": platform.platform(), "host": platform.node(),
    }
