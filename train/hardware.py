"""The one hardware table: dense peak FLOP/s per (device, dtype) and memory per device, each with its
source. It serves MFU (train.device), `recommend --gpu` and the per-GPU memory of `show --gpu` alike.
No torch import: recommend and show read it.

Dense means without 2:4 structured sparsity (datasheets print the sparse figure too, twice this).
"""

from __future__ import annotations

from ..core.errors import UserError

NV = "NVIDIA datasheet"
# device key -> {dtype: (dense peak FLOP/s, source)}
PEAK: dict[str, dict[str, tuple[float, str]]] = {
    "h100": {"bf16": (989e12, f"{NV}, H100 SXM (1,979 with sparsity)"), "fp16": (989e12, f"{NV}, H100 SXM"),
             "fp32": (67e12, f"{NV}, H100 SXM (non-tensor)")},
    "h200": {"bf16": (989e12, f"{NV}, H200 SXM"), "fp16": (989e12, f"{NV}, H200 SXM"),
             "fp32": (67e12, f"{NV}, H200 SXM (non-tensor)")},
    "a100": {"bf16": (312e12, f"{NV}, A100 (624 with sparsity)"), "fp16": (312e12, f"{NV}, A100"),
             "fp32": (19.5e12, f"{NV}, A100 (non-tensor)")},
    "a10g": {"bf16": (70e12, ("AWS G5's A10G variant: 70 TFLOP/s bf16 tensor (A10G spec as reported for EC2 "
                              "G5; the A10's 125 does not apply)")),
             "fp16": (70e12, "AWS G5's A10G variant")},
    "a10": {"bf16": (125e12, f"{NV}, A10 (250 with sparsity)"), "fp16": (125e12, f"{NV}, A10"),
            "fp32": (31.2e12, f"{NV}, A10")},
    "l4": {"bf16": (121e12, f"{NV}, L4 (242 with sparsity)"), "fp16": (121e12, f"{NV}, L4"),
           "fp32": (30.3e12, f"{NV}, L4")},
    "v100": {"fp16": (125e12, f"{NV}, V100 SXM2 tensor cores (no bf16)"), "fp32": (15.7e12, f"{NV}, V100 SXM2")},
    "4090": {"bf16": (165e12, f"{NV} Ada whitepaper, RTX 4090 (FP32 accumulate 165.2)"),
             "fp32": (82.6e12, f"{NV} Ada whitepaper, RTX 4090")},
    "mi300x": {"bf16": (1307e12, "AMD datasheet, MI300X (dense)"), "fp16": (1307e12, "AMD datasheet, MI300X")},
    "tpuv4": {"bf16": (275e12, "Google Cloud TPU v4 documentation")},
    "tpuv5e": {"bf16": (197e12, "Google Cloud TPU v5e documentation")},
}
# device key -> (memory in bytes, source). Datasheet gigabytes counted as 10^9 bytes: a lower bound, as the
# devices report a little more (an 80GB part reports close to 80 GiB).
MEMORY: dict[str, tuple[float, str]] = {
    "h100": (80e9, f"{NV}, H100 SXM: 80 GB HBM3"),
    "h200": (141e9, f"{NV}, H200 SXM: 141 GB HBM3e"),
    "a100": (80e9, f"{NV}, A100 80GB: 80 GB HBM2e (a 40 GB part exists too)"),
    "a10g": (24e9, "AWS EC2 G5 documentation: A10G with 24 GB GDDR6"),
    "a10": (24e9, f"{NV}, A10: 24 GB GDDR6"),
    "l4": (24e9, f"{NV}, L4: 24 GB GDDR6"),
    "v100": (32e9, f"{NV}, V100 SXM2: 32 GB HBM2 (a 16 GB part exists too)"),
    "4090": (24e9, f"{NV} Ada whitepaper, RTX 4090: 24 GB GDDR6X"),
    "mi300x": (192e9, "AMD datasheet, MI300X: 192 GB HBM3"),
    "tpuv4": (32 * 2**30, "Google Cloud TPU v4 documentation: 32 GiB HBM per chip"),
    "tpuv5e": (16 * 2**30, "Google Cloud TPU v5e documentation: 16 GiB HBM per chip"),
}
# match longer names first: "a10g" before "a10"
MATCH_ORDER = ("h200", "h100", "a100", "a10g", "a10", "l4", "v100", "4090", "mi300x", "tpuv5e", "tpuv4")


class HardwareError(UserError, ValueError):
    """An unknown device or dtype given as an option."""


def match(device_name: str) -> str | None:
    """The table's key for a device name as torch reports it ("NVIDIA A10G" -> "a10g")."""
    n = device_name.lower().replace(" ", "")
    return next((k for k in MATCH_ORDER if k in n), None)


def peak(device: str, dtype: str = "bf16") -> tuple[float, str] | None:
    """(dense peak FLOP/s, source) for a device key or name and dtype; None if the table lacks it."""
    key = device.lower() if device.lower() in PEAK else match(device)
    if key is None:
        return None
    return PEAK[key].get(dtype)


def gpu_peak(gpu: str | None, dtype: str = "bf16", option: str = "--gpu") -> float:
    """The peak for a user-given --gpu, or a HardwareError naming the option and the known devices."""
    if not gpu:
        raise HardwareError(f"{option} is required with --gpu-hours: name the device the hours are on "
                            f"(one of {', '.join(PEAK)})")
    got = peak(gpu, dtype)
    if got is None:
        raise HardwareError(f"{option} {gpu!r}: unknown device for {dtype}; known: {', '.join(PEAK)}")
    return got[0]


def gpu_device(gpu: str, dtype: str = "bf16", option: str = "--gpu") -> tuple[str, str, float, float]:
    """(table key, dtype, dense peak FLOP/s, memory bytes) for a named device, or a HardwareError naming
    the option. A device without bf16 (V100) trains 16-bit in fp16: its fp16 peak is used."""
    key = gpu.lower() if gpu.lower() in PEAK else match(gpu)
    dt = dtype if key is None or dtype in PEAK[key] or dtype != "bf16" else "fp16"
    if key is None or dt not in PEAK[key] or key not in MEMORY:
        raise HardwareError(f"{option} {gpu!r}: unknown device for {dtype}; known: {', '.join(PEAK)}")
    return key, dt, PEAK[key][dt][0], MEMORY[key][0]
