"""Parameters, FLOPs and memory of an Arch, in pure Python (no torch import).

Every count here is checked in the tests against the built module: parameters against
sum(p.numel()), FLOPs against torch.utils.flop_counter.FlopCounterMode.
Conventions follow the papers and are named: see FLOP_CONVENTIONS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .spec import Arch

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "int4": 0.5}


# ---------------------------------------------------------------------------------- parameters
def _norm(a: Arch, width: int | None = None) -> int:
    w = width or a.d_model
    return 2 * w if (a.norm == "layernorm" and a.norm_bias) else w


def attn_params(a: Arch, cross: bool = False) -> int:
    d, da, dkv = a.d_model, a.d_attn, a.d_kv
    n = d * da + 2 * d * dkv + da * d  # W_q, W_k, W_v, W_o
    if a.bias == "all":
        n += da + 2 * dkv + d
    elif a.bias == "qkv":
        n += da + 2 * dkv
    if a.qk_norm:
        n += 2 * a.d_head  # one RMSNorm over head_dim for queries, one for keys, shared by heads
    if a.positions == "xl_relative" and not cross:
        n += d * da + 2 * da  # W_r projecting the sinusoidal relative encodings; biases u and v
    return n


def dense_mlp_params(a: Arch, d_ff: int) -> int:
    d = a.d_model
    n = (3 if a.gated else 2) * d * d_ff
    if a.bias == "all":
        n += (2 if a.gated else 1) * d_ff + d
    return n


def mlp_params(a: Arch, active: bool = False) -> int:
    if a.moe is None:
        return dense_mlp_params(a, a.d_ff)
    m, d = a.moe, a.d_model
    n_routed = m.top_k if active else m.n_experts
    n = d * m.n_experts  # router
    n += n_routed * dense_mlp_params(a, m.d_ff_expert)
    if m.d_ff_shared:
        n += dense_mlp_params(a, m.d_ff_shared) + (d if m.shared_gate else 0)
    return n


def norms_per_layer(a: Arch, decoder_of_enc_dec: bool = False) -> int:
    if a.parallel_block:
        return 1
    k = 4 if a.norm_placement == "sandwich" else 2
    return k + (1 if decoder_of_enc_dec else 0)  # T5's decoder: self, cross, MLP


@dataclass
class Params:
    total: int  # every parameter, tied weights counted once
    embedding: int  # token embedding (+ learned positions) (+ untied LM head)
    non_embedding: int  # Kaplan's convention: total - embedding
    active: int  # per token (MoE: top-k experts only)
    layers: list[dict] = field(default_factory=list)  # per-layer breakdown

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("total", "embedding", "non_embedding", "active")}


def params(a: Arch) -> Params:
    """Exact parameter counts of the built module (and of transformers' where it has the family)."""
    d, V = a.d_model, a.vocab_size
    tok = V * d
    pos = a.ctx_len * d if a.positions == "learned" else 0
    head = 0 if a.tied_embeddings else V * d
    layers = []
    stacks = [("encoder", a.n_enc_layers), ("decoder", a.n_layers)] if a.is_encoder_decoder else [("decoder", a.n_layers)]
    for stack, n in stacks:
        cross = a.is_encoder_decoder and stack == "decoder"
        for i in range(n):
            row = {
                "stack": stack, "layer": i, "kind": a.layer_kind(i),
                "attn": attn_params(a) + (attn_params(a, cross=True) if cross else 0),
                "mlp": mlp_params(a), "mlp_active": mlp_params(a, active=True),
                "norms": norms_per_layer(a, cross) * _norm(a),
                # T5: one bucketed bias table per stack, in its first layer, shared by the rest
                "rel_bias": a.rel_buckets * a.n_heads if (a.positions == "t5_bias" and i == 0) else 0,
            }
            row["total"] = row["attn"] + row["mlp"] + row["norms"] + row["rel_bias"]
            layers.append(row)
    final = (len(stacks) if a.final_norm else 0) * _norm(a)
    body = sum(r["total"] for r in layers) + final
    body_active = body - sum(r["mlp"] - r["mlp_active"] for r in layers)
    emb = tok + pos + head
    return Params(total=body + emb, embedding=emb, non_embedding=body, active=body_active + emb, layers=layers)


# ---------------------------------------------------------------------------------------- FLOPs
FLOP_CONVENTIONS = {
    "6N": "6 x N per token, N = all (active) parameters incl. embeddings: Chinchilla's C = 6ND",
    "kaplan": "6 x N_non-embedding + 6 x n_layers x n_ctx x d_attn (Kaplan et al. 2020, Table 1)",
    "palm": "6 x N + 12 x L x H x Q x T, N = all (active) parameters (Chowdhery et al. 2022, App. B)",
    "chinchilla": "Hoffmann et al. 2022 App. F: embeddings, QKV, logits, softmax, reduction, "
                  "projection, dense and output logits; 2 FLOPs per MAC, backward = 2 x forward",
    "counted": "every matmul this tool's model executes (attention over all T keys, as dense kernels "
               "compute it; MoE top-k only): what torch's FlopCounterMode sees, per token",
    "useful": "like counted, but attention only over the keys a query may see (causal, windows)",
}


def _attended_keys(a: Arch, kind: str, T: int, causal_only: bool) -> float:
    """Average number of keys each query scores against."""
    if not causal_only:
        return T
    w = a.window if kind == "local" else T
    w = min(w, T)
    # position i sees min(i + 1, w) keys
    return (w * (w + 1) / 2 + (T - w) * w) / T


def _layer_forward_flops(a: Arch, kind: str, T: int, causal_only: bool, cross_T: int = 0) -> float:
    """Forward FLOPs per token of one layer (2 per multiply-accumulate)."""
    d, da, dkv = a.d_model, a.d_attn, a.d_kv
    f = 2 * (d * da + 2 * d * dkv + da * d)  # projections
    f += 2 * 2 * _attended_keys(a, kind, T, causal_only) * da  # QK^T and AV
    if a.positions == "xl_relative":
        f += 2 * T * da  # (q + v) . W_r R for every distance
        f += 2 * d * da  # W_r R: T encodings projected once per sequence (our model shares it across a batch)
    if cross_T:
        f += 2 * (2 * d * da) + 2 * 2 * cross_T * da  # cross-attn W_q, W_o and scores/values
        f += 2 * (2 * d * dkv)  # W_k, W_v on the encoder output (one encoder token per decoder token here)
    if a.moe is None:
        f += 2 * (3 if a.gated else 2) * d * a.d_ff
    else:
        m = a.moe
        f += 2 * d * m.n_experts  # router
        f += m.top_k * 2 * (3 if a.gated else 2) * d * m.d_ff_expert
        if m.d_ff_shared:
            f += 2 * 3 * d * m.d_ff_shared + (2 * d if m.shared_gate else 0)
    return f


def forward_flops_per_token(a: Arch, T: int | None = None, causal_only: bool = False) -> float:
    """Forward FLOPs per token at context T (for T5: T input and T target tokens, per token of both)."""
    T = T or a.ctx_len
    logits = 2 * a.d_model * a.vocab_size
    if not a.is_encoder_decoder:
        body = sum(_layer_forward_flops(a, a.layer_kind(i), T, causal_only) for i in range(a.n_layers))
        return body + logits
    enc = sum(_layer_forward_flops(a, "global", T, False) for _ in range(a.n_enc_layers))
    dec = sum(_layer_forward_flops(a, "global", T, causal_only, cross_T=T) for _ in range(a.n_layers))
    return (enc + dec + logits) / 2


def chinchilla_forward_flops_per_token(a: Arch, T: int | None = None) -> float:
    """Hoffmann et al. 2022 Appendix F, per token (sequence count / T), decoder-only form."""
    T = T or a.ctx_len
    d, V, da, H = a.d_model, a.vocab_size, a.d_attn, a.n_heads
    emb = 2 * T * V * d
    attn = 2 * T * d * (da + 2 * a.d_kv)  # key, query, value projections
    attn += 2 * T * T * da  # key @ query logits
    attn += 3 * H * T * T  # softmax
    attn += 2 * T * T * da  # softmax @ value reduction
    attn += 2 * T * da * d  # final linear
    if a.moe is None:
        dense = 2 * T * (3 if a.gated else 2) * d * a.d_ff
    else:
        m = a.moe
        dense = 2 * T * (m.top_k * (3 if a.gated else 2) * d * m.d_ff_expert + 3 * d * m.d_ff_shared + d * m.n_experts)
    logits = 2 * T * d * V
    layers = a.n_layers + a.n_enc_layers
    return (emb + layers * (attn + dense) + logits) / T


def flops_per_token(a: Arch, convention: str = "6N", T: int | None = None, training: bool = True) -> float:
    """FLOPs per token under a named convention; training = forward + backward (3x forward)."""
    T = T or a.ctx_len
    p = params(a)
    mult = 3 if training else 1
    if convention == "6N":
        return 2 * mult * p.active
    if convention == "kaplan":
        n_nonemb_active = p.non_embedding - (p.total - p.active)
        return mult * (2 * n_nonemb_active + 2 * (a.n_layers + a.n_enc_layers) * T * a.d_attn)
    if convention == "palm":
        return mult * (2 * p.active + 4 * (a.n_layers + a.n_enc_layers) * a.n_heads * a.d_head * T)
    if convention == "chinchilla":
        return mult * chinchilla_forward_flops_per_token(a, T)
    if convention in ("counted", "useful"):
        return mult * forward_flops_per_token(a, T, causal_only=(convention == "useful"))
    raise ValueError(f"unknown FLOP convention {convention!r}; one of {', '.join(FLOP_CONVENTIONS)}")


# --------------------------------------------------------------------------------------- memory
def kv_cache_bytes_per_token(a: Arch, dtype: str = "bf16", T: int | None = None) -> float:
    """Bytes of K and V cached per token of context, averaged over a context of T tokens.

    Local (sliding-window) layers keep at most `window` tokens, so their share per token falls
    once T exceeds the window.
    """
    T = T or a.ctx_len
    b = DTYPE_BYTES[dtype]
    total = 0.0
    for i in range(a.n_layers):
        kept = min(T, a.window) if a.layer_kind(i) == "local" else T
        total += 2 * a.d_kv * b * kept
    if a.is_encoder_decoder:  # decoder's cross-attention keeps the encoder's K and V too
        total += a.n_layers * 2 * a.d_kv * b * T
    return total / T


def activation_bytes_per_token(a: Arch, recompute: bool = False, T: int | None = None, flash: bool = True) -> float:
    """16-bit activation memory per token kept for backward (Korthikanti et al. 2022, eq. 1-2),
    generalised to any MLP width: attention block 11 d (+ 5 H T without a fused kernel), MLP block
    3 d + 4 d_ff (+ 2 d_ff gated), norms 4 d. With full rematerialisation only each layer's input
    (2 d bytes) is kept."""
    T = T or a.ctx_len
    d = a.d_model
    layers = a.n_layers + a.n_enc_layers
    if recompute:
        return layers * 2 * d
    f = a.d_ff if a.moe is None else a.moe.top_k * a.moe.d_ff_expert + a.moe.d_ff_shared
    attn = 11 * d + (0 if flash else 5 * a.n_heads * T)
    mlp = 3 * d + 4 * f + (2 * f if a.gated else 0)
    return layers * (attn + mlp + 4 * d)


def training_memory_bytes(a: Arch, tokens_per_step: int = 0, recompute: bool = False, mixed: bool = True) -> dict:
    """Weights, gradients and Adam states (16 bytes/param either way: bf16 weights + grads + fp32
    master, m, v; or fp32 weights, grads, m, v) plus activations for tokens_per_step tokens."""
    n = params(a).total
    out = {
        "weights": n * (2 if mixed else 4),
        "grads": n * (2 if mixed else 4),
        "master_weights": n * 4 if mixed else 0,
        "adam_states": n * 8,
    }
    out["activations"] = activation_bytes_per_token(a, recompute) * tokens_per_step
    out["total"] = sum(out.values())
    return out


def weight_bytes(a: Arch) -> dict[str, float]:
    n = params(a).total
    return {k: n * b for k, b in DTYPE_BYTES.items()}


# ------------------------------------------------------------------------------- compute & data
def training_run(a: Arch, train_tokens: float | None) -> dict:
    """The published run: D, C = 6 N D (N = active params), tokens per parameter (None without D)."""
    p = params(a)
    D = train_tokens
    if D is None:
        return {"D": None, "C_6ND": None, "tokens_per_param": None}
    return {"D": D, "C_6ND": 6 * p.active * D, "tokens_per_param": D / p.active}


def summary(a: Arch, train_tokens: float | None = None, train_ctx_len: int | None = None) -> dict:
    """Everything the CLI prints for one shaped entry. Training FLOPs per token are taken at the
    pre-training sequence length (train_ctx_len; the maximum context ctx_len when not given), the
    KV cache at the maximum context."""
    p = params(a)
    T = train_ctx_len or a.ctx_len
    out = {
        "params": p.as_dict(),
        "train_ctx_len": T,
        "flops_per_token": {c: flops_per_token(a, c, T) for c in FLOP_CONVENTIONS},
        "weight_bytes": weight_bytes(a),
        "kv_cache_bytes_per_token_bf16": kv_cache_bytes_per_token(a),
        "training_bytes_per_param": 16,
        "activation_bytes_per_token": activation_bytes_per_token(a, T=T),
        "activation_bytes_per_token_recompute": activation_bytes_per_token(a, recompute=True, T=T),
    }
    out.update(training_run(a, train_tokens))
    return out
