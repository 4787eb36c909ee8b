"""Fault injection: a real training process is SIGKILLed at each named event (llmhist.core.files.fault),
the run is started again, and its files must equal an uninterrupted run's byte for byte where they
are deterministic (weights; metrics and summary without timing fields). Then damaged files, a full
disk, two processes on one folder and Ctrl-C. Everything is a nano model of a few steps."""

from __future__ import annotations

import errno
import json
import os
import signal
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from llmhist.core.files import Locked, exclusive_lock
from llmhist.train import data as datamod
from llmhist.train import loop, runstate
from llmhist.train import runfolder as rf
from llmhist.train.loop import TrainConfig, train

# 16 steps, evaluation every 3, a checkpoint after every step (ckpt_seconds=0), one WSD branch ending
# at half the budget (8 steps, the last half of them its decay): it leaves the stable phase at step 4
BASE = dict(arch="llama", size="nano", ctx=32, batch=8, tokens=32 * 8 * 16, data="markov:tokens=20000",
            eval_every=3, ckpt_seconds=0.0, schedule="wsd", decay=0.5, branches="0.5", threads=1)

# event[:nth] -> where the kill lands (the main run saves checkpoints 1-16, its branch 17-20)
KILL_POINTS = [
    "config.json/before_rename",
    "progress.json/before_rename:2",
    "metrics.csv/before_rename:2",      # an evaluation's (not fsynced) write
    "checkpoint/before_fsync:2",
    "checkpoint/before_rename:3",
    "checkpoint/between_renames:3",     # checkpoint/ is gone, checkpoint.old/ holds the state
    "checkpoint/after_rename:3",        # before checkpoint.old/ is removed and metrics.csv written
    "metrics.csv/before_fsync:4",       # the durable write after a checkpoint
    "metrics.csv/after_rename:5",
    "loop/after_step:7",
    "step-4/between_renames",           # the WSD branch's stable-phase snapshot
    "step-4/after_rename",
    "checkpoint/after_rename:16",       # the main run's final checkpoint
    "model.safetensors/before_fsync",
    "model.safetensors/before_rename",
    "model.safetensors/after_rename",
    "summary.json/before_fsync",
    "summary.json/before_rename",
    "summary.json/after_rename",        # finished main run, its branch not started
    "loop/wsd_branch",
    "loop/after_step:18",               # inside the WSD branch (its step 6)
    "checkpoint/between_renames:19",    # the branch's checkpoints
    "checkpoint/after_rename:20",
    "model.safetensors/after_rename:2",  # the branch's final weights
    "summary.json/before_rename:2",     # the branch's summary
]
BPE_KILL_POINTS = ["data/bpe_trained", "data/bpe_encode", "data/bpe_encode:2"]

