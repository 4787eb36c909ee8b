"""A run's plan: what a resolved run (llmhist.train.config.ResolvedRun) becomes on a corpus and a
number of processes, before any tensor exists.

`plan_run` gives the spec at the corpus's vocabulary (T5 adds its sentinel ids), the parameter and
FLOP counts (llmhist.archs.accounting), the token budget as steps, the batch split into
micro-batches per process, the warmup in steps, the peak learning rate and the evaluation steps.
`check_memory` refuses a model whose training state cannot fit in this machine's memory, and
`make_optimizer` builds the recipe's optimizer. The trainer (llmhist.train.loop) consumes these.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..archs import accounting
from ..archs.catalogue import Recipe
from ..archs.registry import build_spec
from ..archs.spec import Arch
from . import data as datamod
from . import defaults as D
from .config import ResolvedRun, RunError, TrainConfig, kv_heads
from .schedule import eval_schedule, warmup_steps

T5_SENTINELS = 100  # T5's extra ids


@dataclass
class Plan:
    spec: Arch
    steps: int
    tokens_per_step: int
    tokens: int
    n_micro: int
    micro: int
    warmup: int
    lr: float
    eval_every: int | None  # None: the geometric schedule (schedule.eval_schedule)
    eval_steps: frozenset[int]
    params: accounting.Params
    flops_per_token_6n: float
    flops_per_token_counted: float
    flops_per_token_mfu: float
    recipe: Recipe
    schedule: str


def resolve_spec(cfg: TrainConfig, vocab_size: int) -> Arch:
    """The run's architecture at vocabulary `vocab_size`: a registry family at the requested size,
    or an ablation variant (archs/changes.py: a base architecture with some changes applied)."""
    if cfg.variant:
        from ..archs.changes import variant_spec

        assert cfg.d_model is not None and cfg.n_layers is not None and cfg.n_heads is not None  # resolve checks
        a = variant_spec(cfg.variant, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                         vocab_size=vocab_size, ctx_len=cfg.ctx)
    else:
        a = build_spec(cfg.arch, cfg.size if (cfg.size or cfg.d_model) else D.SIZE, d_model=cfg.d_model,
                       n_layers=cfg.n_layers, n_heads=cfg.n_heads, vocab_size=vocab_size, ctx_len=cfg.ctx,
                       **kv_heads(cfg))
    if a.ctx_len < cfg.ctx:
        raise RunError(f"{a.name} has a context of {a.ctx_len} tokens; --ctx {cfg.ctx} is longer")
    return a


def plan_run(run: ResolvedRun, corpus: datamod.Corpus, world: int = 1) -> Plan:
    """The plan of `run` on `corpus` with `world` processes; refuses a batch the processes cannot split."""
    cfg, recipe = run.config, run.recipe
    vocab = corpus.vocab_size + (T5_SENTINELS if recipe.objective == "span_corruption" else 0)
    a = resolve_spec(cfg, vocab)
    p = accounting.params(a)
    f6 = accounting.flops_per_token(a, "6N", cfg.ctx)
    if cfg.tokens is not None:
        tokens: float = cfg.tokens
    elif cfg.flops is not None:
        tokens = cfg.flops / f6
    else:
        tokens = D.TOKENS_PER_PARAM * p.total
    if cfg.batch % world:
        raise RunError(f"--batch {cfg.batch} must be a positive multiple of the number of processes ({world})")
    per_rank = cfg.batch // world
    micro = cfg.micro_batch or per_rank
    if per_rank % micro:
        raise RunError(f"--micro-batch {micro} must divide the per-process batch {per_rank}")
    tps = cfg.batch * cfg.ctx
    steps = max(1, math.ceil(tokens / tps))
    if steps * tps > 2 * tokens:  # reliability F9: less than one step asked for; D would be many times the request
        asked = "--tokens" if cfg.tokens is not None else "--flops" if cfg.flops is not None else "the default D"
        raise RunError(f"{asked}: D = {tokens:,.0f} tokens is less than one step of --batch {cfg.batch} x --ctx "
                       f"{cfg.ctx} = {tps:,} tokens, so the run would train {steps * tps / tokens:.3g}x the tokens "
                       f"asked for; lower --batch or --ctx, or ask for at least {tps:,} tokens")
    return Plan(
        spec=a, steps=steps, tokens_per_step=tps, tokens=steps * tps, n_micro=per_rank // micro, micro=micro,
        warmup=warmup_steps(run.warmup, steps), lr=run.lr, eval_every=cfg.eval_every,
        eval_steps=frozenset(eval_schedule(steps, cfg.eval_every)), params=p, flops_per_token_6n=f6,
        flops_per_token_counted=accounting.flops_per_token(a, "counted", cfg.ctx),
        flops_per_token_mfu=accounting.flops_per_token(a, "palm", cfg.ctx), recipe=recipe, schedule=run.schedule,
    )


def make_optimizer(model: torch.nn.Module, recipe: Recipe, lr: float, dev: torch.device) -> torch.optim.Optimizer:
    """The recipe's optimizer; matrices and embeddings decay, norms and biases do not."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if dev.type in ("cuda", "cpu") else {}  # one kernel for all tensors (CPU: 4x faster)
    if recipe.optimizer == "adafactor":
        if not hasattr(torch.optim, "Adafactor"):
            raise RunError("T5's Adafactor needs torch >= 2.5")
        return torch.optim.Adafactor(groups, lr=lr)
    # GPT-1/GPT-3 cite Loshchilov & Hutter for their weight decay: decoupled, i.e. torch's AdamW math
    cls = torch.optim.AdamW if (recipe.optimizer == "adamw" or recipe.weight_decay) else torch.optim.Adam
    return cls(groups, lr=lr, betas=recipe.betas, eps=recipe.eps, **fused)


def check_memory(plan: Plan, cfg: TrainConfig, dev: torch.device) -> None:
    """Refuse, before allocating, a model whose training state cannot fit in this machine's memory."""
    if dev.type != "cpu":
        return
    a = plan.spec
    need = accounting.training_memory_bytes(a, plan.micro * cfg.ctx, recompute=cfg.remat, mixed=False)["total"]
    have = available_memory_bytes()
    if have is not None and need > have:
        raise RunError(f"{a.name} (N {plan.params.total:,} parameters) needs about {need / 2**30:.3g} GiB to train "
                       f"with --micro-batch {plan.micro} and --ctx {cfg.ctx} (weights, gradients, Adam states, "
                       f"activations); this machine has {have / 2**30:.3g} GiB available. Give a smaller size, "
                       "a smaller --micro-batch, or --remat")


def available_memory_bytes() -> int | None:
    try:  # MemAvailable counts reclaimable page cache, which free pages (sysconf) do not
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
