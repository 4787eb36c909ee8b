"""Which runs may share one scaling law: a key of the run's architecture choices and recipe.

spec_key(config_doc) reads a run's config.json ({"train": ..., "arch": ..., "recipe": ...}) and
returns (key, label): a stable hash of every choice that is not a size (norm, positions, MLP kind,
biases, MoE routing, recipe, ablation variant...) and a short human label. Sizes are removed
(d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, n_enc_layers, MoE widths) but the shape
ratios that define an architecture stay, rounded: query heads per KV head (MHA vs GQA) and the MLP
width over d_model, so a different MLP width or MHA -> GQA is a different spec. Provenance fields
(paper, year, sources, notes) never split a group.
"""

from __future__ import annotations

import hashlib
import json

SIZE_FIELDS = ("name", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "n_enc_layers")
PROVENANCE_FIELDS = ("year", "paper", "source", "train_tokens", "optimizer", "tokenizer", "published_params",
                     "shape_known", "notes", "aliases", "flagship", "field_sources", "window_published")
MOE_WIDTHS = ("d_ff_expert", "d_ff_shared")


def _ratio(x, y, nd=1):
    return round(float(x) / float(y), nd) if x and y else None


def _template_d_ff(arch: dict) -> int | None:
    """d_ff the family's template gives at this run's d_model, n_layers, n_heads (None if unknown)."""
    from ..archs.registry import build_spec
    from ..core.errors import UserError

    try:
        return build_spec(str(arch.get("family")), None, d_model=arch.get("d_model"), n_layers=arch.get("n_layers"),
                          n_heads=arch.get("n_heads")).d_ff
    except (UserError, ValueError, KeyError, TypeError):  # unknown family or shape: the ratio decides
        return None


def spec_choices(config_doc: dict) -> dict:
    """The size-free description of a run's architecture and recipe (what spec_key hashes)."""
    arch = dict(config_doc.get("arch") or {})
    d, h = arch.get("d_model"), arch.get("n_heads")
    out = {k: v for k, v in arch.items() if k not in SIZE_FIELDS + PROVENANCE_FIELDS}
    variant = (config_doc.get("train") or {}).get("variant")
    out["q_per_kv"] = _ratio(h, arch.get("n_kv_heads") or h, 2)
    # the MLP width: a family's template rounds d_ff per size (Llama's multiple_of: 3.0-4.0 x d_model at
    # tiny widths), so a width the template gives is "template"; an ablation variant defines its own
    # widths (its changes are in the key); any other width is a choice, kept as the rounded ratio
    if variant:
        out["mlp_ratio"] = "variant"
    elif _template_d_ff(arch) == arch.get("d_ff"):
        out["mlp_ratio"] = "template"
    else:
        out["mlp_ratio"] = _ratio(arch.get("d_ff"), d)
    moe = arch.get("moe")
    if isinstance(moe, dict):
        out["moe"] = {k: v for k, v in moe.items() if k not in MOE_WIDTHS}
        out["moe"]["expert_ratio"] = _ratio(moe.get("d_ff_expert"), d)
        out["moe"]["shared_ratio"] = _ratio(moe.get("d_ff_shared"), d)
    out["encoder_decoder"] = bool(arch.get("n_enc_layers"))
    recipe = {k: v for k, v in (config_doc.get("recipe") or {}).items() if k != "source"}
    return {"arch": out, "recipe": recipe, "variant": variant}


def spec_key(config_doc: dict) -> tuple[str, str]:
    """(key, label): key = 12 hex digits of the size-free choices; label = family (+ variant)."""
    choices = spec_choices(config_doc)
    key = hashlib.sha256(json.dumps(choices, sort_keys=True, default=str).encode()).hexdigest()[:12]
    arch = config_doc.get("arch") or {}
    label = str(arch.get("family") or arch.get("name") or "unknown")
    v = choices["variant"]
    if isinstance(v, dict):
        label = variant_label(v, label)
    return key, label


def variant_label(v: dict, default: str = "unknown") -> str:
    """An ablation variant's name: its base, then its changes, a whole kind written as one word
    ('gpt2+recipe', 'gpt2+recipe+arch = llama3'; else the change names)."""
    base, target = str(v.get("base", default)), v.get("target")
    changes = [str(c) for c in v.get("changes") or []]
    if not changes:
        return base
    parts = list(changes)
    try:
        from ..archs import changes as CH

        derived = CH.derive(base, str(target))
        for kind in ("recipe", "arch"):
            names = [c.name for c in derived if c.kind == kind]
            if names and set(names) <= set(parts):
                parts = [p for p in parts if p not in names] + [kind]
        if set(changes) == {c.name for c in derived}:
            return f"{base}+{'+'.join(parts)} = {target}"
    except (ValueError, KeyError, LookupError):  # names the registry no longer knows: list them as they are
        parts = list(changes)
    return f"{base}+{'+'.join(parts)}"
