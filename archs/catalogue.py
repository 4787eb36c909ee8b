"""The catalogue record of a published model, apart from the buildable architecture.

An `Entry` holds what is known about a model: name, year, paper, the published figures, the
training run (tokens, pre-training sequence length, optimizer, tokenizer), its training recipe,
the entry whose proportions custom sizes keep (its template), notes, and a source for every value
(a paper section or table, a released config, or "assumed: <reason>"). Its `arch` is the buildable
`spec.Arch`, or None where the shape was never published (GPT-4, Codex 12B, AFM-server): those are
refused with a clear message wherever a shape is needed.

Pure Python, no torch: `llmhist archs/show/compare` read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal

from .spec import Arch, SpecError

ASSUMED = "assumed: "  # every assumed value's source starts with this


def is_assumed(source: str) -> bool:
    return source.startswith(ASSUMED)


# ------------------------------------------------------------------------------------ recipes
Optimizer = Literal["adam", "adamw", "adafactor"]
Objective = Literal["causal_lm", "span_corruption"]

# the recipe fields that carry a source of their own (the ones training and ablations read)
RECIPE_SOURCED = ("optimizer", "betas", "eps", "weight_decay", "grad_clip", "min_lr_ratio", "warmup_frac",
                  "schedule", "init", "embed_std", "z_loss", "aux_loss")


@dataclass(frozen=True)
class Recipe:
    """A family's training recipe as data. `sources` names the source of each field in RECIPE_SOURCED.

    What cannot carry over from a 100B-parameter run to a 1M-parameter one is scaled, and said so in
    its source (warmup as a fraction of the run); the peak learning rate is no recipe field but a
    rule on the recipe's optimizer and the run's width (llmhist.train.config.recipe_lr)."""

    optimizer: Optimizer
    betas: tuple[float, float]
    eps: float
    weight_decay: float  # adam: L2 added to the gradient; adamw: decoupled
    grad_clip: float | None  # global norm; None = none
    min_lr_ratio: float  # the schedule decays to this fraction of the peak
    init: str  # normal02 | gpt2_scaled | fan_in
    sources: dict[str, str]
    embed_std: float = 0.02
    z_loss: float = 0.0  # PaLM's auxiliary z-loss 1e-4 * log^2 Z
    aux_loss: float = 0.0  # MoE load-balancing coefficient (transformers' router_aux_loss_coef)
    schedule: str = "cosine"  # one of llmhist.train.schedule.SCHEDULES (the trainer's; resolve checks it)
    warmup_frac: float = 0.02  # warmup as a fraction of the run's steps
    objective: Objective = "causal_lm"  # follows the spec: span_corruption for encoder-decoders

    @property
    def source(self) -> str:
        """One line naming every field's source (for display)."""
        return "; ".join(f"{k}: {self.sources[k]}" for k in RECIPE_SOURCED if k in self.sources)

    def source_of(self, name: str) -> str:
        return self.sources[name]

    def with_(self, sources: dict[str, str] | None = None, **changes) -> Recipe:
        """A changed copy; every changed field must come with its new source."""
        from dataclasses import replace

        sources = dict(sources or {})
        missing = [k for k in changes if k in RECIPE_SOURCED and k not in sources]
        if missing:
            raise ValueError(f"recipe change of {', '.join(missing)} needs a source for each")
        return replace(self, sources={**self.sources, **sources}, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def objective_for(arch: Arch) -> Objective:
    """The pre-training objective follows the spec: span corruption for an encoder-decoder (T5 §3.1.4)."""
    return "span_corruption" if arch.is_encoder_decoder else "causal_lm"


# ------------------------------------------------------------------------------------ entries
# Catalogue facts that carry a source of their own, besides the Arch fields.
CATALOGUE_SOURCED = ("published_params", "train_tokens", "train_ctx_len", "optimizer", "tokenizer")


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    year: int
    paper: str
    arch: Arch | None  # None: the shape was never published
    sources: dict[str, str]  # a source for every value shown: Arch fields and CATALOGUE_SOURCED
    recipe: Recipe
    template: str  # the entry whose proportions custom sizes of this one keep (usually itself)
    published_params: float | None = None  # the figure the paper printed
    train_tokens: float | None = None
    train_ctx_len: int | None = None  # pre-training sequence length (training FLOPs); ctx_len is the maximum
    optimizer: str = "not published"
    tokenizer: str = "not published"
    notes: str = ""
    aliases: tuple[str, ...] = ()
    flagship: bool = False
    known: dict[str, int] = field(default_factory=dict)  # shape facts known without a full shape (ctx_len, vocab)

    @property
    def shape_known(self) -> bool:
        return self.arch is not None

    @property
    def ctx_len(self) -> int | None:
        """The maximum context."""
        return self.arch.ctx_len if self.arch is not None else self.known.get("ctx_len")

    def require_arch(self) -> Arch:
        """The buildable architecture, or SpecError saying the shape was never published."""
        if self.arch is None:
            raise SpecError(
                f"{self.name}: its shape was never published ({self.notes or 'no architecture details'}); "
                f"only what is known is listed (`llmhist show {self.name}`). "
                "Pick a published model or give an explicit shape."
            )
        return self.arch

    def source_of(self, name: str) -> str:
        """The source of one value; KeyError if it has none (a test keeps that from happening)."""
        return self.sources[name]

    def shown(self) -> dict[str, object]:
        """The values `show` prints, each of which must have a source: the catalogue facts and the
        architecture's values that are present (absent features such as a MoE or soft-cap are left out)."""
        out: dict[str, object] = {k: getattr(self, k) for k in CATALOGUE_SOURCED if getattr(self, k) is not None}
        out.update(self.known)
        if self.arch is not None:
            out.update(shown_arch_values(self.arch))
        return out

    def assumed(self, names: tuple[str, ...] | list[str] | set[str] | None = None) -> dict[str, str]:
        """{field: source} of the shown values (or of `names`) whose source is an assumption."""
        keys = names if names is not None else self.shown()
        return {k: self.sources[k] for k in keys if k in self.sources and is_assumed(self.sources[k])}


def shown_arch_values(a: Arch) -> dict[str, object]:
    """The Arch's values worth showing: every shape value and choice, without absent features."""
    out: dict[str, object] = {}
    for f in fields(a):
        k, v = f.name, getattr(a, f.name)
        if k in ("name", "family"):
            continue
        if v is None or v is False and k in OPTIONAL_FEATURES:
            continue
        if k == "n_enc_layers" and not v:
            continue
        if k == "attn_pattern" and tuple(v) == ("global",):
            continue
        if k == "attn_width" and v == "heads":
            continue
        if k == "qk_norm_width" and (not a.qk_norm or v == "head") or k in RECENT_DEFAULTS and v == RECENT_DEFAULTS[k]:
            continue
        if not applies(a, k):
            continue
        out[k] = v
    return out


# the recent families' fields, left out at their defaults (no such feature)
RECENT_DEFAULTS = {"mtp_depth": 0, "nope_every": 0, "nope_temp_floor": 0, "nope_temp_scale": 0.0, "attn_sinks": False}


# fields that mean something only with one position encoding (a learned-position model's rope_theta
# holds the spec's default, which it never uses)
APPLIES_WITH = {"rope_theta": "rope", "rope_interleaved": "rope", "rope_scaling": "rope", "rotary_dim": "rope",
                "rel_buckets": "t5_bias", "rel_max_distance": "t5_bias"}


def applies(a: Arch, name: str) -> bool:
    """Whether a spec field applies to this spec (show and compare print `-` where it does not)."""
    return name not in APPLIES_WITH or a.positions == APPLIES_WITH[name]


OPTIONAL_FEATURES = frozenset({"qk_norm", "parallel_block", "rope_interleaved", "lm_head_bias", "embed_scale",
                               "output_scale"})

# What each derived number rests on, so `show` and `compare` can mark those resting on an assumption.
DEPENDS: dict[str, tuple[str, ...]] = {
    "params": ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "n_enc_layers",
               "norm", "norm_bias", "norm_placement", "final_norm", "qk_norm", "parallel_block", "positions",
               "attn_width", "mlp", "bias", "lm_head_bias", "tied_embeddings", "moe", "mla", "qk_norm_width"),
    "flops": ("train_ctx_len",),  # on top of params: conventions with an attention term at the training length
    "flops_useful": ("train_ctx_len", "window", "attn_pattern"),  # attention only over the keys a query sees
    "kv_cache": ("n_layers", "n_kv_heads", "head_dim", "attn_width", "window", "attn_pattern", "ctx_len", "mla"),
    "activations": ("d_model", "n_layers", "d_ff", "mlp", "moe", "n_heads", "n_kv_heads", "head_dim", "attn_width",
                    "n_enc_layers"),
    "D": ("train_tokens",),  # the training tokens alone
    "tokens": ("train_tokens",),  # with N (as every name starting with "tokens"): tokens/param, 6ND, optimality
}


# which DEPENDS entry each FLOP convention's number rests on
FLOPS_RESTS = {"6N": "params", "kaplan": "flops", "palm": "flops", "chinchilla": "flops", "counted": "flops",
               "useful": "flops_useful"}


def rests_on_assumed(e: Entry, quantity: str) -> dict[str, str]:
    """{field: source} of the assumed values a derived quantity ('params', 'flops', ...) rests on."""
    keys = set(DEPENDS[quantity]) | (set(DEPENDS["params"]) if quantity.startswith(("flops", "tokens")) else set())
    shown = e.shown()
    return e.assumed([k for k in keys if k in shown])
