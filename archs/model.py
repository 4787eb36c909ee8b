"""One model file that builds every architecture in the registry from its choices.

Read top to bottom: norms, attention, MLP / MoE, block, the decoder (and T5's encoder-decoder),
its initialisation schemes; the position encodings (RoPE and its scalings, sinusoids, T5's buckets)
are positions.py's. Each axis of the spec is one small piece; nothing is keyed on a model's name.
Training concerns stay outside: activation checkpointing wraps the blocks from the trainer
(llmhist.train.trainstate, as torchtitan does), and the model only says which projections write
into the residual stream (`residual_out`).
Math follows the reference implementations (transformers' models for each family) so logits match
on the same weights; see hf.py for the weight mapping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .positions import apply_rope, rope_inv_freq, rope_tables, sinusoid, t5_bucket, yarn_factors
from .spec import Arch

__all__ = ["Transformer", "build", "t5_bucket", "sinusoid", "apply_rope", "rope_inv_freq"]

# ----------------------------------------------------------------------------------- norms


class Norm(nn.Module):
    """LayerNorm (with or without bias), RMSNorm (x * w), or Gemma's RMSNorm (x * (1 + w))."""

    def __init__(self, a: Arch, width: int | None = None):
        super().__init__()
        w = width or a.d_model
        self.kind, self.eps = a.norm, a.norm_eps
        init = torch.zeros(w) if a.norm == "rmsnorm_1p" else torch.ones(w)
        self.weight = nn.Parameter(init)
        self.bias = nn.Parameter(torch.zeros(w)) if (a.norm == "layernorm" and a.norm_bias) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "layernorm":
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        if self.kind == "rmsnorm" and x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return F.rms_norm(x, x.shape[-1:], self.weight, self.eps)  # one fused kernel; same math in fp32
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)  # statistics in fp32
        if self.kind == "rmsnorm_1p":
            return (h * (1.0 + self.weight.float())).type_as(x)
        return self.weight * h.type_as(x)


# ------------------------------------------------------------------------------- attention


