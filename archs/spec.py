"""An architecture is data: a frozen dataclass of orthogonal choices.

Nothing here is inferred from a model's name. Every historical entry in registry.py sets each
choice explicitly (most as a dataclasses.replace of its predecessor) and records its source.
This module imports no torch: accounting and the CLI's fast commands read specs only.
"""

from __future__ import annotations

from llmhist.errors import UserError

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

Norm = Literal["layernorm", "rmsnorm", "rmsnorm_1p"]  # rmsnorm_1p: Gemma's x * (1 + w)
NormPlacement = Literal["post", "pre", "sandwich"]  # post: LN(x + f(x)); sandwich: pre + post norm
Positions = Literal["learned", "sinusoidal", "rope", "xl_relative", "t5_bias", "none"]
Mlp = Literal["gelu", "gelu_tanh", "relu", "swiglu", "geglu"]
Bias = Literal["none", "all", "qkv", "mlp"]  # which linears carry a bias (mlp: MLP linears only, GPT-J)
AttnLayer = Literal["global", "local"]  # local: causal band of `window` keys (sliding window / banded)


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


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3.1's "llama3" frequency scaling (factor 8, low 1, high 4, original context 8192)."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_ctx: int


@dataclass(frozen=True)
class Arch:
    # identity and provenance
    name: str
    family: str
    year: int
    paper: str
    source: str  # where the shape values come from: paper table or released config.json

    # shape (None only where the entry's shape was never published: shape_known False)
    d_model: int | None
    n_layers: int | None  # decoder layers (T5: per stack; see n_enc_layers)
    n_heads: int | None
    d_ff: int | None  # explicit hidden width of the MLP (per branch for gated MLPs)
    vocab_size: int | None  # rows of the checkpoint's embedding, not the tokenizer's size
    ctx_len: int | None
    n_kv_heads: int | None = None  # None = n_heads (MHA); 1 = MQA; else GQA
    head_dim: int | None = None  # None = d_model // n_heads
    n_enc_layers: int = 0  # encoder-decoder models only (T5)

    # choices
    norm: Norm = "layernorm"
    norm_bias: bool = True
    norm_eps: float = 1e-5
    norm_placement: NormPlacement = "pre"
    final_norm: bool = True
    qk_norm: bool = False  # RMSNorm on each head's queries and keys (AFM)
    parallel_block: bool = False  # x + Attn(LN(x)) + MLP(LN(x)) with ONE shared norm (PaLM)
    positions: Positions = "learned"
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    rotary_dim: int | None = None  # rotate only the first rotary_dim dims of each head (GPT-J); None = all
    rope_interleaved: bool = False  # rotate pairs (0,1),(2,3).. as GPT-J/PaLM, not halves
    rel_buckets: int = 32  # T5 bucketed bias
    rel_max_distance: int = 128
    attn_pattern: tuple[AttnLayer, ...] = ("global",)  # cycled over layers; layer 0 takes element 0
    window: int | None = None  # keys a local layer sees (itself included)
    window_published: bool = True
    query_scale: float | None = None  # None = head_dim ** -0.5; T5 uses 1.0
    attn_softcap: float | None = None  # cap * tanh(score / cap)
    final_softcap: float | None = None
    mlp: Mlp = "gelu"
    bias: Bias = "all"
    tied_embeddings: bool = True
    lm_head_bias: bool = False  # the LM head carries a bias (GPT-J)
    embed_scale: bool = False  # multiply token embeddings by sqrt(d_model) (Gemma)
    output_scale: bool = False  # multiply the final hidden state by d_model ** -0.5 before a tied head (T5)
    moe: MoE | None = None

    # the published training run
    train_tokens: float | None = None
    optimizer: str = "Adam"
    tokenizer: str = "BPE"
    published_params: float | None = None  # the paper's own headline figure, for comparison
    shape_known: bool = True
    notes: str = ""
    aliases: tuple[str, ...] = ()
    flagship: bool = False
    # value sources that differ from `source`, per field: (("d_ff", "paper §2"), ...)
    field_sources: tuple[tuple[str, str], ...] = ()

    # ------------------------------------------------------------------ derived shape
    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def d_head(self) -> int:
        if self.head_dim is not None:
            return self.head_dim
        return self.d_model // self.n_heads

    @property
    def d_attn(self) -> int:
        """Width of the concatenated heads (queries): n_heads * d_head."""
        if self.head_dim is None and self.d_model % self.n_heads:
            # GPT-3 Table 2.1 lists head counts that do not divide d_model; its published sizes
            # are only reproduced with an attention width equal to d_model.
            return self.d_model
        return self.n_heads * self.d_head

    @property
    def d_kv(self) -> int:
        """Width of the keys (and of the values): n_kv_heads * d_head."""
        return self.d_attn * self.kv_heads // self.n_heads

    @property
    def is_encoder_decoder(self) -> bool:
        return self.n_enc_layers > 0

    @property
    def gated(self) -> bool:
        return self.mlp in ("swiglu", "geglu")

    def layer_kind(self, i: int) -> AttnLayer:
        return self.attn_pattern[i % len(self.attn_pattern)]

    def source_of(self, field_name: str) -> str:
        return dict(self.field_sources).get(field_name, self.source)

    def require_shape(self) -> "Arch":
        """Raise SpecError unless the shape was published (enough for accounting); return self."""
        if not self.shape_known:
            raise SpecError(
                f"{self.name}: its shape was never published ({self.notes or 'no architecture details'}); "
                "only what is known is listed (`llmhist show " + self.name + "`). "
                "Pick a published model or give an explicit shape."
            )
        return self

    def check(self) -> "Arch":
        """Raise SpecError if the shape cannot be built as a module; return self."""
        self.require_shape()
        for f in ("d_model", "n_layers", "n_heads", "d_ff", "vocab_size", "ctx_len"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise SpecError(f"{self.name}: {f} must be a positive integer, got {v!r}")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise SpecError(
                f"{self.name}: d_model {self.d_model} is not divisible by n_heads {self.n_heads}, so heads "
                f"have no integer width; choose n_heads dividing {self.d_model} or set head_dim explicitly"
            )
        if self.n_heads % self.kv_heads:
            raise SpecError(
                f"{self.name}: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.kv_heads}; "
                "grouped-query attention shares each KV head among an equal number of query heads"
            )
        if self.positions == "rope" and self.d_head % 2:
            raise SpecError(f"{self.name}: RoPE needs an even head width, got {self.d_head}")
        if self.rotary_dim is not None and not (0 < self.rotary_dim <= self.d_head and self.rotary_dim % 2 == 0):
            raise SpecError(f"{self.name}: rotary_dim {self.rotary_dim} must be even and in 2..{self.d_head} "
                            "(the head width); None rotates the whole head")
        if "local" in self.attn_pattern and not self.window:
            raise SpecError(f"{self.name}: local attention layers need a window (--window)")
        if self.moe is not None and not 1 <= self.moe.top_k <= self.moe.n_experts:
            raise SpecError(f"{self.name}: MoE top_k {self.moe.top_k} must be in 1..{self.moe.n_experts}")
        if self.parallel_block and self.norm_placement != "pre":
            raise SpecError(f"{self.name}: a parallel block takes one pre-norm")
        return self

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (MoE, RopeScaling)):
                v = {g.name: getattr(v, g.name) for g in fields(v)}
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        d = dict(d)
        if d.get("moe"):
            d["moe"] = MoE(**d["moe"])
        if d.get("rope_scaling"):
            d["rope_scaling"] = RopeScaling(**d["rope_scaling"])
        for k in ("attn_pattern", "aliases"):
            if k in d:
                d[k] = tuple(d[k])
        d["field_sources"] = tuple(tuple(x) for x in d.get("field_sources", ()))
        return cls(**d)


