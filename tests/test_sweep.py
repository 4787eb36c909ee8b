"""Sweeps: planning, a real local queue killed and restarted, a real Slurm cluster, torchrun DDP."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.train import runfolder as rf
from llmhist.train import runstate
from llmhist.train import sweep as S
from llmhist.train.runfolder import RunError, read_metrics

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_isoflop_plan_brackets_each_optimum_and_spends_each_budget():
    plan = S.plan_isoflop(["llama"], [3e11, 1e12, 3e12], points=5, ctx=64, batch=16)
    groups = {}
    for r in plan.runs:
        groups.setdefault(r.group, []).append(r)
        assert r.C == pytest.approx(6 * r.N * r.tokens) and r.d_model % r.n_heads == 0
    assert len(groups) == 3
    for g, runs in groups.items():
        C = float(g.split("=")[1])
        assert all(abs(math.log(r.C / C)) < 0.01 for r in runs)  # each run spends its budget
        Ns = sorted(r.N for r in runs)
        assert len(Ns) >= 3 and Ns[0] < math.sqrt(C / 120) < Ns[-1]  # brackets the expected optimum
        assert len(set(Ns)) == len(Ns)


def test_plans_across_architectures_keep_each_family_and_its_gqa_ratio():
    # llama2's GQA 8:1 with two KV heads needs 16 heads, so its smallest ladder model is ~0.5M parameters
    plan = S.plan_isoflop(["gpt2", "llama2"], [1e14, 3e14], points=4, ctx=64)
    assert {r.arch for r in plan.runs} == {"gpt2", "llama2"}
    from llmhist.archs.registry import build_spec

    for r in plan.runs:
        a = build_spec(r.arch, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads)
        assert a.family == r.arch
        if r.arch == "llama2":
            assert a.n_heads // a.kv_heads == 8 and a.kv_heads >= 2


def test_ladder_and_toml_grid(tmp_path):
    lad = S.plan_ladder(["llama"], [2e4, 1e5], [10, 40], ctx=32, batch=8)
    assert len(lad.runs) == 4 and {round(r.tokens_per_param) for r in lad.runs} == {10, 40}
    wsd = S.plan_ladder(["llama"], [2e4, 1e5], [10, 20, 40], ctx=32, batch=8, schedule="wsd")
    assert len(wsd.runs) == 2 and all(r.branches == "0.25,0.5" and round(r.tokens_per_param) == 40 for r in wsd.runs)
    cfg = wsd.config(tmp_path, wsd.runs[0])  # the run's full TrainConfig, as its run.json will hold it
    assert cfg.branches == "0.25,0.5" and cfg.schedule == "wsd" and cfg.out == str(tmp_path / wsd.runs[0].name)
    g = tmp_path / "grid.toml"
    g.write_text('[defaults]\nctx = 32\nbatch = 8\n\n[[run]]\narch = "gpt2"\nsize = "nano"\ntokens = 4096\n\n'
                 '[[run]]\narch = "llama"\nd_model = 32\nn_layers = 1\nn_heads = 2\nflops = 1e9\n')
    plan = S.plan_grid(g)
    assert [r.arch for r in plan.runs] == ["gpt2", "llama"] and plan.common["ctx"] == 32
    assert plan.runs[1].C == pytest.approx(1e9, rel=1e-3)
    g.write_text('[[run]]\narch = "llama"\nsize = "nano"\n')
    with pytest.raises(RunError, match="exactly one of tokens or flops"):
        S.plan_grid(g)
    g.write_text("[[run]\n")
    with pytest.raises(RunError, match="not valid TOML"):
        S.plan_grid(g)


def test_bad_sweeps_are_refused_before_anything_runs(tmp_path):
    r = runner.invoke(app, ["sweep", "--arch", "llama", "--budgets", "1e6", "--out", str(tmp_path / "a"), "--yes"])
    assert r.exit_code == 2 and "too small" in r.output and not (tmp_path / "a").exists()
    r = runner.invoke(app, ["sweep", "--budgets", "1e12", "--points", "2", "--out", str(tmp_path / "b"), "--yes"])
    assert r.exit_code == 2 and "at least 3" in r.output
    r = runner.invoke(app, ["sweep", "--budgets", "1e12", "--launcher", "pbs", "--out", str(tmp_path / "c"), "--yes"])
    assert r.exit_code == 2 and "local or slurm" in r.output and not (tmp_path / "c").exists()
    r = runner.invoke(app, ["sweep", "--budgets", "1e12", "--spread", "1.5", "--out", str(tmp_path / "d"), "--yes"])
    assert r.exit_code == 2 and "bracket" in r.output
    # a folder holding another plan is refused
    plan = S.plan_isoflop(["llama"], [1e12], points=3, ctx=64)
    S.prepare(tmp_path / "e", plan)
    r = runner.invoke(app, ["sweep", "--budgets", "3e12", "--points", "3", "--ctx", "64", "--out",
                            str(tmp_path / "e"), "--yes", "--workers", "1", "--threads", "1"])
    assert r.exit_code == 2 and "another sweep plan" in r.output


GRID = """[defaults]
ctx = 32
batch = 8
data = "markov:tokens=20000"
eval_every = 10
{runs}"""


def _grid(tmp_path, n=4, tokens=60000):
    runs = "".join(f'\n[[run]]\nname = "r{i}"\narch = "llama"\nd_model = {16 * (i + 1)}\nn_layers = 1\n'
                   f'n_heads = {i + 1}\ntokens = {tokens}\n' for i in range(n))
    p = tmp_path / "grid.toml"
    p.write_text(GRID.format(runs=runs))
    return p


def test_local_sweep_killed_and_restarted_completes_every_run_exactly_once(tmp_path):
    grid, out = _grid(tmp_path), tmp_path / "sw"
    cmd = [sys.executable, "-m", "llmhist", "sweep", "--grid", str(grid), "--out", str(out), "--yes",
           "--workers", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        states = [r["state"] for r in S.status(out)] if (out / "plan.json").exists() else []
        if "finished" in states and any(s in ("running", "interrupted") for s in states):
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and every training process under it
    proc.wait()
    states = [r["state"] for r in S.status(out)]
    assert "finished" in states and states.count("finished") < len(states), states
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = S.status(out)
    assert [r["state"] for r in rows] == ["finished"] * 4
    for r in rows:
        log = (out / "logs" / f"{r['run']}.log").read_text()
        assert log.count("done ") == 1, log  # trained to completion once, never restarted from scratch
        steps = [m["step"] for m in read_metrics(out / r["run"] / "metrics.csv")]
        assert steps == sorted(set(steps))
    again = runner.invoke(app, ["sweep", "--grid", str(grid), "--out", str(out), "--yes", "--workers", "1",
                                "--threads", "1"])
    assert again.exit_code == 0
    assert all((out / "logs" / f"{r['run']}.log").read_text().count("done ") == 1 for r in rows)
    st = runner.invoke(app, ["sweep", "status", str(out), "--json"])
    assert st.exit_code == 0 and {r["state"] for r in json.loads(st.output)} == {"finished"}


def test_sweep_status_reports_failures_and_divergence(tmp_path):
    out = tmp_path / "sw"
    plan = S.plan_grid(_grid(tmp_path, n=2, tokens=4000))
    S.prepare(out, plan)
    (out / "logs" / "r0.failed").write_text(json.dumps({"exit": 1, "log_tail": "Traceback\nMemoryError"}))
    (out / "r1").mkdir()
    rf.write_summary(out / "r1", rf.Summary(status="diverged", steps=3, error="loss became nan"))
    rows = {r["run"]: r for r in S.status(out)}
    assert rows["r0"]["state"] == "failed" and "MemoryError" in rows["r0"]["error"]
    assert rows["r1"]["state"] == "diverged"
    r = runner.invoke(app, ["sweep", "status", str(out)])
    assert r.exit_code == 0 and "MemoryError" in r.output and "diverged" in r.output
    # a long log keeps its last line as the error; failed runs relaunch only when asked, on any launcher
    (out / "logs" / "r0.failed").write_text(json.dumps({"exit": 1, "log_tail": "x" * 3000 + "\nOSError: disk"}))
    assert runstate.run_state(out / "r0").error == "OSError: disk"
    assert S.runs_to_launch(out, plan) == []
    assert [r.name for r in S.runs_to_launch(out, plan, retry_failed=True)] == ["r0"]
    assert not (out / "logs" / "r0.failed").exists()


def test_torchrun_ddp_matches_one_process(tmp_path):
    args = ["--arch", "llama", "--size", "nano", "--ctx", "32", "--batch", "8", "--tokens", str(32 * 8 * 20),
            "--data", "markov:tokens=20000", "--eval-every", "5", "--device", "cpu", "--threads", "1"]
    one = subprocess.run([sys.executable, "-m", "llmhist", "train", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29500 + os.getpid() % 1000), "-m", "llmhist", "train", *args, "--out",
                          str(tmp_path / "two"), "--json"], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    s2 = json.loads(two.stdout)  # only rank 0 reports
    a, b = read_metrics(tmp_path / "one" / "metrics.csv"), read_metrics(tmp_path / "two" / "metrics.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) == 4
    for x, y in zip(a, b):
        assert y["train_loss"] == pytest.approx(x["train_loss"], abs=1e-4)
        assert y["val_loss"] == pytest.approx(x["val_loss"], abs=1e-4)
    cfg = json.loads((tmp_path / "two" / "config.json").read_text())
    assert cfg["plan"]["world_size"] == 2 and s2["D"] == 32 * 8 * 20


@pytest.fixture(scope="module")
def slurm():
    """A Slurm cluster that is already up (tests never start one or install anything: CI's .ci/run
    starts a single-node cluster with scripts/slurm-up.sh before the tests and stops it after).
    Without a cluster the test is skipped with the reason; CI sets LLMHIST_REQUIRE_SLURM=1, which
    turns the skip into a failure."""
    states: list[str] = []
    why = ""
    if shutil.which("sinfo") is None:
        why = "no `sinfo` on PATH"
    else:
        try:
            got = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
            states = [s.strip().rstrip("*~#") for s in got.stdout.split()]
            why = got.stderr.strip()[-300:] or f"sinfo answered {got.stdout.strip()[:100]!r}"
        except (OSError, subprocess.TimeoutExpired) as e:
            why = f"sinfo failed: {e}"
    if not any(s in ("idle", "mixed", "allocated", "completing") for s in states):
        msg = (f"no running Slurm cluster ({why}); start one first (as root: scripts/slurm-up.sh; "
               "stop it with scripts/slurm-up.sh down)")
        if os.environ.get("LLMHIST_REQUIRE_SLURM") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return True


def test_slurm_launcher_runs_a_sweep_through_submitit(slurm, tmp_path):
    grid, out = _grid(tmp_path, n=2, tokens=8000), tmp_path / "sw"
    r = runner.invoke(app, ["sweep", "--grid", str(grid), "--out", str(out), "--yes", "--launcher", "slurm",
                            "--time", "10", "--max-concurrent", "2", "--cpus-per-job", "1"])
    assert r.exit_code == 0, r.output
    assert "job array" in r.output
    jobs = json.loads((out / "logs" / "slurm.json").read_text())["jobs"]
    assert set(jobs) == {"r0", "r1"}
    deadline = time.time() + 240
    while time.time() < deadline:
        rows = S.status(out)
        if all(x["state"] in ("finished", "diverged", "failed") for x in rows):
            break
        time.sleep(1)
    assert [x["state"] for x in S.status(out)] == ["finished", "finished"], \
        [p.read_text()[-2000:] for p in (out / "slurm").rglob("*.err")]
    acct = subprocess.run(["squeue", "-h"], capture_output=True, text=True)
    assert acct.returncode == 0
    # resubmitting a finished sweep submits nothing
    r = runner.invoke(app, ["sweep", "--grid", str(grid), "--out", str(out), "--yes", "--launcher", "slurm"])
    assert r.exit_code == 0 and "submitted 0 runs" in r.output


def test_a_killed_process_not_yet_reaped_counts_as_dead():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline and Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.05)  # exited but not waited for: a zombie
    assert not runstate._alive(p.pid)
    assert runstate._alive(os.getpid())
    p.wait()
    assert not runstate._alive(p.pid)


# ------------------------------------------------------------------ the library, the worker, locks, signals


def test_a_sweep_runs_from_the_library_in_grouped_workers(tmp_path):
    from llmhist.train.worker import read_request

    plan = S.plan_grid(_grid(tmp_path, n=3, tokens=4000))
    out = tmp_path / "sw"
    rows = S.run_local(out, plan, workers=1, threads=1)  # no CLI anywhere
    assert [r["state"] for r in rows] == ["finished"] * 3
    for r in plan.runs:
        cfg = read_request(out / r.name)  # each run folder holds its full, validated TrainConfig
        assert cfg.d_model == r.d_model and cfg.tokens == r.tokens and cfg.eval_every == 10 and cfg.threads == 1
        assert (out / "logs" / f"{r.name}.log").read_text().count("done ") == 1
    # one group of one budget shares one worker process
    assert len(list((out / "logs").glob("worker-*.log"))) == 1
    assert S.run_local(out, plan, workers=1, threads=1) == S.status(out)  # again: nothing to do


def test_queue_items_group_runs_of_one_budget_and_keep_workers_busy():
    plan = S.plan_isoflop(["llama"], [1e11, 3e11, 1e12], points=5, ctx=64, batch=32)
    items = S.queue_items(plan.runs, workers=2)
    assert sorted(r.name for it in items for r in it) == sorted(r.name for r in plan.runs)  # each run once
    assert all(len({r.group for r in it}) == 1 for it in items)  # a worker process trains one budget's runs
    assert len(items) >= 2 * 2 and len(items) < len(plan.runs)  # grouped, yet enough items for both workers
    assert sum(r.C for r in items[0]) >= sum(r.C for r in items[-1])  # longest first


def test_worker_reports_a_bad_request_and_goes_on(tmp_path):
    from llmhist.train import worker
    from llmhist.train.config import TrainConfig

    good, bad, logs = tmp_path / "good", tmp_path / "bad", tmp_path / "logs"
    worker.write_request(good, TrainConfig(size="nano", ctx=32, batch=8, tokens=32 * 8 * 2, data="markov:tokens=20000",
                                           out=str(good), threads=1))
    bad.mkdir()
    (bad / "run.json").write_text(json.dumps({"config": {"arch": "llama", "lerning_rate": 1}}))
    assert worker.run_dirs([bad, good], logs) == 2  # refused: exit 2, and the good run still trained
    assert (good / "summary.json").exists()
    marker = json.loads((logs / "bad.failed").read_text())
    assert "lerning_rate" in marker["error"] and str(bad / "run.json") in marker["error"]
    assert worker.run_dirs([good], logs) == 0  # finished: nothing to do


def test_points_gives_exactly_that_many_distinct_sizes_for_every_family():
    from llmhist.archs.registry import FAMILIES, get

    for fam in FAMILIES:
        if not get(fam).shape_known:
            continue
        budgets = S.default_budgets([fam])
        plan = S.plan_isoflop([fam], budgets, points=5)
        for C in budgets:
            Ns = [r.N for r in plan.runs if r.group == f"C={C:.3g}"]
            assert len(Ns) == len(set(Ns)) == 5, (fam, C, Ns)


def test_budgets_out_of_range_get_one_consistent_message():
    lo, hi = S.isoflop_range("llama", 16.0, 128, 16)
    with pytest.raises(RunError, match="too large") as e:
        S.plan_isoflop(["llama"], [1e30])
    assert "too small" not in str(e.value) and f"{hi:.2g}" in str(e.value)
    with pytest.raises(RunError, match="too small") as e:
        S.plan_isoflop(["llama"], [1e6])
    assert "too large" not in str(e.value) and f"{lo:.2g}" in str(e.value)
    S.plan_isoflop(["llama"], [lo * 1.01, hi * 0.99], points=3)  # the stated range does work


def _cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "llmhist", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _still_alive(pids: list[int], timeout: float = 20) -> list[int]:
    """The pids still alive after waiting up to `timeout` seconds for all of them to exit."""
    deadline = time.time() + timeout
    while time.time() < deadline and any(runstate._alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if runstate._alive(p)]


def _children_running(out: Path, timeout=120) -> list[int]:
    """Pids of the worker processes once one of them reports a run in progress."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = []
        for p in out.glob("*/progress.json"):
            try:
                d = json.loads(p.read_text())
            except (json.JSONDecodeError, OSError):
                continue
            if d.get("status") == "running" and runstate._alive(d.get("pid")):
                pids.append(d["pid"])
        if pids:
            return pids
        time.sleep(0.1)
    raise AssertionError("no run started")


