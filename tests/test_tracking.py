"""`--logger` (llmhist.train.tracking): a nano run mirrored to TensorBoard (event files read back with
tensorboard's EventAccumulator) and to W&B (through a small fake `wandb` module on sys.path that records
every call: the real package is too heavy for the suite's 2-core CI, and the tests never go online),
SIGKILLed and resumed: one tracker run id, no duplicate step, every metrics.csv row sent. Then a tracker
that fails while logging (a warning, no local row lost), bad --logger values, and light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from llmhist.train import runfolder as rf
from llmhist.train import tracking
from llmhist.train.config import RunError
from llmhist.train.loop import TrainConfig, train

# 16 steps, an evaluation every 3 (steps 3, 6, 9, 12, 15, 16)
BASE = dict(arch="llama", size="nano", ctx=32, batch=8, tokens=32 * 8 * 16, data="markov:tokens=20000",
            eval_every=3, threads=1)
EVAL_STEPS = [3, 6, 9, 12, 15, 16]

FAKE_WANDB = '''
"""A stand-in for wandb that appends every call to $FAKE_WANDB_LOG (JSON lines)."""
import json, os, uuid

def _rec(**kw):
    with open(os.environ["FAKE_WANDB_LOG"], "a") as f:
        f.write(json.dumps(kw, default=str) + "\\n")

class Run:
    def __init__(self, id):
        self.id = id
        self.step = int(os.environ.get("FAKE_WANDB_STEP", "0"))  # a resumed online run: the step it is at
    def log(self, row, step=None):
        if os.environ.get("FAKE_WANDB_FAIL"):
            raise ConnectionError("the tracker is down")
        _rec(call="log", id=self.id, step=step, keys=sorted(row), val_loss=row.get("val_loss"))
    def finish(self):
        _rec(call="finish", id=self.id)

def init(project=None, name=None, group=None, id=None, resume=None, config=None, dir=None):
    run = Run(id or uuid.uuid4().hex[:8])
    _rec(call="init", id=run.id, given_id=id, project=project, name=name, group=group, resume=resume,
         config_keys=sorted(config or {}))
    return run
'''


@pytest.fixture
def fake_wandb(tmp_path, monkeypatch):
    """The fake `wandb` importable here and in the processes started from here; returns its call log."""
    for name in ("wandb", "trackio"):  # trackio follows W&B's API
        pkg = tmp_path / "fakes" / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(textwrap.dedent(FAKE_WANDB))
    monkeypatch.syspath_prepend(str(tmp_path / "fakes"))
    sys.modules.pop("wandb", None)
    sys.modules.pop("trackio", None)
    log = tmp_path / "wandb-calls.jsonl"
    monkeypatch.setenv("FAKE_WANDB_LOG", str(log))
    monkeypatch.setenv("WANDB_MODE", "offline")
    yield log
    sys.modules.pop("wandb", None)
    sys.modules.pop("trackio", None)


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _child(cfg: dict, env: dict, path: list[str]) -> None:
    os.environ.update(env)
    sys.path[:0] = [p for p in path if p not in sys.path]
    train(TrainConfig(**cfg))


def _kill_at(cfg: TrainConfig, event: str) -> int:
    """A real training process SIGKILLed at `event` (llmhist.core.files.fault)."""
    import multiprocessing as mp

    env = {k: os.environ[k] for k in ("LLMHIST_CACHE", "FAKE_WANDB_LOG", "WANDB_MODE") if k in os.environ}
    p = mp.get_context("spawn").Process(target=_child, args=(asdict(cfg), {**env, "LLMHIST_FAULT": event},
                                                             list(sys.path)))
    p.start()
    p.join(600)
    return p.exitcode


def _csv_steps(run: Path) -> list[int]:
    return [int(r["step"]) for r in rf.read_metrics(run / rf.METRICS)]


def _tb_scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # no purging: a step written twice must show as twice
    ea = EventAccumulator(str(run / tracking.TB_DIR), purge_orphaned_data=False)
    ea.Reload()
    return [(e.step, e.value) for e in ea.Scalars(tag)]


@pytest.mark.parametrize("ckpt_seconds", [0.0, 1e9], ids=["resume-from-checkpoint", "recompute-from-step-0"])
def test_tensorboard_run_killed_and_resumed_is_one_run_without_duplicate_steps(tmp_path, ckpt_seconds):
    """ckpt_seconds=1e9: no checkpoint before the kill, so the resumed run recomputes rows 3 and 6
    the tracker already has; they must not be sent again."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "r"
    cfg = TrainConfig(**BASE, ckpt_seconds=ckpt_seconds, logger="tensorboard", out=str(run))
    assert _kill_at(cfg, "loop/after_step:7") == -9
    first = rf.read_trackers(run)["tensorboard"]
    assert first["last_step"] == 6
    train(cfg)
    after = rf.read_trackers(run)["tensorboard"]
    assert after == {"run_id": first["run_id"], "last_step": 16}
    assert [p.name for p in (run / tracking.TB_DIR).iterdir() if p.is_dir()] == []  # one TensorBoard run
    steps = _csv_steps(run)
    assert steps == EVAL_STEPS
    # every row, each once (the event files are read in name order, which need not be time order)
    val = sorted(_tb_scalars(run, "val_loss"))
    assert [s for s, _ in val] == steps
    want = [r["val_loss"] for r in rf.read_metrics(run / rf.METRICS)]
    assert [v for _, v in val] == pytest.approx(want, rel=1e-6)
    assert sorted(s for s, _ in _tb_scalars(run, "train_loss")) == steps


