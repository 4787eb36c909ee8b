"""Each family's training recipe as data: optimizer, betas, epsilon, weight decay, clipping,
schedule shape, initialisation, auxiliary losses. Values carry their source; where a paper is
silent the entry says what was assumed and from where.

What cannot carry over from a 100B-parameter run to a 1M-parameter one is scaled, and said so:
- peak learning rate: GPT-3 Table 2.1 gives 6e-4 at d_model 768 (125M). We scale it as 1/d_model
  (the muP rule for hidden weights) and cap it at 3e-3, so tiny models train in seconds;
- warmup: a fraction of the run (published warmups of 375M tokens or 2,000 steps are longer than a
  whole small run), by default 2% of steps, at least 1 step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Recipe:
    optimizer: str  # adam | adamw | adafactor
    betas: tuple[float, float]
    eps: float
    weight_decay: float  # adam: L2 added to the gradient; adamw: decoupled
    grad_clip: float | None  # global norm; None = none
    min_lr_ratio: float  # cosine decays to this fraction of the peak
    init: str  # normal02 | gpt2_scaled | fan_in
    embed_std: float = 0.02
    z_loss: float = 0.0  # PaLM's auxiliary z-loss 1e-4 * log^2 Z
    aux_loss: float = 0.0  # MoE load-balancing coefficient
    objective: str = "causal_lm"  # or span_corruption (T5)
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


GPT3 = Recipe(
    optimizer="adam", betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1,
    init="gpt2_scaled",
    source="GPT-3 App. B: Adam (0.9, 0.95, 1e-8), clip 1.0, cosine to 10%, weight decay 0.1; GPT-2 init",
)
LLAMA = Recipe(
    optimizer="adamw", betas=(0.9, 0.95), eps=1e-5, weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1,
    init="normal02",
    source="LLaMA §2.2 / Llama 2 §2.2: AdamW (0.9, 0.95, eps 1e-5), wd 0.1, clip 1.0, cosine to 10%",
)

RECIPES: dict[str, Recipe] = {
    "gpt1": Recipe(
        optimizer="adam", betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, grad_clip=None, min_lr_ratio=0.0,
        init="normal02",
        source="GPT-1 §4.1: Adam, cosine annealing to 0, N(0, 0.02) init, modified L2 w = 0.01; no clipping stated",
    ),
    "gpt2": replace(GPT3, betas=(0.9, 0.999), weight_decay=0.0, grad_clip=None, min_lr_ratio=0.0,
                    source="GPT-2 §2.3: GPT-1's recipe with residual-layer weights scaled by 1/sqrt(N) at init"),
    "gpt3": GPT3,
    "codex": replace(GPT3, source="Codex §3.2: GPT-3's recipe (Adam 0.9/0.95, wd 0.1, cosine)"),
    "jurassic1": replace(GPT3, source="Jurassic-1 white paper: not published; GPT-3's recipe assumed"),
    "mtnlg": replace(GPT3, source="MT-NLG §3.2: Adam (0.9, 0.95, 1e-8), clip 1.0, wd 0.1, cosine to 10%"),
    "gopher": replace(GPT3, weight_decay=0.0, init="normal02",
                      source="Gopher App. C: Adam, clip 1.0, cosine decay by 10x; no weight decay (Chinchilla §4.1 "
                             "contrasts its AdamW with Gopher's Adam)"),
    "chinchilla": replace(LLAMA, eps=1e-8, source="Chinchilla §4.1 / App. A: AdamW, cosine decay by 10x whose length "
                                                  "matches the run (their correction); Gopher's other settings"),
    "palm": replace(LLAMA, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, init="fan_in", embed_std=1.0, z_loss=1e-4,
                    source="PaLM §5: Adafactor without factorisation (Adam with parameter scaling) -> AdamW (0.9, 0.99) "
                           "here; z-loss 1e-4; fan-in init, embeddings N(0, 1); cosine instead of rsqrt decay so the "
                           "schedule ends with the token budget"),
    "llama": LLAMA,
    "llama2": LLAMA,
    "llama3": replace(LLAMA, source="Llama 3 §3.4: AdamW, cosine to 10% (same settings as Llama 2)"),
    "mixtral": replace(LLAMA, aux_loss=0.02,
                       source="Mixtral: recipe not published; Llama's AdamW assumed; router aux loss 0.02 "
                              "(router_aux_loss_coef of the released config)"),
    "qwen2": replace(LLAMA, source="Qwen2 report: AdamW; Llama's settings assumed where unpublished"),
    "qwen2-moe": replace(LLAMA, aux_loss=0.001, source="Qwen2-MoE: router_aux_loss_coef 0.001 of the released config"),
    "gemma2": replace(LLAMA, source="Gemma 2: recipe not published; Llama's AdamW assumed, N(0, 0.02) as "
                                    "initializer_range of the released config"),
    "afm": replace(LLAMA, betas=(0.9, 0.95), weight_decay=0.0,
                   source="AFM §3: decoupled AdamW-like 'decoupled weight decay' optimizer (0.9, 0.95); "
                          "decay value not comparable at this scale so 0 here"),
    "t5": Recipe(
        optimizer="adafactor", betas=(0.9, 0.999), eps=1e-30, weight_decay=0.0, grad_clip=None, min_lr_ratio=0.1,
        init="fan_in", embed_std=1.0, objective="span_corruption",
        source="T5 §3.1.2: Adafactor, span corruption (15%, mean span 3); Mesh-TF fan-in init, embeddings N(0, 1); "
               "cosine instead of inverse-sqrt so the schedule ends with the token budget",
    ),
}


def recipe_for(family: str, moe: bool = False) -> Recipe:
    """The family's recipe (llama3.1 -> llama3; a MoE entry of a dense family -> its -moe recipe).
    MoE models without a published coefficient use Switch Transformer's 0.01 (Fedus et al. §2.2)."""
    r = RECIPES.get(f"{family}-moe") if moe else None
    if r is None:
        r = RECIPES.get(family) or next((v for k, v in RECIPES.items() if family.startswith(k)), LLAMA)
    if moe and not r.aux_loss:
        r = replace(r, aux_loss=0.01)
    return r


def peak_lr(d_model: int) -> float:
    """GPT-3 Table 2.1's 6e-4 at d_model 768, scaled as 1/d_model, capped at 3e-3."""
    return min(3e-3, 6e-4 * 768 / d_model)