@pytest.fixture(autouse=True, scope="module")
def _threads():
    """One thread per run (as BASE says): on a shared 2-core machine it is the fastest setting;
    the suite's thread count is restored afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _config(out: Path, **kw) -> TrainConfig:
    return TrainConfig(**{**BASE, **kw, "out": str(out)})


def _child(cfg: dict, env: dict) -> None:
    os.environ.update(env)
    train(TrainConfig(**cfg))


@pytest.fixture(scope="module")
def processes():
    """A fork server that imported torch once: each killed run is a real process (SIGKILLed at
    its event) that starts in milliseconds instead of seconds."""
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["llmhist.train.loop"])
    return ctx


def _kill_at(ctx, cfg: TrainConfig, event: str, env: dict | None = None) -> int:
    env = {"LLMHIST_FAULT": event, "LLMHIST_CACHE": os.environ["LLMHIST_CACHE"], **(env or {})}
    p = ctx.Process(target=_child, args=(asdict(cfg), env))
    p.start()
    p.join(300)
    assert p.exitcode is not None, f"{event}: the run did not end"
    return p.exitcode


def snapshot(run: Path) -> dict:
    """The deterministic content of every file of a run folder (timing fields and paths left out)."""
    out = {}
    for p in sorted(run.rglob("*")):
        rel = str(p.relative_to(run))
        if p.is_dir() or p.name in (rf.PROGRESS, rf.LOCK):
            continue
        if p.suffix == ".safetensors":
            out[rel] = p.read_bytes()
        elif p.name == rf.METRICS:
            out[rel] = [rf.comparable_row(r) for r in rf.read_metrics(p)]
        elif p.name == rf.SUMMARY:
            s = rf.comparable_summary(json.loads(p.read_text()))
            s.pop("already", None)
            out[rel] = s
        elif p.name == rf.CONFIG:
            c = json.loads(p.read_text())
            c["train"].pop("out")
            c.get("branch_of", {}).pop("run", None)
            out[rel] = c
        elif p.name == rf.STATE:
            st = torch.load(p, weights_only=True)
            out[rel] = (st["step"], st["ema"], [rf.comparable_row(r) for r in st["rows"]],
                        [(k, [(n, t.numpy().tobytes() if torch.is_tensor(t) else t) for n, t in sorted(v.items())])
                         for k, v in sorted(st["optimizer"]["state"].items())])
        else:
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "ref"
    train(_config(out))
    return out, snapshot(out)


def test_the_reference_run_has_every_file(reference):
    out, snap = reference
    for f in ("config.json", "metrics.csv", "summary.json", "model.safetensors", "checkpoint/state.pt",
              "branches/step-4/state.pt", "wsd-0.5/summary.json", "wsd-0.5/model.safetensors"):
        assert f in snap, f
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith(".old")]
    assert oct((out / "model.safetensors").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert oct((out / "checkpoint" / "model.safetensors").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_a_kill_at_any_event_resumes_to_the_same_files(reference, processes, tmp_path):
    _, want = reference
    killed, identical, differ = 0, 0, []
    for i, event in enumerate(KILL_POINTS):
        out = tmp_path / f"k{i}"
        rc = _kill_at(processes, _config(out), event)
        assert rc == -signal.SIGKILL, f"{event}: never reached (the run ended with {rc})"
        killed += 1
        train(_config(out))  # the same command again
        got = snapshot(out)
        if got == want:
            identical += 1
        else:
            differ.append((event, sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))))
    print(f"\nkill points tried {killed}, resumed identically {identical}")
    assert not differ, differ


def test_a_kill_during_bpe_preparation_rebuilds_the_same_tokenizer(processes, tmp_path, monkeypatch):
    text = tmp_path / "corpus.txt"
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"]
    text.write_text("\n".join(" ".join(words[(i * 7 + j * 3) % 10] for j in range(12)) for i in range(800)))
    kw = dict(data=str(text), tokenizer="bpe300", tokens=32 * 8 * 4, branches=None, schedule="cosine")
    monkeypatch.setenv("LLMHIST_CACHE", str(tmp_path / "cache-ref"))
    datamod._LOADED.clear()
    train(_config(tmp_path / "ref", **kw))
    want = snapshot(tmp_path / "ref")
    for i, event in enumerate(BPE_KILL_POINTS):
        cache = tmp_path / f"cache{i}"
        out = tmp_path / f"k{i}"
        assert _kill_at(processes, _config(out, **kw), event, {"LLMHIST_CACHE": str(cache)}) == -signal.SIGKILL, event
        monkeypatch.setenv("LLMHIST_CACHE", str(cache))
        datamod._LOADED.clear()
        train(_config(out, **kw))
        assert snapshot(out) == want, event
        assert not [p for p in cache.rglob("*") if ".tmp" in p.name]
    datamod._LOADED.clear()


# ------------------------------------------------------------------------------ damaged files


def _finished(tmp_path, name="r", **kw) -> Path:
    out = tmp_path / name
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6, **kw))
    return out


def _files(run: Path) -> dict:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()
            and p.name not in (rf.PROGRESS, rf.LOCK)}


def test_the_issue_repro_lost_summary_weights_and_last_row(tmp_path):
    """Issue 12: delete summary.json and model.safetensors, drop the last metrics row, run again."""
    out = _finished(tmp_path)
    want = snapshot(out)
    (out / "summary.json").unlink()
    (out / "model.safetensors").unlink()
    lines = (out / "metrics.csv").read_text().splitlines(keepends=True)
    (out / "metrics.csv").write_text("".join(lines[:-1]))
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert snapshot(out) == want


@pytest.mark.parametrize("damage", ["removed", "emptied", "short_last_row", "garbage"])
def test_a_damaged_metrics_file_is_rebuilt_from_the_checkpoint(tmp_path, capsys, damage):
    out = _finished(tmp_path)
    want = snapshot(out)
    (out / "summary.json").unlink()
    m = out / "metrics.csv"
    if damage == "removed":
        m.unlink()
    elif damage == "emptied":
        m.write_text("")
    elif damage == "short_last_row":
        m.write_text(m.read_text()[:-40])
        rows, problem = rf.check_metrics(m)  # the fit loader's reader leaves the short row out
        assert problem and "short" in problem and len(rows) == len(want["metrics.csv"]) - 1
    else:
        m.write_bytes(b"\x00\xff garbage")
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert "rebuilt from the checkpoint" in capsys.readouterr().err
    assert snapshot(out) == want


def test_a_damaged_checkpoint_falls_back_to_checkpoint_old(tmp_path):
    out = _finished(tmp_path)
    want = snapshot(out)
    (out / "summary.json").unlink()
    (out / "model.safetensors").unlink()
    import shutil

    shutil.copytree(out / "checkpoint", out / "checkpoint.old")
    (out / "checkpoint" / "model.safetensors").write_bytes(b"garbage" * 100)
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert snapshot(out) == want and not (out / "checkpoint.old").exists()


@pytest.mark.parametrize("damage", ["truncated_state", "garbage_state", "garbage_weights", "foreign_pickle"])
def test_a_damaged_checkpoint_without_fallback_is_a_clear_error(tmp_path, damage):
    out = _finished(tmp_path)
    (out / "summary.json").unlink()
    ck = out / "checkpoint"
    if damage == "truncated_state":
        b = (ck / "state.pt").read_bytes()
        (ck / "state.pt").write_bytes(b[: len(b) // 2])
    elif damage == "garbage_state":
        (ck / "state.pt").write_bytes(os.urandom(4096))
    elif damage == "foreign_pickle":  # a pickled function: weights_only refuses to load it
        torch.save({"step": 1, "optimizer": {}, "torch_rng": os.path.join}, ck / "state.pt")
    else:
        (ck / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    before = _files(out)
    with pytest.raises(loop.RunError) as e:
        train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    name = "model.safetensors" if damage == "garbage_weights" else "state.pt"
    assert name in str(e.value) and "delete" in str(e.value) and str(ck) in str(e.value)
    assert _files(out) == before


@pytest.mark.parametrize("name,payload", [("config.json", "[1, 2]"), ("summary.json", "3"),
                                          ("summary.json", "{not json"), ("config.json", '"text"')])
def test_json_files_that_are_not_objects_are_clear_errors(tmp_path, name, payload):
    out = _finished(tmp_path)
    (out / name).write_text(payload)
    before = _files(out)
    with pytest.raises(loop.RunError, match=name):
        train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert _files(out) == before
    st = runstate.run_state(out)  # sweep status: one run's bad file is a state, not a crash
    if name == "summary.json":
        assert st.state == "failed" and name in st.error and "resume" in st.error


def test_a_full_disk_changes_nothing_already_written(tmp_path, monkeypatch):
    out = _finished(tmp_path)
    (out / "summary.json").unlink()
    (out / "model.safetensors").unlink()
    before = _files(out)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as e:
        train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert _files(out) == before


def test_a_full_disk_in_safetensors_or_torch_is_an_enospc_oserror(tmp_path, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    def st_full(*a, **k):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    def torch_full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    for target, fake in ((safetensors.torch, "save_model"), (torch, "save")):
        with monkeypatch.context() as m:
            m.setattr(target, fake, st_full if fake == "save_model" else torch_full)
            out = tmp_path / f"full-{fake}"
            with pytest.raises(OSError) as e:
                train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 3))
            assert e.value.errno == errno.ENOSPC
            assert not [p for p in out.iterdir() if ".tmp" in p.name]
    from typer.testing import CliRunner

    from llmhist.cli.main import app

    monkeypatch.setattr(safetensors.torch, "save_model", st_full)
    r = CliRunner().invoke(app, ["train", "--size", "nano", "--ctx", "32", "--batch", "8", "--tokens", "768",
                                 "--data", "markov:tokens=20000", "--out", str(tmp_path / "cli")])
    assert r.exit_code == 2 and "free space" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------------------ processes


def test_a_second_process_on_the_same_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    with exclusive_lock(out, "someone else"):
        with pytest.raises(Locked, match=f"pid {os.getpid()}"):
            train(_config(out))
    assert not (out / "config.json").exists()


def _at_step(monkeypatch, at: int, action) -> None:
    """Train steps as usual, but call `action()` first at step `at` (raise KeyboardInterrupt, send SIGINT)."""
    real = loop.Trainer.train_step

    def patched(self, st, step, lr):
        if step == at:
            action()
        return real(self, st, step, lr)

    monkeypatch.setattr(loop.Trainer, "train_step", patched)


def _raise_ctrl_c() -> None:
    raise KeyboardInterrupt


def test_ctrl_c_says_the_run_is_resumable_and_how(tmp_path, monkeypatch):
    out = tmp_path / "r"
    _at_step(monkeypatch, 4, _raise_ctrl_c)
    with pytest.raises(loop.Interrupted) as e:
        train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert e.value.exit_code == 130 and "resumable" in str(e.value) and "again" in str(e.value)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    ref = _finished(tmp_path, "ref")
    assert snapshot(out) == snapshot(ref)


def test_leftovers_of_killed_writers_are_cleaned_up(tmp_path):
    out = _finished(tmp_path)
    (out / "summary.json").unlink()
    (out / ".checkpoint.999999.tmp").mkdir()
    (out / ".checkpoint.999999.tmp" / "state.pt").write_bytes(b"x")
    (out / ".metrics.csv.999999.tmp.csv").write_text("x")
    (out / ".summary.json.999999.tmp.json").write_text("x")
    import shutil

    shutil.copytree(out / "checkpoint", out / "checkpoint.old")
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoint", "config.json", "metrics.csv",
                                                      "model.safetensors", "progress.json", "summary.json"]


# ------------------------------------------------------------------------------ divergence


def test_the_divergence_rule():
    lnv = 5.545  # ln 256
    assert loop.diverged_reason([5.0, 4.0, 3.0], 256) is None
    assert loop.diverged_reason([5.0, 4.0, float("nan")], 256)
    assert loop.diverged_reason([5.0, 3.0, 4.1, 4.2], 256) is None  # 1.1 nat up, 2 evaluations
    assert loop.diverged_reason([5.0, 3.0, 4.1, 4.2, 4.3], 256)  # ... 3 evaluations
    assert loop.diverged_reason([5.0, 3.0, 4.1], 256, last=True)  # or at the last
    assert loop.diverged_reason([267.0, 300.0, 280.0], 256)  # huge from the start: ln V is the floor
    assert loop.diverged_reason([lnv + 0.5] * 5, 256) is None  # not learning is not diverging


def test_lr_10_on_nano_ends_diverged_and_says_so_again(tmp_path):
    cfg = _config(tmp_path / "r", branches=None, schedule="cosine", tokens=32 * 8 * 24, lr=10.0, eval_every=2)
    with pytest.raises(loop.Diverged) as e:
        train(cfg)
    assert e.value.exit_code == 3 and "diverged at step" in str(e.value)
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["status"] == "diverged" and s["diverged_at_step"] > 0 and s["diverged_reason"]
    with pytest.raises(loop.Diverged) as again:
        train(cfg)
    assert str(again.value) == str(e.value)


# ------------------------------------------------------------------------------ memory


def test_a_model_too_large_for_memory_is_refused_before_allocating(tmp_path):
    cfg = TrainConfig(arch="llama", d_model=16384, n_layers=128, n_heads=128, ctx=32, batch=8,
                      data="markov:tokens=20000", out=str(tmp_path / "r"))
    with pytest.raises(loop.RunError, match=r"needs about .* GiB .* this machine has"):
        train(cfg)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("payload,says", [("[1, 2]", "must be a JSON object"),
                                          ('{"status": "finished", "val_loss": "2.5"}', "'val_loss'"),
                                          ('{"val_loss": 2.5}', "unknown status")])
def test_a_summary_of_the_wrong_shape_is_left_out_with_a_note_by_every_reader(tmp_path, payload, says):
    """Valid JSON of the wrong shape in one run's summary.json: sweep status, `fit` and the ablation
    report each leave that run out with a note naming the file (as for a truncated one), and the
    other runs are read."""
    from llmhist.scaling import ablation, points
    from llmhist.train import ablate as A
    from llmhist.train import sweep as S

    p = A.plan(A.PlanRequest("gpt2", "llama3", budgets=(1e12, 3e12), points=3, seeds=1, out=str(tmp_path)))
    A.prepare(p, tmp_path)
    runs = [r for v in p["variants"] for r in v["runs"]]
    for r in runs:
        rf.write_config(tmp_path / r["name"], {"train": {"variant": r["config"]["variant"]}, "arch": {}})
        rf.write_summary(tmp_path / r["name"], rf.Summary(status="finished", val_loss=3.0 - 1e-7 * r["N"] ** 0.5,
                                                          N=r["N"], D=r["D"], C=6 * r["N"] * r["D"]))
    bad, bad_cfg, bad_curve = (tmp_path / runs[i]["name"] for i in (0, 1, 2))
    (bad / "summary.json").write_text(payload)
    (bad_cfg / "config.json").write_text("[]")  # F3: a config.json of the wrong shape, too
    (bad_curve / "metrics.csv").write_bytes(b"\x00\xff garbage")  # F8: a damaged curve is named, not dropped silently
    rows = {x["run"]: x for x in S.status(tmp_path)}
    assert rows[bad.name]["state"] == "failed" and "summary.json" in rows[bad.name]["error"]
    assert says in rows[bad.name]["error"]
    assert sum(x["state"] == "finished" for x in rows.values()) == len(runs) - 1
    groups = points.load_runs(tmp_path)
    left = {Path(x["run"]).name: x["reason"] for g in groups for x in g.left_out}
    assert says in left[bad.name] and str(bad / "summary.json") in left[bad.name]
    assert "config.json" in left[bad_cfg.name] and "must be a JSON object" in left[bad_cfg.name]
    assert "training curve is damaged" in left[bad_curve.name]
    assert sum(g.n_rows for g in groups) == len(runs) - 2
    res = ablation.report(tmp_path, n_boot=50, laws=())
    (why,) = [x["reason"] for x in res["left_out"] if x["run"] == bad.name]
    assert says in why and "summary.json" in why


def test_a_damaged_plan_json_says_how_to_recover_without_deleting_finished_runs(tmp_path):
    """Reliability F11: a damaged plan.json must not advise deleting the folder (that throws away
    finished runs); moving it away and running the same command again keeps them."""
    from llmhist.train import sweep as S

    plan = S.plan_isoflop(["gpt2"], [1e11, 3e11], points=3)
    S.prepare(tmp_path, plan)
    done = tmp_path / plan.runs[0].name
    rf.write_summary(done, rf.Summary(status="finished", val_loss=2.0, steps=4))
    (tmp_path / "plan.json").write_text('{"kind": "isoflop", "runs": [')
    for call in (lambda: S.status(tmp_path), lambda: S.prepare(tmp_path, plan)):
        with pytest.raises(rf.RunError) as e:
            call()
        msg = str(e.value)
        assert "plan.json" in msg and "delete" not in msg and "move it away" in msg and "intact" in msg
    (tmp_path / "plan.json").write_text("{}")  # damaged, not "another sweep plan (hash None)"
    with pytest.raises(rf.RunError, match="unreadable .it lacks the plan's hash and runs") as e:
        S.prepare(tmp_path, plan)
    assert "another" not in str(e.value) and "delete" not in str(e.value)
    (tmp_path / "plan.json").rename(tmp_path.parent / "plan.json.damaged")
    S.prepare(tmp_path, plan)  # the same plan again: accepted, the finished run kept
    assert [r.name for r in S.runs_to_launch(tmp_path, plan)] == [r.name for r in plan.runs[1:]]


# ------------------------------------------------------------------------------ sweep workers stopped by a signal


def _requests(tmp_path, n: int) -> list[Path]:
    from llmhist.train import worker

    dirs = [tmp_path / f"r{i}" for i in range(n)]
    for d in dirs:
        worker.write_request(d, _config(d, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    return dirs


def test_a_worker_interrupted_by_sigint_exits_130_and_fails_nothing(tmp_path, monkeypatch):
    """Reliability F2: Ctrl-C in a worker exits 130 (not 0), leaves no .failed marker, and the runs
    after it stay pending, so the same sweep command resumes them all."""
    from llmhist.train import worker

    dirs, logs = _requests(tmp_path, 2), tmp_path / "logs"
    _at_step(monkeypatch, 2, _raise_ctrl_c)
    assert worker.run_dirs(dirs, logs) == rf.EXIT_INTERRUPTED
    assert not list(logs.glob("*.failed"))
    assert "interrupted" in (logs / "r0.log").read_text()
    assert [runstate.run_state(d).state for d in dirs] == ["interrupted", "pending"]
    assert not (dirs[1] / "config.json").exists()  # never started: the interrupt stopped the worker
    monkeypatch.undo()
    assert worker.run_dirs(dirs, logs) == rf.EXIT_OK
    assert [runstate.run_state(d).state for d in dirs] == ["finished", "finished"]


def test_a_sigkilled_sweep_worker_leaves_its_runs_resumable(tmp_path, monkeypatch):
    """Reliability F1: a worker killed by SIGKILL (an OOM kill) marks none of its runs failed, those
    it never started included, and the same command launches every one of them again."""
    import subprocess
    import sys

    from llmhist.train import sweep as S
    from llmhist.train.sweep import local

    plan = S.plan_isoflop(["llama"], [3e10], points=3)
    real = subprocess.Popen

    def killed(args, **kw):  # the worker dies at once, as by `kill -9`
        return real([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], **kw)

    monkeypatch.setattr(local.subprocess, "Popen", killed)
    rows = S.run_local(tmp_path, plan, workers=1, threads=1)
    assert {r["state"] for r in rows} == {"pending"}, rows
    assert not list((tmp_path / "logs").glob("*.failed"))
    assert [r.name for r in S.runs_to_launch(tmp_path, plan)] == [r.name for r in plan.runs]
    wlog = "".join(p.read_text() for p in (tmp_path / "logs").glob("worker-*.log"))
    assert "SIGKILL" in wlog and "interrupted, not failed" in wlog


# ------------------------------------------------------------------------------ Ctrl-C before the first checkpoint


def test_ctrl_c_before_the_first_checkpoint_writes_one_and_loses_nothing(tmp_path, monkeypatch):
    """First-hour C14: a SIGINT stops the run at the end of its step with a checkpoint (the timed
    ones come every ckpt_seconds), progress.json says interrupted (not running with a dead pid), and
    the same command resumes to an uninterrupted run's files."""
    kw = dict(branches=None, schedule="cosine", tokens=32 * 8 * 6, ckpt_seconds=1e6)
    out = tmp_path / "r"
    _at_step(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGINT))  # the step still completes
    with pytest.raises(loop.Interrupted, match="resumable from step 3"):
        train(_config(out, **kw))
    assert (out / "checkpoint" / "state.pt").exists()
    assert json.loads((out / "progress.json").read_text())["status"] == "interrupted"
    assert runstate.run_state(out).state == "interrupted"
    monkeypatch.undo()
    train(_config(out, **kw))
    assert snapshot(out) == snapshot(_finished(tmp_path, "ref", ckpt_seconds=1e6))