def test_wandb_run_killed_and_resumed_continues_the_same_run(tmp_path, fake_wandb):
    """W&B buffers rows in its service process (a SIGKILL lost the whole segment of a real offline run),
    so a step counts as had only after finish(): the resumed run sends every row again, once each, to
    the same run id; W&B's resume + step rule drops those it already has (see the next test)."""
    run = tmp_path / "sweep-x" / "r"
    cfg = TrainConfig(**BASE, ckpt_seconds=1e9, logger="wandb", out=str(run))
    assert _kill_at(cfg, "loop/after_step:10") == -9
    killed = len(_calls(fake_wandb))
    assert [c["step"] for c in _calls(fake_wandb) if c["call"] == "log"] == [3, 6, 9]
    assert rf.read_trackers(run)["wandb"]["last_step"] is None  # sent, not known to be kept
    train(cfg)
    calls = _calls(fake_wandb)
    inits = [c for c in calls if c["call"] == "init"]
    assert len(inits) == 2 and inits[0]["given_id"] is None and inits[1]["given_id"] == inits[0]["id"]
    assert {c["resume"] for c in inits} == {"allow"} and inits[0]["name"] == "r"
    assert {"train", "arch", "recipe", "plan"} <= set(inits[0]["config_keys"])  # the resolved config
    logs = [c for c in calls[killed:] if c["call"] == "log"]
    assert {c["id"] for c in logs} == {inits[0]["id"]}
    assert [c["step"] for c in logs] == _csv_steps(run) == EVAL_STEPS
    assert [c["val_loss"] for c in logs] == pytest.approx([r["val_loss"] for r in rf.read_metrics(run / rf.METRICS)])
    assert "step" not in logs[0]["keys"] and "val_loss" in logs[0]["keys"]
    assert [c["call"] for c in calls][-1] == "finish"
    assert rf.read_trackers(run)["wandb"] == {"run_id": inits[0]["id"], "last_step": 16}


def test_a_resumed_wandb_run_is_not_sent_the_steps_it_has(tmp_path, fake_wandb, monkeypatch):
    monkeypatch.setenv("FAKE_WANDB_STEP", "13")  # the run W&B resumed holds steps up to 12
    t = tracking.WandB(tmp_path, None)
    assert t.start({}, "abc") == "abc"
    for step in EVAL_STEPS:
        t.log(step, {"step": step, "val_loss": 1.0})
    assert [c["step"] for c in _calls(fake_wandb) if c["call"] == "log"] == [15, 16]


def test_two_trackers_at_once_and_a_sweep_run_grouped_by_its_folder(tmp_path, fake_wandb):
    pytest.importorskip("tensorboard")
    run = tmp_path / "isoflop-llama" / "r"
    rf.write_request(run, rf.RunRequest({}, sweep=str(tmp_path / "isoflop-llama")))
    train(TrainConfig(**BASE, logger="tensorboard,wandb", out=str(run)))
    (init,) = [c for c in _calls(fake_wandb) if c["call"] == "init"]
    assert init["group"] == "isoflop-llama"
    assert set(rf.read_trackers(run)) == {"tensorboard", "wandb"}
    assert sorted(s for s, _ in _tb_scalars(run, "val_loss")) == EVAL_STEPS


