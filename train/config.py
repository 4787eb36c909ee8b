"""The one run configuration: every option of a training run, declared once, and the one step that
resolves it against the family's recipe.

A run request is a `TrainConfig` written as JSON into its run folder (run.json); `llmhist train`,
a sweep's local queue, a Slurm task, `llmhist study` and a Python caller all build the same object
and get the same checks, made on construction before any work starts. Each field's metadata holds
its command-line flag, its help text and its allowed range, so `llmhist train` shows them as
declared here (its parameters are checked against these fields by tests/test_config.py) and every
refusal names the option, the bad value, the range and how to fix it. Defaults come from
llmhist.train.defaults.

A field left unset (None) whose value comes with the recipe (RECIPE_OPTIONS: peak learning rate,
warmup, schedule) means "the recipe's value": `resolve(cfg)` merges the request with the family's
recipe (llmhist.archs.recipes; the peak learning rate by the rule recipe_lr applies to its
optimizer and the width) into a `ResolvedRun`, every value with its source (the recipe and its
citation, the user's option, or a default); the trainer consumes that, and config.json records it
("resolved"). No heavy imports (torch only to check a `cuda:N` device).
"""

from __future__ import annotations

import math
import os
import re
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal

from ..core.errors import UserError
from . import defaults as D
from .schedule import SCHEDULES, Schedule

if typing.TYPE_CHECKING:
    from ..archs.catalogue import Recipe

MAX_TOKENS = 1e15  # far beyond any run this tool makes; a typo guard (1e30 is a typo)
MAX_FLOPS = 1e27
TOKEN_DTYPES = ("uint16", "uint32")
BPE_VOCAB_RANGE = (257, 1 << 20)  # more than the 256 byte ids; at most a 2^20-token vocabulary
BPE_DEFAULT_VOCAB = 4096  # `--tokenizer bpe` without a size
# the options whose unset value (None) is the recipe's; see resolve
RECIPE_OPTIONS = ("lr", "warmup", "schedule")


class RunError(UserError, ValueError):
    """A run that cannot start or continue; the message says why and what to do."""


def opt(default: Any, help: str, *, flag: str | None = None, short: str | None = None, ge: float | None = None,
        gt: float | None = None, le: float | None = None, lt: float | None = None, hint: str = "",
        runtime: bool = False, cli: bool = True, cli_type: Any = None, cli_default: Any = MISSING) -> Any:
    """A TrainConfig field: default, help text, the allowed range (ge/gt/le/lt, None = unbounded),
    `runtime` = does not change the numbers a run produces (may differ on resume), and how the CLI
    shows it (flag name, short flag, a parse type other than the field's, a default other than the field's)."""
    meta = {"help": help, "flag": flag, "short": short, "ge": ge, "gt": gt, "le": le, "lt": lt, "hint": hint,
            "runtime": runtime, "cli": cli, "cli_type": cli_type, "cli_default": cli_default}
    return field(default=default, metadata=meta)


def option_meta(name: str) -> dict:
    """A field's metadata with its flag spelled out (what the CLI shows: flag, short flag, help)."""
    return {**_FIELDS[name].metadata, "flag": flag_of(name)}


def flag_of(name: str) -> str:
    f = _FIELDS.get(name)
    return (f.metadata.get("flag") if f is not None else None) or "--" + name.replace("_", "-")


def _cores() -> int:
    return os.cpu_count() or 1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; all of them where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
TOKENIZER_RE = re.compile(r"^(bytes|bpe\d*)$")