def test_a_rerun_without_a_checkpoint_says_so_and_not_rebuilt_from_it(tmp_path, monkeypatch):
    """Reliability F13: no "resuming at step 0" or "rebuilt from the checkpoint" when there is none."""
    import io

    from rich.console import Console

    kw = dict(branches=None, schedule="cosine", tokens=32 * 8 * 6, ckpt_seconds=1e6)
    out = tmp_path / "r"
    _at_step(monkeypatch, 0, _raise_ctrl_c)  # inside the first step: no state worth a checkpoint
    with pytest.raises(loop.Interrupted, match="resumable from the start"):
        train(_config(out, **kw))
    assert not (out / "checkpoint").exists() and (out / "config.json").exists()
    monkeypatch.undo()
    buf = io.StringIO()
    train(_config(out, **kw), console=Console(file=buf, width=200))
    said = buf.getvalue()
    assert "no checkpoint yet" in said and "starting again from step 0" in said
    assert "resuming" not in said and "rebuilt from the checkpoint" not in said


def test_sweep_status_of_a_folder_that_does_not_exist_says_so(tmp_path):
    """Reliability F15: `sweep status nope` is "no such folder", not "no plan.json"."""
    from llmhist.train import sweep as S

    with pytest.raises(rf.RunError, match="no such folder"):
        S.status(tmp_path / "nope")


def test_a_finished_run_with_a_truncated_metrics_file_is_rebuilt_from_its_checkpoint(tmp_path, capsys):
    """Reliability F8: not "already finished; nothing to do" over a curve that lost its last rows."""
    out = _finished(tmp_path)
    want = snapshot(out)
    m = out / "metrics.csv"
    m.write_bytes(m.read_bytes()[: int(m.stat().st_size * 0.6)])
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))
    assert "rebuilt from the checkpoint" in capsys.readouterr().err
    assert snapshot(out) == want
    train(_config(out, branches=None, schedule="cosine", tokens=32 * 8 * 6))  # whole again: nothing to do
    assert snapshot(out) == want


def test_a_refused_folder_keeps_no_lock_file(tmp_path):
    """Cosmetic list: `train --out DIR` on an unrelated folder is refused and leaves no DIR/.lock."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(loop.RunError, match="holds other files but no run"):
        train(_config(out))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
