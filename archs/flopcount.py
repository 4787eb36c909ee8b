"""Measure a module's FLOPs with torch.utils.flop_counter, including CPU attention.

torch's FlopCounterMode has formulas for the CUDA flash/efficient SDPA kernels but none for the
CPU flash kernel (aten._scaled_dot_product_flash_attention_for_cpu), so on CPU it silently drops
attention. We register torch's own SDPA formula for that op (forward and backward), once.
"""

from __future__ import annotations

import torch
from torch.utils import flop_counter as fc

_aten = torch.ops.aten
_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    fwd = getattr(_aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if fwd is not None and fwd.default not in fc.flop_registry:

        @fc.register_flop_formula(fwd)
        def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return fc.sdpa_flop_count(query_shape, key_shape, value_shape)

    bwd = getattr(_aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if bwd is not None and bwd.default not in fc.flop_registry:

        @fc.register_flop_formula(bwd)
        def _cpu_sdpa_bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)

    _registered = True


def count_flops(fn, *args, **kwargs) -> int:
    """Total FLOPs torch executes for fn(*args, **kwargs)."""
    _register()
    with fc.FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()
