"""The changes between two registry entries, named and dated, and the specs in between.

A *change* is a group of spec or recipe fields a reader recognises as one idea (LayerNorm ->
RMSNorm; learned positions -> RoPE; MHA -> GQA; the optimizer's settings). The groups are DATA
(`CHANGES`, below): nothing here looks at a model's name. For two entries, `derive(base, target)`
lists the groups whose values differ; a spec or recipe field that differs and that no group
covers becomes a change of its own, named after the field, so the list is always complete and a
ladder of all changes ends exactly at the target's choices.

Each change is labelled with the year and the first registry entry that introduced it, by
llmhist.archs.dating: the earliest entry that takes the target's values AND documents them (an
assumed value never introduces a change); `dating` says how. A change that needs another one
(RoPE's theta needs RoPE) says so (`requires`, as data: the features that must already take the
target's values) and is refused alone.

`variant_spec(variant, d_model, n_layers, n_heads, vocab_size, ctx_len)` builds the base family at
a requested size (registry.build_spec) and applies the listed changes, deriving shape fields at
that size (gated MLP width parameter-matched, GQA keeping the target's query/KV ratio, windows as a
fraction of the context), refusing the changes `ablatable(change)` gives a reason for (MoE layout and
routing, MLA, MTP: recent.NOT_ABLATABLE); `variant_recipe(variant)` is the base recipe with the
listed recipe changes taken from the target. Pure Python: no torch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace

from ..core.errors import UserError
from . import dating, registry
from .catalogue import Recipe
from .recent import RECENT_CHANGES, ablatable, mla_kind, moe_layout, moe_router, scaling_kind
from .spec import Arch, SpecError

MLP_ROUND = 32  # resize() rounds custom-size MLP widths up to a multiple of 32; so do we
GATED = ("swiglu", "geglu", "swiglu_clamped")


class ChangeError(UserError, ValueError):
    """An ablation that cannot be built: unknown names, no difference, a missing dependency."""


@dataclass(frozen=True)
class ChangeDef:
    name: str
    kind: str  # "arch" (spec fields) | "recipe" (training recipe fields)
    fields: tuple[str, ...]  # spec/recipe fields or derived features (FEATURES) it covers
    description: str
    requires: tuple[str, ...] = ()  # features that must take the target's value before this applies


# The table of named changes. Order here only breaks ties of year and introducing entry.
CHANGES: tuple[ChangeDef, ...] = (
    ChangeDef("init", "recipe", ("init", "embed_std"), "weight initialisation (e.g. GPT-2's residual scaling)"),
    ChangeDef("norm_placement", "arch", ("norm_placement", "final_norm"),
              "where the norm sits: post-norm LN(x + f(x)) -> pre-norm x + f(LN(x)) with a final norm"),
    ChangeDef("norm", "arch", ("norm", "norm_eps"), "the normalisation: LayerNorm -> RMSNorm"),
    ChangeDef("bias", "arch", ("bias", "norm_bias", "lm_head_bias"), "biases on linear layers and norms"),
    ChangeDef("positions", "arch", ("positions", "rotary_frac", "rope_interleaved", "rel_buckets", "rel_max_distance"),
              "position encoding: learned table -> rotary (RoPE), relative biases, ..."),
    ChangeDef("rope_theta", "arch", ("rope_theta",), "RoPE base frequency theta", requires=("positions",)),
    ChangeDef("rope_scaling", "arch", ("rope_scaling_kind",), "RoPE frequency scaling for long context",
              requires=("positions",)),
    ChangeDef("mlp", "arch", ("mlp",),
              "MLP activation and gating (GELU -> SwiGLU); a gated MLP gets 2/3 of the dense width so "
              "parameters stay matched"),
    ChangeDef("mlp_width", "arch", ("mlp_ratio",),
              "MLP width beyond parameter-matched (dense-equivalent ratio to d_model)", requires=("mlp",)),
    ChangeDef("attention", "arch", ("kv_ratio",), "MHA -> GQA / MQA: query heads sharing one KV head"),
    ChangeDef("tied_embeddings", "arch", ("tied_embeddings",), "input embedding shared with the LM head (tied) or not"),
    ChangeDef("parallel_block", "arch", ("parallel_block",), "attention and MLP in parallel from one norm",
              requires=("norm_placement",)),
    ChangeDef("qk_norm", "arch", ("qk_norm",), "RMSNorm on each head's queries and keys"),
    ChangeDef("local_attention", "arch", ("attn_pattern", "window_frac"),
              "local (sliding-window) attention layers and their window"),
    ChangeDef("head_width", "arch", ("head_ratio",), "head width decoupled from d_model / n_heads"),
    ChangeDef("query_scale", "arch", ("query_scale_rule",),
              "attention logits scaled by a width other than the head's (Gemma 2: (d_model / n_heads)^-1/2)"),
    ChangeDef("softcap", "arch", ("attn_softcap", "final_softcap"), "tanh soft-capping of attention and output logits"),
    ChangeDef("optimizer", "recipe", ("optimizer", "betas", "eps"), "optimizer and its betas / epsilon (Adam -> AdamW)"),
    ChangeDef("weight_decay", "recipe", ("weight_decay",), "weight decay"),
    ChangeDef("grad_clip", "recipe", ("grad_clip",), "gradient clipping by global norm"),
    ChangeDef("schedule", "recipe", ("schedule", "min_lr_ratio"), "learning-rate schedule (cosine floor)"),
    ChangeDef("warmup", "recipe", ("warmup", "warmup_frac"), "learning-rate warmup"),
    ChangeDef("z_loss", "recipe", ("z_loss",), "auxiliary z-loss on the softmax normaliser"),
    # since mid-2024 (DeepSeek-V3, Qwen 3, OLMo 2, Gemma 3, Llama 4, gpt-oss); recent.NOT_ABLATABLE: the refused
    *(ChangeDef(*row) for row in RECENT_CHANGES),
)
BY_NAME = {c.name: c for c in CHANGES}
# ablation group names accepted by --changes: every change of one kind
GROUPS = {"arch": "arch", "architecture": "arch", "recipe": "recipe"}

# Spec fields that are size, provenance or the published run, not choices.
NOT_CHOICES = {
    "name", "family", "year", "paper", "source", "d_model", "n_layers", "n_heads", "d_ff", "vocab_size",
    "ctx_len", "n_kv_heads", "head_dim", "train_tokens", "optimizer", "tokenizer", "published_params",
    "shape_known", "notes", "aliases", "flagship", "field_sources", "window_published", "train_ctx_len",
    "window", "rope_scaling", "query_scale", "rotary_dim", "n_enc_layers", "moe", "attn_width",
}
RECIPE_NOT_CHOICES = {"source", "sources", "aux_loss", "objective"}
MISSING = dating.MISSING  # one sentinel: the spec or recipe has no such field


# ----------------------------------------------------------------------- derived features
def _round_up(x: float, multiple: int = MLP_ROUND) -> int:
    return int(multiple * math.ceil(x / multiple - 1e-9))


def _kv_ratio(a: Arch) -> int | str:
    """1 = MHA, 'mqa' = one KV head, r = GQA with r query heads per KV head."""
    if a.kv_heads == a.n_heads:
        return 1
    if a.kv_heads == 1:
        return "mqa"
    return a.n_heads // a.kv_heads


def _set_kv_ratio(a: Arch, r, target: Arch) -> Arch:
    if r == 1:
        return replace(a, n_kv_heads=a.n_heads)
    if r == "mqa":
        return replace(a, n_kv_heads=1)
    if a.n_heads % r:  # GQA r:1 needs whole groups; at r heads it has one KV head (MQA's layout, the
        # only GQA r:1 a model this narrow has: the ablation's small shapes allow it, spec.resize does not)
        raise SpecError(f"{a.name}: GQA keeps the target's {r} query heads per KV head, so n_heads must be a "
                        f"multiple of {r} (got {a.n_heads}); choose --n-heads {r} or a larger multiple of {r}")
    return replace(a, n_kv_heads=a.n_heads // r)


def _set_mlp(a: Arch, mlp, target: Arch) -> Arch:
    was, now = a.mlp in GATED, mlp in GATED
    d_ff = a.d_ff
    if now and not was:
        d_ff = _round_up(a.d_ff * 2 / 3)  # 3 matrices of 2/3 the width: the dense MLP's parameters
    elif was and not now:
        d_ff = _round_up(a.d_ff * 3 / 2)
    return replace(a, mlp=mlp, d_ff=d_ff)


def _set_window_frac(a: Arch, frac, target: Arch) -> Arch:
    return replace(a, window=None if frac is None else max(1, round(frac * a.ctx_len)))


def _set_rope_scaling(a: Arch, kind, target: Arch) -> Arch:
    if kind in (None, "none") or target.rope_scaling is None:
        return replace(a, rope_scaling=None)
    return replace(a, rope_scaling=replace(target.rope_scaling, original_ctx=max(1, a.ctx_len // 2)))


def _set_head_ratio(a: Arch, ratio, target: Arch) -> Arch:
    hd = a.d_model // a.n_heads if ratio == 1 else 2 * max(1, round(ratio * a.d_model / a.n_heads / 2))
    rd = None if a.rotary_dim is None else min(hd, 2 * max(1, round(a.rotary_dim / a.head_dim * hd / 2)))
    return replace(a, head_dim=hd, rotary_dim=rd)


def _set_rotary_frac(a: Arch, frac, target: Arch) -> Arch:
    if frac is None or target.rotary_dim is None:
        return replace(a, rotary_dim=None)
    even = 2 * max(1, round(target.rotary_dim / target.head_dim * a.head_dim / 2))  # spec.resize's rounding
    return replace(a, rotary_dim=min(a.head_dim, even))


def _set_query_scale_rule(a: Arch, ratio, target: Arch) -> Arch:
    if ratio is None or target.query_scale is None:
        return replace(a, query_scale=None)
    # spec.resize's arithmetic, so the ladder ends exactly at build_spec(target)
    return replace(a, query_scale=(target.query_scale ** -2 / (target.d_model / target.n_heads)
                                   * (a.d_model // a.n_heads)) ** -0.5)


# name -> (value of an Arch, setter(arch, value, target_arch) -> arch). A None value means "not
# applicable to this spec" (no RoPE theta without RoPE): a target value of None is no change.
FEATURES = {
    "kv_ratio": (_kv_ratio, _set_kv_ratio),
    # the MLP's width in dense-equivalent units (parameters per layer / (2 d_model^2)): a gated MLP
    # at 2/3 of a dense width has the dense ratio, so GELU -> SwiGLU alone changes no width
    "mlp_ratio": (lambda a: round(a.d_ff / a.d_model * (1.5 if a.mlp in GATED else 1), 2) if a.moe is None else None,
                  lambda a, v, t: replace(a, d_ff=_round_up(t.d_ff / t.d_model * a.d_model))),
    "rope_theta": (lambda a: a.rope_theta if a.positions == "rope" else None, None),  # plain field
    "rope_scaling_kind": (lambda a: (None if a.positions != "rope" else "none" if a.rope_scaling is None else
                                     scaling_kind(a.rope_scaling)), _set_rope_scaling),
    "window_frac": (lambda a: round(a.window / a.ctx_len, 4) if (a.window and "local" in a.attn_pattern) else None,
                    _set_window_frac),
    "mlp": (lambda a: a.mlp, _set_mlp),
    "rotary_frac": (lambda a: None if a.rotary_dim is None else round(a.rotary_dim / a.head_dim, 4), _set_rotary_frac),
    # the head width and the query scale's width as ratios of d_model / n_heads (as spec.resize keeps them)
    "head_ratio": (lambda a: round(a.head_dim / (a.d_model / a.n_heads), 4), _set_head_ratio),
    "query_scale_rule": (lambda a: None if a.query_scale is None else round(a.query_scale ** -2 / (a.d_model / a.n_heads), 4),
                         _set_query_scale_rule),
}
def _refuse(a: Arch, v, target: Arch) -> Arch:  # never called: variant_spec refuses these changes first
    raise AssertionError(a.name)  # pragma: no cover
# under MLA the KV sharing and head width are the `mla` change's, not changes of their own
_GQA, _HEAD = FEATURES["kv_ratio"], FEATURES["head_ratio"]
FEATURES.update({
    "kv_ratio": (lambda a: None if a.mla else _GQA[0](a), _GQA[1]), "head_ratio": (lambda a: None if a.mla else _HEAD[0](a), _HEAD[1]),
    "qk_norm_width": (lambda a: a.qk_norm_width if a.qk_norm else None, None),  # the plain field where it applies
    "moe_layout": (moe_layout, _refuse),
    "moe_router": (moe_router, _refuse),
    "mla": (mla_kind, _refuse),
})
OPTIONAL_FEATURES = {"rope_theta", "rope_scaling_kind", "window_frac", "mlp_ratio", "qk_norm_width", "moe_router",
                     "kv_ratio", "head_ratio"}
# what an optional feature's field holds while it does not apply (a learned-position model's RoPE
# settings): when that already equals the target's value, there is nothing to change
RAW = {
    "rope_theta": lambda a: a.rope_theta,
    "rope_scaling_kind": lambda a: "none" if a.rope_scaling is None else scaling_kind(a.rope_scaling),
    "qk_norm_width": lambda a: a.qk_norm_width,
}



def _norm(v):
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    return v


def arch_value(a: Arch, feature: str):
    if feature in FEATURES:
        return FEATURES[feature][0](a)
    return _norm(getattr(a, feature, MISSING))


def recipe_value(r, feature: str):
    return _norm(getattr(r, feature, MISSING))


def _recipe_of(name: str) -> Recipe | None:
    """The recipe of a registry entry (by its name); None where it has none."""
    try:
        return registry.get(name).recipe
    except (UserError, KeyError, ValueError):
        return None


# ----------------------------------------------------------------------- the changes
@dataclass(frozen=True)
class Change:
    name: str
    kind: str
    description: str
    fields: tuple[str, ...]  # the fields that differ
    before: dict  # field -> base value
    after: dict  # field -> target value
    year: int
    introduced_by: str
    requires: tuple[str, ...] = ()  # names of changes this one needs (those that differ)
    dating: str = ""  # how year and introduced_by were chosen (llmhist.archs.dating)

    def summary(self) -> str:
        def fmt(d):
            return ", ".join(f"{k}={_fmt(v)}" for k, v in d.items())
        return f"{fmt(self.before)} -> {fmt(self.after)}"

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "year": self.year, "introduced_by": self.introduced_by,
                "description": self.description, "from": {k: _jsonable(v) for k, v in self.before.items()},
                "to": {k: _jsonable(v) for k, v in self.after.items()}, "requires": list(self.requires),
                "not_ablatable": ablatable(self.name), "dating": self.dating}


def _fmt(v) -> str:
    if v == "mqa":
        return "MQA"
    if isinstance(v, float) and v.is_integer():
        return f"{v:g}"
    return str(v)


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def _defs_with_catchall(base: Arch, target: Arch, rb, rt) -> list[ChangeDef]:
    """The table plus one single-field change for every differing field the table does not cover."""
    covered = {f for c in CHANGES for f in c.fields}
    extra = []
    for f in fields(Arch):
        if f.name in NOT_CHOICES or f.name in covered:
            continue
        if arch_value(base, f.name) != arch_value(target, f.name):
            extra.append(ChangeDef(f.name, "arch", (f.name,), f"spec field {f.name}"))
    if rb is not None and rt is not None:
        for f in fields(rb):
            if f.name in RECIPE_NOT_CHOICES or f.name in covered:
                continue
            if recipe_value(rb, f.name) != recipe_value(rt, f.name):
                extra.append(ChangeDef(f.name, "recipe", (f.name,), f"recipe field {f.name}"))
    return list(CHANGES) + extra


def _values(d: ChangeDef, a: Arch, r) -> dict:
    out = {}
    for f in d.fields:
        v = arch_value(a, f) if d.kind == "arch" else (recipe_value(r, f) if r is not None else MISSING)
        if v is not MISSING:
            out[f] = v
    return out


def resolve(name: str) -> Arch:
    """A registry entry or family name -> the spec whose proportions its custom sizes keep
    (registry.template: a family's template, an entry's own shape), so that a ladder of all
    changes ends exactly at build_spec(target) at any size. Shape known; decoder-only (a MoE or MLA
    model's changes are listed; variant_spec refuses those ablatable() marks)."""
    a = registry.get(name, buildable=True).arch and registry.template(name)
    if a is None:
        raise ChangeError(f"{name}: its shape was never published, so it cannot be ablated; "
                          "pick a published model (`llmhist archs`)")
    if a.is_encoder_decoder:
        raise ChangeError(f"{name}: encoder-decoder models are not ablated here (the changes compare "
                          "decoder-only language models); pick a decoder-only model")
    return a


@functools.lru_cache(maxsize=64)
def _derive(base_name: str, target_name: str) -> tuple[Change, ...]:
    base, target = resolve(base_name), resolve(target_name)
    rb, rt = _recipe_of(base_name), _recipe_of(target_name)
    if (rb is None) != (rt is None):
        rb = rt = None
    if rb is not None and rt is not None and rb.objective != rt.objective:
        raise ChangeError(f"{base_name} and {target_name} train with different objectives "
                          f"({rb.objective} / {rt.objective}); their losses cannot be compared")
    defs = _defs_with_catchall(base, target, rb, rt)
    found = []
    for d in defs:
        vb, vt = _values(d, base, rb), _values(d, target, rt)
        diff = [f for f in vt if vb.get(f, MISSING) != vt[f] and not (f in OPTIONAL_FEATURES and vt[f] is None)
                # not applicable in the base (no RoPE yet) but its raw value is already the target's
                and not (vb.get(f) is None and f in RAW and RAW[f](base) == vt[f])]
        if not diff:
            continue
        req_want = {f: arch_value(target, f) for f in d.requires}
        dated = dating.dated(d.kind, {f: vt[f] for f in diff},
                             lambda e, d=d: _values(d, e.arch, e.recipe if d.kind == "recipe" else None),
                             lambda e, rw=req_want: all(arch_value(e.arch, k) == v for k, v in rw.items()),
                             registry.BY_NAME[base.name], registry.BY_NAME[target.name])
        found.append((d, diff, vb, vt, dated))
    # a requirement is a dependency when the feature differs between base and target
    covering = {f: d.name for d, *_ in found for f in d.fields}
    out = []
    for d, diff, vb, vt, (year, who, how) in found:
        deps = tuple(dict.fromkeys(covering[f] for f in d.requires
                                   if f in covering and arch_value(base, f) != arch_value(target, f)))
        out.append(Change(d.name, d.kind, d.description, tuple(diff), {f: vb.get(f) for f in diff},
                          {f: vt[f] for f in diff}, year, who, deps, how))
    if not out:
        raise ChangeError(f"{base_name} ({base.name}) and {target_name} ({target.name}) make the same choices: "
                          "there is no change to measure; pick two models that differ (`llmhist compare A B`)")
    return tuple(historical(out))


def historical(changes: list[Change]) -> list[Change]:
    """By year, then the introducing entry's registry order, then table order; a change never
    comes before a change it requires."""
    idx = {e.name: i for i, e in enumerate(registry.ENTRIES)}
    table = {c.name: i for i, c in enumerate(CHANGES)}
    todo = sorted(changes, key=lambda c: (c.year, idx.get(c.introduced_by, 0), table.get(c.name, len(table))))
    out, done = [], set()
    while todo:
        for i, c in enumerate(todo):
            if all(r in done or r not in {x.name for x in todo} for r in c.requires):
                out.append(todo.pop(i))
                done.add(c.name)
                break
    return out


def derive(base: str, target: str) -> list[Change]:
    """The changes from `base` to `target` (entry or family names), in historical order."""
    return list(_derive(base.strip().lower(), target.strip().lower()))


def check_names(base: str, target: str, names, option: str = "--changes") -> list[str]:
    """Validate change names (or the group names arch / recipe) against the changes between the two."""
    ch = derive(base, target)
    known = [c.name for c in ch]
    out = []
    for n in names:
        n = n.strip()
        if n in GROUPS:
            out += [c.name for c in ch if c.kind == GROUPS[n] and c.name not in out]
            continue
        if n not in known:
            why = ("it is a named change, but " + base + " and " + target + " do not differ in it") if n in BY_NAME \
                else "no such change"
            raise ChangeError(f"{option} {n!r}: {why}. The changes from {base} to {target} are: {', '.join(known)} "
                              "(or the groups arch, recipe); `llmhist ablate " + f"{base} {target} --list` shows them")
        if n not in out:
            out.append(n)
    return out


def require_closed(base: str, target: str, applied, option: str = "--changes") -> None:
    """Refuse a set of changes where one is missing a change it depends on."""
    by = {c.name: c for c in derive(base, target)}
    s = set(applied)
    for n in applied:
        missing = [r for r in by[n].requires if r not in s]
        if missing:
            raise ChangeError(f"{option}: {n!r} cannot be applied alone: it depends on {', '.join(map(repr, missing))} "
                              f"({by[n].description}); add {','.join(missing)} to {option}")


def dependents(base: str, target: str, name: str) -> list[str]:
    """Changes that need `name` (directly or through others)."""
    ch = derive(base, target)
    out, grow = [], {name}
    while True:
        new = [c.name for c in ch if c.name not in grow and grow & set(c.requires)]
        if not new:
            return [c.name for c in ch if c.name in out]
        out += new
        grow |= set(new)


# ----------------------------------------------------------------------- variants
def _variant_parts(variant: dict) -> tuple[str, str, list[str]]:
    if not isinstance(variant, dict) or "base" not in variant or "target" not in variant:
        raise ChangeError(f"variant {variant!r}: give a dict {{'base': ..., 'target': ..., 'changes': [...]}}")
    changes = list(variant.get("changes") or [])
    unknown = [k for k in variant if k not in ("base", "target", "changes")]
    if unknown:
        raise ChangeError(f"variant: unknown key(s) {', '.join(unknown)}; use base, target, changes")
    return str(variant["base"]), str(variant["target"]), changes


def variant_spec(variant: dict, d_model: int, n_layers: int, n_heads: int, vocab_size: int | None = None,
                 ctx_len: int | None = None) -> Arch:
    """The BASE family's shape at this size with the listed changes applied (in historical order)."""
    base, target, names = _variant_parts(variant)
    names = check_names(base, target, names, "variant changes")
    require_closed(base, target, names, "variant changes")
    refused = {n: ablatable(n) for n in names if ablatable(n)}
    if refused:
        raise ChangeError("; ".join(f"{n!r} cannot be ablated: {why}" for n, why in refused.items())
                          + f". Leave it out of the changes (`llmhist ablate {base} {target} --list` marks each)")
    a = registry.build_spec(base, d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=vocab_size,
                            ctx_len=ctx_len)
    t = resolve(target)
    order = [c for c in derive(base, target) if c.name in names and c.kind == "arch"]
    for c in order:
        for f in c.fields:
            v = c.after[f]
            setter = FEATURES.get(f, (None, None))[1]
            a = setter(a, v, t) if setter else replace(a, **{f: v})
    # a field that stopped mattering (RoPE's theta once positions are learned) follows the target
    b0 = registry.build_spec(base, d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=vocab_size,
                             ctx_len=ctx_len) if order else a
    for f in OPTIONAL_FEATURES:
        if arch_value(a, f) is None and arch_value(b0, f) is not None:
            setter = FEATURES[f][1]
            a = setter(a, None, t) if setter else replace(a, **{f: getattr(t, f)})
    if names:
        label = "+".join(names)
        a = replace(a, name=f"{a.family}+{label}@d{d_model}-l{n_layers}-h{n_heads}")
    return a.check()


def variant_recipe(variant: dict):
    """The base recipe with the listed recipe changes' values taken from the target's recipe."""
    base, target, names = _variant_parts(variant)
    names = check_names(base, target, names, "variant changes")
    rb = _recipe_of(base)
    if rb is None:
        raise ChangeError(f"{base}: no training recipe is known for it")
    kw = {}
    applied = []
    for c in derive(base, target):
        if c.name in names and c.kind == "recipe":
            kw.update({f: c.after[f] for f in c.fields if hasattr(rb, f)})
            applied.append(c.name)
    if not kw:
        return rb
    why = f"ablation: {', '.join(applied)} from {registry.get(target).name}'s recipe"
    return replace(rb, **kw, sources={**rb.sources, **{f: f"{rb.sources.get(f, '')} | {why}" if f in rb.sources
                                                        else why for f in kw}})
