"""Sweeps: planning, a real local queue killed and restarted, a real Slurm cluster, torchrun DDP."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.train import sweep as S
from llmhist.train.loop import RunError, read_metrics

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
    plan = S.plan_isoflop(["gpt2", "llama2"], [1e12, 3e12], points=4, ctx=64)
    assert {r.arch for r in plan.runs} == {"gpt2", "llama2"}
    from llmhist.archs.registry import build_spec

    for r in plan.runs:
        a = build_spec(r.arch, d_model=r.d_model, n_layers=r.n_layers, n_heads=r.n_heads)
        assert a.family == r.arch
        if r.arch == "llama2":
            assert a.n_heads // a.kv_heads == 8


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
    (out / "r1" / "summary.json").write_text(json.dumps({"status": "diverged", "steps": 3, "error": "loss became nan"}))
    rows = {r["run"]: r for r in S.status(out)}
    assert rows["r0"]["state"] == "failed" and "MemoryError" in rows["r0"]["error"]
    assert rows["r1"]["state"] == "diverged"
    r = runner.invoke(app, ["sweep", "status", str(out)])
    assert r.exit_code == 0 and "MemoryError" in r.output and "diverged" in r.output
    # a long log keeps its last line as the error; failed runs relaunch only when asked, on any launcher
    (out / "logs" / "r0.failed").write_text(json.dumps({"exit": 1, "log_tail": "x" * 3000 + "\nOSError: disk"}))
    assert S.run_state(out / "r0")["error"] == "OSError: disk"
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
    """A real single-node Slurm (scripts/slurm-up.sh: munged, slurmctld, slurmd on 127.0.0.1).
    CI sets LLMHIST_REQUIRE_SLURM=1, so there a cluster that cannot start fails the test."""
    up = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-up.sh")], capture_output=True, text=True)
    if up.returncode != 0:
        msg = f"no Slurm cluster ({up.stderr.strip()[-300:]}); scripts/slurm-up.sh needs root and Debian packages"
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
    assert not S._alive(p.pid)
    assert S._alive(os.getpid())
    p.wait()
    assert not S._alive(p.pid)
