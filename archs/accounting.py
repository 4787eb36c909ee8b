"""Parameters, FLOPs and memory of an Arch, in pure Python (no torch import).

One inventory: `layers(a)` lists, per layer, every weight matrix the built module applies to a token
(`Matmul`: its shape, bias, stored copies and copies applied per token) plus the layer's other
parameters (norms, relative-position tables). Parameters, the counted and Chinchilla FLOPs and the
activation memory are sums over that list (plus the attention scores, which have no weights), and
the MLP's width-and-gating rule is written once (`mlp_matmuls`). Multi-token prediction modules
(DeepSeek-V3) are counted apart (Params.mtp) and in training FLOPs only; MLA's KV cache is its latent. The FLOP conventions are one table
of named functions (FLOP_CONVENTIONS). Every count is checked in the tests against the built module:
parameters against sum(p.numel()) (and transformers' counts), FLOPs against torch's FlopCounterMode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .spec import Arch, SpecError

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "int4": 0.5}


# ------------------------------------------------------------------------------------ inventory
@dataclass(frozen=True)
class Matmul:
    """One weight matrix applied to each token, y = x W (+ b) with W of d_in x d_out."""

    name: str
    d_in: int
    d_out: int
    bias: bool = False
    copies: int = 1  # stored copies (routed experts: n_experts)
    active: int = 1  # copies applied to each token (routed experts: top_k)
    chinchilla: bool = True  # Hoffmann et al.'s App. F counts it (it has no term for Transformer-XL's W_r)

    @property
    def params_each(self) -> int:
        return self.d_in * self.d_out + (self.d_out if self.bias else 0)

    @property
    def params(self) -> int:
        return self.copies * self.params_each

    @property
    def active_params(self) -> int:
        return self.active * self.params_each

    @property
    def flops(self) -> int:
        """Forward FLOPs per token: 2 per multiply-accumulate (biases are not counted, as torch does not)."""
        return 2 * self.active * self.d_in * self.d_out


def mlp_matmuls(a: Arch, prefix: str, d_ff: int, gated: bool, bias: bool, copies: int = 1, active: int = 1) -> list[Matmul]:
    """The MLP, written once: up (and gate when gated) d -> d_ff, down d_ff -> d."""
    d = a.d_model
    out = [Matmul(f"{prefix}.gate", d, d_ff, bias, copies, active)] if gated else []
    return out + [Matmul(f"{prefix}.up", d, d_ff, bias, copies, active),
                  Matmul(f"{prefix}.down", d_ff, d, bias, copies, active)]


def mlp_inventory(a: Arch, layer: int | None = None) -> list[Matmul]:
    """A dense MLP follows the spec's gating and biases. MoE layers (model.MoE, as Mixtral and
    Qwen2-MoE): a bias-free router, routed experts that are always gated and bias-free (gpt-oss:
    router and experts with biases, MoE.bias; stored
    fused as gate_up), and a shared expert that is likewise a gated, bias-free MLP (transformers'
    Qwen2MoeMLP) behind a 1-wide sigmoid gate."""
    if a.moe is None or layer is not None and layer < a.moe.first_dense:  # DeepSeek-V3's dense first layers
        return mlp_matmuls(a, "mlp", a.d_ff, a.gated, a.bias in ("all", "mlp"))
    m, d = a.moe, a.d_model
    out = [Matmul("mlp.router", d, m.n_experts, m.bias)]  # gpt-oss: router and experts with biases
    out += mlp_matmuls(a, "mlp.expert", m.d_ff_expert, True, m.bias, copies=m.n_experts, active=m.top_k)
    if m.d_ff_shared:
        out += mlp_matmuls(a, "mlp.shared", m.d_ff_shared, True, False)
        if m.shared_gate:
            out.append(Matmul("mlp.shared_gate", d, 1))
    return out


def mla_matmuls(a: Arch, prefix: str = "attn") -> list[Matmul]:
    """DeepSeek-V3's latent attention (model.LatentAttention): down to the query latent and up to the
    heads; down to the KV latent plus the shared rotary key, up to the heads' keys and values; output."""
    m, d, H = a.latent, a.d_model, a.n_heads
    return [Matmul(f"{prefix}.q_a", d, m.q_rank), Matmul(f"{prefix}.q_b", m.q_rank, H * (m.d_nope + m.d_rope)),
            Matmul(f"{prefix}.kv_a", d, m.kv_rank + m.d_rope), Matmul(f"{prefix}.kv_b", m.kv_rank, H * (m.d_nope + m.d_v)),
            Matmul(f"{prefix}.o", H * m.d_v, d)]