@dataclass
class TrainConfig:
    arch: str = opt(D.ARCH, "family or registry name (llama, gpt2, mixtral, t5, ...)", short="-a")
    size: str | None = opt(None, f"named size: {D.SIZE} (train's default), micro, mini, small, base, or a registry "
                                 "name of --arch's family")
    d_model: int | None = opt(None, "explicit width (with --n-layers, --n-heads)", ge=1)
    n_layers: int | None = opt(None, "explicit depth", ge=1)
    n_heads: int | None = opt(None, "explicit head count", ge=1)
    n_kv_heads: int | None = opt(None, "explicit key/value head count (with an explicit shape; must divide "
                                       "--n-heads: 1 is MQA, --n-heads is MHA; default: the family's ratio)", ge=1)
    tokens: int | None = opt(None, f"training tokens D (default: {D.TOKENS_PER_PARAM} per parameter)", gt=0,
                             le=MAX_TOKENS, cli_type=float)
    flops: float | None = opt(None, "compute budget C; D = C / 6N", gt=0, le=MAX_FLOPS)
    data: str = opt(D.DATA, "stdlib (default), prose (extra 'prose'), markov[:order=2,alphabet=16,...], a text "
                            "file/folder, token files (train.bin/val.bin), parquet / JSON-lines files, a quoted "
                            "glob or folder of them [:column=text,rows=N], a folder save_to_disk wrote, or "
                            "hub:NAME[:split=,config=,revision=,column=,rows=]")
    tokenizer: str = opt(D.TOKENIZER, "bytes, or bpeN (BPE with N tokens trained on the data)")
    token_dtype: Literal["uint16", "uint32"] = opt(D.TOKEN_DTYPE, "dtype of .bin token files: uint16 or uint32")
    vocab_size: int | None = opt(None, "vocabulary of token files (default: meta.json or max id + 1)", ge=2,
                                 le=2**32)
    ctx: int = opt(D.CTX, "sequence length T", ge=8, le=1 << 20)
    batch: int = opt(D.BATCH, "sequences per optimizer step (global, across DDP ranks)", ge=1, le=1 << 20)
    micro_batch: int | None = opt(None, "sequences per forward pass on one process (gradient accumulation); "
                                        "default: all at once", ge=1, le=1 << 20)
    lr: float | None = opt(None, f"peak learning rate (default: {D.LR_RULE})", gt=0)
    warmup: float | None = opt(None, "warmup as a fraction of steps (default: the recipe's warmup_frac)", ge=0, lt=1)
    schedule: Schedule | None = opt(None, "cosine (length = the run), wsd (warmup-stable-decay) or constant "
                                          "(default: the recipe's)")
    decay: float = opt(D.WSD_DECAY, "wsd: fraction of steps in the final decay", gt=0, le=1)
    branches: str | None = opt(None, "wsd: also end at these fractions of the budget (e.g. 0.25,0.5), each a "
                                     "decay branch from the stable phase")
    seed: int = opt(D.SEED, "the one seed every other is derived from", ge=0, lt=2**63)
    eval_every: int | None = opt(None, "steps between evaluations (default: 10 per run, spaced geometrically, and the "
                                            "last)", ge=1, runtime=True)
    eval_batches: int = opt(D.EVAL_BATCHES, "validation windows of the final evaluation = this x batch (earlier "
                                            "evaluations score every 4th)", ge=1, le=1 << 20)
    device: str = opt(D.DEVICE, "auto, cpu, cuda, cuda:N, mps", runtime=True)
    threads: int | None = opt(None, "CPU threads (default: all usable cores)", ge=1, runtime=True,
                              hint="at most the machine's cores")
    compile: bool | None = opt(None, "torch.compile (default: on for CUDA)", flag="--compile/--no-compile",
                               runtime=True)
    remat: bool = opt(False, "activation checkpointing per block")
    ckpt_seconds: float = opt(D.CKPT_SECONDS, "seconds between time-based checkpoints (0: after every step)", ge=0,
                              runtime=True, cli=False)
    peak_flops: float | None = opt(None, "override the MFU denominator (FLOP/s)", gt=0, runtime=True)
    out: str = opt(f"{D.OUT_ROOT}/default", f"run folder (default: {D.OUT_ROOT}/<arch>-<size>-s<seed>)",
                   runtime=True, cli_default=None)
    logger: str = opt("none", "mirror metrics to experiment trackers: none (default), tensorboard, wandb, trackio, or "
                              "several joined by commas (extras of the same names; metrics.csv stays the record)",
                      runtime=True)  # the same text as cli/common.py's LOGGER_HELP (tests/test_tracking.py)
    variant: dict | None = opt(None, "an ablation variant {base, target, changes} (see llmhist.archs.changes)",
                               cli=False)

    # fields that do not change the numbers a run produces (so may differ on resume)
    RUNTIME: typing.ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, _check_field(f, getattr(self, f.name)))
        self._check_together()
        self.resolve()  # the recipe-dependent checks (shape, variant, branches against the schedule)

    def resolve(self) -> ResolvedRun:
        """This request merged with its family's recipe (see `resolve`)."""
        return resolve(self)

    # ---------------------------------------------------------------- checks across fields
    def _check_together(self) -> None:
        if self.tokens is not None and self.flops is not None:
            raise RunError(f"--tokens {self.tokens:g} and --flops {self.flops:g}: give one of them, not both "
                           "(D = C / 6N)")
        if self.micro_batch is not None and self.micro_batch > self.batch:
            raise RunError(f"--micro-batch {self.micro_batch}: must be at most --batch {self.batch} "
                           "(it divides the per-process batch)")
        if not self.data.strip():
            raise RunError("--data '': give stdlib, prose, markov, a text file/folder or token files")
        from .corpora import check_source  # parquet / JSON lines / saved or Hub datasets

        if (self.data not in ("stdlib", "prose", "markov") and not self.data.startswith("markov:")
                and not check_source(self.data)):
            from pathlib import Path

            p = Path(self.data).expanduser()
            if not p.exists():
                raise RunError(f"--data {self.data}: no such file or folder (use 'stdlib', 'prose', 'markov', a text "
                               "file/folder, or token files)")
            if not (p.is_file() or p.is_dir()):
                raise RunError(f"--data {self.data}: not a regular file or folder (a pipe or device cannot be read "
                               "twice); give a text file/folder or token files")
        if not self.out.strip():
            raise RunError("--out '': give a run folder")
        bpe_vocab(self.tokenizer)
        from .tracking import check as check_logger

        self.logger = check_logger(self.logger)
        self._check_branches()
        self._check_device()

    def branch_fractions(self) -> list[float]:
        """The WSD branch horizons as sorted fractions of the budget (empty without --branches)."""
        if not self.branches:
            return []
        return sorted({float(x) for x in self.branches.split(",") if x.strip()})

    def _check_branches(self) -> None:
        if self.branches is None:
            return
        try:
            fracs = self.branch_fractions()
        except ValueError:
            raise RunError(f"--branches {self.branches!r}: give fractions of the budget, e.g. 0.25,0.5") from None
        if not fracs:
            raise RunError(f"--branches {self.branches!r}: give fractions of the budget, e.g. 0.25,0.5")
        bad = [f for f in fracs if not (0 < f < 1)]
        if bad:
            raise RunError(f"--branches {self.branches!r}: each branch is a fraction in (0, 1) of the budget; "
                           f"{bad[0]:g} is not")

    def _check_device(self) -> None:
        d = self.device.strip().lower()
        if not DEVICE_RE.match(d):
            raise RunError(f"--device {self.device!r}: use auto, cpu, cuda, cuda:N or mps")
        self.device = d
        if d.startswith("cuda"):
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if n == 0:
                raise RunError(f"--device {d}: no CUDA GPU is visible to torch; use --device cpu or auto")
            if ":" in d and int(d.split(":")[1]) >= n:
                raise RunError(f"--device {d}: this machine has {n} CUDA GPU{'s' if n > 1 else ''} "
                               f"(cuda:0{f'..cuda:{n - 1}' if n > 1 else ''}); give one of those")

    # ---------------------------------------------------------------- (de)serialisation
    def identity(self) -> dict:
        """What must match when a run folder is resumed."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("runtime")}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, source: str = "the run config") -> TrainConfig:
        """Build from a dict (run.json's "config", a grid's row); unknown keys are refused by name."""
        if not isinstance(d, dict):
            raise RunError(f"{source}: the run config must be a table of options, not {type(d).__name__}")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise RunError(f"{source}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                           f"; known: {', '.join(_FIELDS)}")
        try:
            return cls(**d)
        except RunError as e:
            raise RunError(f"{source}: {e}") from None


TrainConfig.RUNTIME = tuple(f.name for f in fields(TrainConfig) if f.metadata.get("runtime"))
_FIELDS = {f.name: f for f in fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def field_types() -> dict[str, Any]:
    """The resolved type of every field (Literal choices included)."""
    return {k: v for k, v in _HINTS.items() if k in _FIELDS}


def _base_types(tp: Any) -> tuple[list[type], tuple | None, bool]:
    """(allowed Python types, Literal choices or None, None allowed)."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    optional = type(None) in args
    kinds: list[type] = []
    choices = None
    for a in args:
        if a is type(None):
            continue
        if typing.get_origin(a) is Literal:
            choices = typing.get_args(a)
            kinds.append(str)
        else:
            kinds.append(typing.get_origin(a) or a)
    return kinds, choices, optional


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e7 else f"{x:g}"


