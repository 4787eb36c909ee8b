"""`llmhist train`: one run, start to finish, resumable at any moment.

A run is a folder (see runs/README.md). Everything that decides the numbers is in config.json;
batches are a pure function of (seed, step) and all other randomness derives from the one seed, so
a run killed at any point (SIGKILL included) and started again with the same command continues
from its last checkpoint and ends bit-identical on CPU to an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F

from llmhist.archs import accounting
from llmhist.archs.registry import build_spec
from llmhist.archs.spec import Arch
from llmhist.files import atomic_path, atomic_write, write_json

from . import data as datamod
from .config import RunError, TrainConfig  # noqa: F401  (re-exported: the run's one config and its error)
from . import device as devmod
from .metrics import metrics_csv, read_metrics
from .recipes import Recipe, peak_lr, recipe_for

T5_SENTINELS = 100  # T5's extra ids
# without --size or a shape: the smallest named size, whose 20-tokens-per-parameter run takes
# about a minute on a laptop CPU (micro's takes about 20)
DEFAULT_SIZE = "nano"
EXIT_DIVERGED = 3


# ------------------------------------------------------------------------------ helpers


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
    a = build_spec(cfg.arch, cfg.size if (cfg.size or cfg.d_model) else DEFAULT_SIZE, d_model=cfg.d_model,
                   n_layers=cfg.n_layers, n_heads=cfg.n_heads, vocab_size=vocab_size, ctx_len=cfg.ctx)
    if a.ctx_len < cfg.ctx:
        raise RunError(f"{a.name} has a context of {a.ctx_len} tokens; --ctx {cfg.ctx} is longer")
    return a


def init_weights(model: torch.nn.Module, a: Arch, recipe) -> None:
    """The family's initialisation (the built model starts at GPT-2's N(0, 0.02))."""
    from llmhist.archs.model import MoE

    g = recipe.init
    resid_std = 0.02 / math.sqrt(2 * (a.n_layers + a.n_enc_layers))
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Linear) and g == "fan_in":
                torch.nn.init.normal_(m.weight, std=m.in_features**-0.5)
            if isinstance(m, MoE):
                for p in (m.gate_up, m.down):
                    torch.nn.init.normal_(p, std=0.02 if g != "fan_in" else p.shape[-1] ** -0.5)
                if g == "gpt2_scaled":
                    torch.nn.init.normal_(m.down, std=resid_std)
            if g == "gpt2_scaled" and isinstance(m, torch.nn.Linear) and name.endswith((".attn.o", ".mlp.down")):
                torch.nn.init.normal_(m.weight, std=resid_std)  # GPT-2: residual layers scaled by 1/sqrt(N)
        for emb in ("tok_emb", "pos_emb"):
            if hasattr(model, emb) and recipe.embed_std != 0.02:
                torch.nn.init.normal_(getattr(model, emb).weight, std=recipe.embed_std)


def make_optimizer(model, recipe, lr: float, dev: torch.device):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)  # matrices and embeddings decay; norms, biases not
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if dev.type == "cuda" else {}
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
    eval_every: int
    params: accounting.Params
    flops_per_token_6n: float
    flops_per_token_counted: float
    flops_per_token_mfu: float
    recipe: Recipe


def plan_run(cfg: TrainConfig, corpus: datamod.Corpus, world: int = 1) -> Plan:
    vocab = corpus.vocab_size
    a0 = resolve_spec(cfg, vocab)
    recipe = recipe_for(a0.family, a0.moe is not None)
    if recipe.objective == "span_corruption":
        vocab += T5_SENTINELS
    a = resolve_spec(cfg, vocab) if vocab != a0.vocab_size else a0
    p = accounting.params(a)
    f6 = accounting.flops_per_token(a, "6N", cfg.ctx)
    if cfg.tokens is not None and cfg.flops is not None:
        raise RunError("give --tokens or --flops, not both")
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
        eval_every=cfg.eval_every or max(1, steps // 20), params=p, flops_per_token_6n=f6,
        flops_per_token_counted=accounting.flops_per_token(a, "counted", cfg.ctx),
        flops_per_token_mfu=accounting.flops_per_token(a, "palm", cfg.ctx), recipe=recipe,
    )


class Trainer:
    def __init__(self, cfg: TrainConfig, console=None, init_from: Path | None = None, branch_of: dict | None = None):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.console = console
        self.init_from, self.branch_of = init_from, branch_of  # a WSD branch starts from a stable-phase snapshot
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.main = self.rank == 0

    # ---------------------------------------------------------------- folder state
    def existing(self) -> str | None:
        """'finished' / 'diverged' / 'resume' / None (fresh). Refuses a folder of another run."""
        cfg_path = self.out / "config.json"
        if not self.out.exists():
            return None
        if not cfg_path.exists():
            if any(p for p in self.out.iterdir() if not p.name.startswith(".") and p.name != "run.json"):
                raise RunError(f"{self.out}: the folder exists and holds other files but no run; "
                               "give an empty or new --out")
            return None
        try:
            theirs = json.loads(cfg_path.read_text())["train"]
        except (json.JSONDecodeError, KeyError) as e:
            raise RunError(f"{cfg_path}: unreadable run config ({e}); give another --out") from e
        mine = self.cfg.identity()
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if _norm(theirs.get(k)) != _norm(v)}
        if diff:
            shown = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in list(diff.items())[:4])
            raise RunError(f"{self.out} holds a different run ({shown}); use another --out or the same settings")
        summ = self.out / "summary.json"
        if summ.exists():
            return json.loads(summ.read_text()).get("status", "finished")
        return "resume"

    def log(self, msg: str) -> None:
        if self.main and self.console is not None:
            self.console.print(msg)

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, model, opt, step: int, rows: list[dict], extra: dict, dest: Path | None = None) -> None:
        from safetensors.torch import save_model

        ck = dest or self.out / "checkpoint"
        tmp = self.out / f".checkpoint.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            save_model(_unwrap(model), str(tmp / "model.safetensors"), metadata={"step": str(step)})
            torch.save({"step": step, "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                        "metrics_rows": len(rows), **extra}, tmp / "state.pt")
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            old = ck.with_name(ck.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            ck.parent.mkdir(parents=True, exist_ok=True)
            if ck.exists():
                os.replace(ck, old)
            os.replace(tmp, ck)
            shutil.rmtree(old, ignore_errors=True)
            if dest is None:
                atomic_write(self.out / "metrics.csv", metrics_csv(rows))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load_checkpoint(self, model, opt, ck: Path | None = None, metrics: Path | None = None):
        from safetensors.torch import load_model

        ck = ck or self.out / "checkpoint"
        if not (ck / "state.pt").exists() and (ck.with_name(ck.name + ".old") / "state.pt").exists():
            ck = ck.with_name(ck.name + ".old")  # killed between the two renames of a save
        if not (ck / "state.pt").exists():
            return None
        state = torch.load(ck / "state.pt", weights_only=True, map_location="cpu")
        load_model(_unwrap(model), str(ck / "model.safetensors"))
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        rows = read_metrics(metrics or self.out / "metrics.csv")
        rows = [r for r in rows if r["step"] <= state["step"]][: state["metrics_rows"]]
        return state["step"], rows, state

    # ---------------------------------------------------------------- the loop
    def run(self) -> dict:
        summary = self._run_main()
        if self.cfg.branches and summary.get("status") == "finished":
            summary["branches"] = self._run_branches()
        return summary

    def _branch_points(self, steps: int, warmup: int) -> list[tuple[float, int, int]]:
        """(fraction, horizon steps S_f, branch step b_f) per WSD branch: the branch leaves the stable
        phase at b_f and decays over the last `decay` of its own horizon S_f."""
        cfg, out = self.cfg, []
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

        doc = json.loads((self.out / "config.json").read_text())["plan"]
        results = []
        for f, S, b in self._branch_points(doc["steps"], doc["warmup_steps"]):
            bcfg = dc_replace(self.cfg, tokens=S * doc["tokens_per_step"], flops=None, branches=None,
                              warmup=doc["warmup_steps"] / S, out=str(self.out / f"wsd-{f:g}"))
            snap = self.out / "branches" / f"step-{b}"
            results.append(Trainer(bcfg, self.console, init_from=snap,
                                   branch_of={"run": str(self.out), "step": b, "fraction": f}).run())
        return results

    def _run_main(self) -> dict:
        cfg = self.cfg
        status = self.existing()
        if status in ("finished", "diverged"):
            summ = json.loads((self.out / "summary.json").read_text())
            self.log(f"[yellow]{self.out}: this run already {status} (val loss {summ.get('val_loss')}); "
                     "nothing to do[/]")
            summ["already"] = True
            return summ
        dist = self.world > 1
        if dist:
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
        span = recipe.objective == "span_corruption"
        datamod.batch_windows(len(corpus.train), cfg.ctx, 1, 0, 0)  # raises if the data is too small
        vw = datamod.val_windows(len(corpus.val), cfg.ctx, cfg.eval_batches * cfg.batch)

        torch.manual_seed(cfg.seed)
        from llmhist.archs.model import build

        model = build(a, dev)
        init_weights(model, a, recipe)
        for stack in (getattr(model, "encoder", None), model.decoder):
            if stack is not None:
                stack.remat = cfg.remat
        opt = make_optimizer(model, recipe, plan.lr, dev)
        run_model = model
        if dist:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # MoE: an expert no token chose this step has no gradient, which DDP must be told to expect
            run_model = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                            find_unused_parameters=a.moe is not None)
        use_compile = cfg.compile if cfg.compile is not None else dev.type == "cuda"
        fwd = torch.compile(run_model) if use_compile else run_model
        amp = (torch.autocast("cuda", dtype=torch.bfloat16 if dtype_name == "bf16" else torch.float16)
               if dev.type == "cuda" else torch.autocast("cpu", enabled=False))
        peak = devmod.peak_flops(dev, dtype_name, cfg.peak_flops)
        env = devmod.environment(dev)

        config_doc = {"train": asdict(cfg), "arch": a.to_dict(), "recipe": recipe.to_dict(),
                      "data": corpus.describe(), "plan": {
                          "steps": plan.steps, "tokens_per_step": plan.tokens_per_step, "tokens": plan.tokens,
                          "micro_batch": plan.micro, "grad_accum": plan.n_micro, "world_size": self.world,
                          "warmup_steps": plan.warmup, "peak_lr": plan.lr, "eval_every": plan.eval_every}}
        start_step, rows, ema = 0, [], None
        branch_at = {b: f for f, _, b in self._branch_points(plan.steps, plan.warmup)}
        if self.branch_of:
            config_doc["branch_of"] = self.branch_of
        if status is None and self.init_from is not None:  # a WSD branch: the main run's state at b_f
            got = self.load_checkpoint(model, opt, self.init_from, self.init_from.parent.parent / "metrics.csv")
            if got is None:
                raise RunError(f"{self.init_from}: the branch snapshot is missing; run the main run again")
            start_step, rows, st = got
            ema = st.get("ema")
        if status == "resume":
            got = self.load_checkpoint(model, opt)
            if got is not None:
                start_step, rows, st = got
                ema = st.get("ema")
                self.log(f"[cyan]resuming {self.out} at step {start_step}/{plan.steps}[/]")
        self.log(f"{a.name}: N {plan.params.total:,} parameters, D {plan.tokens:,} tokens "
                 f"({plan.tokens / plan.params.total:.1f} per parameter), {plan.steps:,} steps of "
                 f"{plan.tokens_per_step:,} tokens on {devmod.device_name(dev)} -> {self.out}")
        if self.main:
            if start_step == 0 or not (self.out / "config.json").exists():
                write_json(self.out / "config.json", config_doc)
            self._progress(status="running", step=start_step, steps=plan.steps)

        def batch_for(step: int):
            starts = datamod.batch_windows(len(corpus.train), cfg.ctx, cfg.batch, cfg.seed, step)
            per_rank = cfg.batch // self.world
            mine = starts[self.rank * per_rank : (self.rank + 1) * per_rank]
            return datamod.gather(corpus.train, mine, cfg.ctx)

        def loss_on(xy: np.ndarray, rng: np.random.Generator | None, mdl=fwd):
            x = torch.from_numpy(xy).to(dev, non_blocking=True)
            with amp:
                if span:
                    inp, tgt = datamod.span_corrupt(xy[:, : cfg.ctx], rng, a.vocab_size - 1)
                    inp, tgt = torch.from_numpy(inp).to(dev), torch.from_numpy(tgt).to(dev)
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
                extra = extra + recipe.aux_loss * model.aux_loss()
            return ce, extra

        @torch.no_grad()
        def evaluate() -> float:
            model.eval()
            tot, n = 0.0, 0
            rng = np.random.default_rng([cfg.seed, 0xE7A1])
            for i in range(0, len(vw), plan.micro):
                xy = datamod.gather(corpus.val, vw[i : i + plan.micro], cfg.ctx)
                ce, _ = loss_on(xy, rng, model)
                tot += ce.item() * len(xy)
                n += len(xy)
            model.train()
            return tot / n

        model.train()
        t_start = time.time()
        t_ckpt = time.monotonic()
        t_window, tok_window = time.perf_counter(), 0
        wall_before = float(rows[-1].get("wall_s", 0)) if rows else 0.0
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                        console=self.console, disable=not (self.main and self.console is not None
                                                          and self.console.is_terminal))
        task = prog.add_task(a.name, total=plan.steps, completed=start_step, info="")
        last_val = rows[-1]["val_loss"] if rows else None
        with prog:
            for step in range(start_step, plan.steps):
                lr = lr_at(step, plan.steps, plan.lr, plan.warmup, cfg.schedule, recipe.min_lr_ratio, cfg.decay)
                for g in opt.param_groups:
                    g["lr"] = lr
                xy = batch_for(step)
                rng = np.random.default_rng([cfg.seed, step, self.rank, 0x5BA7]) if span else None
                loss_sum = torch.zeros((), device=dev)
                for m in range(plan.n_micro):
                    chunk = xy[m * plan.micro : (m + 1) * plan.micro]
                    sync = (m == plan.n_micro - 1) or not dist
                    ctx_mgr = run_model.no_sync() if (dist and not sync) else nullcontext()
                    with ctx_mgr:
                        ce, extra = loss_on(chunk, rng)
                        ((ce + extra) / plan.n_micro).backward()
                    loss_sum += ce.detach() / plan.n_micro
                if recipe.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                if dist:
                    tdist.all_reduce(loss_sum)
                    loss_sum /= self.world
                loss = loss_sum.item()
                if not math.isfinite(loss):
                    return self._diverged(step, loss, rows, plan, corpus, env, t_start, wall_before)
                opt.step()
                opt.zero_grad(set_to_none=True)
                ema = loss if ema is None else 0.9 * ema + 0.1 * loss
                tok_window += plan.tokens_per_step
                done = step + 1
                if done % plan.eval_every == 0 or done == plan.steps:
                    dt = time.perf_counter() - t_window  # training time only: evaluation is not counted
                    tps = tok_window / dt if dt > 0 else None
                    val = evaluate()
                    last_val = val
                    rows.append({
                        "step": done, "tokens": done * plan.tokens_per_step,
                        "flops": float(done * plan.tokens_per_step * plan.flops_per_token_6n), "train_loss": loss,
                        "val_loss": val, "val_bpb": datamod.bits_per_byte(val, corpus.bytes_per_token), "lr": lr,
                        "tokens_per_s": tps,
                        "mfu": (tps * plan.flops_per_token_mfu / peak) if (tps and peak) else None,
                        "wall_s": wall_before + time.time() - t_start,
                    })
                    if not math.isfinite(val):
                        return self._diverged(done, val, rows, plan, corpus, env, t_start, wall_before)
                    if self.main:
                        if prog.disable:  # no live bar (not a terminal): a line per evaluation
                            mfu = rows[-1]["mfu"]
                            self.log(f"step {done}/{plan.steps}  loss {loss:.4f}  val {val:.4f}  "
                                     f"{(tps or 0):,.0f} tok/s  MFU {'n/a' if mfu is None else f'{mfu:.1%}'}")
                        self._progress(status="running", step=done, steps=plan.steps, val_loss=val, train_loss=loss)
                    if self.main:  # a checkpoint at every evaluation
                        self.save_checkpoint(model, opt, done, rows, {"ema": ema})
                        t_ckpt = time.monotonic()
                    t_window, tok_window = time.perf_counter(), 0
                elif self.main and time.monotonic() - t_ckpt > cfg.ckpt_seconds:
                    self.save_checkpoint(model, opt, done, rows, {"ema": ema})
                    t_ckpt = time.monotonic()
                if done in branch_at and self.main:  # the stable-phase state a WSD branch decays from
                    self.save_checkpoint(model, opt, done, rows, {"ema": ema},
                                         dest=self.out / "branches" / f"step-{done}")
                if self.main:
                    mfu_now = rows[-1]["mfu"] if rows else None
                    tps_now = rows[-1]["tokens_per_s"] if rows else None
                    prog.update(task, completed=done, info=f"loss {loss:.3f} val {last_val or float('nan'):.3f} "
                                f"{(tps_now or 0):,.0f} tok/s MFU {'n/a' if mfu_now is None else f'{mfu_now:.0%}'}")
        summary = self._summary("finished", rows, plan, corpus, env, t_start, wall_before, ema)
        if self.main:
            from safetensors.torch import save_model

            with atomic_path(self.out / "model.safetensors") as tmp:
                save_model(model, str(tmp), metadata={"step": str(plan.steps)})
            atomic_write(self.out / "metrics.csv", metrics_csv(rows))
            write_json(self.out / "summary.json", summary)
            self._progress(status="finished", step=plan.steps, steps=plan.steps, val_loss=summary["val_loss"])
        if dist:
            tdist.barrier()
        return summary

    def _summary(self, status, rows, plan: Plan, corpus, env, t_start, wall_before, ema) -> dict:
        p = plan.params
        last = rows[-1] if rows else {}
        val = last.get("val_loss")
        D = last.get("tokens", 0)
        tps = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
        mfus = [r["mfu"] for r in rows if r.get("mfu")]
        return {
            "status": status, "arch": plan.spec.name, "family": plan.spec.family,
            "objective": plan.recipe.objective,
            "d_model": plan.spec.d_model, "n_layers": plan.spec.n_layers, "n_heads": plan.spec.n_heads,
            "N": p.total, "N_non_embedding": p.non_embedding, "N_active": p.active,
            "D": D, "C": 6 * p.active * D, "C_counted": plan.flops_per_token_counted * D,
            "steps": last.get("step", 0), "val_loss": val, "train_loss": last.get("train_loss"),
            "train_loss_smoothed": ema, "val_bpb": datamod.bits_per_byte(val, corpus.bytes_per_token),
            "loss_units": "nats/token", "entropy_nats_per_token": corpus.entropy_nats,
            "tokens_per_s": float(np.median(tps)) if tps else None, "mfu": float(np.median(mfus)) if mfus else None,
            "wall_s": wall_before + time.time() - t_start, "data_fingerprint": corpus.fingerprint,
            "tokenizer": corpus.tokenizer, "seed": self.cfg.seed, "environment": env,
        }

    def _diverged(self, step, loss, rows, plan, corpus, env, t_start, wall_before) -> dict:
        msg = (f"loss became {loss} at step {step}: the run diverged. The last good checkpoint is kept in "
               f"{self.out / 'checkpoint'}; try a lower --lr (it was {plan.lr:.3g}) or a longer --warmup")
        summary = self._summary("diverged", rows, plan, corpus, env, t_start, wall_before, None)
        summary["error"] = msg
        if self.main:
            write_json(self.out / "summary.json", summary)
            self._progress(status="diverged", step=step, steps=plan.steps, error=msg)
        raise Diverged(msg)

    def _progress(self, **kw) -> None:
        kw.update(pid=os.getpid(), host=os.uname().nodename, updated=time.time())
        write_json(self.out / "progress.json", kw)


class Diverged(RuntimeError):
    pass


def _unwrap(m):
    return getattr(m, "module", m)


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def train(cfg: TrainConfig, console=None) -> dict:
    return Trainer(cfg, console).run()