def test_two_sweeps_on_one_folder_the_second_is_refused_naming_the_first(tmp_path):
    grid, out = _grid(tmp_path, n=2, tokens=4000), tmp_path / "sw"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from llmhist.core.files import exclusive_lock\n"
                               f"with exclusive_lock({str(out)!r}, 'llmhist sweep'):\n    print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = runner.invoke(app, ["sweep", "--grid", str(grid), "--out", str(out), "--yes", "--workers", "1",
                                "--threads", "1"])
        assert r.exit_code == 2 and f"pid {holder.pid}" in r.output and "llmhist sweep" in r.output, r.output
        assert not (out / "plan.json").exists()  # nothing written while the other one holds it
        from llmhist.core.files import Locked

        with pytest.raises(Locked):
            S.run_local(out, S.plan_grid(grid), workers=1, threads=1)
    finally:
        holder.kill()
        holder.wait()


def test_sigint_to_the_sweep_parent_stops_its_children_and_says_how_to_resume(tmp_path):
    grid, out = _grid(tmp_path, n=2, tokens=400000), tmp_path / "sw"
    args = ["sweep", "--grid", str(grid), "--out", str(out), "--yes", "--workers", "1", "--threads", "1"]
    parent = _cli(args, start_new_session=True)
    try:
        kids = _children_running(out)
        os.kill(parent.pid, signal.SIGINT)  # the parent alone, as `kill -INT` would
        _, err = parent.communicate(timeout=60)
        assert parent.returncode == 130, err
        assert "resumable" in err and "same command" in err
        assert not _still_alive(kids), "a worker outlived its sweep"
        assert "finished" not in [r["state"] for r in S.status(out)]
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)


