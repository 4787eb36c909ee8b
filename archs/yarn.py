"""YaRN (Peng et al. 2023): RoPE frequencies and attention temperature for context extension.

The numbers follow transformers' "yarn" rope type (its DeepSeek-V3 and gpt-oss models), so logits
match on the same weights; model.py builds the tables from these. Torch only for the frequencies.
"""

from __future__ import annotations

import math

import torch

from .spec import Arch, RopeScaling


def yarn_inv_freq(inv: torch.Tensor, hd: int, theta: float, s: RopeScaling) -> torch.Tensor:
    """YaRN (Peng et al. 2023, §3.2 "NTK-by-parts"): dims turning more than beta_fast (high_freq_factor)
    times over the original context keep their frequency, fewer than beta_slow (low_freq_factor) are
    divided by the factor, a linear ramp between over the (floored / ceiled) dimension range."""
    def dim_of(rotations: float) -> float:  # the dimension index turning `rotations` times
        return hd * math.log(s.original_ctx / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    lo, hi = max(math.floor(dim_of(s.high_freq_factor)), 0), min(math.ceil(dim_of(s.low_freq_factor)), hd - 1)
    ramp = ((torch.arange(hd // 2, dtype=torch.float32) - lo) / ((hi - lo) or 0.001)).clamp(0, 1)
    return inv / s.factor * ramp + inv * (1 - ramp)


def yarn_mscale(factor: float, m: float = 1.0) -> float:
    return 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0


def yarn_factors(a: Arch) -> tuple[float, float]:
    """(cos/sin factor, logit factor) of YaRN's attention temperature, as transformers computes them."""
    s = a.rope_scaling
    if s is None or s.kind != "yarn":
        return 1.0, 1.0
    cs = yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim) if s.mscale and s.mscale_all_dim \
        else yarn_mscale(s.factor)
    return cs, yarn_mscale(s.factor, s.mscale_all_dim) ** 2 if s.mscale_all_dim else 1.0
