"""`llmhist train`: one run, start to finish, resumable at any moment.

A run is a folder (llmhist.train.runfolder; runs/README.md). Everything that decides the numbers
is in config.json; batches are a pure function of (seed, step) and all other randomness derives from
the one seed, so a run killed at any point (SIGKILL included) and started again with the same
command continues from its last checkpoint and ends with the same files, bit for bit on CPU (timing
columns aside), as an uninterrupted run: the checkpoint carries every metrics row, and metrics.csv
is rebuilt from it on resume.

The trainer reads top to bottom as: set-up (a RunState: device, corpus, plan, model, optimizer,
autocast), resume (one path for a killed run and for a WSD branch's start), train_step, evaluate,
on_evaluation (metrics row, divergence rule, checkpoint by time, report), finish.
"""

from __future__ import annotations

import errno
import math
import os
import shlex
import shutil
import sys
import time
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F

from llmhist.archs import accounting
from llmhist.archs.registry import build_spec
from llmhist.archs.spec import Arch
from llmhist.files import (  # noqa: F401
    FILE_MODE,
    atomic_path,
    exclusive_lock,
    fault,
    fsync_path,
    write_json,
)

from . import data as datamod
from . import device as devmod
from . import runfolder as rf
from .config import TrainConfig
from .recipes import Recipe, peak_lr, recipe_for
from .runfolder import RunError, read_metrics  # noqa: F401  (re-exported)

T5_SENTINELS = 100  # T5's extra ids
# without --size or a shape: the smallest named size, whose 20-tokens-per-parameter run takes
# about a minute on a laptop CPU (micro's takes about 20)
DEFAULT_SIZE = "nano"
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
# the divergence rule (see diverged_reason)
DIVERGE_MARGIN_NATS = 1.0
DIVERGE_EVALS = 3
# evaluation (issue 10: it was ~a quarter of a nano run's wall time): EVAL_POINTS geometric points by
# default, each scoring every EVAL_SUBSET-th validation window; the last scores all of them
EVAL_POINTS = 10
EVAL_SUBSET = 4
PHASES = ("startup", "train", "eval", "checkpoint", "final_save")
STATE_FORMAT = 2  # state.pt: 2 carries the metrics rows themselves (1 carried their count)


class Diverged(RunError):
    """The run diverged (see diverged_reason); its summary says so and it stays out of fits."""

    exit_code = EXIT_DIVERGED


class Interrupted(RunError):
    """Ctrl-C: nothing half-written was left; the run resumes from its last checkpoint."""

    exit_code = EXIT_INTERRUPTED


def diverged_reason(val_losses: list[float], vocab_size: int, last: bool = False) -> str | None:
    """The divergence rule, checkable from metrics.csv: a run has diverged when a loss is not
    finite, or when its validation loss is more than DIVERGE_MARGIN_NATS (1 nat) above the lower of
    ln(vocab) (the loss of an untrained, uniform model) and its best validation loss so far, at
    DIVERGE_EVALS (3) consecutive evaluations or at the last evaluation. Returns why, or None."""
    if not val_losses:
        return None
    v = val_losses[-1]
    if not math.isfinite(v):
        return f"validation loss became {v}"
    ref = math.log(vocab_size)
    run = 0
    best = math.inf
    for x in val_losses:
        best = min(best, x)
        run = run + 1 if x > min(ref, best) + DIVERGE_MARGIN_NATS else 0
    if run >= DIVERGE_EVALS or (run and last):
        floor = min(ref, best)
        return (f"validation loss {v:.4g} is more than {DIVERGE_MARGIN_NATS:g} nat above min(ln vocab, best so far) "
                f"= {floor:.4g} at {run} consecutive evaluation{'s' if run > 1 else ''}"
                + (" including the last" if last and run < DIVERGE_EVALS else ""))
    return None


# ------------------------------------------------------------------------------ helpers


def eval_schedule(steps: int, every: int | None = None, points: int = EVAL_POINTS) -> list[int]:
    """The steps after which the run evaluates: every `every` steps when given, otherwise `points`
    steps spaced geometrically (dense early, where the loss moves, sparse late; evenly spaced in
    log D, as the envelope fit reads the curves); the last step always."""
    if every:
        got = set(range(every, steps + 1, every))
    else:
        got = {max(1, round(steps ** (i / points))) for i in range(1, points + 1)}
    return sorted(got | {steps})


