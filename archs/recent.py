"""The choices of the families since mid-2024 as the features changes.py compares, and why some of
them cannot be ablated yet.

DeepSeek-V3's MoE layout and routing, YaRN's constants: each a comparable value of a spec (None where
it does not apply). NOT_ABLATABLE: the changes the planner must refuse, with the reason
(changes.ablatable reads it). Pure Python.
"""

from __future__ import annotations

from .spec import Arch, RopeScaling

# changes.ChangeDef rows: (name, kind, fields or features, description, requires)
RECENT_CHANGES: tuple[tuple[str, str, tuple[str, ...], str, tuple[str, ...]], ...] = (
    ("qk_norm_width", "arch", ("qk_norm_width",), "QK-norm per head, over the whole projection, or weightless "
     "after RoPE (L2)", ("qk_norm",)),
    ("rope_theta_local", "arch", ("rope_theta_local",), "local layers' own RoPE base", ("positions",)),
    ("nope", "arch", ("nope_every", "nope_temp_floor", "nope_temp_scale"), "layers without positions interleaved "
     "with RoPE layers, their queries temperature-scaled with position", ("positions",)),
    ("chunked_attention", "arch", ("attn_chunk",), "RoPE layers attend within fixed chunks", ()),
    ("attn_sinks", "arch", ("attn_sinks",), "a learned per-head sink logit in each attention softmax", ()),
    ("moe", "arch", ("moe_layout",), "dense MLP -> routed experts (top-k, shared experts, dense first layers)", ()),
    ("router", "arch", ("moe_router",), "expert routing: sigmoid affinities, a balancing bias instead of a loss, "
     "group-limited choice, a routed scale, the gate on the expert's input", ("moe_layout",)),
    ("mla", "arch", ("mla",), "multi-head latent attention: keys and values from one cached low-rank latent", ()),
    ("mtp", "arch", ("mtp_depth",), "multi-token prediction modules trained beside the next-token head", ()),
)
NOT_ABLATABLE = {
    "moe": "mixture-of-experts layouts are not ablated yet: a fair comparison with the dense base needs its "
           "active parameters matched, which the planner does not do",
    "router": "routing variants need the MoE layout, which is not ablated yet",
    "mla": "multi-head latent attention is not ablated yet: its ranks have no published rule at small widths "
           "(DeepSeek-V3's d_c = 512 at d_model 7168 is 4.6 at d_model 64)",
    "mtp": "multi-token prediction is counted (params.mtp, training FLOPs) but not built or trained by this tool",
}


def ablatable(change) -> str | None:
    """None when a change (a changes.Change or its name) can be built as a variant; else why not."""
    return NOT_ABLATABLE.get(getattr(change, "name", change))


def mla_kind(a: Arch) -> str | None:
    """None without latent attention; else its cached latent, shared rotary key and query rank."""
    m = a.mla
    return None if m is None else f"MLA (cached d_c {m.kv_rank} + rotary {m.d_rope}, query rank {m.q_rank})"


def moe_layout(a: Arch):
    """None for a dense MLP; else experts, top-k, renormalised, shared expert, its gate, dense first layers, biases."""
    m = a.moe
    return None if m is None else (m.n_experts, m.top_k, m.renormalize, bool(m.d_ff_shared), m.shared_gate,
                                   m.first_dense > 0, m.bias)


def moe_router(a: Arch):
    """None for a dense MLP or Mixtral's plain routing (softmax top-k, no bias, no groups, no scale)."""
    m = a.moe
    if m is None or (m.router, m.route_bias, m.n_groups, m.routed_scale, m.scale_input) == ("softmax", False, 1, 1.0,
                                                                                            False):
        return None
    return m.router, m.route_bias, m.n_groups, m.topk_groups, m.routed_scale, m.scale_input


def scaling_kind(s: RopeScaling) -> tuple:
    """Llama 3.1's scaling as (factor, low, high); YaRN's with its name and temperature constants."""
    t = (s.factor, s.low_freq_factor, s.high_freq_factor)
    return t if s.kind == "llama3" else (s.kind, *t, s.mscale, s.mscale_all_dim, s.truncate)