class Attention(nn.Module):
    def __init__(self, a: Arch, layer: int, cross: bool = False, rel_bias_table: bool = False):
        super().__init__()
        self.a, self.cross = a, cross
        self.kind = "global" if cross else a.layer_kind(layer)
        d, da, dkv = a.d_model, a.d_attn, a.d_kv
        self.h, self.hkv, self.hd = a.n_heads, a.kv_heads, da // a.n_heads
        qkv_bias, o_bias = a.bias in ("all", "qkv"), a.bias == "all"  # "mlp" (GPT-J): none here
        self.q = nn.Linear(d, da, bias=qkv_bias)
        self.k = nn.Linear(d, dkv, bias=qkv_bias)
        self.v = nn.Linear(d, dkv, bias=qkv_bias)
        self.o = nn.Linear(da, d, bias=o_bias)
        self.scale = (a.query_scale if a.query_scale is not None else self.hd**-0.5) * yarn_factors(a)[1]
        if a.qk_norm and a.qk_norm_width != "l2":  # per head, or over the whole projection (OLMo 2)
            full = a.qk_norm_width == "full"
            self.q_norm, self.k_norm = Norm(a, da if full else self.hd), Norm(a, dkv if full else self.hd)
        self.rope = not cross and a.uses_rope(layer)  # False on Llama 4's NoPE layers
        if a.attn_sinks:  # gpt-oss: one learned logit per head that takes softmax mass and gives no value
            self.sinks = nn.Parameter(torch.zeros(self.h))
        self.xl = a.positions == "xl_relative" and not cross
        if self.xl:  # Transformer-XL: W_r on sinusoidal relative encodings, global biases u and v
            self.r = nn.Linear(d, da, bias=False)
            self.u = nn.Parameter(torch.zeros(self.h, self.hd))
            self.v_bias = nn.Parameter(torch.zeros(self.h, self.hd))
        if rel_bias_table:  # T5: one table per stack, in its first layer
            self.rel_bias = nn.Embedding(a.rel_buckets, self.h)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, n, self.hd).transpose(1, 2)

    def _positions(self, q: torch.Tensor, k: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate (the local pair of a 4-tuple on local layers: Gemma 3); Llama 4: NoPE layers skip it and
        scale their queries by the temperature rule, RoPE layers L2-normalise after rotating."""
        a = self.a
        if rope is not None and self.rope:
            cos, sin = (rope[2], rope[3]) if self.kind == "local" and len(rope) == 4 else (rope[0], rope[1])
            q, k = apply_rope(q, cos, sin, a.rope_interleaved), apply_rope(k, cos, sin, a.rope_interleaved)
            if a.qk_norm and a.qk_norm_width == "l2":  # weightless RMSNorm over each head, in fp32
                q, k = (F.rms_norm(t.float(), t.shape[-1:], None, a.norm_eps).type_as(t) for t in (q, k))
        elif rope is not None and a.nope_temp_scale:
            pos = torch.arange(q.shape[2], device=q.device).float()
            t = torch.log1p(torch.floor((pos + 1.0) / a.nope_temp_floor)) * a.nope_temp_scale + 1.0
            q = (q * t.view(1, 1, -1, 1)).to(q.dtype)
        return q, k

    def forward(self, x, rope: tuple[torch.Tensor, torch.Tensor] | None = None, bias=None, causal=True, kv=None):
        """x: (B, T, d). rope: (cos, sin). bias: additive (1|B, H, T, S) scores bias (T5).
        kv: encoder states for cross-attention."""
        B, T, _ = x.shape
        src = x if kv is None else kv
        # separate q, k, v matmuls: one fused matmul over concatenated weights measured no faster on CPU
        q, k, v = self.q(x), self.k(src), self.v(src)
        if self.a.qk_norm and self.a.qk_norm_width == "full":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = self._heads(q, self.h), self._heads(k, self.hkv), self._heads(v, self.hkv)
        if self.a.qk_norm and self.a.qk_norm_width == "head":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self._positions(q, k, rope)
        if self.hkv != self.h:  # GQA / MQA: each KV head serves h / hkv consecutive query heads
            k = k.repeat_interleave(self.h // self.hkv, dim=1)
            v = v.repeat_interleave(self.h // self.hkv, dim=1)
        S = k.shape[2]
        mask = None
        chunked = self.rope and self.a.attn_chunk is not None
        if causal and (self.kind == "local" or bias is not None or self.xl or self.a.attn_softcap or chunked
                       or self.a.attn_sinks):
            i, j = torch.arange(T, device=x.device)[:, None], torch.arange(S, device=x.device)[None]
            allowed = j <= i
            if self.kind == "local":
                allowed = allowed & (j > i - self.a.window)
            if chunked:  # Llama 4: a RoPE layer sees its own chunk only
                allowed = allowed & (i // self.a.attn_chunk == j // self.a.attn_chunk)
            mask = torch.zeros(T, S, device=x.device, dtype=q.dtype).masked_fill(~allowed, float("-inf"))
        if self.xl:
            # score(i, j) = (q_i + u) . k_j + (q_i + v) . W_r R_{i-j}; gather the distance i - j
            R = sinusoid(torch.arange(S, device=x.device), self.a.d_model).to(x.dtype)
            r = self.r(R).view(S, self.h, self.hd).transpose(0, 1)  # (H, S, hd) by distance
            pos = (q + self.v_bias[None, :, None]) @ r.transpose(-1, -2)  # (B, H, T, distance)
            dist = (torch.arange(T, device=x.device)[:, None] - torch.arange(S, device=x.device)[None]).clamp(min=0)
            pos = pos.gather(-1, dist.expand(B, self.h, T, S))
            bias = pos * self.scale
            q = q + self.u[None, :, None]
        if bias is not None:
            mask = bias if mask is None else bias + mask
        if self.a.attn_softcap or self.a.attn_sinks:  # no fused kernel for either
            s = (q @ k.transpose(-1, -2)) * self.scale
            if self.a.attn_softcap:  # Gemma 2: cap * tanh(score / cap) before the mask
                s = self.a.attn_softcap * torch.tanh(s / self.a.attn_softcap)
            if mask is not None:
                s = s + mask
            if self.a.attn_sinks:  # the sink's column joins the softmax, then is dropped
                s = torch.cat((s, self.sinks.view(1, -1, 1, 1).expand(B, -1, T, 1).to(s.dtype)), dim=-1)
            y = torch.softmax(s.float(), dim=-1)[..., :S].to(q.dtype) @ v
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=causal and mask is None, scale=self.scale
            )
        return self.o(y.transpose(1, 2).reshape(B, T, self.h * self.hd))


class LatentAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-V2 §2.1, V3 §2.1.1; transformers' DeepseekV3Attention):
    queries from a normed low-rank latent; keys' no-rotation part and values from one normed latent
    c^KV (what the cache holds) plus one rotary key k^R shared by all heads (cached too). Causal,
    global layers only (spec.check)."""

    def __init__(self, a: Arch, layer: int):
        super().__init__()
        m, d, H = a.latent, a.d_model, a.n_heads
        self.a, self.m, self.h, self.kind = a, m, H, a.layer_kind(layer)
        self.q_a, self.q_a_norm = nn.Linear(d, m.q_rank, bias=False), Norm(a, m.q_rank)
        self.q_b = nn.Linear(m.q_rank, H * (m.d_nope + m.d_rope), bias=False)
        self.kv_a, self.kv_a_norm = nn.Linear(d, m.kv_rank + m.d_rope, bias=False), Norm(a, m.kv_rank)
        self.kv_b = nn.Linear(m.kv_rank, H * (m.d_nope + m.d_v), bias=False)
        self.o = nn.Linear(H * m.d_v, d, bias=False)
        self.scale = (a.query_scale if a.query_scale is not None else a.head_dim**-0.5) * yarn_factors(a)[1]

    def forward(self, x, rope=None, bias=None, causal=True, kv=None):
        B, T, _ = x.shape
        m, H = self.m, self.h
        q = self.q_b(self.q_a_norm(self.q_a(x))).view(B, T, H, -1).transpose(1, 2)
        q_pass, q_rot = q.split([m.d_nope, m.d_rope], dim=-1)
        c, k_rot = self.kv_a(x).split([m.kv_rank, m.d_rope], dim=-1)
        k_pass, v = self.kv_b(self.kv_a_norm(c)).view(B, T, H, -1).transpose(1, 2).split([m.d_nope, m.d_v], dim=-1)
        k_rot = k_rot.view(B, 1, T, m.d_rope)
        if rope is not None:
            cos, sin, il = rope[0], rope[1], self.a.rope_interleaved
            q_rot, k_rot = apply_rope(q_rot, cos, sin, il), apply_rope(k_rot, cos, sin, il)
        q = torch.cat((q_pass, q_rot), dim=-1)
        k = torch.cat((k_pass, k_rot.expand(B, H, T, m.d_rope)), dim=-1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=self.scale)
        return self.o(y.transpose(1, 2).reshape(B, T, H * m.d_v))


# ------------------------------------------------------------------------------------ MLPs

ACT = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "swiglu": F.silu,  # SwiGLU: down(silu(gate x) * up x)
    "geglu": lambda x: F.gelu(x, approximate="tanh"),  # GeGLU as Gemma and T5 v1.1 compute it
    "swiglu_clamped": lambda x: x * torch.sigmoid(1.702 * x),  # gpt-oss (swiglu_alpha 1.702), see glu()
}


