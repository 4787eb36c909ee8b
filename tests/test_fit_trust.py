"""Fits that say when they cannot be trusted (issue 13): budgets snapped and counted, local isoFLOP
parabolas, degenerate fits flagged, bootstraps that count their survivors on per-law streams,
the known entropy carried to E, conventions said out loud, one hardware table."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.scaling import laws
from llmhist.scaling.fit import (
    FitError,
    Window,
    fit_chinchilla,
    fit_isoflop,
    survival_flags,
)
from llmhist.scaling.pipeline import Options, fit_group, run_fits
from llmhist.scaling.points import Points, snap_budgets
from llmhist.scaling.recommend import BudgetError, budget_from, recommend

runner = CliRunner()
VALLEY = laws.Chinchilla("valley", E=1.5, A=60.0, B=3000.0, alpha=0.2, beta=0.6)  # alpha << beta: lopsided in log N


def lopsided_sweep(law, per=25):
    """Five budgets, each sampling three decades of N, off-centre by a different amount."""
    N, D, L, B = [], [], [], []
    for C, shift in zip(np.geomspace(1e17, 1e21, 5), (-0.8, -0.4, 0.0, 0.4, 0.8)):
        for n in law.n_opt(C) * np.logspace(-1.5 + shift, 1.5 + shift, per):
            N.append(n), D.append(C / (6 * n)), L.append(law.loss(n, C / (6 * n))), B.append(C)
    return map(np.array, (N, D, L, B))


def test_local_parabola_recovers_an_asymmetric_valley_the_whole_range_misses():
    N, D, L, B = lopsided_sweep(VALLEY)
    whole = fit_isoflop(N, D, L, B, window=Window.parse("all"))
    local = fit_isoflop(N, D, L, B, window=Window.parse("1dec"))

    def err(f):
        return [m["N_opt"] / VALLEY.n_opt(m["C"]) - 1 for m in f.extra["minima"]]

    assert max(abs(e) for e in err(whole)) > 0.25 and abs(whole.law.a - VALLEY.a) > 0.03
    assert max(abs(e) for e in err(local)) < 0.08 and abs(local.law.a - VALLEY.a) < 0.01
    assert all(m["n_window"] < m["n_points"] for m in local.extra["minima"])
    with pytest.raises(FitError, match="--window"):
        Window.parse("wide")


def test_digitised_budgets_are_snapped_and_thin_budgets_refused():
    rng = np.random.default_rng(0)
    budgets = [6e18, 1e19, 3e19, 1e20, 3e20]
    C = np.concatenate([b * 10 ** rng.normal(-0.01, 0.01, 8) for b in budgets] + [10 ** rng.uniform(18.5, 20.5, 12)])
    snapped = snap_budgets(C)
    got = np.unique(snapped[np.isfinite(snapped)])
    assert len(got) == len(budgets) and np.allclose(sorted(got), budgets, rtol=0.06)
    assert (~np.isfinite(snapped)).sum() <= 12
    # three points per budget: refused by the default --min-points 5, by name
    law = laws.PUBLISHED["epoch2024"]
    N = np.concatenate([law.n_opt(c) * np.array([0.3, 1, 3]) for c in budgets])
    Cb = np.repeat(budgets, 3)
    with pytest.raises(FitError, match="--min-points"):
        fit_isoflop(N, Cb / (6 * N), law.loss(N, Cb / (6 * N)), Cb)


def test_most_budgets_refused_is_said_loudly():
    law = laws.PUBLISHED["epoch2024"]
    N, D, L, B = [], [], [], []
    for i, C in enumerate(np.geomspace(1e18, 1e21, 6)):
        lo = -1 if i < 2 else 0.3  # four budgets sampled only above their optimum
        for n in law.n_opt(C) * np.logspace(lo, lo + 2, 7):
            N.append(n), D.append(C / (6 * n)), L.append(law.loss(n, C / (6 * n))), B.append(C)
    f = fit_isoflop(*map(np.array, (N, D, L, B)))
    assert len(f.extra["refused"]) == 4 and any("MOST BUDGETS WERE REFUSED" in x for x in f.flags)


def test_degenerate_fit_is_flagged_and_bootstrap_survival_is_counted():
    # no floor: L = A/N^alpha + B/D^beta, E = 0 -> E is fitted to ~0 and said so
    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), 40))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 40))
    L = 400 / N**0.3 + 1200 / D**0.3
    f = fit_chinchilla(N, D, L)
    assert any("E fitted to ~0" in x or "edge of the start grid" in x for x in f.flags)
    ok, flags = survival_flags({"requested": 200, "survived": 35, "failed": {"did not converge": 165}})
    assert not ok and "35 of 200" in flags[0] and "no interval" in flags[0]
    assert survival_flags({"requested": 200, "survived": 190, "failed": {"x": 10}})[0]


def test_each_law_bootstraps_on_its_own_stream(tmp_path):
    law = laws.Chinchilla("t", E=1.9, A=400.0, B=1200.0, alpha=0.33, beta=0.30)
    rng = np.random.default_rng(0)
    rows = [{"N": n, "C": C, "loss": law.loss(n, C / (6 * n)) * math.exp(rng.normal(0, 0.003))}
            for C in np.geomspace(1e17, 1e20, 5) for n in np.geomspace(law.n_opt(C) / 4, law.n_opt(C) * 4, 7)]
    p = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    alone = run_fits(p, Options(laws=("isoflop",), bootstrap=20), out=tmp_path / "a")[0].results[0]
    both = run_fits(p, Options(laws=("chinchilla", "isoflop"), bootstrap=20), out=tmp_path / "b")[0].results[1]
    assert alone.intervals == both.intervals and alone.bootstrap["survived"] == 20


def test_known_entropy_reaches_the_fit_and_E_recovers_it():
    H = 1.2345  # L = H + A/N^a + B/D^b with noise: E's interval must contain H
    truth = laws.Chinchilla("h", E=H, A=30.0, B=200.0, alpha=0.35, beta=0.3)
    rng = np.random.default_rng(7)
    N, D = [], []
    for C in np.geomspace(1e13, 1e16, 5):
        for n in np.geomspace(truth.n_opt(C) / 8, truth.n_opt(C) * 8, 7):
            N.append(n), D.append(C / (6 * n))
    N, D = np.array(N), np.array(D)
    L = truth.loss(N, D) * np.exp(rng.normal(0, 0.004, len(N)))
    pts = Points(N, D, L, "synthetic", "fp", {"N": "total", "C": "6ND", "loss": "final"}, entropy=H)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        g = fit_group(pts, Options(laws=("chinchilla",), bootstrap=100), Path(d), "h")
        saved = json.loads(Path(g.results[0].path).read_text())
    ent = saved["entropy"]
    assert ent["H_nats_per_token"] == H and ent["H_in_E_interval"] is True
    lo, hi = ent["E_interval"]
    assert lo <= H <= hi and hi - lo < 0.2


def test_kaplan_follows_chinchilla_app_d4_and_shows_both_readings():
    r = recommend(laws.get("kaplan"), C=1e21)
    assert r["N_opt"] == pytest.approx(4.68e9, rel=0.005)  # Hoffmann et al. App. D.4's reading
    assert r["as_written"]["N_opt"] == pytest.approx(7.77e9, rel=0.005)
    assert "WebText2" in r["loss_data"] and "MassiveText" in recommend(laws.get("chinchilla"), C=1e21)["loss_data"]
    out = runner.invoke(app, ["recommend", "--flops", "1e21", "--law", "kaplan2020", "--law", "chinchilla"]).output
    assert "C_min = C" in out and "App. D.4" in out
    rows = json.loads(runner.invoke(app, ["recommend", "--flops", "1e21", "--law", "kaplan", "--json"]).output)
    assert rows["recommendations"][0]["as_written"]["N_opt"] > rows["recommendations"][0]["N_opt"]


def test_recommend_refuses_bad_budgets_naming_the_option(tmp_path):
    for args, opt in ((["--params", "-7e9"], "--params"), (["--tokens", "0"], "--tokens"), (["--flops", "nan"], "--flops")):
        r = runner.invoke(app, ["recommend", *args])
        assert r.exit_code == 2 and opt in r.output, r.output
    r = runner.invoke(app, ["recommend", "--gpu-hours", "100"])
    assert r.exit_code == 2 and "--gpu is required" in r.output
    with pytest.raises(BudgetError, match="--gpu-hours"):
        budget_from(gpu="h100")
    bad = {"law": "chinchilla", "name": "x", "params": {"E": float("nan"), "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}}
    (tmp_path / "nan.json").write_text(json.dumps(bad).replace("NaN", "NaN"))
    r = runner.invoke(app, ["recommend", "--flops", "1e21", "--fit", str(tmp_path / "nan.json")])
    assert r.exit_code == 2 and "not a finite number" in r.output


def test_extrapolation_names_the_fitted_range():
    law = laws.Chinchilla("toy", 1.9, 400.0, 1200.0, 0.33, 0.3, fitted_range={"C": [3e10, 1e12]})
    w = recommend(law, C=1e26)["warning"]
    assert "3e+10-1e+12" in w and "outside" in w
    assert recommend(law, C=5e11)["warning"] is None
    assert laws.compute_optimality(7e9, 2e12, law)["warning"]


def test_one_hardware_table_serves_mfu_and_recommend():
    from llmhist.train import hardware

    assert hardware.peak("NVIDIA A10G", "bf16")[0] == 70e12 and hardware.peak("NVIDIA A10", "bf16")[0] == 125e12
    assert budget_from(gpu_hours=1, gpu="a10g", mfu=1.0) == 3600 * 70e12


def test_mfu_is_never_above_one():
    import torch

    from llmhist.train.device import mfu

    v, _peak, note = mfu(2e12, 1e12, torch.device("cuda"), override=None)
    assert v == 1.0 and "implausible" in note and "clamped" in note
    assert mfu(5e11, 1e12, torch.device("cuda"))[0] == 0.5