def attn_matmuls(a: Arch, prefix: str = "attn", cross: bool = False) -> list[Matmul]:
    if a.mla is not None and not cross:
        return mla_matmuls(a, prefix)
    d, da, dkv = a.d_model, a.d_attn, a.d_kv
    qkv_bias, o_bias = a.bias in ("all", "qkv"), a.bias == "all"
    out = [Matmul(f"{prefix}.q", d, da, qkv_bias), Matmul(f"{prefix}.k", d, dkv, qkv_bias),
           Matmul(f"{prefix}.v", d, dkv, qkv_bias), Matmul(f"{prefix}.o", da, d, o_bias)]
    if a.positions == "xl_relative" and not cross:
        # W_r projects the T sinusoidal relative encodings once per sequence: one d -> d_attn per token
        out.append(Matmul(f"{prefix}.r", d, da, chinchilla=False))
    return out


def _norm(a: Arch, width: int | None = None) -> int:
    w = width or a.d_model
    return 2 * w if (a.norm == "layernorm" and a.norm_bias) else w


def norms_per_layer(a: Arch, cross: bool = False) -> int:
    if a.parallel_block:
        return 1
    k = 4 if a.norm_placement == "sandwich" else 2
    return k + (1 if cross else 0)  # T5's decoder: self, cross, MLP


@dataclass(frozen=True)
class Layer:
    stack: str  # "decoder" or "encoder"
    index: int
    kind: str  # "global" or "local"
    cross: bool  # has cross-attention (T5's decoder)
    matmuls: tuple[Matmul, ...]
    other_params: dict  # parameters outside the matmuls: norms, qk-norm, XL's u and v, T5's bias table

    @property
    def params(self) -> int:
        return sum(m.params for m in self.matmuls) + sum(self.other_params.values())

    @property
    def active_params(self) -> int:
        return sum(m.active_params for m in self.matmuls) + sum(self.other_params.values())


def layers(a: Arch) -> list[Layer]:
    """Every layer of the built module, in order (T5: the encoder's, then the decoder's)."""
    stacks = [("encoder", a.n_enc_layers), ("decoder", a.n_layers)] if a.is_encoder_decoder else [("decoder", a.n_layers)]
    out = []
    for stack, n in stacks:
        cross = a.is_encoder_decoder and stack == "decoder"
        for i in range(n):
            mm = attn_matmuls(a) + (attn_matmuls(a, "cross_attn", cross=True) if cross else []) + mlp_inventory(a, i)
            other = {"norms": norms_per_layer(a, cross) * _norm(a)}
            if a.qk_norm and a.qk_norm_width != "l2":  # Llama 4's L2 norm has no weights
                # one RMSNorm over head_dim for queries, one for keys, per attention (OLMo 2: over the
                # whole query and key projections)
                width = a.d_attn + a.d_kv if a.qk_norm_width == "full" else 2 * a.d_head
                other["qk_norm"] = (2 if cross else 1) * width
            if a.attn_sinks:
                other["sinks"] = a.n_heads  # gpt-oss: one sink logit per head
            if a.mla is not None:
                other["latent_norms"] = _norm(a, a.latent.q_rank) + _norm(a, a.latent.kv_rank)
            if a.positions == "xl_relative":
                other["xl_uv"] = 2 * a.d_attn  # Transformer-XL's global content and position biases u, v
            if a.positions == "t5_bias" and i == 0:
                other["rel_bias"] = a.rel_buckets * a.n_heads  # one table per stack, in its first layer
            out.append(Layer(stack, i, "global" if stack == "encoder" else a.layer_kind(i), cross, tuple(mm), other))
    return out


# ---------------------------------------------------------------------------------- parameters
def _group(layer: Layer, prefix: str, active: bool = False) -> int:
    return sum(m.active_params if active else m.params for m in layer.matmuls if m.name.startswith(prefix))