def glu(a: Arch, g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The gated product act(g) * u; gpt-oss clamps both (swiglu_limit 7) and adds 1 to u."""
    if a.mlp == "swiglu_clamped":
        return ACT[a.mlp](g.clamp(max=7.0)) * (u.clamp(-7.0, 7.0) + 1)
    return ACT[a.mlp](g) * u


class MLP(nn.Module):
    def __init__(self, a: Arch, d_ff: int, bias: bool | None = None, gated: bool | None = None):
        super().__init__()
        b = a.bias in ("all", "mlp") if bias is None else bias
        self.a, self.act, self.gated = a, ACT[a.mlp], a.gated if gated is None else gated
        self.up = nn.Linear(a.d_model, d_ff, bias=b)
        self.gate = nn.Linear(a.d_model, d_ff, bias=b) if self.gated else None
        self.down = nn.Linear(d_ff, a.d_model, bias=b)

    def forward(self, x):
        # gate and up stay two matmuls: one over concatenated weights measured slower on CPU
        h = glu(self.a, self.gate(x), self.up(x)) if self.gate is not None else self.act(self.up(x))
        return self.down(h)


class MoE(nn.Module):
    """Top-k routed experts (softmax over all experts, then top-k, optionally renormalised) plus
    an optional shared expert behind a sigmoid gate. Experts are stored fused as in transformers:
    gate_up (E, 2 f, d) with the gate half first, down (E, d, f). Only routed tokens are computed,
    so FLOPs scale with top-k. Routed and shared experts are gated MLPs (as in Mixtral and Qwen2-MoE)
    with the spec's activation and no biases. The last call's routing statistics are kept for the
    load-balancing loss (Transformer.aux_loss)."""

    def __init__(self, a: Arch):
        super().__init__()
        m = self.cfg = a.experts
        d, f = a.d_model, m.d_ff_expert
        self.a = a
        self.router = nn.Linear(d, m.n_experts, bias=m.bias)
        self.gate_up = nn.Parameter(torch.empty(m.n_experts, 2 * f, d))
        self.down = nn.Parameter(torch.empty(m.n_experts, d, f))
        for p in (self.gate_up, self.down):
            nn.init.normal_(p, std=0.02)
        if m.bias:  # gpt-oss: every expert's projections carry biases
            self.gate_up_bias, self.down_bias = nn.Parameter(torch.zeros(m.n_experts, 2 * f)), \
                nn.Parameter(torch.zeros(m.n_experts, d))
        self.shared = MLP(a, m.d_ff_shared, bias=False, gated=True) if m.d_ff_shared else None
        self.shared_gate = nn.Linear(d, 1, bias=False) if m.shared_gate else None
        self.route_frac = self.route_prob = torch.zeros(m.n_experts)
        if m.route_bias:  # adjusted by the balancing rule during training, not by gradients: a buffer
            self.register_buffer("route_bias", torch.zeros(m.n_experts))

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(gate weights, expert indices, affinities normalised per token). Softmax (Mixtral) or sigmoid
        affinities (DeepSeek-V3 eq. 15), the balancing bias in the choice only, group-limited choice
        (the groups with the best two-expert sums), optional renormalisation, then the routed scale."""
        m = self.cfg
        logits = self.router(x).float()
        s = torch.sigmoid(logits) if m.router == "sigmoid" else torch.softmax(logits, dim=-1)
        choice = s + self.route_bias if m.route_bias else s
        if m.n_groups > 1:
            g = choice.view(-1, m.n_groups, m.n_experts // m.n_groups)
            best = g.topk(2, dim=-1).values.sum(-1).topk(m.topk_groups, dim=-1).indices
            keep = torch.zeros_like(g[..., 0]).scatter_(1, best, 1.0).bool()
            choice = choice.masked_fill(~keep.repeat_interleave(m.n_experts // m.n_groups, dim=-1), float("-inf"))
        idx = choice.topk(m.top_k, dim=-1).indices
        w = s.gather(-1, idx)
        if m.renormalize:
            w = w / w.sum(-1, keepdim=True)
        return w * m.routed_scale, idx, s / s.sum(-1, keepdim=True)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        w, idx, probs = self.route(x)
        w = w.to(x.dtype)
        out = torch.zeros_like(x)
        for e in idx.unique().tolist():
            tok, slot = (idx == e).nonzero(as_tuple=True)
            xe = x[tok] * w[tok, slot, None] if self.cfg.scale_input else x[tok]  # Llama 4 scales the input
            b = self.cfg.bias
            g, u = F.linear(xe, self.gate_up[e], self.gate_up_bias[e] if b else None).chunk(2, dim=-1)
            y = F.linear(glu(self.a, g, u), self.down[e], self.down_bias[e] if b else None)
            out.index_add_(0, tok, y if self.cfg.scale_input else y * w[tok, slot, None])
        # for the load-balancing loss: top-k routings to each expert per token (sums to top_k, as in
        # transformers' load_balancing_loss_func) and each expert's mean router probability
        self.route_frac = torch.zeros(self.cfg.n_experts, device=x.device).scatter_add_(
            0, idx.flatten(), torch.ones(idx.numel(), device=x.device)) / x.shape[0]
        self.route_prob = probs.mean(0)
        if self.shared is not None:
            s = self.shared(x)
            out = out + (torch.sigmoid(self.shared_gate(x)) * s if self.shared_gate is not None else s)
        return out.reshape(shape)


# ----------------------------------------------------------------------------------- block


class Block(nn.Module):
    def __init__(self, a: Arch, layer: int, cross: bool = False, rel_bias_table: bool = False):
        super().__init__()
        self.a = a
        self.attn_norm = Norm(a)
        self.attn = LatentAttention(a, layer) if a.mla is not None else \
            Attention(a, layer, rel_bias_table=rel_bias_table)
        if cross:
            self.cross_norm, self.cross_attn = Norm(a), Attention(a, layer, cross=True)
        self.mlp = MoE(a) if a.moe is not None and layer >= a.moe.first_dense else MLP(a, a.d_ff)
        # the projections that write into the residual stream (GPT-2 scales their init by 1/sqrt(2L))
        self.attn.o.residual_out = True
        if isinstance(self.mlp, MLP):
            self.mlp.down.residual_out = True
        if not a.parallel_block:
            self.mlp_norm = Norm(a)
        if a.norm_placement == "sandwich":
            self.post_attn_norm, self.post_mlp_norm = Norm(a), Norm(a)

    def forward(self, x, rope=None, bias=None, causal=True, enc=None, enc_bias=None):
        a = self.a
        if a.parallel_block:  # PaLM: one shared norm feeds both branches
            h = self.attn_norm(x)
            return x + self.attn(h, rope, bias, causal) + self.mlp(h)
        if a.norm_placement == "post":  # GPT-1: LN(x + f(x))
            x = self.attn_norm(x + self.attn(x, rope, bias, causal))
            return self.mlp_norm(x + self.mlp(x))
        if a.norm_placement == "output":  # OLMo 2: x + LN(f(x))
            x = x + self.attn_norm(self.attn(x, rope, bias, causal))
            return x + self.mlp_norm(self.mlp(x))
        y = self.attn(self.attn_norm(x), rope, bias, causal)
        x = x + (self.post_attn_norm(y) if a.norm_placement == "sandwich" else y)
        if enc is not None:
            x = x + self.cross_attn(self.cross_norm(x), bias=enc_bias, causal=False, kv=enc)
        y = self.mlp(self.mlp_norm(x))
        return x + (self.post_mlp_norm(y) if a.norm_placement == "sandwich" else y)


# ----------------------------------------------------------------------------------- model
INIT_SCHEMES = ("normal02", "gpt2_scaled", "fan_in")  # the values of Recipe.init

ROPE_CACHE_MAX = 8192  # positions whose cos/sin are kept as buffers; longer sequences compute them


class Stack(nn.Module):
    """A stack of blocks with its position machinery and final norm."""

    def __init__(self, a: Arch, n_layers: int, cross: bool = False):
        super().__init__()
        self.a = a
        t5 = a.positions == "t5_bias"
        self.blocks = nn.ModuleList(Block(a, i, cross, rel_bias_table=t5 and i == 0) for i in range(n_layers))
        self.final_norm = Norm(a) if a.final_norm else None
        if a.positions == "rope":
            self.register_buffer("inv_freq", rope_inv_freq(a), persistent=False)
            # cos/sin computed once for the model's context (capped), sliced per forward
            cos, sin = self._tables(self.inv_freq, min(a.ctx_len, ROPE_CACHE_MAX))
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if a.positions == "rope" and a.rope_theta_local is not None:  # Gemma 3: local layers' own base
            self.register_buffer("inv_freq_local", rope_inv_freq(a, a.rope_theta_local), persistent=False)

    def _tables(self, inv_freq: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = rope_tables(inv_freq.float(), T, self.a.rope_interleaved)
        f = yarn_factors(self.a)[0]  # YaRN's temperature on cos/sin (1 otherwise)
        return (cos * f, sin * f) if f != 1.0 else (cos, sin)

    def forward(self, x, causal=True, enc=None):
        a, T = self.a, x.shape[1]
        rope = bias = None
        if a.positions == "rope":
            if T <= self.rope_cos.shape[0]:
                cos, sin = self.rope_cos[:T], self.rope_sin[:T]
            else:
                cos, sin = self._tables(self.inv_freq, T)
            rope = (cos.to(x.dtype), sin.to(x.dtype))
            if a.rope_theta_local is not None:  # (cos, sin, local cos, local sin): Attention picks its pair
                rope = rope + tuple(t.to(x.dtype) for t in rope_tables(self.inv_freq_local, T, a.rope_interleaved))
        if a.positions == "t5_bias":
            pos = torch.arange(T, device=x.device)
            buckets = t5_bucket(pos[None] - pos[:, None], not causal, a.rel_buckets, a.rel_max_distance)
            bias = self.blocks[0].attn.rel_bias(buckets).permute(2, 0, 1)[None].to(x.dtype)
        for blk in self.blocks:
            x = blk(x, rope, bias, causal, enc)
        return self.final_norm(x) if self.final_norm is not None else x


class Transformer(nn.Module):
    """A decoder-only language model, or (n_enc_layers > 0) T5's encoder-decoder."""

    def __init__(self, a: Arch):
        super().__init__()
        self.a = a.check()
        self.tok_emb = nn.Embedding(a.vocab_size, a.d_model)
        if a.positions == "learned":
            self.pos_emb = nn.Embedding(a.ctx_len, a.d_model)
        if a.is_encoder_decoder:
            self.encoder = Stack(a, a.n_enc_layers)
        self.decoder = Stack(a, a.n_layers, cross=a.is_encoder_decoder)
        self.lm_head = nn.Linear(a.d_model, a.vocab_size, bias=a.lm_head_bias)
        if a.tied_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init)

    def _init(self, m: nn.Module) -> None:
        # GPT-2 style N(0, 0.02); a recipe's scheme is applied over it (init_weights)
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def init_weights(self, scheme: str = "normal02", embed_std: float = 0.02) -> None:
        """A recipe's initialisation (Recipe.init, Recipe.embed_std) over the construction's N(0, 0.02):
        normal02 keeps it; gpt2_scaled (GPT-2 §2.3) draws the projections that write into the residual
        stream (`residual_out`, and MoE experts' down) from N(0, 0.02 / sqrt(2 L)); fan_in (Mesh-TF T5)
        draws every matrix from N(0, 1 / fan_in). The embeddings are drawn from N(0, embed_std^2)."""
        if scheme not in INIT_SCHEMES:
            raise ValueError(f"init {scheme!r}: use one of {', '.join(INIT_SCHEMES)}")
        resid_std = 0.02 / math.sqrt(2 * (self.a.n_layers + self.a.n_enc_layers))
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear) and scheme == "fan_in":
                    nn.init.normal_(m.weight, std=m.in_features**-0.5)
                if isinstance(m, MoE):
                    for p in (m.gate_up, m.down):
                        nn.init.normal_(p, std=0.02 if scheme != "fan_in" else p.shape[-1] ** -0.5)
                    if scheme == "gpt2_scaled":
                        nn.init.normal_(m.down, std=resid_std)
                if scheme == "gpt2_scaled" and isinstance(m, nn.Linear) and getattr(m, "residual_out", False):
                    nn.init.normal_(m.weight, std=resid_std)  # GPT-2: residual layers scaled by 1/sqrt(N)
            for emb in ("tok_emb", "pos_emb"):
                if hasattr(self, emb) and embed_std != 0.02:
                    nn.init.normal_(getattr(self, emb).weight, std=embed_std)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        a, T = self.a, idx.shape[1]
        if T > a.ctx_len and a.positions == "learned":
            raise ValueError(f"sequence of {T} tokens exceeds the learned position table ({a.ctx_len})")
        x = self.tok_emb(idx)
        if a.embed_scale:  # Gemma: sqrt(d_model), rounded to the activation dtype as in the reference
            x = x * torch.tensor(a.d_model**0.5, dtype=x.dtype)
        if a.positions == "learned":
            x = x + self.pos_emb(torch.arange(T, device=idx.device))
        elif a.positions == "sinusoidal":
            x = x + sinusoid(torch.arange(T, device=idx.device), a.d_model).to(x.dtype)
        return x

    def forward(self, idx: torch.Tensor, decoder_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V). Decoder-only: idx are the tokens. T5: idx feeds the encoder and
        decoder_idx the decoder."""
        a = self.a
        if a.is_encoder_decoder:
            if decoder_idx is None:
                raise ValueError(f"{a.name} is an encoder-decoder: pass decoder_idx")
            enc = self.encoder(self.embed(idx), causal=False)
            h = self.decoder(self.embed(decoder_idx), causal=True, enc=enc)
        else:
            h = self.decoder(self.embed(idx))
        if a.output_scale:  # T5, PaLM: the tied head reads h * d^-0.5
            h = h * a.d_model**-0.5
        logits = self.lm_head(h)
        if a.final_softcap:  # Gemma 2
            logits = a.final_softcap * torch.tanh(logits / a.final_softcap)
        return logits

    def aux_loss(self) -> torch.Tensor:
        """MoE load-balancing loss of the last forward (0 for dense models), as transformers defines it
        for Mixtral and Qwen2-MoE (load_balancing_loss_func, Fedus et al. 2021 eq. 4-6 with top-k):
        E * sum_e f_e * P_e, f_e = top-k routings to expert e per token and P_e = its mean router
        probability, each averaged over all MoE layers before the product. With top_k routings per
        token f sums to top_k, so a uniform router gives top_k; the recipes' coefficients are the
        released configs' router_aux_loss_coef, which multiply exactly this."""
        moes = [m for m in self.modules() if isinstance(m, MoE)]
        if not moes:
            return torch.zeros((), device=self.tok_emb.weight.device)
        frac = torch.stack([m.route_frac for m in moes]).mean(0)
        prob = torch.stack([m.route_prob for m in moes]).mean(0)
        return self.a.experts.n_experts * (frac * prob).sum()


def build(a: Arch, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
          init: str | None = None, embed_std: float = 0.02) -> Transformer:
    """Build any entry (at any size) as a torch module; `init` (a recipe's scheme, see
    Transformer.init_weights) re-initialises it after construction."""
    with torch.device(device):
        m = Transformer(a)
    if init is not None:
        m.init_weights(init, embed_std)
    return m.to(dtype) if dtype is not None else m
