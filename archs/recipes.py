"""Training recipes: each registry entry carries its recipe as data (llmhist.archs.registry, with a
source for every field); this module looks them up. It lives in archs/ (pure Python, data on the
entry), so archs never imports train; a run reads its recipe through the resolve step
(llmhist.train.config.resolve), which merges it with the run's own options.

What cannot carry over from a 100B-parameter run to a 1M-parameter one is scaled, and said so:
- peak learning rate: no recipe field, a rule on the optimizer and the run's width
  (llmhist.train.config.recipe_lr; the constants and their sources in llmhist.train.defaults);
- warmup: a fraction of the run (Recipe.warmup_frac; published warmups of 375M tokens or 2,000
  steps are longer than a whole small run), by default 2% of steps, at least 1 step;
- the MoE load-balancing coefficient, where a family's recipe has none (recipe_for).
"""

from __future__ import annotations

from dataclasses import replace

from .catalogue import Recipe, objective_for
from .spec import Arch

__all__ = ["Recipe", "recipe_for"]

SWITCH_AUX = 0.01  # Fedus et al. 2021 (Switch Transformer) §2.2: alpha = 10^-2


def recipe_for(name_or_family: str | Arch, moe: bool | None = None) -> Recipe:
    """The recipe of a registry entry, alias or family (a family's flagship's), or of a built Arch
    (its family's, with the objective and MoE coefficient following that spec).

    Unknown names raise UnknownArch. A MoE spec of a family whose recipe has no load-balancing
    coefficient takes the family's MoE member's (Qwen2 -> Qwen2-57B-A14B's 0.001) or else Switch
    Transformer's 0.01. The objective follows the spec: span corruption for an encoder-decoder."""
    from .registry import ENTRIES, get

    spec = name_or_family if isinstance(name_or_family, Arch) else None
    key = name_or_family.family if isinstance(name_or_family, Arch) else name_or_family
    e = get(key)
    r = e.recipe
    if moe is None:
        moe = (spec.moe is not None) if spec is not None else (e.arch is not None and e.arch.moe is not None)
    if moe and not r.aux_loss:
        sib = next((x for x in ENTRIES if x.family == e.family and x.arch is not None and x.arch.moe is not None
                    and x.recipe.aux_loss), None)
        if sib is not None:
            r = replace(r, aux_loss=sib.recipe.aux_loss,
                        sources={**r.sources, "aux_loss": sib.recipe.sources["aux_loss"]})
        else:
            r = replace(r, aux_loss=SWITCH_AUX, sources={
                **r.sources, "aux_loss": "assumed: Switch Transformer §2.2's 0.01 (the family has no MoE recipe)"})
    if spec is not None and r.objective != objective_for(spec):
        r = replace(r, objective=objective_for(spec))
    return r

