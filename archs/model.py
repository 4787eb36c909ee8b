"""One model file that builds every architecture in the registry from its choices.

Read top to bottom: norms, positions, attention, MLP / MoE, block, the decoder (and T5's
encoder-decoder), its initialisation schemes. Each axis of the spec is one small piece; nothing is
keyed on a model's name. Training concerns stay outside: activation checkpointing wraps the blocks
from the trainer (llmhist.train.loop, as torchtitan does), and the model only says which
projections write into the residual stream (`residual_out`).
Math follows the reference implementations (transformers' models for each family) so logits match
on the same weights; see hf.py for the weight mapping.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .spec import Arch

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


# ------------------------------------------------------------------------------- positions


def rope_inv_freq(a: Arch) -> torch.Tensor:
    hd = a.rotary_dim or a.d_head  # partial rotary (GPT-J): frequencies over the rotated dims only
    inv = 1.0 / (a.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    s = a.rope_scaling
    if s is None:
        return inv
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
        self.scale = a.query_scale if a.query_scale is not None else self.hd**-0.5
        if a.qk_norm:
            self.q_norm, self.k_norm = Norm(a, self.hd), Norm(a, self.hd)
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

    def forward(self, x, rope: tuple[torch.Tensor, torch.Tensor] | None = None, bias=None, causal=True, kv=None):
        """x: (B, T, d). rope: (cos, sin). bias: additive (1|B, H, T, S) scores bias (T5).
        kv: encoder states for cross-attention."""
        B, T, _ = x.shape
        src = x if kv is None else kv
        # separate q, k, v matmuls: one fused matmul over concatenated weights measured no faster on CPU
        q, k, v = self._heads(self.q(x), self.h), self._heads(self.k(src), self.hkv), self._heads(self.v(src), self.hkv)
        if self.a.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope, self.a.rope_interleaved), apply_rope(k, *rope, self.a.rope_interleaved)
        if self.hkv != self.h:  # GQA / MQA: each KV head serves h / hkv consecutive query heads
            k = k.repeat_interleave(self.h // self.hkv, dim=1)
            v = v.repeat_interleave(self.h // self.hkv, dim=1)
        S = k.shape[2]
        mask = None
        if causal and (self.kind == "local" or bias is not None or self.xl or self.a.attn_softcap):
            i, j = torch.arange(T, device=x.device)[:, None], torch.arange(S, device=x.device)[None]
            allowed = j <= i
            if self.kind == "local":
                allowed = allowed & (j > i - self.a.window)
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
        if self.a.attn_softcap:  # Gemma 2: cap * tanh(score / cap) before the mask; no fused kernel
            s = (q @ k.transpose(-1, -2)) * self.scale
            s = self.a.attn_softcap * torch.tanh(s / self.a.attn_softcap)
            if mask is not None:
                s = s + mask
            y = torch.softmax(s.float(), dim=-1).to(q.dtype) @ v
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=causal and mask is None, scale=self.scale
            )
        return self.o(y.transpose(1, 2).reshape(B, T, self.h * self.hd))


# ------------------------------------------------------------------------------------ MLPs

ACT = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "swiglu": F.silu,  # SwiGLU: down(silu(gate x) * up x)
    "geglu": lambda x: F.gelu(x, approximate="tanh"),  # GeGLU as Gemma and T5 v1.1 compute it
}


class MLP(nn.Module):
    def __init__(self, a: Arch, d_ff: int, bias: bool | None = None, gated: bool | None = None):
        super().__init__()
        b = a.bias in ("all", "mlp") if bias is None else bias
        self.act, self.gated = ACT[a.mlp], a.gated if gated is None else gated
        self.up = nn.Linear(a.d_model, d_ff, bias=b)
        self.gate = nn.Linear(a.d_model, d_ff, bias=b) if self.gated else None
        self.down = nn.Linear(d_ff, a.d_model, bias=b)

    def forward(self, x):
        # gate and up stay two matmuls: one over concatenated weights measured slower on CPU
        h = self.act(self.gate(x)) * self.up(x) if self.gate is not None else self.act(self.up(x))
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
        self.act = ACT[a.mlp]
        self.router = nn.Linear(d, m.n_experts, bias=False)
        self.gate_up = nn.Parameter(torch.empty(m.n_experts, 2 * f, d))
        self.down = nn.Parameter(torch.empty(m.n_experts, d, f))
        for p in (self.gate_up, self.down):
            nn.init.normal_(p, std=0.02)
        self.shared = MLP(a, m.d_ff_shared, bias=False, gated=True) if m.d_ff_shared else None
        self.shared_gate = nn.Linear(d, 1, bias=False) if m.shared_gate else None
        self.route_frac = self.route_prob = torch.zeros(m.n_experts)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        probs = torch.softmax(self.router(x).float(), dim=-1)
        w, idx = probs.topk(self.cfg.top_k, dim=-1)
        if self.cfg.renormalize:
            w = w / w.sum(-1, keepdim=True)
        w = w.to(x.dtype)
        out = torch.zeros_like(x)
        for e in idx.unique().tolist():
            tok, slot = (idx == e).nonzero(as_tuple=True)
            g, u = F.linear(x[tok], self.gate_up[e]).chunk(2, dim=-1)
            y = F.linear(self.act(g) * u, self.down[e])
            out.index_add_(0, tok, y * w[tok, slot, None])
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
        self.attn_norm, self.attn = Norm(a), Attention(a, layer, rel_bias_table=rel_bias_table)
        if cross:
            self.cross_norm, self.cross_attn = Norm(a), Attention(a, layer, cross=True)
        self.mlp = MoE(a) if a.moe is not None else MLP(a, a.d_ff)
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
            cos, sin = rope_tables(self.inv_freq, min(a.ctx_len, ROPE_CACHE_MAX), a.rope_interleaved)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x, causal=True, enc=None):
        a, T = self.a, x.shape[1]
        rope = bias = None
        if a.positions == "rope":
            if T <= self.rope_cos.shape[0]:
                cos, sin = self.rope_cos[:T], self.rope_sin[:T]
            else:
                cos, sin = rope_tables(self.inv_freq.float(), T, a.rope_interleaved)
            rope = (cos.to(x.dtype), sin.to(x.dtype))
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
