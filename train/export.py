"""`llmhist export RUN OUT`: a folder transformers' from_pretrained loads, with the same logits.

The weight mapping is archs/hf.py's (written once, tested for logit parity); this only reads a
run folder (JSON + safetensors, never a pickle) and writes transformers' files atomically: the
folder is written beside OUT and renamed into place by checkpoint IO's folder swap
(llmhist.train.checkpoint.staged_folder), the one written for checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..archs import hf
from ..archs.spec import Arch
from ..core.errors import UserError
from . import runfolder as rf
from .checkpoint import staged_folder


class ExportError(UserError, ValueError):
    """A run that cannot be exported, or an output folder that cannot be written."""



def load_run(run_dir: str | Path):
    """(spec, model) of a run folder's final weights."""
    from safetensors.torch import load_model

    from ..archs.model import build

    run_dir = Path(run_dir)
    cfg, weights = run_dir / rf.CONFIG, run_dir / rf.WEIGHTS
    if not cfg.exists():
        raise ExportError(f"{run_dir}: not a run folder (no config.json); give a folder `llmhist train` wrote")
    if not weights.exists():
        raise ExportError(f"{run_dir}: the run has no final weights (model.safetensors); "
                                "finish it first (run the same train command again)")
    doc = rf.read_config(run_dir)
    try:
        a = Arch.from_dict(doc["arch"])
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{cfg}: no usable 'arch' ({e}); this is not a config.json llmhist wrote") from e
    model = build(a)
    try:
        load_model(model, str(weights))
    except Exception as e:  # truncated, garbage or another model's weights
        raise ExportError(f"{weights}: damaged or of another model ({type(e).__name__}); delete it and run the "
                          "same train command again to rewrite it from the run's checkpoint") from e
    return a, model.eval()


def export(run_dir: str | Path, out_dir: str | Path) -> dict:
    """Write out_dir (new, or an empty folder) that transformers' from_pretrained loads; every
    argument is checked before any work."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is a file; give a new (or empty) folder to export into")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir}: exists and is not empty; give a new (or empty) folder to export into")
    a, model = load_run(run_dir)
    mt = hf.model_type(a)  # raises NoHFEquivalent (a ValueError) with the reason for other families
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise ExportError("export needs transformers: pip install 'llmhist[export]' "
                          "(from a checkout: pip install -e '.[export]')") from e
    ref = hf.hf_model(a)
    hf.load_into_hf(a, model, ref)
    ref.config._attn_implementation = "sdpa"
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        v = getattr(ref.config, key, None)  # GPT-2's 50256 is outside a byte vocabulary
        if isinstance(v, int) and v >= a.vocab_size:
            setattr(ref.config, key, None)
            if getattr(ref, "generation_config", None) is not None:
                setattr(ref.generation_config, key, None)
    _remove_leftovers(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")  # never a folder of the user's
    try:
        with staged_folder(out_dir, tmp, old=old, event="export") as t:
            ref.save_pretrained(t, safe_serialization=True)
            (t / "llmhist.json").write_text(json.dumps({"run": str(Path(run_dir).resolve()), "arch": a.name},
                                                       indent=2))
            mode = 0o666 & ~_umask()  # as a plain file of the user's (safetensors' atomic write makes 0600)
            for f in t.iterdir():
                if f.is_file():
                    f.chmod(mode)
    except OSError as e:  # a read-only folder, a full disk: nothing is left half-written
        raise ExportError(f"{out_dir}: cannot write the export ({e.strerror or e}); "
                          + ("free space and run export again" if e.errno in (28, 122) else
                             "give a folder you can write to")) from e
    loader = "AutoModelForSeq2SeqLM" if getattr(ref.config, "is_encoder_decoder", False) else "AutoModelForCausalLM"
    return {"model_type": mt, "params": sum(p.numel() for p in model.parameters()), "out": str(out_dir),
            "loader": loader}


def _remove_leftovers(out_dir: Path) -> None:
    """The staging folders (.OUT.PID.tmp) of exports to the same OUT whose process is dead (killed)."""
    import shutil

    from .runstate import _alive

    for p in out_dir.parent.glob(f".{out_dir.name}.*.tmp"):
        pid = p.name[len(out_dir.name) + 2: -len(".tmp")]
        if p.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _umask() -> int:
    old = os.umask(0o22)
    os.umask(old)
    return old
