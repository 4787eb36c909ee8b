"""`llmhist fit RUNS/`: runs folders at any depth, conventions, held-out error, plots; `recommend`
and `compare` reading the fit files; `llmhist study` end to end."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.scaling import laws
from llmhist.train import runfolder as rf

runner = CliRunner()
TRUE = laws.Chinchilla("true", E=1.9, A=400.0, B=1200.0, alpha=0.33, beta=0.30)


def write_run(folder, N, D, loss, status="finished", objective="causal_lm", evals=8, arch=None, entropy=None,
              n_active=None, entropy_eval=None, budget=None):
    """A run folder written through the run folder's schema (llmhist.train.runfolder): a schema
    change breaks these fixtures instead of passing silently. `budget`: the nominal budget its
    run.json names (a sweep's)."""
    folder.mkdir(parents=True)
    rf.write_config(folder, {"train": {}, "arch": arch or {}})
    if budget is not None:
        rf.write_request(folder, rf.RunRequest({"arch": "llama"}, budget=budget, group=f"C={budget:.3g}"))
    rows = []
    for i in range(1, evals + 1):
        d = D * i / evals
        rows.append({"step": i, "tokens": d, "flops": 6 * N * d, "train_loss": TRUE.loss(N, d),
                     "val_loss": TRUE.loss(N, d), "lr": 0.001, "tokens_per_s": 1000, "wall_s": 1})
    rf.write_metrics(folder, rows)
    if status is None:
        return
    rf.write_summary(folder, rf.Summary(
        status=status, N=N, N_non_embedding=0.8 * N, N_active=n_active or N, D=D, C=6 * N * D,
        C_counted=1.25 * 6 * N * D, val_loss=loss, train_loss_smoothed=loss + 0.01, objective=objective,
        data_fingerprint="abc", entropy_nats_per_token=entropy, entropy_eval_nats_per_token=entropy_eval))


def make_runs(root, noise=0.003, arch=None, law=TRUE, entropy=None, entropy_eval=None):
    rng = np.random.default_rng(0)
    for C in np.geomspace(1e17, 1e20, 4):
        for j, n in enumerate(np.geomspace(law.n_opt(C) / 5, law.n_opt(C) * 5, 7)):
            d = C / (6 * n)
            write_run(root / f"C{C:.0e}" / f"n{j}", n, d, law.loss(n, d) * math.exp(rng.normal(0, noise)), arch=arch,
                      entropy=entropy, entropy_eval=entropy_eval)
    write_run(root / "bad" / "diverged", 1e8, 1e9, float("nan"), status="diverged")
    write_run(root / "bad" / "unfinished", 1e8, 1e9, 3.0, status=None)


def test_fit_runs_folder_fits_every_law_lists_left_out_runs_and_plots(tmp_path):
    make_runs(tmp_path / "runs")
    out = tmp_path / "fits"
    r = runner.invoke(app, ["fit", str(tmp_path / "runs"), "--bootstrap", "30", "--out", str(out), "--json",
                            "--holdout", "0.2"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    fits = {f["law"]: f for f in res["fits"]}
    assert set(fits) == {"chinchilla", "isoflop", "envelope", "kaplan"}
    reasons = {x["run"].split("/")[-1]: x["reason"] for x in res["left_out"]}
    assert reasons["diverged"] == "diverged" and "unfinished" in reasons["unfinished"]
    ch = fits["chinchilla"]
    assert ch["n_points"] == 28 and abs(ch["params"]["a"] - TRUE.a) < 0.05
    lo, hi = ch["intervals"]["a"]
    assert lo - 0.02 <= TRUE.a <= hi + 0.02
    assert ch["held_out"]["held_out_points"] == 6 and ch["held_out"]["mae_loss"] < 0.05
    assert abs(fits["isoflop"]["params"]["a"] - TRUE.a) < 0.05
    assert abs(fits["envelope"]["params"]["a"] - TRUE.a) < 0.1  # curves end on their own budget
    for name in ("isoflop", "frontier", "optimal", "contours"):
        for ext in ("png", "svg"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000
    saved = json.loads((out / "runs-chinchilla.json").read_text())
    assert saved["conventions"] == {"N": "total", "C": "6ND", "loss": "final"}


def test_conventions_are_applied_and_recorded(tmp_path):
    make_runs(tmp_path / "runs")
    base = ["fit", str(tmp_path / "runs"), "--bootstrap", "0", "--plot", "none", "--law", "chinchilla", "--json"]
    ref = json.loads(runner.invoke(app, base + ["--out", str(tmp_path / "a")]).output)["fits"][0]
    ne = json.loads(runner.invoke(app, base + ["--out", str(tmp_path / "b"), "--n-convention", "non_embedding"]).output)
    ne = ne["fits"][0]
    assert ne["conventions"]["N"] == "non_embedding"
    # N scaled by 0.8 everywhere: the same exponents, a smaller N_opt coefficient
    assert ne["params"]["alpha"] == pytest.approx(ref["params"]["alpha"], rel=0.05)
    cc = json.loads(runner.invoke(app, base + ["--out", str(tmp_path / "c"), "--c-convention", "counted"]).output)
    assert cc["fits"][0]["conventions"]["C"] == "counted"
    sm = json.loads(runner.invoke(app, base + ["--out", str(tmp_path / "d"), "--loss", "smoothed"]).output)
    assert sm["fits"][0]["params"]["E"] == pytest.approx(ref["params"]["E"] + 0.01, abs=0.05)
    r = runner.invoke(app, base + ["--n-convention", "embedding"])
    assert r.exit_code == 2 and "non_embedding" in r.output


def test_recommend_and_compare_read_every_kind_of_fit_file(tmp_path):
    make_runs(tmp_path / "runs")
    out = tmp_path / "fits"
    assert runner.invoke(app, ["fit", str(tmp_path / "runs"), "--bootstrap", "20", "--out", str(out),
                               "--plot", "none"]).exit_code == 0
    files = [str(out / f"runs-{k}.json") for k in ("chinchilla", "isoflop", "envelope")]
    r = runner.invoke(app, ["recommend", "--flops", "1e21", "--law", "hoffmann2022", "--json",
                            *[x for f in files for x in ("--fit", f)]])
    assert r.exit_code == 0, r.output
    rows = {x["law"]: x for x in json.loads(r.output)["recommendations"]}
    iso = rows["runs-isoflop"]
    assert iso["loss"] is None and "N_opt_interval" in iso
    assert iso["N_opt"] == pytest.approx(TRUE.n_opt(1e21), rel=0.3)
    assert rows["runs-chinchilla"]["N_opt"] == pytest.approx(TRUE.n_opt(1e21), rel=0.3)
    r = runner.invoke(app, ["recommend", "--flops", "1e21"] + [x for f in files for x in ("--fit", f)])
    assert r.exit_code == 0 and "n/a" in r.output
    r = runner.invoke(app, ["compare", "gpt3", "chinchilla", "--fit", files[0], "--json"])
    assert r.exit_code == 0
    rows = json.loads(r.output)["rows"]
    labels = {row["section"] for row in rows}
    assert "compute-optimal (runs-chinchilla)" in labels
    # a fit of runs at 1e17-1e20 FLOPs judging GPT-3 (3e23) says so, naming the fitted range
    warn = [row for row in rows if row["section"] == "compute-optimal (runs-chinchilla)" and row["label"] == "warning"]
    assert warn and "outside the range this law was fitted on" in warn[0]["values"][0]


def test_terminal_plot_and_bad_runs_folders(tmp_path):
    make_runs(tmp_path / "runs")
    r = runner.invoke(app, ["fit", str(tmp_path / "runs"), "--bootstrap", "0", "--out", str(tmp_path / "f"),
                            "--plot", "terminal"])
    assert r.exit_code == 0 and "isoFLOP curves" in r.output and "minima" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["fit", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no finished runs" in r.output
    # a T5 run among causal-LM runs is left out with its reason, not a failure
    write_run(tmp_path / "runs" / "t5" / "a", 1e6, 1e7, 3.0, objective="span_corruption")
    r = runner.invoke(app, ["fit", str(tmp_path / "runs"), "--bootstrap", "0", "--plot", "none", "--json",
                            "--out", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    reasons = {x["run"].split("/")[-1]: x["reason"] for x in json.loads(r.output)["left_out"]}
    assert "span_corruption" in reasons["a"]
    r = runner.invoke(app, ["fit", str(tmp_path / "runs"), "--law", "chinchilla", "--holdout", "0.7"])
    assert r.exit_code == 2 and "--holdout" in r.output


def test_study_runs_sweep_fit_recommend_and_plots_end_to_end(tmp_path):
    from llmhist.train.device import usable_cores

    out = tmp_path / "study"
    # the smallest plan that still fits: Approach 3 needs 6 points (2 budgets x 3 sizes); batch 64 takes
    # a quarter of the steps of batch 16 at the same compute
    r = runner.invoke(app, ["study", "--budgets", "3e10,6e10", "--points", "3", "--ctx", "32", "--batch", "64",
                            "--data", "markov:order=2,alphabet=16,tokens=400000", "--bootstrap", "10",
                            # a given split skips measuring the best one (~11 s of this test)
                            "--workers", str(min(2, usable_cores())), "--threads", "1",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    summaries = list(out.rglob("summary.json"))
    assert len(summaries) == 6 and all(json.loads(p.read_text())["status"] == "finished" for p in summaries)
    assert (out / "fits" / "study-chinchilla.json").exists()
    assert (out / "fits" / "frontier.png").exists() and "plots:" in r.output and "frontier.png" in r.output
    assert "compute-optimal allocation" in r.output and "synthetic Markov source" in r.output


GPT2 = {"family": "gpt2", "d_model": 64, "n_heads": 4, "n_kv_heads": None, "d_ff": 256, "norm": "layernorm",
        "positions": "learned", "mlp": "gelu", "moe": None}
LLAMA = {"family": "llama3", "d_model": 64, "n_heads": 8, "n_kv_heads": 1, "d_ff": 224, "norm": "rmsnorm",
         "positions": "rope", "mlp": "swiglu", "moe": None}


def test_spec_key_ignores_sizes_and_keeps_shape_ratios():
    from llmhist.scaling.runs import spec_key

    k1, label = spec_key({"arch": GPT2, "recipe": {"lr": 1}})
    k2, _ = spec_key({"arch": {**GPT2, "d_model": 128, "n_heads": 8, "d_ff": 512, "name": "gpt2-x"}, "recipe": {"lr": 1}})
    assert k1 == k2 and label == "gpt2"
    assert spec_key({"arch": {**GPT2, "n_kv_heads": 1}})[0] != spec_key({"arch": GPT2})[0]  # MHA -> MQA
    assert spec_key({"arch": {**GPT2, "d_ff": 128}})[0] != spec_key({"arch": GPT2})[0]  # another MLP width
    v = {"base": "gpt2", "target": "llama3", "changes": ["rope"]}
    assert spec_key({"arch": GPT2, "train": {"variant": v}})[1] == "gpt2+rope"
    # an ablation's variants are named by whole kinds of change where they hold all of one
    from llmhist.archs import changes as CH

    ch = CH.derive("gpt2", "llama3")
    recipe = {"base": "gpt2", "target": "llama3", "changes": [c.name for c in ch if c.kind == "recipe"]}
    assert spec_key({"arch": GPT2, "train": {"variant": recipe}})[1] == "gpt2+recipe"
    both = {**recipe, "changes": [c.name for c in ch]}
    assert spec_key({"arch": GPT2, "train": {"variant": both}})[1] == "gpt2+recipe+arch = llama3"
    some = {**recipe, "changes": recipe["changes"] + ["norm"]}
    assert spec_key({"arch": GPT2, "train": {"variant": some}})[1] == "gpt2+norm+recipe"


def test_a_folder_of_two_specs_is_fitted_per_spec_with_a_comparison(tmp_path, monkeypatch):
    other = laws.Chinchilla("other", E=1.7, A=300.0, B=900.0, alpha=0.35, beta=0.30)
    make_runs(tmp_path / "sweep" / "gpt2", arch=GPT2)
    make_runs(tmp_path / "sweep" / "llama3", arch=LLAMA, law=other, entropy=1.7)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["fit", "sweep", "--bootstrap", "20", "--law", "chinchilla", "--plot", "files"])
    assert r.exit_code == 0, r.output
    assert "2 groups" in r.output and "comparison across groups" in r.output
    # the default output folder is the runs folder's fits/ (where study and ablate write theirs)
    g = json.loads((tmp_path / "sweep" / "fits" / "llama3" / "sweep-chinchilla.json").read_text())
    assert g["group"]["label"] == "llama3" and g["n_points"] == 28 and abs(g["params"]["a"] - other.a) < 0.05
    assert g["entropy"]["H_nats_per_token"] == 1.7
    assert (tmp_path / "sweep" / "fits" / "gpt2" / "frontier.png").exists()
    assert (tmp_path / "sweep" / "fits" / "llama3" / "frontier.png").exists()


def test_E_is_compared_with_the_evaluated_tokens_floor_when_the_runs_recorded_it(tmp_path):
    """The fitted E lands on the floor of the tokens scored (a sample of the source), not on the
    entropy rate H 0.04 nat away: the fit says which it compared with, and E's interval holds the floor."""
    floor, H = 1.68, 1.72
    law = laws.Chinchilla("sampled", E=floor, A=40.0, B=120.0, alpha=0.33, beta=0.30)  # runs near the floor
    make_runs(tmp_path / "a", law=law, entropy=H, entropy_eval=floor, noise=0.0005)
    r = runner.invoke(app, ["fit", str(tmp_path / "a"), "--law", "chinchilla", "--bootstrap", "30", "--plot", "none",
                            "--out", str(tmp_path / "fa")])
    assert r.exit_code == 0, r.output
    ent = json.loads((tmp_path / "fa" / "a-chinchilla.json").read_text())["entropy"]
    assert ent["compared_with"] == "eval_floor" and ent["eval_floor_nats_per_token"] == floor
    lo, hi = ent["E_interval"]
    assert ent["reference_in_E_interval"] == (lo <= floor <= hi) and not ent["H_in_E_interval"], ent
    assert abs(ent["E_minus_reference"]) < abs(ent["E_minus_H"]) / 3, ent  # E lands on the floor, not on H
    assert "E is compared with the floor" in r.output
    # runs without a recorded floor: E is compared with H, and the fit says why
    make_runs(tmp_path / "b", law=law, entropy=H, noise=0.001)
    r = runner.invoke(app, ["fit", str(tmp_path / "b"), "--law", "chinchilla", "--bootstrap", "0", "--plot", "none",
                            "--out", str(tmp_path / "fb")])
    assert r.exit_code == 0, r.output
    ent = json.loads((tmp_path / "fb" / "b-chinchilla.json").read_text())["entropy"]
    assert ent["compared_with"] == "H" and ent["reference_nats_per_token"] == H
    assert "evaluation floors differ or are missing" in r.output


def test_moe_runs_count_active_parameters_by_default(tmp_path):
    moe = {**LLAMA, "family": "mixtral", "moe": {"n_experts": 8, "top_k": 2, "d_ff_expert": 224}}
    for j, n in enumerate(np.geomspace(1e5, 1e6, 6)):
        write_run(tmp_path / "moe" / f"r{j}", 4 * n, 1e7, TRUE.loss(n, 1e7), arch=moe, n_active=n)
    from llmhist.scaling.points import load_runs

    (pts,) = load_runs(tmp_path / "moe")
    assert pts.conventions["N"] == "active" and np.allclose(sorted(pts.N), np.geomspace(1e5, 1e6, 6))


def test_fit_reads_the_nominal_budgets_of_the_requests_not_clusters(tmp_path):
    """Two isoFLOP budgets 4% apart: clustering C within 5% would merge them into one; each run's
    run.json names its plan's nominal budget, and the fit loader uses it. The same runs without
    the budgets (a foreign folder) fall back to clustering and merge, which is what this guards."""
    from llmhist.scaling import points

    for name, with_budget in (("nominal", True), ("foreign", False)):
        for C in (1e17, 1.04e17):
            for j, n in enumerate(np.geomspace(TRUE.n_opt(C) / 4, TRUE.n_opt(C) * 4, 5)):
                d = C / (6 * n)
                write_run(tmp_path / name / f"C{C:.3g}" / f"n{j}", n, d, TRUE.loss(n, d),
                          budget=C if with_budget else None)
    (nominal,) = points.load_runs(tmp_path / "nominal")
    assert sorted(set(nominal.budget.tolist())) == [1e17, 1.04e17]
    assert "nominal budgets" in nominal.budget_note
    (foreign,) = points.load_runs(tmp_path / "foreign")
    assert len(set(foreign.budget.tolist())) == 1  # clustered: the two budgets are one