# ---------------------------------------------------------------------------- any size
# Named small sizes shared by every family: (d_model, n_layers, n_heads). Non-embedding
# parameters of a plain GPT block stack are ~12 L d^2: ~100k, ~0.8M, ~4.7M, ~25M, ~85M.
SMALL_SIZES: dict[str, tuple[int, int, int]] = {
    "nano": (64, 2, 4),
    "micro": (128, 4, 4),
    "mini": (256, 6, 8),
    "small": (512, 8, 8),
    "base": (768, 12, 12),
}
TOY_VOCAB = 256  # the byte vocabulary llmhist trains with by default
TOY_CTX = 256


def _round_up(x: float, multiple: int) -> int:
    return int(multiple * math.ceil(x / multiple))


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

    Kept from the family: every choice flag, the query/KV head ratio (GQA) or MQA, the MLP width as
    a ratio of d_model (rounded up to a multiple of 32), the MoE layout (experts, top-k, expert and
    shared widths as ratios of d_model), the local/global pattern and the window as a fraction of
    the context. head_dim becomes d_model / n_heads unless the family's heads are wider than that
    in the same ratio. Shapes that break the family's choices raise SpecError.
    """
    base = arch
    if not base.shape_known:
        base.check()
    if n_kv_heads is None:
        if base.kv_heads == 1:
            n_kv_heads = 1  # MQA stays MQA
        elif base.kv_heads == base.n_heads:
            n_kv_heads = n_heads
        else:
            ratio = base.n_heads // base.kv_heads
            if n_heads % ratio:
                raise SpecError(
                    f"{base.family}: keeps {ratio} query heads per KV head (GQA {base.n_heads}/{base.kv_heads}); "
                    f"n_heads {n_heads} is not a multiple of {ratio}. Use n_heads in multiples of {ratio} "
                    "or pass --n-kv-heads explicitly"
                )
            n_kv_heads = n_heads // ratio
    if d_model % n_heads:
        raise SpecError(
            f"{base.family}: d_model {d_model} is not divisible by n_heads {n_heads}; pick n_heads dividing d_model"
        )
    ratio_ff = base.d_ff / base.d_model
    if d_ff is None:
        d_ff = _round_up(ratio_ff * d_model, 32)
    moe = base.moe
    if moe is not None:
        moe = replace(
            moe,
            d_ff_expert=_round_up(moe.d_ff_expert / base.d_model * d_model, 32),
            d_ff_shared=_round_up(moe.d_ff_shared / base.d_model * d_model, 32) if moe.d_ff_shared else 0,
        )
    ctx = ctx_len or min(base.ctx_len, TOY_CTX)
    if window is None and base.window:
        window = max(1, round(base.window / base.ctx_len * ctx))
    # Gemma 2 scales queries by head_dim^-0.5 (2B/9B) or (d_model/n_heads)^-0.5 (27B); at a custom
    # size head_dim = d_model/n_heads, so both rules give the default. T5's "no scaling" (1.0) stays.
    qs = 1.0 if base.query_scale == 1.0 else None
    return replace(
        base,
        name=name or f"{base.family}@d{d_model}-l{n_layers}-h{n_heads}",
        d_model=d_model,
        n_layers=n_layers,
        n_enc_layers=n_layers if base.is_encoder_decoder else 0,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads if n_kv_heads != n_heads else None,
        head_dim=None,
        d_ff=d_ff,
        vocab_size=vocab_size or TOY_VOCAB,
        ctx_len=ctx,
        window=window,
        query_scale=qs,
        moe=moe,
        rope_scaling=(
            replace(base.rope_scaling, original_ctx=max(1, ctx // 2)) if base.rope_scaling else None
        ),
        train_tokens=None,
        published_params=None,
        aliases=(),
        flagship=False,
        notes=f"{base.family} choices at a custom size (from {base.name})",
    ).check()


def small(arch: Arch, size: str, **kw) -> Arch:
    if size not in SMALL_SIZES:
        raise SpecError(f"unknown size {size!r}; named sizes are {', '.join(SMALL_SIZES)}")
    d, n_layers, h = SMALL_SIZES[size]
    ratio = arch.n_heads // arch.kv_heads if arch.shape_known else 1
    if ratio > 1 and h % ratio:
        # keep the family's GQA ratio: round the head count to it, and d_model to whole, even heads
        h = ratio * max(1, round(h / ratio))
        if d % h:
            d = h * max(2, 2 * round(d / h / 2))
    return resize(arch, d, n_layers, h, name=f"{arch.family}-{size}", **kw)