def _range_text(m: dict) -> str:
    ops = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
    return " and ".join(f"{sym} {_num(m[k])}" for k, sym in ops if m.get(k) is not None)


def _check_field(f, v: Any) -> Any:
    """Type and range of one field; returns the value normalised (an integral float as int)."""
    kinds, choices, optional = _base_types(_HINTS[f.name])
    m = f.metadata
    name = flag_of(f.name).split("/")[0]
    if v is None:
        if optional:
            return None
        raise RunError(f"{name}: a value is required")
    if bool in kinds:
        if isinstance(v, bool):
            return v
        raise RunError(f"{name} {v!r}: give true or false")
    if dict in kinds:
        return v  # checked with the other fields
    if str in kinds:
        if not isinstance(v, str):
            raise RunError(f"{name} {v!r}: give a string")
        if choices is not None and v not in choices:
            raise RunError(f"{name} {v!r}: use one of {', '.join(choices)}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        what = "a whole number" if int in kinds else "a number"
        raise RunError(f"{name} {v!r}: give {what}" + (f" ({_range_text(m)})" if _range_text(m) else ""))
    if isinstance(v, float) and not math.isfinite(v):
        raise RunError(f"{name} {v}: must be a finite number" + (f" {_range_text(m)}" if _range_text(m) else ""))
    if int in kinds and float not in kinds:
        if isinstance(v, float):
            if f.name != "tokens" and v != int(v):
                raise RunError(f"{name} {v:g}: give a whole number")
            if abs(v) > 2**62:
                v = float(v)  # left to the range check below (as a float: no overflow)
            else:
                v = int(round(v))
    elif isinstance(v, int):
        v = float(v)
    if int in kinds and float not in kinds and abs(v) > 2**62 and m.get("le") is None and m.get("lt") is None:
        raise RunError(f"{name} {_num(v)}: too large; give a whole number {_range_text(m)}")
    bad = ((m.get("gt") is not None and not v > m["gt"]) or (m.get("ge") is not None and not v >= m["ge"])
           or (m.get("lt") is not None and not v < m["lt"]) or (m.get("le") is not None and not v <= m["le"]))
    if bad:
        extra = "; " + m["hint"] if m.get("hint") else ""
        if f.name in ("tokens", "flops") and v > 0:
            extra = "; that is far beyond any run this tool can make (a typo?)"
        raise RunError(f"{name} {_num(v)}: must be {_range_text(m)}{extra}")
    if f.name == "threads" and v > _cores():
        raise RunError(f"{name} {v}: this machine has {_cores()} cores; give 1 to {_cores()} "
                       "(or leave it out for all usable cores)")
    return v


def bpe_vocab(tokenizer: str) -> int | None:
    """The BPE vocabulary a --tokenizer value asks for (None for bytes); the one check of its range."""
    if not TOKENIZER_RE.match(tokenizer):
        raise RunError(f"--tokenizer {tokenizer!r}: use bytes or bpeN (e.g. bpe4096)")
    if tokenizer == "bytes":
        return None
    n = int(tokenizer[3:] or BPE_DEFAULT_VOCAB)
    lo, hi = BPE_VOCAB_RANGE
    if not lo <= n <= hi:
        raise RunError(f"--tokenizer {tokenizer}: a BPE vocabulary must be between {lo} and {hi}")
    return n


# ------------------------------------------------------------------------------ the resolve step


@dataclass(frozen=True)
class ResolvedRun:
    """A run request merged with its family's recipe: what the trainer consumes. `lr`, `warmup` and
    `schedule` are the values used (the request's where given, else the recipe's); `sources` says
    where each option's value came from ("recipe: <citation>", "given", or "default")."""

    config: TrainConfig
    recipe: Recipe
    lr: float
    warmup: float
    schedule: str
    sources: dict[str, str]

    def value(self, name: str) -> Any:
        return getattr(self, name) if name in RECIPE_OPTIONS else getattr(self.config, name)

    def to_dict(self) -> dict:
        """Every option as {"value", "source"} (config.json's "resolved"), but `out`: the folder that
        holds config.json is where the run is, not what it is (a moved folder is the same run)."""
        return {k: {"value": self.value(k), "source": self.sources[k]} for k in _FIELDS if k != "out"}

    def differences(self, theirs: dict) -> dict[str, tuple[Any, Any]]:
        """{option: (theirs, mine)} where a recorded request (config.json's "train") is another run
        than this one; an option unset on one side matches the recipe's value on the other."""
        out = {}
        for k, mine in self.config.identity().items():
            there = theirs.get(k)
            if _norm(there) == _norm(mine):
                continue
            if k in RECIPE_OPTIONS and _norm(self.value(k) if there is None else there) == _norm(self.value(k)):
                continue
            out[k] = (there, mine)
        return out


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def peak_lr(d_model: int) -> float:
    """GPT-3 Table 2.1's 6e-4 at d_model 768, scaled as 1/d_model, capped at 3e-3 (defaults.py says why)."""
    return min(D.PEAK_LR_CAP, D.GPT3_PEAK_LR * D.GPT3_D_MODEL / d_model)


def recipe_lr(recipe: Recipe, d_model: int) -> tuple[float, str]:
    """(peak learning rate, its source) for a recipe at width d_model."""
    if recipe.optimizer == "adafactor":
        return D.ADAFACTOR_LR, "T5 §3.1.2: a constant 0.01 over the first 10^4 steps of its inverse-sqrt schedule"
    capped = " (capped)" if peak_lr(d_model) == D.PEAK_LR_CAP else ""
    return peak_lr(d_model), (f"GPT-3 Table 2.1's {D.GPT3_PEAK_LR:g} at d_model {D.GPT3_D_MODEL}, scaled as "
                              f"1/d_model to {d_model}{capped} (assumed: the muP rule for hidden weights)")


def resolve(cfg: TrainConfig) -> ResolvedRun:
    """The one resolve step: the family's recipe (or an ablation variant's), then every option the
    request leaves unset that the recipe gives; checks what needs the recipe or the spec."""
    recipe, d_model = _recipe_and_width(cfg)
    src = {f.name: ("given" if getattr(cfg, f.name) != f.default else "default") for f in _FIELDS.values()}
    lr, lr_source = recipe_lr(recipe, d_model)
    from_recipe = {"lr": lr_source, "warmup": recipe.source_of("warmup_frac"), "schedule": recipe.source_of("schedule")}
    for k, source in from_recipe.items():
        src[k] = "given" if getattr(cfg, k) is not None else f"recipe: {source}"
    warmup = recipe.warmup_frac if cfg.warmup is None else cfg.warmup
    schedule = recipe.schedule if cfg.schedule is None else cfg.schedule
    if schedule not in SCHEDULES:  # a recipe naming a schedule the trainer does not run
        raise RunError(f"{cfg.arch}'s recipe names schedule {schedule!r}; give --schedule ({', '.join(SCHEDULES)})")
    if cfg.branches is not None and schedule != "wsd":
        raise RunError(f"--branches {cfg.branches}: --branches needs --schedule wsd (branches leave the stable phase "
                       f"of one run; the schedule is {schedule})")
    return ResolvedRun(config=cfg, recipe=recipe, lr=lr if cfg.lr is None else cfg.lr, warmup=warmup,
                       schedule=schedule, sources=src)


def kv_heads(cfg: TrainConfig) -> dict:
    """{"n_kv_heads": n} for build_spec when --n-kv-heads is given (checked here), else {}."""
    if cfg.n_kv_heads is None:
        return {}
    if cfg.d_model is None or cfg.n_heads is None:
        raise RunError(f"--n-kv-heads {cfg.n_kv_heads}: needs an explicit shape (--d-model, --n-layers, --n-heads), "
                       "not --size")
    if cfg.n_heads % cfg.n_kv_heads:
        raise RunError(f"--n-kv-heads {cfg.n_kv_heads}: must divide --n-heads {cfg.n_heads} (1 is MQA, "
                       f"{cfg.n_heads} is MHA)")
    return {"n_kv_heads": cfg.n_kv_heads}


def _recipe_and_width(cfg: TrainConfig) -> tuple[Recipe, int]:
    """(recipe, d_model) of the request; the shape is checked by the registry (llmhist.archs.registry)."""
    from ..archs import registry
    from ..archs.recipes import recipe_for
    from ..archs.spec import SpecError

    if cfg.variant is not None:
        from ..archs.changes import variant_recipe

        if not isinstance(cfg.variant, dict) or not {"base", "target"} <= set(cfg.variant):
            raise RunError(f"variant {cfg.variant!r}: give a table with base, target and changes")
        if cfg.d_model is None or cfg.n_layers is None or cfg.n_heads is None:
            raise RunError("an ablation variant needs an explicit shape: give d_model, n_layers and n_heads")
        return variant_recipe(cfg.variant), cfg.d_model
    try:
        registry.get(cfg.arch, buildable=True)  # suggest only buildable names
    except registry.UnknownArch as e:
        raise RunError(f"--arch {e}") from None
    shaped = cfg.size is not None or any(v is not None for v in (cfg.d_model, cfg.n_layers, cfg.n_heads))
    kv = kv_heads(cfg)
    try:  # the shape's checks (size of another family, size and shape both, heads dividing d_model, ...)
        a = registry.build_spec(cfg.arch, cfg.size if shaped else D.SIZE, d_model=cfg.d_model,
                                n_layers=cfg.n_layers, n_heads=cfg.n_heads, ctx_len=cfg.ctx, **kv)
    except SpecError as e:
        raise RunError(str(e)) from None
    return recipe_for(a.family, a.moe is not None), a.d_model
