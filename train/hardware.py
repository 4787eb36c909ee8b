"""The one hardware table: dense peak FLOP/s per (device, dtype), each with its source. It serves
MFU (train.device) and `recommend --gpu` alike. No torch import: recommend reads it.

Dense means without 2:4 structured sparsity (datasheets print the sparse figure too, twice this).
"""

from __future__ import annotations

from llmhist.errors import UserError

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
