"""Ablation plans, run folders and the report, without training: a finished ablation is faked with
summary.json files whose losses follow a known law (the target's frontier at k x compute)."""

import json
import math
import os
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

from llmhist.archs import accounting
from llmhist.archs import changes as CH
from llmhist.core.errors import UserError
from llmhist.scaling import ablation, ablation_plots
from llmhist.train import ablate as A
from llmhist.train import runfolder as rf
from llmhist.train.config import TrainConfig

SMALL = {"budgets": [3e11, 1e12], "points": 3, "seeds": 3}


def plan(base, target, peak=None, **options):
    """An ablation plan from keyword options (A.PlanRequest's fields)."""
    return A.plan(A.PlanRequest(base, target, **options), peak=peak)


def test_default_plan_is_sized_for_twenty_minutes_and_says_how():
    p = plan("gpt2", "llama3", peak=3.3e11)
    assert p["estimated_wall_s"] <= 20 * 60
    assert "per token" in p["estimate"]["how"] and "given peak" in p["estimate"]["how"]
    assert "assumed peak" in plan("gpt2", "llama3")["estimate"]["how"]
    assert [v["id"] for v in p["variants"]] == ["v00-base", "v01-plus-recipe", "v02-target"]
    assert {c["change"] for c in p["comparisons"]} == {"recipe", "arch", "total"}
    total = sum(v["estimated_wall_s"] for v in p["variants"]) + A.FIT_S + A.START_S
    assert p["estimated_wall_s"] == pytest.approx(total, abs=0.2)


def test_every_run_is_a_train_config_with_a_buildable_variant_at_equal_compute():
    p = plan("gpt2", "llama3", **SMALL)
    known = {f.name for f in fields(TrainConfig)}
    shapes = {}
    for v in p["variants"]:
        for r in v["runs"]:
            cfg = r["config"]
            assert set(cfg) <= known
            assert cfg["variant"] == {"base": "gpt2", "target": "llama3", "changes": v["changes"]}
            a = CH.variant_spec(cfg["variant"], cfg["d_model"], cfg["n_layers"], cfg["n_heads"], 256,
                                p["common"]["ctx"])
            N = accounting.params(a).active
            assert r["N"] == N and cfg["tokens"] == r["D"]
            assert 6 * N * r["D"] == pytest.approx(r["budget"], rel=1e-3)  # equal compute, 6N convention
            assert cfg["eval_every"] == r["steps"]  # one evaluation, at the end
            if r["role"] == "frontier":
                shapes.setdefault(v["id"], set()).add((r["budget"], cfg["d_model"], cfg["n_layers"], cfg["n_heads"]))
    assert len({frozenset(s) for s in shapes.values()}) == 1  # every variant trains the same shapes
    seeds = [r for v in p["variants"] for r in v["runs"] if r["role"] == "seed_repeat"]
    assert len(seeds) == 2 and {r["config"]["seed"] for r in seeds} == {1, 2}
    assert all(r["budget"] == 3e11 for r in seeds)


def test_modes_and_refusals():
    each = A.variants("gpt2", "llama3", "each", "positions,rope_theta")
    theta = next(c for c in each["comparisons"] if c["change"] == "rope_theta")
    ref = next(v for v in each["variants"] if v["id"] == theta["reference"])
    assert ref["changes"] == ["positions"]  # theta is measured on top of RoPE
    drop = A.variants("gpt2", "llama3", "drop", "positions")
    d = drop["comparisons"][0]
    assert d["variant"] == "v00-target" and d["also_dropped"] == ["rope_theta"]
    ladder = A.variants("gpt2", "llama3", "ladder", "all")
    assert len(ladder["variants"]) == len(CH.derive("gpt2", "llama3")) + 1
    assert ladder["comparisons"][-1]["total"]
    with pytest.raises(A.AblationError, match="depends on 'positions'"):
        A.variants("gpt2", "llama3", "each", "rope_theta")
    with pytest.raises(CH.ChangeError, match="depends on 'positions'"):
        A.variants("gpt2", "llama3", "ladder", "rope_theta")
    with pytest.raises(CH.ChangeError, match="no such change"):
        A.variants("gpt2", "llama3", "ladder", "rope,mlp")
    with pytest.raises(A.AblationError, match="--mode"):
        A.variants("gpt2", "llama3", "zigzag")
    with pytest.raises(A.AblationError, match="too small"):
        plan("gpt2", "llama3", budgets=[1e9, 3e9])
    with pytest.raises(A.AblationError, match="two positive"):
        plan("gpt2", "llama3", budgets=[1e12])


