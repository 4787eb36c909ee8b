"""When a change between two registry entries first appeared: the year and the entry that introduced it.

A change is dated by the earliest entry (by year, then registry order) that takes the target's values
AND documents them: an assumed value (a source starting "assumed: ") never introduces a change, so
T5's cosine-to-10% (the registry's own assumption) does not date the schedule change; GPT-3 App. B
does. A change is dated by its idea (GQA at any ratio is GQA: Llama 2 34B/70B, 2023), and the dating
names the first entry with exactly the target's value where that came later (Llama 3's 4:1, 2024).
A return to a choice older than the base (GPT-2 -> Llama 3's N(0, 0.02) init, which GPT-1 used)
keeps its first documented use and says it is a return; a value no entry documents is dated by the
target. llmhist.archs.changes asks, through the two functions it passes: the entry's values for the
change's fields, and whether the entry meets the change's requirements. Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable

from . import registry
from .catalogue import Entry, is_assumed

MISSING = object()
# the registry fields whose sources vouch for a derived feature's value (those it is computed from)
SOURCE_KEYS = {"kv_ratio": ("n_heads", "n_kv_heads"), "mlp_ratio": ("d_ff",), "rope_scaling_kind": ("rope_scaling",),
               "window_frac": ("window", "attn_pattern"), "head_ratio": ("head_dim",),
               "query_scale_rule": ("query_scale",), "rotary_frac": ("rotary_dim",)}
# what counts as the same idea of a value when a change is dated
IDEA: dict[str, Callable] = {"kv_ratio": lambda v: "GQA" if isinstance(v, int) and v > 1 else v}


def documents(e: Entry, kind: str, feats) -> bool:
    """Whether an entry documents these values ("arch" or "recipe" fields): no source behind them is an
    assumption (a field without a source of its own is the spec's default, not an assumption)."""
    srcs = e.sources if kind == "arch" else e.recipe.sources
    return not any(is_assumed(srcs.get(k, "")) for f in feats for k in SOURCE_KEYS.get(f, (f,)))


def idea(f: str, v):
    """The idea a feature's value stands for (GQA 4:1 and 8:1 are both GQA); the value itself otherwise."""
    return v if v is MISSING or f not in IDEA else IDEA[f](v)


def first(kind: str, want: dict, values: Callable, meets: Callable, exact: bool) -> Entry | None:
    """The earliest entry with a shape (year, then registry order) that documents the values `want`
    (or, exact=False, their idea) and `meets` the change's requirements; values(e) -> {field: value}."""
    same = (lambda f, v: v) if exact else idea
    for e in sorted(registry.ENTRIES, key=lambda e: e.year):  # stable: registry order within a year
        if e.arch is None:
            continue
        got = values(e)
        if all(same(k, got.get(k, MISSING)) == same(k, v) for k, v in want.items()) and meets(e) \
                and documents(e, kind, want):
            return e
    return None


def dated(kind: str, want: dict, values: Callable, meets: Callable, base: Entry, target: Entry) -> tuple[int, str, str]:
    """(year, introducing entry, how it was dated) of a change to the values `want` from base to target."""
    notes = [] if documents(target, kind, want) else [f"{target.name}'s value is assumed"]
    by_idea, by_value = first(kind, want, values, meets, exact=False), first(kind, want, values, meets, exact=True)
    if by_idea is None:
        return target.year, target.name, "; ".join(notes + ["no entry documents it; dated by the target"])
    if by_idea.year < base.year:
        notes.append(f"a return: {base.name} ({base.year}) had moved away from {by_idea.name}'s choice")
    if by_value is not None and by_value.name != by_idea.name:
        notes.append(f"exactly this value first in {by_value.name} ({by_value.year})")
    return by_idea.year, by_idea.name, "; ".join(notes) or "first entry that documents this value"