def lr_at(step: int, steps: int, peak: float, warmup: int, schedule: str, min_ratio: float, decay: float) -> float:
    """Linear warmup, then cosine to min_ratio*peak at the last step (its length = the run's: the
    Chinchilla correction), or warmup-stable-decay (linear decay over the last `decay` of steps)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    if schedule == "wsd":
        start = steps - max(1, round(decay * steps))
        if step < start:
            return peak
        frac = (step - start + 1) / max(1, steps - start)
        return peak * (1 - (1 - min_ratio) * frac)
    frac = (step - warmup) / max(1, steps - 1 - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


# ------------------------------------------------------------------------------ the run


def resolve_spec(cfg: TrainConfig, vocab_size: int) -> Arch:
    if cfg.ctx < 8:
        raise RunError(f"--ctx {cfg.ctx}: use at least 8 tokens of context")
    variant = getattr(cfg, "variant", None)
    if variant:  # an ablation variant (archs/changes.py): a base architecture with some changes applied
        from llmhist.archs.changes import variant_spec

        if cfg.d_model is None or cfg.n_layers is None or cfg.n_heads is None:
            raise RunError("an ablation variant needs an explicit shape: give d_model, n_layers and n_heads")
        a = variant_spec(variant, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                         vocab_size=vocab_size, ctx_len=cfg.ctx)
    else:
        a = build_spec(cfg.arch, cfg.size if (cfg.size or cfg.d_model) else DEFAULT_SIZE, d_model=cfg.d_model,
                       n_layers=cfg.n_layers, n_heads=cfg.n_heads, vocab_size=vocab_size, ctx_len=cfg.ctx)
    if a.ctx_len < cfg.ctx:
        raise RunError(f"{a.name} has a context of {a.ctx_len} tokens; --ctx {cfg.ctx} is longer")
    return a


def init_weights(model: torch.nn.Module, a: Arch, recipe) -> None:
    """The family's initialisation (the built model starts at GPT-2's N(0, 0.02)). Which linears
    write into the residual stream is declared by archs/model.py (`residual_out` on the module)."""
    from llmhist.archs.model import MoE

    g = recipe.init
    resid_std = 0.02 / math.sqrt(2 * (a.n_layers + a.n_enc_layers))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and g == "fan_in":
                torch.nn.init.normal_(m.weight, std=m.in_features**-0.5)
            if isinstance(m, MoE):
                for p in (m.gate_up, m.down):
                    torch.nn.init.normal_(p, std=0.02 if g != "fan_in" else p.shape[-1] ** -0.5)
                if g == "gpt2_scaled":
                    torch.nn.init.normal_(m.down, std=resid_std)
            if g == "gpt2_scaled" and isinstance(m, torch.nn.Linear) and getattr(m, "residual_out", False):
                torch.nn.init.normal_(m.weight, std=resid_std)  # GPT-2: residual layers scaled by 1/sqrt(N)
        for emb in ("tok_emb", "pos_emb"):
            if hasattr(model, emb) and recipe.embed_std != 0.02:
                torch.nn.init.normal_(getattr(model, emb).weight, std=recipe.embed_std)


def make_optimizer(model, recipe, lr: float, dev: torch.device):
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)  # matrices and embeddings decay; norms, biases not
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if dev.type in ("cuda", "cpu") else {}  # one kernel for all tensors (CPU: 4x faster)
    if recipe.optimizer == "adafactor":
        if not hasattr(torch.optim, "Adafactor"):
            raise RunError("T5's Adafactor needs torch >= 2.5")
        return torch.optim.Adafactor(groups, lr=lr)
    # GPT-1/GPT-3 cite Loshchilov & Hutter for their weight decay: decoupled, i.e. torch's AdamW math
    cls = torch.optim.AdamW if (recipe.optimizer == "adamw" or recipe.weight_decay) else torch.optim.Adam
    return cls(groups, lr=lr, betas=recipe.betas, eps=recipe.eps, **fused)


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
    eval_every: int | None  # None: the geometric schedule (eval_schedule)
    eval_steps: frozenset[int]
    params: accounting.Params
    flops_per_token_6n: float
    flops_per_token_counted: float
    flops_per_token_mfu: float
    recipe: Recipe


def plan_run(cfg: TrainConfig, corpus: datamod.Corpus, world: int = 1) -> Plan:
    vocab = corpus.vocab_size
    a0 = resolve_spec(cfg, vocab)
    variant = getattr(cfg, "variant", None)
    if variant:
        from llmhist.archs.changes import variant_recipe

        recipe = variant_recipe(variant)
    else:
        recipe = recipe_for(a0.family, a0.moe is not None)
    if recipe.objective == "span_corruption":
        vocab += T5_SENTINELS
    a = resolve_spec(cfg, vocab) if vocab != a0.vocab_size else a0
    p = accounting.params(a)
    f6 = accounting.flops_per_token(a, "6N", cfg.ctx)
    if cfg.tokens is not None and cfg.flops is not None:
        raise RunError("give --tokens or --flops, not both")
    D: float
    if cfg.tokens is not None:
        D = cfg.tokens
    elif cfg.flops is not None:
        D = cfg.flops / f6
    else:
        D = 20 * p.total
    if cfg.batch < 1 or cfg.batch % world:
        raise RunError(f"--batch {cfg.batch} must be a positive multiple of the number of processes ({world})")
    per_rank = cfg.batch // world
    micro = cfg.micro_batch or per_rank
    if per_rank % micro:
        raise RunError(f"--micro-batch {micro} must divide the per-process batch {per_rank}")
    if D <= 0 or not math.isfinite(D):
        raise RunError(f"the token budget must be positive, got {D}")
    tps = cfg.batch * cfg.ctx
    steps = max(1, math.ceil(D / tps))
    return Plan(
        spec=a, steps=steps, tokens_per_step=tps, tokens=steps * tps, n_micro=per_rank // micro, micro=micro,
        warmup=max(1, round(cfg.warmup * steps)) if cfg.warmup > 0 else 0,
        lr=cfg.lr or (1e-2 if recipe.optimizer == "adafactor" else peak_lr(a.d_model)),
        eval_every=cfg.eval_every, eval_steps=frozenset(eval_schedule(steps, cfg.eval_every)), params=p, flops_per_token_6n=f6,
        flops_per_token_counted=accounting.flops_per_token(a, "counted", cfg.ctx),
        flops_per_token_mfu=accounting.flops_per_token(a, "palm", cfg.ctx), recipe=recipe,
    )


def check_memory(a: Arch, plan: Plan, cfg: TrainConfig, dev: torch.device) -> None:
    """Refuse, before allocating, a model whose training state cannot fit in this machine's memory."""
    if dev.type != "cpu":
        return
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