@dataclass
class Params:
    total: int  # every parameter, tied weights counted once
    embedding: int  # token embedding (+ learned positions) (+ untied LM head)
    non_embedding: int  # Kaplan's convention: total - embedding
    active: int  # per token (MoE: top-k experts only)
    layers: list[dict] = field(default_factory=list)  # per-layer breakdown
    # multi-token prediction modules (DeepSeek-V3 §2.2), trained but not part of inference, so not in
    # total (the paper's 671B excludes them): their own parameters, the shared embedding and head excluded
    mtp: int = 0
    mtp_active: int = 0

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("total", "embedding", "non_embedding", "active")}
        return out | ({"mtp": self.mtp, "mtp_active": self.mtp_active} if self.mtp else {})


def mtp_module(a: Arch) -> tuple[int, int]:
    """(parameters, active parameters) of one MTP module (DeepSeek-V3 §2.2, Fig. 3; the released
    checkpoint's layer 61): RMSNorms of the hidden state and of the next token's embedding, the
    projection M of their concatenation (2d -> d), one Transformer block (a MoE layer, as the last
    main layer) and the output head's own RMSNorm; embedding and output head are the main model's."""
    last = layers(a)[-1]
    own = 3 * _norm(a) + 2 * a.d_model * a.d_model
    return own + last.params, own + last.active_params


def params(a: Arch) -> Params:
    """Exact parameter counts of the built module (and of transformers' where it has the family)."""
    d, V = a.d_model, a.vocab_size
    tok = V * d
    pos = a.ctx_len * d if a.positions == "learned" else 0
    head = (0 if a.tied_embeddings else V * d) + (V if a.lm_head_bias else 0)
    rows = []
    ls = layers(a)
    for L in ls:
        row = {"stack": L.stack, "layer": L.index, "kind": L.kind,
               "attn": _group(L, "attn.") + _group(L, "cross_attn.") + L.other_params.get("qk_norm", 0)
                       + L.other_params.get("xl_uv", 0) + L.other_params.get("latent_norms", 0)
                       + L.other_params.get("sinks", 0),
               "mlp": _group(L, "mlp."), "mlp_active": _group(L, "mlp.", active=True),
               "norms": L.other_params["norms"], "rel_bias": L.other_params.get("rel_bias", 0), "total": L.params}
        rows.append(row)
    n_stacks = 2 if a.is_encoder_decoder else 1
    final = (n_stacks if a.final_norm else 0) * _norm(a)
    body = sum(L.params for L in ls) + final
    body_active = sum(L.active_params for L in ls) + final
    emb = tok + pos + head
    mtp, mtp_active = (a.mtp_depth * x for x in mtp_module(a)) if a.mtp_depth else (0, 0)
    return Params(total=body + emb, embedding=emb, non_embedding=body, active=body_active + emb, layers=rows,
                  mtp=mtp, mtp_active=mtp_active)


# ---------------------------------------------------------------------------------------- FLOPs
def _attended_keys(a: Arch, kind: str, T: int, causal_only: bool, chunk: int | None = None) -> float:
    """Average number of keys each query scores against (chunk: Llama 4's chunked RoPE layers)."""
    if not causal_only:
        return T
    if chunk is not None:  # position i sees (i mod chunk) + 1 keys
        full, rest = divmod(T, chunk)
        return (full * chunk * (chunk + 1) / 2 + rest * (rest + 1) / 2) / T
    w = min(a.local_window if kind == "local" else T, T)
    return (w * (w + 1) / 2 + (T - w) * w) / T  # position i sees min(i + 1, w) keys


def _chunk(a: Arch, L: Layer) -> int | None:
    return a.attn_chunk if a.attn_chunk is not None and L.stack == "decoder" and a.uses_rope(L.index) else None


def _score_flops(a: Arch, L: Layer, T: int, causal_only: bool) -> float:
    """Forward FLOPs per token of attention without weights: QK^T and AV (and XL's position term)."""
    # QK^T over the query/key width, AV over the value width (MLA: n_heads x (d_nope + d_rope), n_heads x d_v)
    d_qk, d_v = (a.n_heads * a.head_dim, a.n_heads * a.latent.d_v) if a.mla is not None else (a.d_attn, a.d_attn)
    f = 2 * _attended_keys(a, L.kind, T, causal_only and L.stack == "decoder", _chunk(a, L)) * (d_qk + d_v)
    if a.positions == "xl_relative":
        f += 2 * T * a.d_attn  # (q + v) . W_r R against every distance
    if L.cross:
        f += 2 * 2 * T * a.d_attn  # one encoder token per decoder token here
    return f


