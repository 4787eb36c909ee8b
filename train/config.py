"""The one run configuration: every option of a training run, declared once.

A run request is a `TrainConfig` written as JSON into its run folder; `llmhist train`, a sweep's
local queue, a Slurm task and a Python caller all build the same object and get the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class TrainConfig:
    arch: str = "llama"
    size: str | None = None
    d_model: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    tokens: int | None = None  # D; default 20 tokens per parameter (Chinchilla's rule of thumb)
    flops: float | None = None  # C; D = C / (6 N)
    data: str = "stdlib"
    tokenizer: str = "bytes"
    token_dtype: str = "uint16"
    vocab_size: int | None = None
    ctx: int = 128
    batch: int = 16  # sequences per optimizer step (global, across DDP ranks)
    micro_batch: int | None = None  # sequences per forward/backward on one rank; None = all at once
    lr: float | None = None  # peak; None = recipes.peak_lr(d_model)
    warmup: float = 0.02  # fraction of steps
    schedule: str = "cosine"  # cosine | wsd | constant
    decay: float = 0.2  # wsd: fraction of steps in the final decay
    branches: str | None = None  # wsd: extra horizons as fractions of the budget, e.g. "0.25,0.5"
    seed: int = 0
    eval_every: int | None = None  # steps; None = about 20 evaluations per run
    eval_batches: int = 4  # validation windows = eval_batches * batch
    device: str = "auto"
    threads: int | None = None
    compile: bool | None = None  # None = on for CUDA, off elsewhere
    remat: bool = False
    ckpt_seconds: float = 60.0
    peak_flops: float | None = None
    out: str = "runs/default"

    # fields that do not change the numbers a run produces (so may differ on resume)
    RUNTIME = ("device", "threads", "compile", "ckpt_seconds", "peak_flops", "out", "eval_every")

    def identity(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.RUNTIME}
