"""An architecture is data: a frozen dataclass of orthogonal choices.

Nothing here is inferred from a model's name. Every historical entry in registry.py sets each
choice explicitly (most as a dataclasses.replace of its predecessor) and records its source.
This module imports no torch: accounting and the CLI's fast commands read specs only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

from ..core.errors import UserError

Norm = Literal["layernorm", "rmsnorm", "rmsnorm_1p"]  # rmsnorm_1p: Gemma's x * (1 + w)
# post: LN(x + f(x)); sandwich: pre + post norm; output: x + LN(f(x)), a norm on each sublayer's output
# only (OLMo 2's "reordered norm")
NormPlacement = Literal["post", "pre", "sandwich", "output"]
Positions = Literal["learned", "sinusoidal", "rope", "xl_relative", "t5_bias", "none"]
# swiglu_clamped: gpt-oss's experts, gate clamped at 7 and up at +-7, gate sigmoid(1.702 gate) (up + 1)
Mlp = Literal["gelu", "gelu_tanh", "relu", "swiglu", "geglu", "swiglu_clamped"]
Bias = Literal["none", "all", "qkv", "mlp"]  # which linears carry a bias (mlp: MLP linears only, GPT-J)
AttnWidth = Literal["heads", "d_model"]
AttnLayer = Literal["global", "local"]  # local: causal band of `window` keys (sliding window / banded)
# qk-norm over each head (Qwen 3, Gemma 3), over the whole projection (OLMo 2), or a weightless RMSNorm
# ("L2 norm") over each head after RoPE, on RoPE layers only (Llama 4)
QKNormWidth = Literal["head", "full", "l2"]
Router = Literal["softmax", "sigmoid"]  # expert affinities: softmax over experts (Mixtral) or sigmoid (DeepSeek-V3)
RopeKind = Literal["llama3", "yarn"]


class SpecError(UserError, ValueError):
    """A shape or choice that the family cannot take; the message says what and how to fix it."""


@dataclass(frozen=True)
class MoE:
    n_experts: int
    top_k: int
    d_ff_expert: int  # hidden width of each routed expert (SwiGLU branch width)
    renormalize: bool  # renormalise the top-k softmax weights to sum to 1 (Mixtral) or not (Qwen2-MoE)
    d_ff_shared: int = 0  # hidden width of an always-on shared expert; 0 = none
    shared_gate: bool = False  # shared expert output scaled by sigmoid(x W_g) (Qwen2-MoE)
    router: Router = "softmax"
    # DeepSeek-V3's auxiliary-loss-free balancing: a per-expert bias added to the affinities for the
    # top-k choice only (the gate weights stay the unbiased affinities)
    route_bias: bool = False
    n_groups: int = 1  # experts split into groups; top-k chosen within the best topk_groups (node-limited)
    topk_groups: int = 1  # groups ranked by the sum of their two best affinities (DeepSeek-V3)
    routed_scale: float = 1.0  # routed experts' output scaled by this (DeepSeek-V3's 2.5)
    first_dense: int = 0  # the first layers keep a dense MLP of width d_ff (DeepSeek-V3's first 3)
    scale_input: bool = False  # the gate scales the routed expert's input, not its output (Llama 4)
    bias: bool = False  # biases on the router and on every expert's projections (gpt-oss)


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek-V2 §2.1, V3 §2.1.1): queries through a low-rank latent
    (d -> q_rank -> n_heads x (d_nope + d_rope)); keys and values through one cached latent (d ->
    kv_rank -> n_heads x (d_nope + d_v)) plus one rotary key of width d_rope shared by all heads."""

    q_rank: int  # d_c' (q_lora_rank)
    kv_rank: int  # d_c (kv_lora_rank): the cached latent's width
    d_nope: int  # per-head query/key width without rotation (qk_nope_head_dim)
    d_rope: int  # per-head decoupled rotary width d_h^R (qk_rope_head_dim)
    d_v: int  # per-head value width (v_head_dim)


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3.1's "llama3" frequency scaling (factor 8, low 1, high 4, original context 8192), or YaRN
    (Peng et al. 2023): frequencies turning fewer than low_freq_factor times over the original context
    are interpolated by `factor`, more than high_freq_factor times kept, a ramp between (YaRN's
    beta_slow and beta_fast play the two factors' role); YaRN's attention temperature follows
    transformers: cos/sin x m(mscale)/m(mscale_all_dim), and with mscale_all_dim the logits x
    m(mscale_all_dim)^2, m(x) = 0.1 x ln(factor) + 1 (DeepSeek-V3); without, cos/sin x m(1) (gpt-oss)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_ctx: int
    kind: RopeKind = "llama3"
    mscale: float = 1.0
    mscale_all_dim: float = 0.0  # 0: none
    truncate: bool = True  # YaRN's ramp bounds rounded to whole dimensions (gpt-oss: not)


@dataclass(frozen=True)
class Arch:
    """A buildable architecture: its shape and choices, every value concrete.

    What is known about the published model (year, paper, sources per value, published figures,
    training run, recipe) lives in the catalogue record (catalogue.Entry), not here.
    """

    name: str
    family: str

    # shape
    d_model: int
    n_layers: int  # decoder layers (T5: per stack; see n_enc_layers)
    n_heads: int
    n_kv_heads: int  # = n_heads: MHA; 1: MQA; else GQA
    head_dim: int  # width of each query/key/value head (d_model / n_heads unless decoupled)
    d_ff: int  # explicit hidden width of the MLP (per branch for gated MLPs)
    vocab_size: int  # rows of the checkpoint's embedding, not the tokenizer's size
    ctx_len: int  # the maximum context (KV cache, position table); pre-training length is in the catalogue
    n_enc_layers: int = 0  # encoder-decoder models only (T5)

    # choices
    norm: Norm = "layernorm"
    norm_bias: bool = True
    norm_eps: float = 1e-5
    norm_placement: NormPlacement = "pre"
    final_norm: bool = True
    qk_norm: bool = False  # RMSNorm on each head's queries and keys (AFM)
    qk_norm_width: QKNormWidth = "head"
    parallel_block: bool = False  # x + Attn(LN(x)) + MLP(LN(x)) with ONE shared norm (PaLM, GPT-J)
    positions: Positions = "learned"
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    rope_theta_local: float | None = None  # local layers' own RoPE base, unscaled (Gemma 3); None = rope_theta
    nope_every: int = 0  # every nope_every-th layer has no positions at all (Llama 4's interleaved NoPE); 0 = none
    attn_chunk: int | None = None  # RoPE layers attend within chunks of this many tokens (Llama 4)
    # NoPE layers' queries x (log1p(floor((position + 1) / floor)) x scale + 1) (Llama 4's temperature tuning)
    nope_temp_floor: int = 0
    nope_temp_scale: float = 0.0
    rotary_dim: int | None = None  # rotate only the first rotary_dim dims of each head (GPT-J); None = all
    rope_interleaved: bool = False  # rotate pairs (0,1),(2,3).. (GPT-J, PaLM), not the two halves
    rel_buckets: int = 32  # T5 bucketed bias
    rel_max_distance: int = 128
    attn_pattern: tuple[AttnLayer, ...] = ("global",)  # cycled over layers; layer 0 takes element 0
    window: int | None = None  # keys a local layer sees (itself included); None without local layers
    # "d_model": attention width d_model although n_heads * head_dim differs (GPT-3 Table 2.1's XL and
    # 13B rows, whose heads do not divide d_model: only this width reproduces their published sizes)
    attn_width: AttnWidth = "heads"
    query_scale: float | None = None  # None = head_dim ** -0.5; T5 uses 1.0
    attn_softcap: float | None = None  # cap * tanh(score / cap)
    attn_sinks: bool = False  # a learned per-head logit in each softmax that takes mass, gives no value (gpt-oss)
    final_softcap: float | None = None
    mlp: Mlp = "gelu"
    bias: Bias = "all"
    lm_head_bias: bool = False  # a bias on the output projection (GPT-J)
    tied_embeddings: bool = True
    embed_scale: bool = False  # multiply token embeddings by sqrt(d_model) (Gemma)
    output_scale: bool = False  # multiply the final hidden state by d_model ** -0.5 before a tied head (T5)
    moe: MoE | None = None
    mla: MLA | None = None  # multi-head latent attention in place of q/k/v projections
    mtp_depth: int = 0  # multi-token prediction modules (DeepSeek-V3 §2.2): trained, not part of inference

    # ------------------------------------------------------------------ derived shape
    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads

    @property
    def d_head(self) -> int:
        if self.attn_width == "d_model":
            return self.d_model // self.n_heads
        return self.head_dim

    @property
    def d_attn(self) -> int:
        """Width of the concatenated heads (queries): n_heads * head_dim (d_model for GPT-3's XL/13B rows)."""
        if self.attn_width == "d_model":
            return self.d_model
        return self.n_heads * self.head_dim

    @property
    def d_kv(self) -> int:
        """Width of the keys (and of the values): n_kv_heads * d_head."""
        return self.d_attn * self.kv_heads // self.n_heads

    @property
    def is_encoder_decoder(self) -> bool:
        return self.n_enc_layers > 0

    @property
    def gated(self) -> bool:
        return self.mlp in ("swiglu", "geglu", "swiglu_clamped")

    def layer_kind(self, i: int) -> AttnLayer:
        return self.attn_pattern[i % len(self.attn_pattern)]

    def uses_rope(self, i: int) -> bool:
        """Layer i rotates its queries and keys (not one of Llama 4's NoPE layers)."""
        return self.positions == "rope" and not (self.nope_every and (i + 1) % self.nope_every == 0)

    @property
    def experts(self) -> MoE:
        """The MoE block of a mixture-of-experts spec (callers branch on `a.moe` first)."""
        if self.moe is None:
            raise SpecError(f"{self.name}: not a mixture-of-experts spec (moe is None)")
        return self.moe

    @property
    def latent(self) -> MLA:
        """The MLA block of a latent-attention spec (callers branch on `a.mla` first)."""
        if self.mla is None:
            raise SpecError(f"{self.name}: not a latent-attention spec (mla is None)")
        return self.mla

    @property
    def local_window(self) -> int:
        """Keys a local layer sees; check() requires a window whenever the pattern has local layers."""
        if self.window is None:
            raise SpecError(f"{self.name}: a local attention layer needs window (keys it sees)")
        return self.window

    def check(self) -> Arch:
        """Raise SpecError if the shape cannot be built as a module; return self."""
        for f in ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "ctx_len"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise SpecError(f"{self.name}: {f} must be a positive integer, got {v!r}")
        if self.attn_width == "d_model" and self.d_model % self.n_heads:
            raise SpecError(
                f"{self.name}: d_model {self.d_model} is not divisible by n_heads {self.n_heads}, so heads "
                f"have no integer width; choose n_heads dividing {self.d_model} or set head_dim explicitly"
            )
        if self.n_heads % self.kv_heads:
            raise SpecError(
                f"{self.name}: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.kv_heads}; "
                "grouped-query attention shares each KV head among an equal number of query heads"
            )
        rot = self.rotary_dim if self.rotary_dim is not None else self.d_head
        if self.positions == "rope" and (rot % 2 or rot > self.d_head or rot < 2):
            raise SpecError(f"{self.name}: RoPE needs an even rotary width of at most the head width "
                            f"{self.d_head}, got {rot}")
        if "local" in self.attn_pattern and not self.window:
            raise SpecError(f"{self.name}: local attention layers need a window (--window)")
        if self.moe is not None and not 1 <= self.moe.top_k <= self.moe.n_experts:
            raise SpecError(f"{self.name}: MoE top_k {self.moe.top_k} must be in 1..{self.moe.n_experts}")
        if self.parallel_block and self.norm_placement != "pre":
            raise SpecError(f"{self.name}: a parallel block takes one pre-norm")
        self._check_recent()
        return self

    def _check_recent(self) -> None:
        """The choices added for the models since mid-2024: MLA's ranks, grouped routing."""
        m, mla = self.moe, self.mla
        if m is not None and (m.n_groups < 1 or m.n_experts % m.n_groups or not 1 <= m.topk_groups <= m.n_groups
                              or m.top_k > m.topk_groups * (m.n_experts // m.n_groups)):
            raise SpecError(f"{self.name}: {m.n_experts} experts in {m.n_groups} groups, top-{m.top_k} from the best "
                            f"{m.topk_groups} groups: the groups must divide the experts and hold at least top_k")
        if m is not None and m.n_groups > 1 and m.n_experts // m.n_groups < 2:
            raise SpecError(f"{self.name}: grouped routing ranks a group by its two best experts; give each group "
                            "at least two experts")
        if mla is not None and ("local" in self.attn_pattern or self.attn_softcap or self.qk_norm):
            raise SpecError(f"{self.name}: latent attention is built causal and global, without soft-cap or "
                            "qk-norm (as DeepSeek-V3)")
        if mla is not None:
            if min(mla.q_rank, mla.kv_rank, mla.d_nope, mla.d_rope, mla.d_v) < 1 or mla.d_rope % 2:
                raise SpecError(f"{self.name}: MLA's ranks and head widths must be positive and its rotary width "
                                f"even, got {mla}")
            if self.head_dim != mla.d_nope + mla.d_rope or self.kv_heads != self.n_heads:
                raise SpecError(f"{self.name}: with MLA, head_dim is d_nope + d_rope ({mla.d_nope + mla.d_rope}) and "
                                "every head has its own key and value (n_kv_heads = n_heads)")

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (MoE, RopeScaling, MLA)):
                v = {g.name: getattr(v, g.name) for g in fields(v)}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Arch:
        """Read a spec written by to_dict; also the older form that mixed in catalogue facts
        (year, paper, train_tokens, ...: dropped) and left n_kv_heads/head_dim as None."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names - LEGACY_KEYS
        if unknown:
            raise SpecError(f"architecture fields {', '.join(sorted(unknown))} are not known to this version of "
                            "llmhist; the spec was written by another version")
        d = {k: v for k, v in d.items() if k in names}
        if d.get("moe"):
            d["moe"] = MoE(**d["moe"])
        if d.get("rope_scaling"):
            d["rope_scaling"] = RopeScaling(**d["rope_scaling"])
        if d.get("mla"):
            d["mla"] = MLA(**d["mla"])
        if "attn_pattern" in d:
            d["attn_pattern"] = tuple(d["attn_pattern"])
        if d.get("n_kv_heads") is None:
            d["n_kv_heads"] = d["n_heads"]
        if d.get("head_dim") is None:
            if d["d_model"] % d["n_heads"]:
                d["attn_width"] = "d_model"
            d["head_dim"] = max(1, d["d_model"] // d["n_heads"])
        return cls(**d)


# keys older config.json files carry in "arch" that now belong to the catalogue record
LEGACY_KEYS = frozenset({"year", "paper", "source", "train_tokens", "optimizer", "tokenizer", "published_params",
                         "shape_known", "notes", "aliases", "flagship", "field_sources", "window_published"})


# ---------------------------------------------------------------------------- any size
# Named small sizes shared by every family: (d_model, n_layers, n_heads) for multi-head attention.
# Non-embedding parameters of a plain GPT block stack are ~12 L d^2: ~100k, ~0.8M, ~4.7M, ~25M, ~85M.
# A family with grouped-query attention keeps its ratio with at least two KV heads, which may need
# more heads and a wider model (see small()).
SMALL_SIZES: dict[str, tuple[int, int, int]] = {
    "nano": (64, 2, 4),
    "micro": (128, 4, 4),
    "mini": (256, 6, 8),
    "small": (512, 8, 8),
    "base": (768, 12, 12),
}
MIN_HEAD_WIDTH = 16  # the narrowest head a named size gives (nano's d_model / n_heads)
TOY_VOCAB = 256  # the byte vocabulary llmhist trains with by default
TOY_CTX = 256


def _round_up(x: float, multiple: int) -> int:
    return int(multiple * math.ceil(x / multiple))


def _even(x: float) -> int:
    return max(2, 2 * round(x / 2))


def attention_kind(a: Arch) -> str:
    """MHA, MQA or GQA r:1 (r query heads per KV head)."""
    if a.kv_heads == a.n_heads:
        return "MHA"
    if a.kv_heads == 1:
        return "MQA"
    return f"GQA {a.n_heads // a.kv_heads}:1"


def resize(
    arch: Arch,
    d_model: int,
    n_layers: int,
    n_heads: int,
    *,
    n_kv_heads: int | None = None,
    d_ff: int | None = None,
    vocab_size: int | None = None,
    ctx_len: int | None = None,
    window: int | None = None,
    name: str | None = None,
) -> Arch:
    """The family's choices at another shape.

    Kept from the template `arch`: every choice flag; the attention kind (MHA stays MHA, MQA stays
    MQA, GQA keeps its query/KV ratio with at least two KV heads); the head width as a ratio of
    d_model / n_heads (Gemma 2's and T5-3B's decoupled heads stay decoupled); the query scale rule
    (a scale width kept in proportion to d_model / n_heads, so Gemma-2-27B's (d_model/n_heads)^-0.5
    stays that; T5's 1.0 stays 1.0); the MLP width as a ratio of d_model (rounded up to a multiple
    of 32); the MoE layout (experts, top-k, expert and shared widths as ratios of d_model); partial
    rotary as a fraction of the head; the local/global pattern and the window as a fraction of the
    context. Shapes that break the family's choices raise SpecError saying how to fix them.
    """
    base = arch
    n_kv_heads = _resized_kv_heads(base, d_model, n_heads, n_kv_heads)
    per_head = d_model // n_heads
    head_dim, rotary_dim, qs = _resized_heads(base, per_head)
    if d_ff is None:
        d_ff = _round_up(base.d_ff / base.d_model * d_model, 32)
    mla, head_dim, moe = _resize_recent(base, d_model, n_layers, per_head, head_dim, _resized_moe(base, d_model))
    ctx = ctx_len or min(base.ctx_len, TOY_CTX)
    if window is None and base.window:
        window = max(1, round(base.window / base.ctx_len * ctx))
    return replace(
        base,
        name=name or f"{base.name}@d{d_model}-l{n_layers}-h{n_heads}",
        d_model=d_model,
        n_layers=n_layers,
        n_enc_layers=n_layers if base.is_encoder_decoder else 0,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        attn_width="heads",
        rotary_dim=rotary_dim,
        d_ff=d_ff,
        vocab_size=vocab_size or TOY_VOCAB,
        ctx_len=ctx,
        window=window,
        query_scale=qs,
        moe=moe,
        rope_scaling=(
            replace(base.rope_scaling, original_ctx=max(1, ctx // 2)) if base.rope_scaling else None
        ),
        mla=mla,
        nope_every=min(base.nope_every, n_layers),  # at least one NoPE layer where the family has them
    ).check()


def _resized_kv_heads(base: Arch, d_model: int, n_heads: int, n_kv_heads: int | None) -> int:
    """The KV heads (n_kv_heads where given) that keep the family's attention kind at n_heads query
    heads: MQA one, MHA all, GQA the same query/KV ratio with at least two KV heads; a shape that
    cannot (or n_heads not dividing d_model) is a SpecError saying how to fix it."""
    kind = attention_kind(base)
    if n_kv_heads is None and kind == "MQA":
        n_kv_heads = 1
    elif n_kv_heads is None and kind == "MHA":
        n_kv_heads = n_heads
    elif n_kv_heads is None:
        ratio = base.n_heads // base.kv_heads
        if n_heads % ratio or n_heads < 2 * ratio:
            raise SpecError(
                f"{base.name}: keeps {kind} ({base.n_heads} query heads / {base.kv_heads} KV heads) with at "
                f"least two KV heads, so n_heads must be a multiple of {ratio} and at least {2 * ratio}; "
                f"got {n_heads}. Use --n-heads {2 * ratio} (or a larger multiple of {ratio}), or pass "
                "--n-kv-heads explicitly"
            )
        n_kv_heads = n_heads // ratio
    if d_model % n_heads:
        raise SpecError(
            f"d_model {d_model} is not divisible by n_heads {n_heads} (--d-model, --n-heads; resizing {base.name}); "
            "pick n_heads dividing d_model"
        )
    return n_kv_heads


def _resized_moe(base: Arch, d_model: int) -> MoE | None:
    """The family's MoE layout at d_model: expert and shared widths as ratios of d_model (multiples of 32)."""
    moe = base.moe
    if moe is None:
        return None
    return replace(
        moe,
        d_ff_expert=_round_up(moe.d_ff_expert / base.d_model * d_model, 32),
        d_ff_shared=_round_up(moe.d_ff_shared / base.d_model * d_model, 32) if moe.d_ff_shared else 0,
    )


def _resized_heads(base: Arch, per_head: int) -> tuple[int, int | None, float | None]:
    """(head_dim, rotary_dim, query_scale) at per_head = d_model / n_heads: the head width and the
    query scale's width kept in proportion to the family's d_model / n_heads, partial rotary as a
    fraction of the head."""
    base_per_head = base.d_model / base.n_heads
    head_dim = per_head if base.head_dim == base_per_head or base.attn_width == "d_model" else \
        _even(base.head_dim / base_per_head * per_head)
    rotary_dim = None
    if base.rotary_dim is not None:
        rotary_dim = min(head_dim, _even(base.rotary_dim / base.head_dim * head_dim))
    qs = base.query_scale
    if qs is not None and qs != 1.0:  # keep the scale's width in proportion to d_model / n_heads
        qs = (qs**-2 / base_per_head * per_head) ** -0.5
    return head_dim, rotary_dim, qs


def _resize_recent(base: Arch, d_model: int, n_layers: int, per_head: int, head_dim: int,
                   moe: MoE | None) -> tuple[MLA | None, int, MoE | None]:
    """MLA's ranks as ratios of d_model (multiples of 8) and its head widths as ratios of d_model /
    n_heads (even); DeepSeek-V3's dense first layers as a fraction of the depth, keeping at least one
    dense and one MoE layer."""
    mla = base.mla
    if mla is not None:
        base_per_head = base.d_model / base.n_heads
        mla = MLA(q_rank=_round_up(mla.q_rank / base.d_model * d_model, 8),
                  kv_rank=_round_up(mla.kv_rank / base.d_model * d_model, 8),
                  d_nope=_even(mla.d_nope / base_per_head * per_head), d_rope=_even(mla.d_rope / base_per_head * per_head),
                  d_v=_even(mla.d_v / base_per_head * per_head))
        head_dim = mla.d_nope + mla.d_rope
    if moe is not None and moe.first_dense:
        moe = replace(moe, first_dense=min(max(1, round(moe.first_dense / base.n_layers * n_layers)), n_layers - 1))
    return mla, head_dim, moe


def small_shape(arch: Arch, size: str) -> tuple[int, int, int]:
    """(d_model, n_layers, n_heads) of a named size for this template: the size's own shape, except
    that grouped-query attention keeps its ratio r with at least two KV heads (n_heads a multiple of
    r, at least 2r) and every head stays at least MIN_HEAD_WIDTH wide and even, widening d_model
    where needed."""
    if size not in SMALL_SIZES:
        raise SpecError(f"unknown size {size!r}; named sizes are {', '.join(SMALL_SIZES)}")
    d, n_layers, h = SMALL_SIZES[size]
    if attention_kind(arch).startswith("GQA"):
        r = arch.n_heads // arch.kv_heads
        h = r * max(2, round(h / r))
    width = d // h if d % h == 0 else 0
    if width < MIN_HEAD_WIDTH or width % 2:
        d = h * max(MIN_HEAD_WIDTH, 8 * round(d / h / 8))  # whole heads, at least 16 wide, a multiple of 8
    return d, n_layers, h


def small(arch: Arch, size: str, **kw) -> Arch:
    d, n_layers, h = small_shape(arch, size)
    return resize(arch, d, n_layers, h, name=f"{arch.name}-{size}", **kw)