def _fake_finished(p: dict, out, k_by_variant: dict, sd: float, rng):
    """summary.json for every run: loss on the reference law at k x compute, with seed noise."""
    def law(N, D):
        return 1.2 + 30 / N**0.3 + 40 / D**0.3

    for v in p["variants"]:
        k = k_by_variant[v["id"]]
        for r in v["runs"]:
            d = out / r["name"]
            d.mkdir(parents=True, exist_ok=True)
            s = math.sqrt(k)
            L = law(r["N"] * s, r["D"] * s) + rng.normal(0, sd)
            rf.write_summary(d, rf.Summary(status="finished", val_loss=L, N=r["N"], C=6 * r["N"] * r["D"]))


def test_report_recovers_the_gains_of_a_faked_ladder(tmp_path):
    p = plan("gpt2", "llama3", budgets=[1e12, 3e12], points=5, seeds=4, out=tmp_path)
    assert len(A.prepare(p, tmp_path)) == p["n_runs"]
    run_json = json.loads(next(tmp_path.glob("v00-base-*/run.json")).read_text())
    assert run_json["config"]["variant"]["changes"] == []
    # the folder is a sweep folder: `llmhist sweep status` reads it
    from llmhist.train import sweep as S

    assert S.load_plan(tmp_path).kind == "ablation" and len(S.status(tmp_path)) == p["n_runs"]
    # seed noise as this machine's (sd 0.009 nats over 6 seeds of gpt2 at 3e11)
    _fake_finished(p, tmp_path, {"v00-base": 1.0, "v01-plus-recipe": 1.5, "v02-target": 3.0}, 0.01,
                   np.random.default_rng(0))
    res = ablation.report(tmp_path, n_boot=300)
    by = {r["change"]: r for r in res["comparisons"]}
    assert res["seed_sd"] > 0 and len(res["seed_runs"][0]["losses"]) == 4
    for name, k in (("recipe", 1.5), ("arch", 2.0), ("total", 3.0)):
        for b in by[name]["budgets"]:
            assert b["interval"][0] <= k <= b["interval"][1], (name, b)
    assert all(b["interval"][0] > 1 for b in by["total"]["budgets"])
    cum = by["arch"]["cumulative"]
    assert cum == pytest.approx([x["ceg"] * y["ceg"] for x, y in zip(by["recipe"]["budgets"], by["arch"]["budgets"])])
    assert (tmp_path / "fits" / "ablation-ceg.json").exists()
    assert json.loads((tmp_path / "fits" / "v02-target-frontier.json").read_text())["law"] == "frontier"
    assert [a["law"] for a in res["allocation"]] == ["hoffmann2022", "epoch2024"]
    assert all(b["ceg"] >= 1 for a in res["allocation"] for b in a["budgets"])
    plots = ablation_plots.write_plots(res, tmp_path / "plots", "png")
    assert [p.rsplit("/", 1)[1] for p in plots] == ["ablation-frontiers.png", "ablation-ceg.png"]
    assert all((tmp_path / "plots" / p.rsplit("/", 1)[1]).stat().st_size > 1000 for p in plots)
    assert "v02-target" in ablation_plots.terminal_plot(res)
    cli = subprocess.run([sys.executable, "-m", "llmhist", "ablate", "gpt2", "llama3", "--report", "--out",
                          str(tmp_path), "--json", "--bootstrap", "50"], capture_output=True, text=True, check=True)
    doc = json.loads(cli.stdout)
    assert [r["change"] for r in doc["comparisons"]] == ["recipe", "arch", "total"]
    assert {"ceg", "interval", "verdict", "extrapolated"} <= set(doc["comparisons"][0]["budgets"][0])
    # the same plan again is accepted (resume); another plan in the folder is refused
    assert A.prepare(p, tmp_path) == []
    other = plan("gpt2", "llama3", budgets=[1e12, 3e12], points=4, seeds=4, out=tmp_path)
    with pytest.raises(UserError, match="another sweep plan"):
        A.prepare(other, tmp_path)
    st = subprocess.run([sys.executable, "-m", "llmhist", "sweep", "status", str(tmp_path)], capture_output=True,
                        text=True, check=True, env={**os.environ, "COLUMNS": "200"})
    assert "finished" in st.stdout


