"""`llmhist fit TABLE` and `recommend --fit` through the CLI, on generated points."""

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.scaling import laws

runner = CliRunner()
TRUE = laws.Chinchilla("true", E=1.9, A=400.0, B=1200.0, alpha=0.33, beta=0.30)


def table(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for C in np.geomspace(1e17, 1e20, 5):
        for n in np.geomspace(TRUE.n_opt(C) / 4, TRUE.n_opt(C) * 4, 7):
            rows.append({"params": n, "flops": C, "final_loss": TRUE.loss(n, C / (6 * n)) * np.exp(rng.normal(0, 0.003))})
    p = tmp_path / "points.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_fit_writes_json_that_recommend_reads(tmp_path):
    p = table(tmp_path)
    r = runner.invoke(app, ["fit", str(p), "--n-col", "params", "--c-col", "flops", "--loss-col", "final_loss",
                            "--bootstrap", "20", "--plot", "none", "--out", str(tmp_path / "fits"), "--json"])
    assert r.exit_code == 0, r.output
    res = {x["law"]: x for x in json.loads(r.output)["fits"]}
    assert set(res) == {"chinchilla", "isoflop", "kaplan"}
    ch = res["chinchilla"]
    assert abs(ch["params"]["a"] - TRUE.a) < 0.05 and ch["intervals"]["alpha"][0] < ch["intervals"]["alpha"][1]
    assert abs(res["isoflop"]["params"]["a"] - TRUE.a) < 0.05
    saved = json.loads((tmp_path / "fits" / "points-chinchilla.json").read_text())
    assert saved["data_fingerprint"] == ch["data_fingerprint"] and saved["conventions"]["N"] == "total"
    r = runner.invoke(app, ["recommend", "--flops", "1e21", "--law", "epoch2024", "--fit",
                            str(tmp_path / "fits" / "points-chinchilla.json"), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output)["recommendations"][1]
    assert abs(rec["N_opt"] / TRUE.n_opt(1e21) - 1) < 0.5 and "N_opt_interval" in rec


def test_fit_bad_input_is_clear_and_writes_nothing(tmp_path):
    p = table(tmp_path)
    r = runner.invoke(app, ["fit", str(p), "--out", str(tmp_path / "fits")])
    assert r.exit_code == 2 and "no column 'N'" in r.output and "--n-col" in r.output
    r = runner.invoke(app, ["fit", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and "no such file" in r.output
    bad = pd.read_csv(p)
    bad.loc[3, "final_loss"] = -1
    bad.to_csv(tmp_path / "bad.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "bad.csv"), "--n-col", "params", "--c-col", "flops",
                            "--loss-col", "final_loss", "--law", "chinchilla", "--out", str(tmp_path / "fits")])
    assert r.exit_code == 2 and "non-positive" in r.output
    assert not (tmp_path / "fits").exists()
    r = runner.invoke(app, ["recommend"])
    assert r.exit_code == 2 and "give a budget" in r.output
