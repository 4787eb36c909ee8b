"""A run's state: everything the trainer's loop needs, made once before the first step.

`make_state` picks the device (and starts the process group under torchrun), loads the corpus,
plans the run (runplan.py), builds the model with its recipe's initialisation (the model owns the
schemes: archs/model.py), wraps its blocks for activation checkpointing when asked (from outside the
model, as torchtitan's apply_ac does), builds the optimizer and autocast, and writes down config.json's
document: the request, the resolved run (each value with its source), spec, recipe, data and plan.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist

from . import data as datamod
from . import device as devmod
from .config import ResolvedRun, TrainConfig
from .runplan import Plan, check_memory, make_optimizer, plan_run
from .schedule import EVAL_SUBSET, branch_points

PHASES = ("startup", "train", "eval", "checkpoint", "final_save")


@dataclass
class TrainState:
    """Everything the loop needs, made once by make_state (Trainer.setup)."""

    dev: torch.device
    dtype_name: str
    corpus: datamod.Corpus
    plan: Plan
    model: torch.nn.Module
    run_model: torch.nn.Module  # DDP-wrapped when distributed
    fwd: Any  # run_model, compiled or not
    opt: torch.optim.Optimizer
    amp: Any
    peak: float | None
    env: dict
    config_doc: dict
    val_windows: np.ndarray
    branch_at: dict
    entropy_eval: float | None = None  # the exact floor of the final evaluation's tokens (synthetic data)
    step: int = 0
    rows: list = field(default_factory=list)
    ema: float | None = None
    ckpt_step: int = -1  # the step of the last checkpoint written or loaded
    at_boundary: bool = True  # between two steps (the state a checkpoint may hold), not inside one
    wall_before: float = 0.0  # wall seconds of earlier processes of this run
    mfu_notes: list = field(default_factory=list)  # why an MFU was re-measured or clamped (device.mfu)
    # wall seconds of this process by phase (summary.json's overhead_s; the issue-10 measurements)
    phase_s: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    t_start: float = field(default_factory=time.time)


def checkpoint_blocks(model: torch.nn.Module) -> None:
    """Activation checkpointing (--remat), applied from outside as torchtitan's apply_ac does: each
    block is wrapped so that only its input is kept and the rest is recomputed in backward. The
    state-dict names do not change (the wrapper strips its prefix), so checkpoints are the same."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    from ..archs.model import Stack

    for stack in [m for m in model.modules() if isinstance(m, Stack)]:
        for i, blk in enumerate(stack.blocks):
            stack.blocks[i] = checkpoint_wrapper(blk)


def make_state(run: ResolvedRun, world: int = 1, dist: bool = False, branch_of: dict | None = None) -> TrainState:
    """The state of a run about to start: device, corpus, plan, model, optimizer, autocast, config.json."""
    cfg = run.config
    dev = pick_device(cfg, dist)
    dtype_name = devmod.setup(dev, cfg.threads)
    corpus = datamod.load(cfg.data, cfg.tokenizer, cfg.token_dtype, cfg.vocab_size)
    plan = plan_run(run, corpus, world)
    datamod.batch_windows(len(corpus.train), cfg.ctx, 1, 0, 0)  # raises if the data is too small
    vw = datamod.val_windows(len(corpus.val), cfg.ctx, cfg.eval_batches * cfg.batch)
    branch_at = {b: f for f, _, b in branch_points(cfg.branch_fractions(), plan.steps, plan.warmup, cfg.decay)}
    check_memory(plan, cfg, dev)
    model, run_model = make_model(plan, cfg, dev, dist)
    opt = make_optimizer(model, plan.recipe, plan.lr, dev)
    use_compile = cfg.compile if cfg.compile is not None else dev.type == "cuda"
    amp = (torch.autocast("cuda", dtype=torch.bfloat16 if dtype_name == "bf16" else torch.float16)
           if dev.type == "cuda" else torch.autocast("cpu", enabled=False))
    return TrainState(dev=dev, dtype_name=dtype_name, corpus=corpus, plan=plan, model=model, run_model=run_model,
                    fwd=torch.compile(run_model) if use_compile else run_model, opt=opt, amp=amp,
                    peak=devmod.peak_flops(dev, dtype_name, cfg.peak_flops), env=devmod.environment(dev),
                    config_doc=config_doc(run, plan, corpus, vw, world, branch_of), val_windows=vw,
                    branch_at=branch_at,
                    entropy_eval=None if plan.recipe.objective == "span_corruption"
                    else datamod.eval_entropy(corpus, vw, cfg.ctx))


def pick_device(cfg: TrainConfig, dist: bool) -> torch.device:
    """The run's device; distributed (torchrun), this rank's, with the process group started."""
    if not dist:
        return devmod.pick(cfg.device)
    dev = devmod.pick(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev


def make_model(plan: Plan, cfg: TrainConfig, dev: torch.device,
               dist: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the model, initialised by its recipe's scheme from the run's seed; what the loop runs: the
    same, DDP-wrapped when distributed)."""
    from ..archs.model import build

    torch.manual_seed(cfg.seed)
    model = build(plan.spec, dev, init=plan.recipe.init, embed_std=plan.recipe.embed_std)
    if cfg.remat:
        checkpoint_blocks(model)
    if not dist:
        return model, model
    from torch.nn.parallel import DistributedDataParallel as DDP

    # MoE: an expert no token chose this step has no gradient, which DDP must be told to expect
    return model, DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                      find_unused_parameters=plan.spec.moe is not None)


def config_doc(run: ResolvedRun, plan: Plan, corpus: datamod.Corpus, vw: np.ndarray, world: int,
               branch_of: dict | None) -> dict:
    """config.json: the request, the resolved run (each value with its source), spec, recipe, data, plan."""
    doc = {"train": run.config.to_dict(), "resolved": run.to_dict(), "arch": plan.spec.to_dict(),
           "recipe": plan.recipe.to_dict(), "data": corpus.describe(), "plan": {
               "steps": plan.steps, "tokens_per_step": plan.tokens_per_step, "tokens": plan.tokens,
               "micro_batch": plan.micro, "grad_accum": plan.n_micro, "world_size": world,
               "warmup_steps": plan.warmup, "peak_lr": plan.lr, "eval_every": plan.eval_every,
               "eval_steps": sorted(plan.eval_steps), "eval_windows": len(vw),
               "eval_windows_before_last": len(vw[::EVAL_SUBSET])}}
    if branch_of:
        doc["branch_of"] = branch_of
    return doc
