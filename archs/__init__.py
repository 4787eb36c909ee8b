"""The architecture registry, its accounting (pure Python) and the model builder (torch).

`from llmhist.archs import get, params` never imports torch; `llmhist.archs.model` does.
get(name) returns the catalogue Entry (its .arch is the buildable Arch, None where unpublished);
arch(name), template(...) and build_spec(...) return a buildable Arch.
"""

from .accounting import FLOP_CONVENTIONS, flops_per_token, params, summary
from .catalogue import Entry, Recipe
from .registry import ENTRIES, FAMILIES, UnknownArch, arch, build_spec, get, template
from .spec import SMALL_SIZES, Arch, MoE, RopeScaling, SpecError, resize, small

__all__ = [
    "Arch", "Entry", "Recipe", "MoE", "RopeScaling", "SpecError", "UnknownArch", "ENTRIES", "FAMILIES",
    "SMALL_SIZES", "get", "arch", "template", "build_spec", "resize", "small", "params", "flops_per_token",
    "summary", "FLOP_CONVENTIONS",
]