def test_null_ablation_reports_no_gain(tmp_path):
    """A change that does nothing, faked 5 times with this machine's seed noise: "no gain detectable"
    at 9 or more of the 10 budgets (a 90% interval: 9 expected), never a gain above 1.25x."""
    p = plan("gpt2", "llama3", budgets=[1e12, 3e12], points=4, seeds=4, out=tmp_path, changes="recipe")
    verdicts = []
    for rep in range(5):
        out = tmp_path / f"rep{rep}"
        assert len(A.prepare(p, out)) == p["n_runs"]
        _fake_finished(p, out, {v["id"]: 1.0 for v in p["variants"]}, 0.01, np.random.default_rng(rep))
        res = ablation.report(out, n_boot=300)
        for b in res["comparisons"][0]["budgets"]:
            verdicts.append(b["verdict"] == "no gain detectable at this scale")
            assert b["ceg"] < 1.25, b
    assert sum(verdicts) >= 9, verdicts


@pytest.mark.parametrize("args", [["--dry-run", "--json"], ["--list", "--json"], ["--list"], ["--dry-run"]])
def test_cli_list_and_dry_run_without_torch(args):
    code = ("import sys\n"
            "from typer.main import get_command\n"
            "from llmhist.cli.main import app\n"
            f"get_command(app).main(['ablate', 'gpt2', 'llama3', *{args!r}], standalone_mode=False)\n"
            "print([m for m in ('torch', 'matplotlib', 'scipy') if m in sys.modules], file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.stderr.strip().splitlines()[-1] == "[]"
    if args == ["--dry-run", "--json"]:
        plan = json.loads(r.stdout)
        assert plan["estimated_wall_s"] > 0 and plan["mode"] == "ladder"
        assert {"name", "year", "introduced_by"} <= set(plan["changes"][0])
        assert all("runs" in v and "estimated_wall_s" in v for v in plan["variants"])
    elif args == ["--list", "--json"]:
        assert [c["name"] for c in json.loads(r.stdout)] == [c.name for c in CH.derive("gpt2", "llama3")]
    elif args == ["--list"]:
        assert "palm-8b" in r.stdout and "rope_theta" in r.stdout
    else:
        assert "estimated wall time" in r.stdout and "v02-target" in r.stdout


def test_cli_refuses_with_a_message():
    r = subprocess.run([sys.executable, "-m", "llmhist", "ablate", "gpt2", "llama3", "--dry-run", "--changes",
                        "rope_theta"], check=False, capture_output=True, text=True)
    assert r.returncode == 2 and "depends on 'positions'" in r.stderr


def test_measured_peak_is_the_device_modules(monkeypatch):
    from llmhist.train import device
    from llmhist.train.sweep import measured_peak

    monkeypatch.setattr(device, "cpu_matmul_peak", lambda threads=None, refresh=False: 1.5e11)
    peak, how = measured_peak(threads=2)
    assert peak == 1.5e11 and "measured" in how and "2 threads" in how


# Bad input, in tests/test_bad_input.py's style: the exit code, a message naming the option (or the
# name that is wrong), no traceback, and nothing written. {new} is a folder that must not exist after.
BAD = [
    ("gtp2 llama3", ("unknown architecture", "gtp2")),
    ("gpt2 lama3", ("unknown architecture", "lama3")),
    ("llama-7b llama-65b", ("same choices",)),
    ("gpt2 gpt4", ("gpt4", "never published")),
    ("gpt2 llama3 --changes rope_theta", ("--changes", "depends on 'positions'")),
    ("gpt2 llama3 --changes rope,mlp", ("--changes", "'rope'", "no such change")),
    ("gpt2 llama3 --changes parallel_block", ("--changes", "do not differ")),
    ("gpt2 llama3 --changes ,", ("--changes", "at least one change")),
    ("gpt2 llama3 --mode zigzag", ("--mode", "ladder, each or drop")),
    ("gpt2 llama3 --budgets 1e9,3e9", ("--budgets", "too small")),
    ("gpt2 llama3 --budgets 1e12", ("--budgets", "two positive")),
    ("gpt2 llama3 --budgets abc", ("--budgets", "comma-separated numbers")),
    ("gpt2 llama3 --budgets 1e12,-3e12", ("--budgets", "two positive")),
    ("gpt2 llama3 --seeds 0", ("--seeds",)),
    ("gpt2 llama3 --points 2", ("--points",)),
    ("gpt2 llama3 --spread 1", ("--spread",)),
    ("gpt2 llama3 --eval-batches 0", ("--eval-batches",)),
    ("gpt2 llama3 --plot gif", ("--plot",)),
    ("gpt2 llama3 --launcher pbs", ("--launcher",)),
    ("gpt2 llama3 --bootstrap 3", ("--bootstrap",)),
    ("gpt2 llama3 --centre-tokens-per-param 0.5", ("--centre-tokens-per-param 0.5", "between 1 and 1e5")),
    # one meaning per option name: the sweep's --tokens-per-param is a list of horizons
    ("gpt2 llama3 --tokens-per-param 50", ("--tokens-per-param 50", "--centre-tokens-per-param 50")),
]


@pytest.mark.parametrize("args,says", BAD, ids=[a for a, _ in BAD])
def test_bad_input_is_refused_before_anything_is_written(args, says, tmp_path):
    from typer.testing import CliRunner

    from llmhist.cli.main import app

    new = tmp_path / "new"
    r = CliRunner().invoke(app, ["ablate", *args.split(), "--yes", "--out", str(new)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, (args, r.output, r.exception)
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    for s in says:
        assert s in text, (args, s, text)
    assert not new.exists(), "a refused ablation wrote files"


def test_a_gqa_base_plans_at_the_heads_its_family_keeps():
    """llama2 (GQA 8:1, keeping two KV heads) -> qwen2: every shape has 16+ heads and builds for
    every variant; at the default budgets its smallest shape is too big to bracket, and the
    refusal says from which budget it would (it used to crash on an empty shape list)."""
    with pytest.raises(A.AblationError, match=r"too small to bracket.*from about 2e\+13"):
        plan("llama2", "qwen2")
    p = plan("llama2", "qwen2", budgets=[2e13, 6e13], seeds=1)
    for v in p["variants"]:
        for r in v["runs"]:
            c = r["config"]
            a = CH.variant_spec(c["variant"], c["d_model"], c["n_layers"], c["n_heads"], 256, 128)
            assert a.n_heads % 8 == 0 and a.n_heads // a.kv_heads == 8 and a.kv_heads >= 2


def test_subcommands_are_the_old_flags():
    """`ablate plan|list|report` are `--dry-run`, `--list`, `--report`: the same screens."""
    from typer.testing import CliRunner

    from llmhist.cli.main import app

    r = CliRunner()
    small = ["gpt2", "llama3", "--budgets", "1e12,3e12", "--points", "3", "--seeds", "2", "--json"]
    assert r.invoke(app, ["ablate", "plan", *small]).output == r.invoke(app, ["ablate", *small, "--dry-run"]).output
    assert r.invoke(app, ["ablate", "list", "gpt2", "llama3"]).output == \
        r.invoke(app, ["ablate", "gpt2", "llama3", "--list"]).output
    missing = r.invoke(app, ["ablate", "report", "/nonexistent/abl"])
    assert missing.exit_code == 2 and "plan.json" in missing.output


def test_a_report_while_a_variant_has_no_finished_runs_says_so_and_fails(tmp_path):
    """Reliability F10: not an internal error in a table cell with exit 0, but which variant has no
    finished runs (of how many), how to finish them, and a non-zero exit; nothing is written."""
    p = plan("gpt2", "llama3", budgets=[1e12, 3e12], points=3, seeds=1, out=tmp_path, changes="recipe")
    A.prepare(p, tmp_path)
    base, variant = p["variants"][0], p["variants"][1]
    _fake_finished({"variants": [base]}, tmp_path, {base["id"]: 1.0}, 0.0, np.random.default_rng(0))
    with pytest.raises(UserError) as e:
        ablation.report(tmp_path, n_boot=50)
    msg = str(e.value)
    assert f"{variant['id']} has no finished runs yet (0 of {len(variant['runs'])})" in msg
    assert "run the same command" in msg and base["id"] not in msg.split(";")[0].split(":", 1)[1]
    assert not (tmp_path / "fits").exists()
    cli = subprocess.run([sys.executable, "-m", "llmhist", "ablate", "report", str(tmp_path), "--bootstrap", "50"],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and "no finished runs yet" in cli.stdout + cli.stderr
    assert "Traceback" not in cli.stderr


def test_json_holds_the_whole_stdout_of_an_ablation_run(tmp_path):
    """With --json, the plan's table and notes go to stderr: stdout parses as one JSON document."""
    p = plan("gpt2", "llama3", budgets=[1e12, 3e12], points=3, seeds=1, out=tmp_path, changes="recipe")
    A.prepare(p, tmp_path)
    _fake_finished(p, tmp_path, {v["id"]: 1.0 for v in p["variants"]}, 0.0, np.random.default_rng(0))
    cli = subprocess.run([sys.executable, "-m", "llmhist", "ablate", "gpt2", "llama3", "--changes", "recipe",
                          "--budgets", "1e12,3e12", "--points", "3", "--seeds", "1", "--out", str(tmp_path),
                          "--yes", "--json", "--bootstrap", "50", "--workers", "1", "--threads", "1"],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    doc = json.loads(cli.stdout)  # nothing but the JSON
    assert [r["change"] for r in doc["comparisons"]] == ["recipe"]
    assert "FLOP convention" in cli.stderr


def test_a_frontier_at_the_grid_edge_is_flagged_and_no_gain_keeps_its_estimate(tmp_path):
    """First-hour W9: where a budget's lowest run is the grid's smallest (or largest) model the report
    says so; C17: "no gain detectable" stands beside the point estimate, not instead of it."""
    from llmhist.cli import ablate_cmd

    N = np.array([1e5, 2e5, 4e5, 1e5, 2e5, 4e5, 1e5, 2e5, 4e5])
    L = np.array([3.0, 3.1, 3.2, 3.0, 2.9, 3.0, 3.3, 3.2, 3.1])  # rising, bracketed, falling with N
    budget = np.repeat([1e11, 3e11, 1e12], 3)
    p = (budget, N, L, budget)
    assert ablation.grid_edges(p, ["lowest", "parabola", "lowest"]) == ["smallest", None, "largest"]
    res = {"frontiers": {"v00-base": {"C": [1e11, 3e11, 1e12], "edge": ["smallest", None, "largest"]}},
           "left_out": [], "comparisons": [], "allocation": [], "paths": [], "base": "gpt2", "target": "llama3",
           "mode": "each", "seed_sd": 0.0, "budgets": [1e11, 3e11, 1e12]}
    import typer
    from typer.testing import CliRunner

    monkey = typer.Typer()

    @monkey.command()
    def show():
        ablate_cmd._report(tmp_path, 50, None, False)

    import unittest.mock as mock

    with mock.patch.object(ablation, "report", return_value=res):
        out = " ".join(CliRunner().invoke(monkey, []).output.split())
    assert "v00-base: at C=1e+11 the frontier is the smallest run" in out
    assert "at C=1e+12 the frontier is the largest run" in out and "C=3e+11 the frontier" not in out
    cell = ablate_cmd._iv({"ceg": 0.869, "interval": [0.777, 654.0], "verdict": "no gain detectable at this scale",
                           "extrapolated": False})
    assert cell.startswith("0.869x") and "no gain detectable [0.777, 654]" in cell


def test_the_allocation_line_carries_the_laws_range_check(monkeypatch):
    """First-hour W6: each allocation budget has the law's range warning (None inside its runs), and
    the report prints it as a FLAG line."""
    from llmhist.scaling import laws as LW

    monkeypatch.setattr(LW, "allocation_warning", lambda law, C: f"{law.name}: C = {C:.3g} is outside",
                        raising=False)
    (row,) = ablation.allocation_rows([1e11, 1e12], ("hoffmann2022",))
    assert [b["warning"].split(": ", 1)[1] for b in row["budgets"]] == ["C = 1e+11 is outside", "C = 1e+12 is outside"]
    monkeypatch.delattr(LW, "allocation_warning")
    (row,) = ablation.allocation_rows([1e11], ("hoffmann2022",))
    assert "warning" in row["budgets"][0]  # the fitted-range check: None for a law without a range
