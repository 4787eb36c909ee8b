"""`llmhist train`: one run, start to finish, resumable at any moment.

A run is a folder (llmhist.train.runfolder; runs/README.md). Everything that decides the numbers
is in config.json; batches are a pure function of (seed, step) and all other randomness derives from
the one seed, so a run killed at any point (SIGKILL included) and started again with the same
command continues from its last checkpoint and ends with the same files, bit for bit on CPU (timing
columns aside), as an uninterrupted run: the checkpoint carries every metrics row, and metrics.csv
is rebuilt from it on resume.

The trainer consumes a resolved run (llmhist.train.config.resolve: the request merged with its
family's recipe) and reads top to bottom as: set-up (a TrainState: device, corpus, plan, model,
optimizer, autocast), resume (one path for a killed run and for a WSD branch's start), train_step,
evaluate, on_evaluation (metrics row, divergence rule, checkpoint by time, report), finish. Its
parts live beside it: the plan (runplan.py), the LR and evaluation schedules (schedule.py), the
checkpoint IO (checkpoint.py), Ctrl-C at a step boundary (stop.py), the divergence rule (divergence.py); the model initialises itself
(archs/model.py) and activation checkpointing wraps its blocks from outside it (trainstate.checkpoint_blocks).
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F

from ..core.files import exclusive_lock, fault
from . import checkpoint as ckpt
from . import data as datamod
from . import device as devmod
from . import runfolder as rf
from . import tracking
from .config import TrainConfig
from .divergence import DIVERGE_EVALS, DIVERGE_MARGIN_NATS, Diverged, diverged_reason
from .runfolder import Interrupted, RunError
from .schedule import EVAL_SUBSET, branch_points, lr_at
from .stop import StopAtStepEnd, resume_command
from .trainstate import TrainState, make_state


class Trainer:
    def __init__(self, cfg: TrainConfig, console=None, init_from: Path | None = None, branch_of: dict | None = None):
        self.cfg = cfg
        self.resolved = cfg.resolve()  # the request merged with its recipe: every value the run uses
        self.out = Path(cfg.out)
        self.console = console
        self.init_from, self.branch_of = init_from, branch_of  # a WSD branch starts from a stable-phase snapshot
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.main = self.rank == 0
        self.dist = self.world > 1
        self.mirror: tracking.Mirror | tracking.NoMirror = tracking.NoMirror()  # --logger (tracking.py)

    # ---------------------------------------------------------------- the run
    def run(self) -> dict:
        with ExitStack() as held:
            locked = self.main and self.out.is_dir()
            had_lock = (self.out / rf.LOCK).exists()
            if locked:  # an existing folder: refuse a second process at once
                held.enter_context(exclusive_lock(self.out, "llmhist train"))
            try:
                status = self.folder_status()
            except RunError:  # a refused folder keeps no lock file of ours
                if locked and not had_lock:
                    (self.out / rf.LOCK).unlink(missing_ok=True)
                raise
            if status == "finished":
                summary = rf.read_summary(self.out) or {}
                val = summary.get("val_loss")
                self.log(f"[yellow]{self.out}: this run already finished (val loss "
                         f"{val if not isinstance(val, float) else f'{val:.4f}'}); nothing to do[/]")
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
                    self.mirror = tracking.open_mirror(self.out, self.cfg.logger, st.config_doc, self.note)
                    self.mirror.log(st.rows)  # a resumed run: the rows its trackers have not had
                st.phase_s["startup"] = time.perf_counter() - t0
                try:
                    with StopAtStepEnd(self.note) as stop:
                        summary = self.train_loop(st, stop)
                except KeyboardInterrupt:
                    raise self.interrupted(st) from None
                if self.main:
                    rf.remove_stale(self.out)
            if self.cfg.branches and summary.get("status") == "finished":
                summary["branches"] = self._run_branches()
        return summary

    def interrupted(self, st: TrainState) -> Interrupted:
        """Stopped by Ctrl-C: at a step boundary the state is saved as a checkpoint first (so a run
        stopped before its first timed checkpoint loses nothing); progress.json says interrupted."""
        if self.main and st.at_boundary and st.step > max(st.ckpt_step, 0):
            self.save_checkpoint(st)
        if self.main:
            rf.write_progress(self.out, status="interrupted", step=st.step, steps=st.plan.steps)
        at = f"step {st.ckpt_step}" if st.ckpt_step > 0 else "the start"
        return Interrupted(f"interrupted at step {st.step}; {self.out} is resumable from {at}: "
                           f"run `{resume_command()}` again")

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
        diff = self.resolved.differences(rf.read_config(self.out)["train"])
        if diff:
            shown = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in list(diff.items())[:4])
            raise RunError(f"{self.out} holds a different run ({shown}); use another --out or the same settings")
        summary = rf.read_summary(self.out)
        if summary is None:
            return "resume"
        status = summary.get("status", "finished")
        if status == "finished" and not (self.out / rf.WEIGHTS).exists():
            return "resume"  # the final weights were lost: rewritten from the last checkpoint
        if status == "finished" and (self.out / rf.CHECKPOINT).is_dir() and rf.curve_damaged(self.out, summary):
            return "resume"  # reliability F8: metrics.csv is rebuilt from the final checkpoint's rows
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
    def setup(self) -> TrainState:
        return make_state(self.resolved, self.world, self.dist, self.branch_of)

    # ---------------------------------------------------------------- resume
    def resume(self, st: TrainState, status: str | None) -> None:
        """The one way a run starts from saved state: its own checkpoint when it has one (a killed
        run), else, for a WSD branch, the main run's stable-phase snapshot; otherwise step 0.
        The checkpoint's metrics rows are the truth: metrics.csv is rewritten from them."""
        got, source = None, None
        if status == "resume":
            got = self.load_checkpoint(st, self.out / rf.CHECKPOINT, own=True)
            source = "checkpoint" if got is not None else None  # none yet: "starting again from step 0"
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
        if st.dev.type == "cpu" and (busy := devmod.load_warning()):
            self.note(busy)
        active = f" ({plan.params.active:,} active per token)" if plan.params.active != plan.params.total else ""
        self.log(f"{a.name}: N {plan.params.total:,} parameters{active}, D {plan.tokens:,} tokens "
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
    def save_checkpoint(self, st: TrainState, dest: Path | None = None) -> None:
        """The run's checkpoint (or, with `dest`, a WSD branch's stable-phase snapshot) through
        checkpoint.save, then metrics.csv, which resume rebuilds from the checkpoint if a kill comes first."""
        state = {"step": st.step, "optimizer": st.opt.state_dict(), "torch_rng": torch.get_rng_state(),
                 "ema": st.ema, "rows": st.rows}
        ckpt.save(dest or self.out / rf.CHECKPOINT, self.out / f".checkpoint.{os.getpid()}.tmp", st.model, state)
        if dest is None:
            st.ckpt_step = st.step
            rf.write_metrics(self.out, st.rows)

    def load_checkpoint(self, st: TrainState, ck: Path, own: bool = False) -> dict | None:
        return ckpt.load(ck, st.model, st.opt, own=own, note=self.note)

    # ---------------------------------------------------------------- the loop
    def train_loop(self, st: TrainState, stop: StopAtStepEnd | None = None) -> dict:
        cfg, plan = self.cfg, st.plan
        st.model.train()
        st.t_start = time.time()
        t_ckpt = time.monotonic()
        window = [time.perf_counter(), 0]  # training time and tokens since the last evaluation
        prog = self._progress_bar(st)
        task = prog.add_task(plan.spec.name, total=plan.steps, completed=st.step, info="")
        with prog:
            for step in range(st.step, plan.steps):
                if stop is not None and stop.asked:
                    raise KeyboardInterrupt  # at a step boundary: interrupted() saves the checkpoint
                st.at_boundary = False
                lr = lr_at(step, plan.steps, plan.lr, plan.warmup, plan.schedule, plan.recipe.min_lr_ratio, cfg.decay)
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
                st.at_boundary = True
        return self.finish(st)

    def train_step(self, st: TrainState, step: int, lr: float) -> float:
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
    def _span(st: TrainState) -> bool:
        return st.plan.recipe.objective == "span_corruption"

    def loss_on(self, st: TrainState, xy: np.ndarray, rng: np.random.Generator | None, mdl):
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
    def evaluate(self, st: TrainState, final: bool = True) -> float:
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

    def on_evaluation(self, st: TrainState, loss: float, lr: float, window: list) -> None:
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
        self.mirror.log(st.rows)
        rf.write_progress(self.out, status="running", step=done, steps=plan.steps, val_loss=val, train_loss=loss)
        if self.console is not None and not self.console.is_terminal:  # no live bar: a line per evaluation
            mfu = st.rows[-1]["mfu"]
            self.log(f"step {done}/{plan.steps}  loss {loss:.4f}  val {val:.4f}  {(tps or 0):,.0f} tok/s  "
                     f"MFU {'n/a' if mfu is None else f'{mfu:.1%}'}")

    def mfu(self, st: TrainState, tokens_per_s: float | None) -> float | None:
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

    def finish(self, st: TrainState) -> dict:
        """The last checkpoint (it carries every row, so a kill from here on resumes to the same
        files), then the final weights, metrics.csv and, last, summary.json."""
        summary = self._summary(st, "finished")
        if self.main:
            t0 = time.perf_counter()
            if st.ckpt_step != st.step:
                self.save_checkpoint(st)
            ckpt.save_weights(self.out / rf.WEIGHTS, st.model, st.plan.steps)
            rf.write_metrics(self.out, st.rows)
            st.phase_s["final_save"] = time.perf_counter() - t0
            summary["overhead_s"] = self._overhead(st)
            rf.write_summary(self.out, rf.Summary.from_json(summary, str(self.out), strict=True))
            rf.write_progress(self.out, status="finished", step=st.step, steps=st.plan.steps,
                              val_loss=summary["val_loss"])
            self.mirror.finish()
        if self.dist:
            tdist.barrier()
        return summary

    def diverge(self, st: TrainState, step: int, reason: str) -> None:
        msg = (f"{self.out}: the run diverged at step {step}: {reason} (rule: a non-finite loss, or a validation "
               f"loss over {DIVERGE_MARGIN_NATS:g} nat above min(ln vocab, best so far) at {DIVERGE_EVALS} "
               f"consecutive evaluations or at the last). It is left out of fits. Try a lower --lr (it was "
               f"{st.plan.lr:.3g}) or a longer --warmup, in another --out")
        summary = self._summary(st, "diverged")
        summary.update(error=msg, diverged_at_step=step, diverged_reason=reason)
        if self.main:
            rf.write_metrics(self.out, st.rows)
            rf.write_summary(self.out, rf.Summary.from_json(summary, str(self.out), strict=True))
            rf.write_progress(self.out, status="diverged", step=step, steps=st.plan.steps, error=msg)
            self.mirror.finish()
        raise Diverged(msg)

    def _summary(self, st: TrainState, status: str) -> dict:
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
    def _overhead(st: TrainState) -> dict:
        """Wall seconds of this process by phase, and the rest (progress, metrics rows, Python)."""
        out = {k: round(v, 4) for k, v in st.phase_s.items()}
        out["total"] = round(time.time() - st.t_start + st.phase_s["startup"], 4)
        out["other"] = round(out["total"] - sum(st.phase_s.values()), 4)
        return out

    def _progress_bar(self, st: TrainState):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=self.console,
                        disable=not (self.main and self.console is not None and self.console.is_terminal))

    # ---------------------------------------------------------------- WSD branches
    def _branch_points(self, steps: int, warmup: int) -> list[tuple[float, int, int]]:
        """(fraction, horizon steps, branch step) per WSD branch (schedule.branch_points)."""
        return branch_points(self.cfg.branch_fractions(), steps, warmup, self.cfg.decay)

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


def train(cfg: TrainConfig, console=None) -> dict:
    """Train (or resume, or report) the run `cfg` describes. Several calls in one process reuse
    the loaded corpus (llmhist.train.data.load caches it)."""
    return Trainer(cfg, console).run()