def _forward(a: Arch, T: int, per_layer: Callable[[Layer], float], per_token: float) -> float:
    """Forward FLOPs per token: layers plus per-token terms. T5: T input and T target tokens, per
    token of both (the encoder sees the inputs, the decoder and its head the targets)."""
    body = sum(per_layer(L) for L in layers(a))
    logits = 2 * a.d_model * a.vocab_size
    return body + logits + per_token if not a.is_encoder_decoder else (body + logits) / 2 + per_token


def counted_forward(a: Arch, T: int, causal_only: bool = False) -> float:
    """Every matmul the model executes (what FlopCounterMode sees), per token."""
    return _forward(a, T, lambda L: sum(m.flops for m in L.matmuls) + _score_flops(a, L, T, causal_only), 0)


def chinchilla_forward(a: Arch, T: int) -> float:
    """Hoffmann et al. 2022 App. F per token: embeddings (as a matmul), the projections, QK^T over all
    T keys, softmax (3 H T), the value reduction, the MLP and the logits. MoE: the router and the
    top-k experts. No term for Transformer-XL's W_r."""
    def layer(L: Layer) -> float:
        f = sum(m.flops for m in L.matmuls if m.chinchilla)
        n_attn = 2 if L.cross else 1
        return f + n_attn * (2 * 2 * T * a.d_attn + 3 * a.n_heads * T)

    return _forward(a, T, layer, 2 * a.vocab_size * a.d_model)


def forward_flops_per_token(a: Arch, T: int | None = None, causal_only: bool = False) -> float:
    """Forward FLOPs per token at context T (for T5: T input and T target tokens, per token of both)."""
    return counted_forward(a, T or a.ctx_len, causal_only)


def _6n(a: Arch, T: int) -> float:
    return 2 * params(a).active


def _kaplan(a: Arch, T: int) -> float:
    p = params(a)
    return 2 * (p.non_embedding - (p.total - p.active)) + 2 * (a.n_layers + a.n_enc_layers) * T * a.d_attn


def _palm(a: Arch, T: int) -> float:
    return 2 * params(a).active + 4 * (a.n_layers + a.n_enc_layers) * a.n_heads * a.d_head * T


@dataclass(frozen=True)
class Convention:
    description: str
    forward: Callable[[Arch, int], float]  # forward FLOPs per token at context T; training = 3x


FLOP_CONVENTIONS: dict[str, Convention] = {
    "6N": Convention("6 x N per token, N = all (active) parameters incl. embeddings: Chinchilla's C = 6ND", _6n),
    "kaplan": Convention("6 x N_non-embedding + 6 x n_layers x n_ctx x d_attn (Kaplan et al. 2020, Table 1)", _kaplan),
    "palm": Convention("6 x N + 12 x L x H x Q x T, N = all (active) parameters (Chowdhery et al. 2022, App. B)", _palm),
    "chinchilla": Convention("Hoffmann et al. 2022 App. F: embeddings, QKV, logits, softmax, reduction, projection, "
                             "dense and output logits; 2 FLOPs per MAC, backward = 2 x forward", chinchilla_forward),
    "counted": Convention("every matmul this tool's model executes (attention over all T keys, as dense kernels "
                          "compute it; MoE top-k only): what torch's FlopCounterMode sees, per token",
                          lambda a, T: counted_forward(a, T)),
    "useful": Convention("like counted, but attention only over the keys a query may see (causal, windows)",
                         lambda a, T: counted_forward(a, T, causal_only=True)),
}


def flops_per_token(a: Arch, convention: str = "6N", T: int | None = None, training: bool = True) -> float:
    """FLOPs per token under a named convention; training = forward + backward (3x forward), plus 3x the
    multi-token prediction modules' forward where the spec has them (DeepSeek-V3: they train, never infer)."""
    if convention not in FLOP_CONVENTIONS:
        raise SpecError(f"unknown FLOP convention {convention!r}; one of {', '.join(FLOP_CONVENTIONS)}")
    fwd = FLOP_CONVENTIONS[convention].forward(a, T or a.ctx_len)
    return 3 * (fwd + mtp_forward_flops(a)) if training else fwd


