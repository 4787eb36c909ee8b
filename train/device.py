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

from ..core.files import write_json
from . import hardware
from .config import RunError, usable_cores  # noqa: F401  (usable_cores: one definition, torch-free; re-exported)
from .data import cache_dir

PROBE_DISAGREE = 1.25  # a quick probe this much above the cached peak: the cache was measured under load
WIDE_SPREAD = 1.5  # fastest / slowest probe round above this: measured on a busy machine, so never cached
_rechecked: set = set()  # cache keys re-measured in this process (re-measure at most once each)


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
        raise RunError(f"--device {device!r}: {e}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RunError("--device mps: no Apple GPU is available to torch here (mps is macOS only); use --device cpu "
                       "or auto")
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


def load_warning(cores: int | None = None) -> str | None:
    """A warning when the machine is busier than its cores (the 1-minute load average): timings, tok/s
    and MFU measured now are unreliable (first-hour C13). None where there is no load average."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    cores = cores or usable_cores()
    if load <= cores:
        return None
    return (f"this machine is loaded (load average {load:.1f} on {cores} cores): tok/s, MFU and time estimates "
            "measured now are unreliable (the losses are not affected)")


def cpu_peak_cache_path() -> Path:
    """Where the measured CPU peak is cached (one entry per CPU, threads and torch version)."""
    return cache_dir() / "cpu_peak.json"


def _probe(threads: int, sizes=(1024, 2048), rounds: int = 6) -> tuple[float, list[float]]:
    """(best FLOP/s, every round's FLOP/s) of repeated float32 matmuls with `threads` threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    rates = []
    try:
        for n in sizes:
            a, b = torch.randn(n, n), torch.randn(n, n)
            reps = max(1, int(4e9 / (2 * n**3)))
            a @ b
            for _ in range(rounds):
                t = time.perf_counter()
                for _ in range(reps):
                    a @ b
                rates.append(reps * 2 * n**3 / (time.perf_counter() - t))
    finally:
        torch.set_num_threads(old)
    return max(rates), rates


def _cpu_key(threads: int) -> str:
    return f"{device_name(torch.device('cpu')).split(' (')[0]}|{threads}|{torch.__version__}"


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def cpu_matmul_peak(threads: int | None = None, refresh: bool = False) -> float:
    """The CPU's float32 matmul FLOP/s with `threads` threads (the denominator of CPU MFU): the best
    of repeated 1024^3 and 2048^3 products, cached per (CPU, threads, torch) in
    ~/.cache/llmhist/cpu_peak.json (cpu_peak_cache_path()) with the probe's date and spread. A cached
    value is re-measured when a quick probe now beats it by 25% (it was measured under load), or
    when asked (refresh=True; recheck_cpu_peak does it when MFU comes out above 100%)."""
    threads = threads or torch.get_num_threads()
    key = _cpu_key(threads)
    path = cpu_peak_cache_path()
    cache = _read_cache(path)
    entry = cache.get(key)
    if isinstance(entry, (int, float)):  # the old format: a bare number, no date or spread
        entry = {"flops": float(entry), "measured_at": None, "spread": None}
    if entry and not refresh:
        quick, _ = _probe(threads, sizes=(1024,), rounds=2)
        if quick <= PROBE_DISAGREE * float(entry["flops"]):
            return float(entry["flops"])
        refresh = True
    best, rates = _probe(threads)
    if max(rates) > WIDE_SPREAD * min(rates):  # first-hour C13: a busy machine's peak is not kept for later runs
        return best
    cache[key] = {"flops": best, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "spread": [min(rates), max(rates)], "rounds": len(rates), "threads": threads,
                  "note": "best of the rounds; a narrow spread means a quiet machine"}
    write_json(path, cache)
    return best


def recheck_cpu_peak(threads: int | None = None) -> float:
    """Measure the CPU peak again (once per process and key) after an implausible MFU."""
    threads = threads or torch.get_num_threads()
    key = _cpu_key(threads)
    if key in _rechecked:
        return cpu_matmul_peak(threads)
    _rechecked.add(key)
    return cpu_matmul_peak(threads, refresh=True)


def peak_flops(dev: torch.device, dtype: str, override: float | None = None) -> float | None:
    """Dense peak FLOP/s for MFU; None (shown as n/a) where unknown. GPUs: the hardware table."""
    if override:
        return override
    if dev.type == "cpu":
        return cpu_matmul_peak()
    if dev.type == "cuda":
        got = hardware.peak(torch.cuda.get_device_name(dev), dtype)
        return got[0] if got else None
    return None


def peak_source(dev: torch.device, dtype: str, override: float | None = None) -> str:
    if override:
        return "override (--peak-flops)"
    if dev.type == "cpu":
        return f"measured matmul probe, cached in {cpu_peak_cache_path()}"
    if dev.type == "cuda":
        got = hardware.peak(torch.cuda.get_device_name(dev), dtype)
        return got[1] if got else "unknown device: not in the hardware table"
    return "unknown"


def mfu(flops_per_s: float | None, peak: float | None, dev: torch.device | None = None,
        override: float | None = None) -> tuple[float | None, float | None, str | None]:
    """(MFU, peak used, note). MFU is never above 1: on a CPU, a value above 100% means the cached
    peak was measured under load, so the peak is measured again once and MFU recomputed; if it is
    still above 100% (or the peak came from an override or a datasheet) it is clamped to 1.0 and the
    note says so. The loop calls this for each MFU it reports."""
    if not flops_per_s or not peak:
        return None, peak, None
    value = flops_per_s / peak
    if value <= 1.0:
        return value, peak, None
    note = f"MFU {value:.0%} is implausible (peak {peak:.3g} FLOP/s)"
    if dev is not None and dev.type == "cpu" and not override:
        peak = recheck_cpu_peak()
        value = flops_per_s / peak
        cache = cpu_peak_cache_path()
        if value <= 1.0:
            return value, peak, note + f"; the CPU peak was measured again: {peak:.3g} FLOP/s (cached in {cache})"
        return 1.0, peak, note + (f"; measured again ({peak:.3g} FLOP/s, cached in {cache}) it is still "
                                  "implausible: shown clamped to 100%")
    return 1.0, peak, note + "; shown clamped to 100%"


def environment(dev: torch.device) -> dict:
    import numpy as np

    from ..core import __version__

    return {
        "device": str(dev), "device_name": device_name(dev), "threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "llmhist": __version__, "platform": platform.platform(), "host": platform.node(),
    }
