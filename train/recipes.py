"""Training recipes: kept as a thin re-export of llmhist.archs.recipes (a recipe is data on the
catalogue entry, so the lookup lives beside it; importing it from archs keeps archs from importing
train). No torch here."""

from __future__ import annotations

from llmhist.archs.recipes import Recipe, peak_lr, recipe_for

__all__ = ["Recipe", "peak_lr", "recipe_for"]