def test_trackio_runs_are_named_by_the_folder_and_resumed_by_that_name(tmp_path, fake_wandb, capsys):
    run = tmp_path / "r"
    train(TrainConfig(**BASE, logger="trackio", out=str(run)))
    (init,) = [c for c in _calls(fake_wandb) if c["call"] == "init"]
    assert init["name"] == "r" and init["resume"] == "allow"
    assert rf.read_trackers(run)["trackio"] == {"run_id": "r", "last_step": 16}
    assert [c["step"] for c in _calls(fake_wandb) if c["call"] == "log"] == EVAL_STEPS


def test_a_tracker_failing_while_logging_is_a_warning_and_loses_no_row(tmp_path, fake_wandb, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_WANDB_FAIL", "1")
    run = tmp_path / "r"
    summary = train(TrainConfig(**BASE, logger="wandb", out=str(run)))
    assert summary["status"] == "finished"
    assert _csv_steps(run) == EVAL_STEPS
    err = capsys.readouterr().err
    assert "--logger wandb: log failed (ConnectionError: the tracker is down)" in err and "off for the rest" in err
    assert rf.read_trackers(run)["wandb"]["last_step"] is None
    assert [c["call"] for c in _calls(fake_wandb)] == ["init"]  # disabled after the first failure: no retries


def test_resuming_with_a_tracker_added_sends_the_rows_it_has_not_had(tmp_path, fake_wandb):
    run = tmp_path / "r"
    train(TrainConfig(**BASE, out=str(run)))
    (run / rf.SUMMARY).unlink()  # the run resumes from its final checkpoint (runtime options may differ)
    train(TrainConfig(**BASE, logger="wandb", out=str(run)))
    assert [c["step"] for c in _calls(fake_wandb) if c["call"] == "log"] == EVAL_STEPS


@pytest.mark.parametrize("spec, says", [
    ("tensorbored", "unknown tracker 'tensorbored'"),
    ("mlflow", "use none, tensorboard, wandb, trackio"),
])
def test_a_bad_logger_is_refused_before_any_work(tmp_path, spec, says):
    with pytest.raises(RunError, match=says):
        TrainConfig(**BASE, logger=spec, out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_a_tracker_not_installed_is_refused_with_the_pip_command(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    with pytest.raises(RunError, match=r"--logger trackio: the 'trackio' package is not installed; "
                                       r"pip install 'llmhist\[trackio\]'"):
        TrainConfig(**BASE, logger="trackio", out=str(tmp_path / "r"))


def test_logger_values_are_normalised():
    assert tracking.check("none") == tracking.check("") == "none"
    assert tracking.check(" TensorBoard , tensorboard") == "tensorboard"


def test_the_logger_changes_no_sweep_plan():
    pytest.importorskip("tensorboard")
    from llmhist.train import sweep as S

    a = S.plan_sweep(["llama"], [1e11, 3e11], 3, 4.0, [], None, "cosine", None, 32, 8, common={"seed": 0})
    b = S.plan_sweep(["llama"], [1e11, 3e11], 3, 4.0, [], None, "cosine", None, 32, 8,
                     common={"seed": 0, "logger": "tensorboard"})
    assert a.hash() == b.hash()  # a sweep resumed with or without --logger is the same plan
    assert b.config("f", b.runs[0]).logger == "tensorboard"


def test_help_text_and_commands_import_no_tracker():
    from llmhist.cli.common import LOGGER_HELP
    from llmhist.train.config import option_meta

    assert option_meta("logger")["help"] == LOGGER_HELP  # one text for train, sweep and ablate
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from llmhist.cli.main import app\n"
        "for args in (['--help'], ['train', '--help'], ['sweep', 'run', '--help'], ['ablate', 'run', '--help']):\n"
        "    res = CliRunner().invoke(app, args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "    assert args == ['--help'] or '--logger' in res.output, args\n"
        "print([m for m in ('tensorboard', 'wandb', 'trackio', 'torch.utils.tensorboard') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ablate_gives_every_run_the_logger(tmp_path):
    pytest.importorskip("tensorboard")
    from llmhist.train import ablate as A

    p = A.plan(A.PlanRequest("gpt2", "llama3", logger="tensorboard", out=str(tmp_path / "a")))
    plan = A.sweep_plan(p)
    assert {plan.config(tmp_path / "a", r).logger for r in plan.runs} == {"tensorboard"}
    assert plan.hash() == A.sweep_plan(A.plan(A.PlanRequest("gpt2", "llama3", out=str(tmp_path / "a")))).hash()


def test_ablate_refuses_a_bad_logger_before_planning():
    from llmhist.train import ablate as A

    with pytest.raises(RunError, match="--logger 'foo': unknown tracker"):
        A.PlanRequest("gpt2", "llama3", logger="foo")