def test_a_sweep_parent_killed_outright_takes_its_children_with_it(tmp_path):
    grid, out = _grid(tmp_path, n=2, tokens=400000), tmp_path / "sw"
    args = ["sweep", "--grid", str(grid), "--out", str(out), "--yes", "--workers", "1", "--threads", "1"]
    parent = _cli(args, start_new_session=True)
    try:
        kids = _children_running(out)
        os.kill(parent.pid, signal.SIGKILL)  # no handler runs: the kernel's parent-death signal must do it
        parent.wait()
        assert not _still_alive(kids), "an orphaned worker kept training"
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sweep_run_is_the_default_subcommand_and_commands_share_no_private_helpers(tmp_path):
    """`llmhist sweep --arch ...` and `llmhist sweep run --arch ...` plan the same; no command module
    imports another's names (shared CLI views live in cli/common.py and cli/runs_view.py)."""
    import ast
    from pathlib import Path

    args = ["--arch", "gpt2", "--budgets", "1e11,3e11", "--points", "3", "--dry-run", "--json"]
    plain, sub = (runner.invoke(app, ["sweep", *pre, *args]) for pre in ([], ["run"]))
    assert plain.exit_code == sub.exit_code == 0, plain.output
    assert json.loads(plain.output)["hash"] == json.loads(sub.output)["hash"]
    cli = Path(__file__).parents[1] / "cli"
    modules = sorted(p.name for p in cli.glob("*.py"))
    assert {"study_cmd.py", "scaling_cmd.py", "fits_view.py", "runs_view.py"} <= set(modules)
    for name in modules:  # main.py registers the commands: it may import the modules, never a name from one
        for node in ast.walk(ast.parse((cli / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.endswith("_cmd"), f"{name} imports from {node.module}"
                assert node.level != 1 or not any(a.name.startswith("_") for a in node.names), \
                    f"{name} imports a private name from the cli module {node.module}"


def test_the_plan_title_is_short_and_the_time_model_is_verbose(tmp_path):
    """First-hour K1: "isoflop sweep: 6 runs, est. N min", the time model only with --verbose."""
    args = ["sweep", "--budgets", "3e10,1e11", "--points", "3", "--dry-run", "--out", str(tmp_path / "s")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    first = next(line for line in r.output.splitlines() if "sweep:" in line)
    assert "6 runs, est. " in first and " min" in first and "FLOP/s" not in r.output
    assert "time model" not in r.output
    v = runner.invoke(app, [*args, "--verbose"])
    assert v.exit_code == 0 and "time model: " in v.output