def resume_command() -> str:
    """The command line that started this process, as a user would type it again."""
    argv = sys.argv[:]
    if not argv or not argv[0] or argv[0] == "-c":
        return "the same command"
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:  # python -m MODULE
        head = ["python", "-m", spec.name.removesuffix(".__main__")]
    else:
        head = [Path(argv[0]).name if Path(argv[0]).name == "llmhist" else argv[0]]
    return shlex.join(head + argv[1:])


@dataclass
class RunState:
    """Everything the loop needs, made once by Trainer.setup()."""

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
    wall_before: float = 0.0  # wall seconds of earlier processes of this run
    mfu_notes: list = field(default_factory=list)  # why an MFU was re-measured or clamped (device.mfu)
    # wall seconds of this process by phase (summary.json's overhead_s; the issue-10 measurements)
    phase_s: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    t_start: float = field(default_factory=time.time)


class Trainer:
    def __init__(self, cfg: TrainConfig, console=None, init_from: Path | None = None, branch_of: dict | None = None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.console = console
        self.init_from, self.branch_of = init_from, branch_of  # a WSD branch starts from a stable-phase snapshot
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.main = self.rank == 0
        self.dist = self.world > 1

    # ---------------------------------------------------------------- the run
    def run(self) -> dict:
        with ExitStack() as held:
            locked = self.main and self.out.is_dir()
            if locked:  # an existing folder: refuse a second process at once
                held.enter_context(exclusive_lock(self.out, "llmhist train"))
            status = self.folder_status()
            if status == "finished":
                summary = rf.read_summary(self.out) or {}
                self.log(f"[yellow]{self.out}: this run already finished (val loss {summary.get('val_loss')}); "
                         "nothing to do[/]")
                summary["already"] = True
            elif status == "diverged":
                raise Diverged((rf.read_summary(self.out) or {}).get("error") or f"{self.out}: this run diverged")
            else:
                t0 = time.perf_counter()
                st = self.setup()
                if self.main and not locked:  # a new folder: lock it before the first write
                    held.enter_context(exclusive_lock(self.out, "llmhist train"))
                    status = self.folder_status()
                if self.main:
                    rf.remove_stale(self.out, old=False)  # checkpoint.old/ may be the one to resume from
                self.resume(st, status)
                if self.main:
                    rf.remove_stale(self.out)
                st.phase_s["startup"] = time.perf_counter() - t0
                try:
                    summary = self.train_loop(st)
                except KeyboardInterrupt:
                    at = f"step {st.ckpt_step}" if st.ckpt_step >= 0 else "the start"
                    raise Interrupted(f"interrupted at step {st.step}; {self.out} is resumable from {at}: "
                                      f"run `{resume_command()}` again") from None
                if self.main:
                    rf.remove_stale(self.out)
            if self.cfg.branches and summary.get("status") == "finished":
                summary["branches"] = self._run_branches()
        return summary

    def folder_status(self) -> str | None:
        """'finished' / 'diverged' / 'resume' / None (fresh). Refuses a folder of another run."""
        if not self.out.exists():
            return None
        if not self.out.is_dir():
            raise RunError(f"--out {self.out}: a file, not a folder; give a new or empty folder")
        if not (self.out / rf.CONFIG).exists():
            if any(p for p in self.out.iterdir() if not p.name.startswith(".") and p.name not in rf.KNOWN):
                raise RunError(f"{self.out}: the folder exists and holds other files but no run; "
                               "give an empty or new --out")
            return None
        theirs = rf.read_config(self.out)["train"]
        mine = self.cfg.identity()
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if _norm(theirs.get(k)) != _norm(v)}
        if diff:
            shown = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in list(diff.items())[:4])
            raise RunError(f"{self.out} holds a different run ({shown}); use another --out or the same settings")
        summary = rf.read_summary(self.out)
        if summary is None:
            return "resume"
        status = summary.get("status", "finished")
        if status == "finished" and not (self.out / rf.WEIGHTS).exists():
            return "resume"  # the final weights were lost: rewritten from the last checkpoint
        return status

    def log(self, msg: str) -> None:
        if self.main and self.console is not None:
            self.console.print(msg)

    def note(self, msg: str) -> None:
        """Something the user must hear even with --json (to stderr then)."""
        if not self.main:
            return
        if self.console is not None:
            self.console.print(f"[yellow]{msg}[/]", markup=True, highlight=False)
        else:
            print(msg, file=sys.stderr)

    # ---------------------------------------------------------------- set-up
    def setup(self) -> RunState:
        cfg = self.cfg
        if self.dist:
            dev = devmod.pick(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
            if dev.type == "cuda":
                dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(dev)
            if not tdist.is_initialized():
                tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        else:
            dev = devmod.pick(cfg.device)
        dtype_name = devmod.setup(dev, cfg.threads)
        corpus = datamod.load(cfg.data, cfg.tokenizer, cfg.token_dtype, cfg.vocab_size)
        plan = plan_run(cfg, corpus, self.world)
        a, recipe = plan.spec, plan.recipe
        datamod.batch_windows(len(corpus.train), cfg.ctx, 1, 0, 0)  # raises if the data is too small
        vw = datamod.val_windows(len(corpus.val), cfg.ctx, cfg.eval_batches * cfg.batch)
        branch_at = {b: f for f, _, b in self._branch_points(plan.steps, plan.warmup)}
        check_memory(a, plan, cfg, dev)

        torch.manual_seed(cfg.seed)
        from llmhist.archs.model import build

        model = build(a, dev)
        init_weights(model, a, recipe)
        for stack in (getattr(model, "encoder", None), model.decoder):
            if stack is not None:
                stack.remat = cfg.remat
        opt = make_optimizer(model, recipe, plan.lr, dev)
        run_model = model
        if self.dist:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # MoE: an expert no token chose this step has no gradient, which DDP must be told to expect
            run_model = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                            find_unused_parameters=a.moe is not None)
        use_compile = cfg.compile if cfg.compile is not None else dev.type == "cuda"
        amp = (torch.autocast("cuda", dtype=torch.bfloat16 if dtype_name == "bf16" else torch.float16)
               if dev.type == "cuda" else torch.autocast("cpu", enabled=False))
        config_doc = {"train": cfg.to_dict() if hasattr(cfg, "to_dict") else asdict(cfg), "arch": a.to_dict(),
                      "recipe": recipe.to_dict(), "data": corpus.describe(), "plan": {
                          "steps": plan.steps, "tokens_per_step": plan.tokens_per_step, "tokens": plan.tokens,
                          "micro_batch": plan.micro, "grad_accum": plan.n_micro, "world_size": self.world,
                          "warmup_steps": plan.warmup, "peak_lr": plan.lr, "eval_every": plan.eval_every,
                          "eval_steps": sorted(plan.eval_steps), "eval_windows": len(vw),
                          "eval_windows_before_last": len(vw[::EVAL_SUBSET])}}
        if self.branch_of:
            config_doc["branch_of"] = self.branch_of
        return RunState(dev=dev, dtype_name=dtype_name, corpus=corpus, plan=plan, model=model, run_model=run_model,
                        fwd=torch.compile(run_model) if use_compile else run_model, opt=opt, amp=amp,
                        peak=devmod.peak_flops(dev, dtype_name, cfg.peak_flops), env=devmod.environment(dev),
                        config_doc=config_doc, val_windows=vw, branch_at=branch_at,
                        entropy_eval=None if recipe.objective == "span_corruption"
                        else datamod.eval_entropy(corpus, vw, cfg.ctx))

    # ---------------------------------------------------------------- resume
    def resume(self, st: RunState, status: str | None) -> None:
        """The one way a run starts from saved state: its own checkpoint when it has one (a killed
        run), else, for a WSD branch, the main run's stable-phase snapshot; otherwise step 0.
        The checkpoint's metrics rows are the truth: metrics.csv is rewritten from them."""
        got, source = None, None
        if status == "resume":
            got, source = self.load_checkpoint(st, self.out / rf.CHECKPOINT, own=True), "checkpoint"
        if got is None and self.init_from is not None:
            got, source = self.load_checkpoint(st, self.init_from), "branch"
            if got is None:
                raise RunError(f"{self.init_from}: the branch snapshot is missing; run the main run again")
        if got is not None:
            st.step, st.ema, st.rows = got["step"], got.get("ema"), got["rows"]
            st.ckpt_step = st.step if source == "checkpoint" else -1
            st.wall_before = float(st.rows[-1].get("wall_s") or 0.0) if st.rows and source == "checkpoint" else 0.0
        a, plan = st.plan.spec, st.plan
        if source == "checkpoint":
            self.log(f"[cyan]resuming {self.out} at step {st.step}/{plan.steps}[/]")
        elif status == "resume":
            self.log(f"[cyan]{self.out}: no checkpoint yet (they are written every {self.cfg.ckpt_seconds:g} s); "
                     "starting again from step 0[/]")
        self.log(st.corpus.report())
        self.log(f"{a.name}: N {plan.params.total:,} parameters, D {plan.tokens:,} tokens "
                 f"({plan.tokens / plan.params.total:.1f} per parameter), {plan.steps:,} steps of "
                 f"{plan.tokens_per_step:,} tokens on {devmod.device_name(st.dev)} -> {self.out}")
        if not self.main:
            return
        if st.step == 0 or not (self.out / rf.CONFIG).exists():
            rf.write_config(self.out, st.config_doc)
        if source == "checkpoint":
            on_disk, problem = rf.check_metrics(self.out / rf.METRICS)
            if problem or [rf.comparable_row(r) for r in on_disk[: len(st.rows)]] != \
                    [rf.comparable_row(r) for r in st.rows]:
                self.note(f"{self.out / rf.METRICS}: {problem or 'does not match the checkpoint'}; "
                          f"rebuilt from the checkpoint at step {st.step} ({len(st.rows)} rows)")
            rf.write_metrics(self.out, st.rows)
        elif st.step == 0 and (self.out / rf.METRICS).exists():
            rf.write_metrics(self.out, [])  # rows of a run killed before its first checkpoint: recomputed
        if source == "branch":
            rf.write_metrics(self.out, st.rows)
        rf.write_progress(self.out, status="running", step=st.step, steps=plan.steps)

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, st: RunState, dest: Path | None = None) -> None:
        """Write model + state (with every metrics row) to a temporary folder, then rename it into
        place; the previous checkpoint is checkpoint.old/ between the two renames. Then metrics.csv,
        which resume rebuilds from the checkpoint if a kill comes first."""
        from safetensors.torch import save_model

        ck = dest or self.out / rf.CHECKPOINT
        tmp = self.out / f".checkpoint.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ev = ck.name
        try:
            with _disk_errors(tmp / rf.WEIGHTS):
                save_model(_unwrap(st.model), str(tmp / rf.WEIGHTS), metadata={"step": str(st.step)})
            with _disk_errors(tmp / rf.STATE):
                torch.save({"format": STATE_FORMAT, "step": st.step, "optimizer": st.opt.state_dict(),
                            "torch_rng": torch.get_rng_state(), "ema": st.ema, "rows": st.rows}, tmp / rf.STATE)
            fault(f"{ev}/before_fsync")
            for f in tmp.iterdir():
                os.chmod(f, FILE_MODE)
                fsync_path(f)
            old = ck.with_name(ck.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            ck.parent.mkdir(parents=True, exist_ok=True)
            fault(f"{ev}/before_rename")
            if ck.exists():
                os.replace(ck, old)
            fault(f"{ev}/between_renames")
            os.replace(tmp, ck)
            fault(f"{ev}/after_rename")
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if dest is None:
            st.ckpt_step = st.step
            rf.write_metrics(self.out, st.rows)

    def load_checkpoint(self, st: RunState, ck: Path, own: bool = False) -> dict | None:
        """The state of checkpoint `ck` (or of ck.old, left by a kill between the two renames of a
        save, or when ck is damaged) loaded into the model and optimizer; None when neither exists.
        A damaged checkpoint with no whole fallback is a RunError naming the file."""
        old = ck.with_name(ck.name + ".old")
        tried = []
        for cand in (ck, old):
            if not (cand / rf.STATE).exists() and not (cand / rf.WEIGHTS).exists():
                continue
            try:
                state = self._load_from(st, cand)
            except RunError as e:
                tried.append(str(e))
                continue
            if own and cand == old:  # the whole one becomes the checkpoint again
                shutil.rmtree(ck, ignore_errors=True)
                os.replace(old, ck)
                if tried:
                    self.note(f"{tried[0]}; resumed from the previous checkpoint (step {state['step']})")
            return state
        if tried:
            raise RunError(f"{tried[0]}. Nothing whole to resume from: delete {ck} to restart this run from "
                           f"step 0 (or give another --out)")
        return None

    def _load_from(self, st: RunState, ck: Path) -> dict:
        from safetensors.torch import load_model

        try:
            state = torch.load(ck / rf.STATE, weights_only=True, map_location="cpu")
            if not isinstance(state, dict) or not {"step", "optimizer", "torch_rng"} <= state.keys():
                raise ValueError("not a checkpoint state")
        except Exception as e:  # a user file: truncated, garbage or foreign; never unpickled as code
            raise RunError(f"{ck / rf.STATE}: damaged or not an llmhist checkpoint ({type(e).__name__})") from e
        try:
            load_model(_unwrap(st.model), str(ck / rf.WEIGHTS))
        except Exception as e:
            raise RunError(f"{ck / rf.WEIGHTS}: damaged or of another model ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''})") from e
        try:
            st.opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
        except Exception as e:
            raise RunError(f"{ck / rf.STATE}: its optimizer or RNG state does not fit this run ({e})") from e
        if "rows" not in state:  # format 1: the rows were only in metrics.csv
            path = (ck.parent.parent if ck.parent.name == rf.BRANCHES else ck.parent) / rf.METRICS
            rows = [r for r in rf.read_metrics(path) if r["step"] <= state["step"]]
            state["rows"] = rows[: state.get("metrics_rows", len(rows))]
        return state

    # ---------------------------------------------------------------- the loop
    def train_loop(self, st: RunState) -> dict:
        cfg, plan = self.cfg, st.plan
        st.model.train()
        st.t_start = time.time()
        t_ckpt = time.monotonic()
        window = [time.perf_counter(), 0]  # training time and tokens since the last evaluation
        prog = self._progress_bar(st)
        task = prog.add_task(plan.spec.name, total=plan.steps, completed=st.step, info="")
        with prog:
            for step in range(st.step, plan.steps):
                lr = lr_at(step, plan.steps, plan.lr, plan.warmup, cfg.schedule, plan.recipe.min_lr_ratio, cfg.decay)
                t0 = time.perf_counter()
                loss = self.train_step(st, step, lr)
                st.phase_s["train"] += time.perf_counter() - t0
                if not math.isfinite(loss):
                    self.diverge(st, step, f"training loss became {loss}")
                st.step, st.ema = step + 1, loss if st.ema is None else 0.9 * st.ema + 0.1 * loss
                window[1] += plan.tokens_per_step
                if st.step in plan.eval_steps:
                    self.on_evaluation(st, loss, lr, window)
                    window = [time.perf_counter(), 0]
                # the stable-phase state a WSD branch decays from; before the checkpoint of the same
                # step, so a run resumed after step b always has it
                t0 = time.perf_counter()
                if st.step in st.branch_at and self.main:
                    self.save_checkpoint(st, dest=self.out / rf.BRANCHES / f"step-{st.step}")
                if self.main and st.step < plan.steps and time.monotonic() - t_ckpt >= cfg.ckpt_seconds:
                    self.save_checkpoint(st)  # by time, not by step count: tiny runs checkpoint only at the end
                    t_ckpt = time.monotonic()
                st.phase_s["checkpoint"] += time.perf_counter() - t0
                fault("loop/after_step")
                if self.main:
                    last = st.rows[-1] if st.rows else {}
                    mfu = last.get("mfu")
                    prog.update(task, completed=st.step, info=f"loss {loss:.3f} val "
                                f"{last.get('val_loss') or float('nan'):.3f} {(last.get('tokens_per_s') or 0):,.0f} "
                                f"tok/s MFU {'n/a' if mfu is None else f'{mfu:.0%}'}")
        return self.finish(st)

    def train_step(self, st: RunState, step: int, lr: float) -> float:
        cfg, plan = self.cfg, st.plan
        for g in st.opt.param_groups:
            g["lr"] = lr
        starts = datamod.batch_windows(len(st.corpus.train), cfg.ctx, cfg.batch, cfg.seed, step)
        per_rank = cfg.batch // self.world
        xy = datamod.gather(st.corpus.train, starts[self.rank * per_rank: (self.rank + 1) * per_rank], cfg.ctx)
        rng = np.random.default_rng([cfg.seed, step, self.rank, 0x5BA7]) if self._span(st) else None
        loss_sum = torch.zeros((), device=st.dev)
        for m in range(plan.n_micro):
            chunk = xy[m * plan.micro: (m + 1) * plan.micro]
            sync = (m == plan.n_micro - 1) or not self.dist
            with st.run_model.no_sync() if (self.dist and not sync) else nullcontext():
                ce, extra = self.loss_on(st, chunk, rng, st.fwd)
                ((ce + extra) / plan.n_micro).backward()
            loss_sum += ce.detach() / plan.n_micro
        if plan.recipe.grad_clip:
            torch.nn.utils.clip_grad_norm_(st.model.parameters(), plan.recipe.grad_clip)
        if self.dist:
            tdist.all_reduce(loss_sum)
            loss_sum /= self.world
        loss = loss_sum.item()
        if math.isfinite(loss):
            st.opt.step()
        st.opt.zero_grad(set_to_none=True)
        return loss

    @staticmethod
    def _span(st: RunState) -> bool:
        return st.plan.recipe.objective == "span_corruption"

    def loss_on(self, st: RunState, xy: np.ndarray, rng: np.random.Generator | None, mdl):
        cfg, a, recipe = self.cfg, st.plan.spec, st.plan.recipe
        x = torch.from_numpy(xy).to(st.dev, non_blocking=True)
        with st.amp:
            if self._span(st):
                assert rng is not None  # train_step and evaluate pass one for span corruption
                inp, tgt = datamod.span_corrupt(xy[:, : cfg.ctx], rng, a.vocab_size - 1)
                inp, tgt = torch.from_numpy(inp).to(st.dev), torch.from_numpy(tgt).to(st.dev)
                dec = torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)  # T5 starts at id 0
                logits = mdl(inp, dec)
                y = tgt
            else:
                logits = mdl(x[:, :-1])
                y = x[:, 1:]
        logits = logits.float()
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        extra = 0.0
        if recipe.z_loss:
            extra = extra + recipe.z_loss * torch.logsumexp(logits, dim=-1).pow(2).mean()
        if recipe.aux_loss and a.moe is not None:
            extra = extra + recipe.aux_loss * st.model.aux_loss()
        return ce, extra

    @torch.no_grad()
    def evaluate(self, st: RunState, final: bool = True) -> float:
        """Mean loss on the run's fixed validation windows (the same for every run on the data): all
        of them at the last step (the loss fits read), every EVAL_SUBSET-th before it (the curve)."""
        st.model.eval()
        tot, n = 0.0, 0
        rng = np.random.default_rng([self.cfg.seed, 0xE7A1])
        windows = st.val_windows if final else st.val_windows[::EVAL_SUBSET]
        for i in range(0, len(windows), st.plan.micro):
            xy = datamod.gather(st.corpus.val, windows[i: i + st.plan.micro], self.cfg.ctx)
            ce, _ = self.loss_on(st, xy, rng, st.model)
            tot += ce.item() * len(xy)
            n += len(xy)
        st.model.train()
        return tot / n

    def on_evaluation(self, st: RunState, loss: float, lr: float, window: list) -> None:
        """A metrics row, the divergence rule, and a report. The row reaches metrics.csv now (not
        fsynced) and durably with the next checkpoint, which carries it."""
        plan, done = st.plan, st.step
        dt = time.perf_counter() - window[0]  # training time only: evaluation is not counted
        tps = window[1] / dt if dt > 0 else None
        t0 = time.perf_counter()
        val = self.evaluate(st, final=done == plan.steps)
        st.phase_s["eval"] += time.perf_counter() - t0
        mfu = self.mfu(st, tps)
        st.rows.append({
            "step": done, "tokens": done * plan.tokens_per_step,
            "flops": float(done * plan.tokens_per_step * plan.flops_per_token_6n), "train_loss": loss,
            "val_loss": val, "val_bpb": datamod.bits_per_byte(val, st.corpus.bytes_per_token), "lr": lr,
            "tokens_per_s": tps, "mfu": mfu, "wall_s": st.wall_before + time.time() - st.t_start,
        })
        why = diverged_reason([r["val_loss"] for r in st.rows], plan.spec.vocab_size, last=done == plan.steps)
        if why:
            self.diverge(st, done, why)
        if not self.main:
            return
        rf.write_metrics(self.out, st.rows, durable=False)
        rf.write_progress(self.out, status="running", step=done, steps=plan.steps, val_loss=val, train_loss=loss)
        if self.console is not None and not self.console.is_terminal:  # no live bar: a line per evaluation
            mfu = st.rows[-1]["mfu"]
            self.log(f"step {done}/{plan.steps}  loss {loss:.4f}  val {val:.4f}  {(tps or 0):,.0f} tok/s  "
                     f"MFU {'n/a' if mfu is None else f'{mfu:.1%}'}")

    def mfu(self, st: RunState, tokens_per_s: float | None) -> float | None:
        """MFU through device.mfu, the one place that computes it: never above 1; a CPU value above
        100% re-measures the peak (once per process) and the note is printed and kept for the summary."""
        fps = tokens_per_s * st.plan.flops_per_token_mfu if tokens_per_s else None
        # the peak is re-measured at the first implausible value only; later ones are clamped
        value, peak, note = devmod.mfu(fps, st.peak, None if st.mfu_notes else st.dev, self.cfg.peak_flops)
        if note:
            st.peak = peak
            if not st.mfu_notes:
                self.note(note)
            st.mfu_notes.append(note)
        return value

    def finish(self, st: RunState) -> dict:
        """The last checkpoint (it carries every row, so a kill from here on resumes to the same
        files), then the final weights, metrics.csv and, last, summary.json."""
        summary = self._summary(st, "finished")
        if self.main:
            from safetensors.torch import save_model

            t0 = time.perf_counter()
            if st.ckpt_step != st.step:
                self.save_checkpoint(st)
            with atomic_path(self.out / rf.WEIGHTS) as tmp, _disk_errors(tmp):
                save_model(_unwrap(st.model), str(tmp), metadata={"step": str(st.plan.steps)})
            rf.write_metrics(self.out, st.rows)
            st.phase_s["final_save"] = time.perf_counter() - t0
            summary["overhead_s"] = self._overhead(st)
            rf.write_summary(self.out, summary)
            rf.write_progress(self.out, status="finished", step=st.step, steps=st.plan.steps,
                              val_loss=summary["val_loss"])
        if self.dist:
            tdist.barrier()
        return summary

    def diverge(self, st: RunState, step: int, reason: str) -> None:
        msg = (f"{self.out}: the run diverged at step {step}: {reason} (rule: a non-finite loss, or a validation "
               f"loss over {DIVERGE_MARGIN_NATS:g} nat above min(ln vocab, best so far) at {DIVERGE_EVALS} "
               f"consecutive evaluations or at the last). It is left out of fits. Try a lower --lr (it was "
               f"{st.plan.lr:.3g}) or a longer --warmup, in another --out")
        summary = self._summary(st, "diverged")
        summary.update(error=msg, diverged_at_step=step, diverged_reason=reason)
        if self.main:
            rf.write_metrics(self.out, st.rows)
            rf.write_summary(self.out, summary)
            rf.write_progress(self.out, status="diverged", step=step, steps=st.plan.steps, error=msg)
        raise Diverged(msg)

    def _summary(self, st: RunState, status: str) -> dict:
        plan, p, corpus = st.plan, st.plan.params, st.corpus
        last = st.rows[-1] if st.rows else {}
        val = last.get("val_loss")
        D = last.get("tokens", 0)
        tps = [r["tokens_per_s"] for r in st.rows if r.get("tokens_per_s")]
        mfus = [r["mfu"] for r in st.rows if r.get("mfu")]
        return {
            "status": status, "arch": plan.spec.name, "family": plan.spec.family, "objective": plan.recipe.objective,
            "d_model": plan.spec.d_model, "n_layers": plan.spec.n_layers, "n_heads": plan.spec.n_heads,
            "N": p.total, "N_non_embedding": p.non_embedding, "N_active": p.active,
            "D": D, "C": 6 * p.active * D, "C_counted": plan.flops_per_token_counted * D,
            "steps": last.get("step", 0), "val_loss": rf.finite_or_none(val), "train_loss":
                rf.finite_or_none(last.get("train_loss")), "train_loss_smoothed": rf.finite_or_none(st.ema),
            "val_bpb": datamod.bits_per_byte(val, corpus.bytes_per_token),
            "loss_units": "nats/token", "entropy_nats_per_token": corpus.entropy_nats,
            "entropy_eval_nats_per_token": st.entropy_eval,
            "tokens_per_s": float(np.median(tps)) if tps else None, "mfu": float(np.median(mfus)) if mfus else None,
            "wall_s": st.wall_before + time.time() - st.t_start, "data_fingerprint": corpus.fingerprint,
            "tokenizer": corpus.tokenizer, "seed": self.cfg.seed, "environment": st.env,
            "peak_flops": st.peak, "mfu_note": (st.mfu_notes[0] + (f" (and {len(st.mfu_notes) - 1} later evaluation(s) clamped)"
                                            if len(st.mfu_notes) > 1 else "")) if st.mfu_notes else None, "overhead_s": self._overhead(st),
        }

    @staticmethod
    def _overhead(st: RunState) -> dict:
        """Wall seconds of this process by phase, and the rest (progress, metrics rows, Python)."""
        out = {k: round(v, 4) for k, v in st.phase_s.items()}
        out["total"] = round(time.time() - st.t_start + st.phase_s["startup"], 4)
        out["other"] = round(out["total"] - sum(st.phase_s.values()), 4)
        return out

    def _progress_bar(self, st: RunState):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=self.console,
                        disable=not (self.main and self.console is not None and self.console.is_terminal))

    # ---------------------------------------------------------------- WSD branches
    def _branch_points(self, steps: int, warmup: int) -> list[tuple[float, int, int]]:
        """(fraction, horizon steps S_f, branch step b_f) per WSD branch: the branch leaves the stable
        phase at b_f and decays over the last `decay` of its own horizon S_f."""
        cfg = self.cfg
        out: list[tuple[float, int, int]] = []
        if not cfg.branches:
            return out
        if cfg.schedule != "wsd":
            raise RunError("--branches needs --schedule wsd (branches leave the stable phase of one run)")
        try:
            fracs = sorted({float(x) for x in cfg.branches.split(",") if x.strip()})
        except ValueError:
            raise RunError(f"--branches {cfg.branches!r}: give fractions of the budget, e.g. 0.25,0.5") from None
        for f in fracs:
            S = round(f * steps)
            b = S - max(1, round(cfg.decay * S))
            if not 0 < f < 1 or b < max(1, warmup):
                raise RunError(f"--branches {f:g}: a branch must be a fraction in (0, 1) whose decay starts after "
                               f"the warmup ({warmup} steps); this one would start at step {b}")
            out.append((f, S, b))
        return out

    def _run_branches(self) -> list[dict]:
        from dataclasses import replace as dc_replace

        doc = rf.read_config(self.out)["plan"]
        results = []
        for f, S, b in self._branch_points(doc["steps"], doc["warmup_steps"]):
            bcfg = dc_replace(self.cfg, tokens=S * doc["tokens_per_step"], flops=None, branches=None,
                              warmup=doc["warmup_steps"] / S, out=str(self.out / f"wsd-{f:g}"))
            fault("loop/wsd_branch")
            snap = self.out / rf.BRANCHES / f"step-{b}"
            results.append(Trainer(bcfg, self.console, init_from=snap,
                                   branch_of={"run": str(self.out), "step": b, "fraction": f}).run())
        return results


class _disk_errors:
    """safetensors and torch report a full disk with their own error types (SafetensorError,
    RuntimeError "file write failed"): turn those into OSError(ENOSPC), which the CLI explains."""

    MARKERS = ("no space", "os error 28", "storagefull", "errno 28", "file write failed", "disk quota")

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is None or isinstance(e, OSError) or not isinstance(e, Exception):
            return False
        if any(m in str(e).lower() for m in self.MARKERS) or _disk_full(self.path):
            raise OSError(errno.ENOSPC, f"No space left on device (writing {self.path.name}: "
                                        f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from e
        return False


def _disk_full(path: Path) -> bool:
    try:
        v = os.statvfs(path.parent)
        return v.f_bavail * v.f_frsize < (1 << 20)
    except OSError:
        return False


def _unwrap(m):
    return getattr(m, "module", m)


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def train(cfg: TrainConfig, console=None) -> dict:
    """Train (or resume, or report) the run `cfg` describes. Several calls in one process reuse
    the loaded corpus (llmhist.train.data.load caches it)."""
    return Trainer(cfg, console).run()
