"""The architecture registry, its accounting (pure Python) and the model builder (torch).

`from llmhist.archs import get, params` never imports torch; `llmhist.archs.model` does.
"""

from .accounting import FLOP_CONVENTIONS, flops_per_token, params, summary
from .registry import ENTRIES, FAMILIES, UnknownArch, build_spec, get, template
from .spec import SMALL_SIZES, Arch, MoE, RopeScaling, SpecError, resize, small

__all__ = [
    "Arch", "MoE", "RopeScaling", "SpecError", "UnknownArch", "ENTRIES", "FAMILIES", "SMALL_SIZES",
    "get", "template", "build_spec", "resize", "small", "params", "flops_per_token", "summary",
    "FLOP_CONVENTIONS",
]
