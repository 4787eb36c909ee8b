"""Position encodings as tensors: RoPE's frequencies (Llama 3.1's scaling, YaRN), its cos/sin tables
and rotation, Vaswani et al.'s sinusoids and T5's relative buckets. model.py applies them.

YaRN (Peng et al. 2023) follows transformers' "yarn" rope type (its DeepSeek-V3 and gpt-oss models),
frequencies and attention temperature, so logits match on the same weights.
"""

from __future__ import annotations

import math

import torch

from .spec import Arch, RopeScaling


def rope_inv_freq(a: Arch, theta: float | None = None) -> torch.Tensor:
    # partial rotary (GPT-J), MLA's decoupled key: frequencies over the rotated dims only
    hd = a.mla.d_rope if a.mla is not None else a.rotary_dim or a.d_head
    inv = 1.0 / ((theta or a.rope_theta) ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    s = a.rope_scaling
    if s is None or theta is not None:  # a local layer's own base is unscaled (Gemma 3)
        return inv
    if s.kind == "yarn":
        return yarn_inv_freq(inv, hd, theta or a.rope_theta, s)
    # Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
    low_wavelen, high_wavelen = s.original_ctx / s.low_freq_factor, s.original_ctx / s.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / s.factor, inv)
    smooth = (s.original_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor)
    smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_tables(inv_freq: torch.Tensor, T: int, interleaved: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin of position x frequency, (T, rotary_dim), in fp32, laid out so that
    rotating x is x * cos + swap(x) * sin (see apply_rope): halves [c | c], [-s | s];
    interleaved (c0 c0 c1 c1 ..), (-s0 s0 -s1 s1 ..)."""
    ang = torch.arange(T, device=inv_freq.device).float()[:, None] * inv_freq[None]
    c, s = ang.cos(), ang.sin()
    if interleaved:
        return c.repeat_interleave(2, dim=-1), torch.stack((-s, s), dim=-1).flatten(-2)
    return torch.cat((c, c), dim=-1), torch.cat((-s, s), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rotate the first cos.shape[-1] dims of each head; the rest pass through (partial rotary).

    Halves (Llama, GPT-NeoX): pairs (i, i + r/2). Interleaved (GPT-J, PaLM/Mesh): pairs (2i, 2i + 1).
    Each pair (x1, x2) becomes (x1 cos - x2 sin, x2 cos + x1 sin), the reference's
    x * cos + rotate(x) * sin written as x * cos + swap(x) * signed sin: three kernels
    (swap, multiply, fused multiply-add), which is what costs at small widths."""
    r = cos.shape[-1]
    xr = x[..., :r] if r < x.shape[-1] else x
    if interleaved:
        swapped = xr.unflatten(-1, (r // 2, 2)).flip(-1).flatten(-2)
    else:
        swapped = xr.roll(r // 2, dims=-1)
    out = torch.addcmul(xr * cos, swapped, sin)
    return torch.cat((out, x[..., r:]), dim=-1) if r < x.shape[-1] else out


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Vaswani et al.'s sinusoidal table [sin | cos] for the given positions."""
    inv = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=positions.device).float() / dim))
    ang = positions.float()[:, None] * inv[None]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


def t5_bucket(rel: torch.Tensor, bidirectional: bool, n_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's log-spaced relative-position buckets (rel = key position - query position)."""
    out = torch.zeros_like(rel)
    if bidirectional:
        n_buckets //= 2
        out += (rel > 0).long() * n_buckets
        rel = rel.abs()
    else:
        rel = -torch.clamp(rel, max=0)
    exact = n_buckets // 2
    is_small = rel < exact
    large = exact + (
        torch.log(rel.float() / exact) / math.log(max_distance / exact) * (n_buckets - exact)
    ).long()
    large = torch.clamp(large, max=n_buckets - 1)
    return out + torch.where(is_small, rel, large)


def yarn_inv_freq(inv: torch.Tensor, hd: int, theta: float, s: RopeScaling) -> torch.Tensor:
    """YaRN (Peng et al. 2023, §3.2 "NTK-by-parts"): dims turning more than beta_fast (high_freq_factor)
    times over the original context keep their frequency, fewer than beta_slow (low_freq_factor) are
    divided by the factor, a linear ramp between over the (floored / ceiled) dimension range."""
    def dim_of(rotations: float) -> float:  # the dimension index turning `rotations` times
        return hd * math.log(s.original_ctx / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    lo, hi = dim_of(s.high_freq_factor), dim_of(s.low_freq_factor)
    if s.truncate:
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, hd - 1)
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