def mtp_forward_flops(a: Arch) -> float:
    """Forward FLOPs per token of the multi-token prediction modules, which run in training only:
    2 per active parameter of each module plus its pass through the shared output head (2 d V);
    their attention scores are not counted (a few percent of a module at DeepSeek-V3's shape)."""
    if not a.mtp_depth:
        return 0.0
    return a.mtp_depth * (2 * mtp_module(a)[1] + 2 * a.d_model * a.vocab_size)


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
        kept = min(T, a.local_window) if a.layer_kind(i) == "local" else T
        if a.attn_chunk is not None and a.uses_rope(i):  # Llama 4: a chunked layer keeps its chunk
            kept = min(kept, a.attn_chunk)
        total += kv_cache_width(a) * b * kept
    if a.is_encoder_decoder:  # decoder's cross-attention keeps the encoder's K and V too
        total += a.n_layers * 2 * a.d_kv * b * T
    return total / T


def activation_terms(a: Arch, L: Layer, T: int) -> tuple[float, float, float]:
    """16-bit activation bytes per token that one layer keeps for backward (Korthikanti et al. 2022,
    §4.1), split as tensor parallelism splits them: (replicated, split, scores).

    replicated: what Megatron's tensor parallelism leaves whole on every rank (the "10" of eq. 2):
    the attention's and the MLP's inputs (2 d each), their output-dropout masks (d each), the
    norms' inputs (4 d). split: what it divides by t (the "24"): Q and K (2 d_attn + 2 d_kv),
    V (2 d_kv), the output projection's input (2 d_attn), and the MLP's 4 f + 2 g with f the hidden
    width applied per token (MoE: top-k experts plus the shared one) and g its gated part (GELU:
    16 d). scores: the attention matrix, softmax output and its dropout (5 H T, the "5as/h"),
    kept only without a fused kernel or selective recompute. T5's decoder: two attentions. For
    multi-head attention with d_ff = 4 d the three sum to eq. 1's 34 d + 5 H T."""
    d, da, dkv = a.d_model, a.d_attn, a.d_kv
    f = sum(m.active * m.d_in for m in L.matmuls if m.name.startswith("mlp.") and m.name.endswith(".down"))
    g = sum(m.active * m.d_out for m in L.matmuls if m.name.startswith("mlp.") and m.name.endswith(".gate"))
    n_attn = 2 if L.cross else 1
    replicated = n_attn * 3 * d + 3 * d + 4 * d
    split = n_attn * (4 * da + 4 * dkv) + 4 * f + 2 * g
    return replicated, split, n_attn * 5 * a.n_heads * T


def kv_cache_width(a: Arch) -> int:
    """Values cached per token and layer: K and V (2 x n_kv_heads x d_head); MLA caches only its
    latent c^KV and the shared rotary key, d_c + d_h^R (DeepSeek-V2 §2.1.2, Table 1)."""
    if a.mla is not None:
        return a.mla.kv_rank + a.mla.d_rope
    return 2 * a.d_kv


def activation_bytes_per_token(a: Arch, recompute: bool = False, T: int | None = None, flash: bool = True) -> float:
    """16-bit activation memory per token kept for backward on one device (Korthikanti et al. 2022,
    eq. 1, generalised to any attention and MLP by `activation_terms`; flash: a fused attention
    kernel keeps no scores). With full rematerialisation only each layer's input (2 d bytes) is kept."""
    T = T or a.ctx_len
    ls = layers(a)
    if recompute:
        return len(ls) * 2 * a.d_model
    return sum(r + s + (0 if flash else sc) for r, s, sc in (activation_terms(a, L, T) for L in ls))


def training_memory_bytes(a: Arch, tokens_per_step: int = 0, recompute: bool = False, mixed: bool = True) -> dict:
    """Weights, gradients and Adam states (16 bytes/param either way: bf16 weights + grads + fp32
    master, m, v; or fp32 weights, grads, m, v) plus activations for tokens_per_step tokens."""
    n = params(a).total
    out: dict[str, float] = {
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
