"""Issue 22's fit, plot and error-path findings, each as the case that found it: damaged run folders
and tables left out by name (F3, F4/C4, F6, F12, K15), runs on other data never pooled (W4), one
output location checked before the work (C19, F14), flags that keep meaning "look" (C18, F7, C7),
output readable at 80 columns (K2, K3, C6), and plots whose labels can be read (K4-K7)."""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
import typer
from test_fit_runs import TRUE, make_runs
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.scaling import laws
from llmhist.scaling.agreement import disagreement_flag
from llmhist.scaling.fit import fit_kaplan, survival_flags
from llmhist.scaling.result import FitResult

runner = CliRunner()
FAST = ["--bootstrap", "0", "--plot", "none", "--json"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("first-hour") / "runs"
    make_runs(root)
    return root


def _fit(folder, *args, law="chinchilla"):
    r = runner.invoke(app, ["fit", str(folder), "--law", law, *FAST, "--out", str(folder.parent / "fits"), *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _damaged(runs, tmp_path, run="C1e+17/n0", file="summary.json", edit=None, text=None):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    p = copy / run / file
    if text is not None:
        p.write_text(text)
    else:
        d = json.loads(p.read_text())
        edit(d)
        p.write_text(json.dumps(d))
    return copy


@pytest.mark.parametrize("case", ["summary list", "no N", "string loss", "config list", "negative loss"])
def test_one_damaged_run_is_left_out_by_name_and_the_others_fit(runs, tmp_path, case):
    """F3 (a traceback for all) and F12 ('points: row 0' stopping every law): the run is named."""
    copy = {
        "summary list": lambda: _damaged(runs, tmp_path, text="[]"),
        "no N": lambda: _damaged(runs, tmp_path, edit=lambda d: d.pop("N")),
        "string loss": lambda: _damaged(runs, tmp_path, edit=lambda d: d.update(val_loss="2.5")),
        "config list": lambda: _damaged(runs, tmp_path, file="config.json", text="[]"),
        "negative loss": lambda: _damaged(runs, tmp_path, edit=lambda d: d.update(val_loss=-2.0)),
    }[case]()
    res = _fit(copy)
    fit = res["fits"][0]
    assert fit["law"] == "chinchilla" and fit["n_points"] == 27 and "skipped" not in fit
    reasons = {x["run"]: x["reason"] for x in res["left_out"]}
    named = str(copy / "C1e+17" / "n0")
    assert named in reasons, reasons
    assert ("summary.json" in reasons[named] or "config.json" in reasons[named]), reasons[named]


def test_a_negative_loss_in_one_curve_is_left_out_of_the_envelope_by_name(runs, tmp_path):
    """F6: a math domain error in Approach 1 ended the fit of every run."""
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    m = copy / "C1e+18" / "n3" / "metrics.csv"
    rows = m.read_text().splitlines()
    rows[2] = ",".join(["-3"] * len(rows[0].split(",")))
    m.write_text("\n".join(rows) + "\n")
    res = _fit(copy, law="envelope")
    env = res["fits"][0]
    assert env["law"] == "envelope" and math.isfinite(env["params"]["a"])
    reasons = {x["run"]: x["reason"] for x in res["left_out"]}
    assert "1 of 8 metrics.csv row(s)" in reasons[str(copy / "C1e+18" / "n3")]


def test_runs_on_other_data_are_never_pooled_and_the_groups_say_so(runs, tmp_path):
    """W4: one spec on two data sets was one fit, with a notice printed for the first group only."""
    root = tmp_path / "mixed"
    shutil.copytree(runs, root / "stdlib")
    shutil.copytree(runs, root / "mytext")
    for s in (root / "mytext").rglob("summary.json"):
        d = json.loads(s.read_text())
        d["data_fingerprint"] = "other"
        s.write_text(json.dumps(d))
        c = s.parent / "config.json"
        c.write_text(json.dumps({**json.loads(c.read_text()), "train": {"data": "mytext/"}}))
    res = _fit(root)
    assert len(res["groups"]) == 2 and [f["n_points"] for f in res["fits"]] == [28, 28]
    assert {g["group"] for g in res["groups"]} == {"unknown on abc", "unknown on mytext/"}  # named by their data
    r = runner.invoke(app, ["fit", str(root), "--law", "chinchilla", "--bootstrap", "0", "--plot", "none",
                            "--out", str(tmp_path / "f")])
    assert r.exit_code == 0 and "2 groups" in r.output and "data never share a law" in " ".join(r.output.split())


@pytest.mark.parametrize("text,says", [
    ("N,D,loss\n", ("no rows",)),  # C4/F4: a traceback from an empty reduction
    ("N,D,loss\n1e6,2e7,3.1\n2e6,4e7,abc\n", ("line 3", "`abc`", "loss")),  # K15: row 1, value nan
])
def test_a_table_is_refused_naming_what_the_user_sees(tmp_path, text, says):
    p = tmp_path / "t.csv"
    p.write_text(text)
    r = runner.invoke(app, ["fit", str(p), "--out", str(tmp_path / "fits")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert all(s in out for s in says), out
    assert not (tmp_path / "fits").exists()


def test_the_fits_of_a_runs_folder_go_beside_it_and_a_file_as_out_is_refused_first(runs, tmp_path, monkeypatch):
    """C19 (fit wrote ./fits/NAME, study RUNS/fits) and F14 ('File exists' after the work)."""
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["fit", "runs", "--law", "chinchilla", "--bootstrap", "0", "--plot", "none"])
    assert r.exit_code == 0, r.output
    assert (copy / "fits" / "runs-chinchilla.json").exists() and not (tmp_path / "fits").exists()
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    for out in (afile, afile / "sub"):
        r = runner.invoke(app, ["fit", "runs", "--bootstrap", "0", "--plot", "none", "--out", str(out)])
        assert r.exit_code == 2 and "a file, not a folder" in r.output and "--out" in r.output, r.output
    assert afile.read_text() == "x\n"
    if os.geteuid() != 0:  # root writes anywhere
        copy.chmod(0o555)
        try:
            r = runner.invoke(app, ["fit", "runs", "--bootstrap", "0", "--plot", "none"])
            assert r.exit_code == 2 and "not writable" in r.output and "--out" in r.output, r.output
        finally:
            copy.chmod(0o755)


def test_a_few_bootstrap_failures_are_counted_not_flagged():
    """C18: 'FLAG chinchilla: 199 of 200 resamples refitted; 1 failed' teaches users to ignore FLAGs."""
    assert survival_flags({"requested": 200, "survived": 199, "failed": {"x": 1}}) == (True, [])
    ok, flags = survival_flags({"requested": 200, "survived": 180, "failed": {"x": 20}})
    assert ok and len(flags) == 1 and "20 failed" in flags[0]
    ok, flags = survival_flags({"requested": 200, "survived": 150, "failed": {"x": 50}})
    assert not ok and "no interval" in flags[0]


def test_a_table_without_intervals_says_why(runs, tmp_path):
    """C18: the Kaplan table had '-' in every interval cell and no reason."""
    r = runner.invoke(app, ["fit", str(runs), "--law", "kaplan", "--law", "chinchilla", "--bootstrap", "0",
                            "--plot", "none", "--out", str(tmp_path / "f")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "kaplan: no intervals: the Kaplan fit is a least-squares point estimate" in out
    assert "chinchilla: no intervals: no bootstrap was asked for (--bootstrap 0)" in out
    assert "interval (10th-90th pct)" not in out


def _one_budget(C=1e18):
    n = TRUE.n_opt(C) * np.geomspace(0.2, 5, 7)
    d = C / (6 * n)
    return n, d, TRUE.loss(n, d)


def test_a_kaplan_fit_on_one_budget_is_flagged_and_a_falling_optimum_refused():
    """F7: 7 points at C = 1e18 gave a = -2.04 (a polyfit over one C value) with no flag, and
    recommend --fit followed it to smaller models at larger budgets."""
    f = fit_kaplan(*_one_budget())
    assert any("less than 2x" in x and "extrapolated" in x for x in f.flags), f.flags
    doc = FitResult("kaplan", "k", params={"alpha_N": 0.07, "alpha_D": 0.09, "N_c": 8e13, "D_c": 5e13,
                                           "n_opt_coef": 1e9, "a": -2.04})
    with pytest.raises(laws.LawError, match="a = -2.04 is not positive"):
        doc.to_law("k.json")
    for law in ("isoflop", "envelope"):
        bad = FitResult(law, "p", params={"a": -0.0164, "k_N": 1.0, "b": 1.02, "k_D": 1.0})
        with pytest.raises(laws.LawError, match="not positive"):
            bad.to_law()


def test_recommend_refuses_a_fit_file_whose_optimum_falls_with_compute(tmp_path):
    p = tmp_path / "k.json"
    p.write_text(json.dumps(FitResult("kaplan", "k", params={"alpha_N": 0.07, "alpha_D": 0.09, "N_c": 8e13,
                                                             "D_c": 5e13, "n_opt_coef": 1e9, "a": -2.04}).to_dict()))
    r = runner.invoke(app, ["recommend", "--flops", "1e19", "--fit", str(p)])
    assert r.exit_code == 2 and "not positive" in r.output and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("payload", [bytes(range(256)) * 4, b"[1, 2]", b'{"law": "chinchilla"'])
def test_reading_a_fit_file_that_is_not_one_is_a_clear_error(tmp_path, payload):
    """F5: a binary --fit file ended in UnicodeDecodeError."""
    p = tmp_path / "garbage.bin"
    p.write_bytes(payload)
    with pytest.raises(laws.LawError, match="garbage.bin: not a"):
        FitResult.read(p)


def test_the_study_recommendations_that_disagree_beyond_their_intervals_get_one_flag():
    """C7: the envelope's 41.4k [28.7k, 54.5k] against isoFLOP's 161k [109k, 317k] had no flag."""
    rows = [{"law": "hoffmann2022", "N_opt": 2e5, "D_opt": 1e7},  # no interval: takes no part
            {"law": "study-chinchilla", "N_opt": 119e3, "N_opt_interval": (56.9e3, 173e3), "D_opt": 14e6,
             "D_opt_interval": (9e6, 20e6)},
            {"law": "study-isoflop", "N_opt": 161e3, "N_opt_interval": (109e3, 317e3), "D_opt": 10.4e6,
             "D_opt_interval": (5e6, 15e6)},
            {"law": "study-envelope", "N_opt": 41.4e3, "N_opt_interval": (28.7e3, 54.5e3), "D_opt": 40e6,
             "D_opt_interval": (30e6, 58e6)}]
    flag = disagreement_flag(rows)
    assert flag is not None and "study-envelope 41.4k [28.7k, 54.5k]" in flag and "hoffmann2022" not in flag
    assert "study-chinchilla 119k" in flag and "study-isoflop 161k" in flag
    assert flag.count(" vs ") == 4  # N_opt: env vs chin, env vs iso; D_opt: env vs chin, env vs iso
    assert disagreement_flag(rows[:3]) is None


def test_study_leaves_out_a_fit_whose_exponent_is_not_positive_and_goes_on(tmp_path, capsys):
    """C7: one fitted law with a <= 0 ended the study (exit 2, after its plots); now it is named and left out,
    the others recommend, and a disagreement beyond the intervals prints its FLAG under the table."""
    from types import SimpleNamespace

    from llmhist.cli.study_cmd import _print_recommendations
    from llmhist.scaling import study

    def power_law(name: str, law: str, a: float, k_N: float) -> SimpleNamespace:
        p = tmp_path / f"{name}.json"  # N_opt = k_N C^a, D_opt = C / (6 N_opt)
        p.write_text(json.dumps({"law": law, "name": name, "params": {"a": a, "k_N": k_N, "b": 1 - a,
                                                                     "k_D": 1 / (6 * k_N)}}))
        return SimpleNamespace(path=str(p), law=law)

    fits = [SimpleNamespace(results=[power_law("good-iso", "isoflop", 0.5, 0.1),
                                     power_law("bad-env", "envelope", -0.2, 1e9)])]
    rows, refused = study.recommend(study.Study(out=tmp_path / "s", flops=1e13), fits)
    assert len(refused) == 1 and "bad-env.json" in refused[0] and "a = -0.2 is not positive" in refused[0]
    assert len(rows) == len(laws.DEFAULT_LAWS) + 1 and rows[-1]["law"] == "good-iso"
    assert math.isclose(rows[-1]["N_opt"], 0.1 * 1e13**0.5, rel_tol=1e-9)
    _print_recommendations(rows, refused)
    out = " ".join(capsys.readouterr().out.split())
    assert "left out of the recommendation: " in out and "bad-env.json" in out and "good-iso" in out
    assert "FLAG the fitted" not in out  # no intervals: nothing to disagree beyond
    wide = [{"law": "x", "C": 1e13, "N_opt": 1e5, "N_opt_interval": (9e4, 1.1e5), "D_opt": 1e7},
            {"law": "y", "C": 1e13, "N_opt": 1e6, "N_opt_interval": (9e5, 1.1e6), "D_opt": 1e6}]
    _print_recommendations(wide, [])
    out = " ".join(capsys.readouterr().out.split())
    assert f"FLAG {disagreement_flag(wide)}" in out


def test_fit_output_reads_at_80_columns(runs, tmp_path):
    """K2 (paths inside table titles, cut at 100 columns) and K3 (notes cut mid-word)."""
    r = runner.invoke(app, ["fit", str(runs), "--bootstrap", "20", "--plot", "none", "--out", str(tmp_path / "f")],
                      env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    titles = [l for l in lines if " fit (" in l and "points" in l]
    assert len(titles) == 4 and not any(".json" in t for t in titles), titles
    assert sum(l.startswith("  -> ") and l.endswith(".json") for l in lines) == 4
    assert any(l.startswith("  from ") and l.endswith(str(runs)) for l in lines)
    for l in lines:  # a path goes on a line of its own; every other line fits, wrapped on words
        if not l.startswith(("  -> ", "  from ", "left out ")):
            assert len(l) <= 80, l
    assert "FLAG envelope: one training horizon per model size (28 sizes): Approach 1 needs" in r.output


def test_recommend_and_ablate_plan_notes_wrap_on_words_at_80_columns():
    """K3: ablate's notes were printed with soft_wrap (one long line each); recommend's and ablate's notes go
    through cli.common.note, so every line but a path's fits 80 columns, broken between words."""
    for args in (["recommend", "--flops", "1e21", "--gpus", "8", "--gpu", "h100"], ["ablate", "plan", "gpt2", "llama3"]):
        r = runner.invoke(app, args, env={"COLUMNS": "80"})
        assert r.exit_code == 0, r.output
        lines = r.output.splitlines()
        assert all(len(x) <= 80 for x in lines if not x.startswith("  -> ")), [x for x in lines if len(x) > 80]
        words = set(" ".join(r.output.split()).split())
        assert all(x.split()[-1] in words for x in lines if x.strip())  # no word cut at a line's end
    assert any(x.startswith("estimated wall time") for x in lines) and "  -> runs/ablate-gpt2-llama3" in lines


def _help_pages():
    todo: list = [([], typer.main.get_command(app))]
    while todo:
        path, cmd = todo.pop()
        yield path
        todo += [([*path, n], c) for n, c in getattr(cmd, "commands", {}).items()]


def test_help_shows_flags_without_a_value_and_help_text_literally():
    """C6: `--json <bool>` in every --help, `[[run]]` eaten as markup, `--json` without help in fit."""
    pages = list(_help_pages())
    assert ["fit"] in pages and ["sweep", "status"] in pages
    for path in pages:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert r.exit_code == 0, (path, r.output)
        assert "<bool>" not in r.output and "\x1b[" not in r.output, (path, r.output)
        json_line = [l for l in r.output.splitlines() if l.strip().startswith("--json")]
        assert not json_line or len(json_line[0].split()) > 1, (path, json_line)  # --json says what it does
    r = runner.invoke(app, ["--help"])
    assert "Write a folder transformers loads (config.json + model.safetensors): AutoModelForCausalLM.from_pretrained," in " ".join(r.output.split())
    r = runner.invoke(app, ["sweep", "run", "--help"], env={"COLUMNS": "80"})  # sweep is a group: run holds --grid
    assert "[[run]]" in r.output and "[defaults]" in r.output
    fit = typer.main.get_command(app).commands["fit"]  # type: ignore[attr-defined]  # a group's commands
    assert all(p.help for p in fit.params if p.name != "help"), [p.name for p in fit.params if not p.help]


def test_an_error_ending_in_a_quote_prints_whole():
    """C5: the printer ran str(e).strip("'\\"") and lost the closing quote of a pip hint."""
    from llmhist.cli.common import user_errors
    from llmhist.train.config import RunError

    mini = typer.Typer()

    @mini.command()
    def hint():
        with user_errors():
            raise RunError("export needs transformers: pip install -e '.[export]'")

    r = runner.invoke(mini, [])
    assert r.exit_code == 2 and r.output.strip().endswith("pip install -e '.[export]'"), r.output


def test_plots_label_what_they_show(runs, tmp_path):
    """K4 (terminal ticks 13431200.0), K5-K7: the files are written with thinned labels."""
    from llmhist.scaling.plots import _place_models, log_ticks

    assert log_ticks([1e6, 1e10]) == [1e6, 1e7, 1e8, 1e9, 1e10]
    assert log_ticks([1.3e7, 6.4e9]) == [2e7, 5e7, 1e8, 2e8, 5e8, 1e9, 2e9, 5e9]  # two decades: 1-2-5
    assert log_ticks([2.1e4, 9e4]) == [3e4, 5e4, 7e4]  # less than a decade: 1-1.5-2-3-5-7 steps
    r = runner.invoke(app, ["fit", str(runs), "--bootstrap", "10", "--plot", "terminal", "--law", "isoflop",
                            "--out", str(tmp_path / "f")])
    assert r.exit_code == 0 and "1e7" in r.output and "13431200" not in r.output and "\x1b[" not in r.output

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.set_yscale("log")
    pile = [(f"m{i}", 1e24 * (1 + i / 10), 1e11 * (1 + i / 20)) for i in range(6)]  # six models in one spot
    _place_models(ax, pile + [("far", 1e12, 1e6)])
    assert sorted(t.get_text() for t in ax.texts) == ["far", "m5"]
    plt.close(fig)


def test_a_full_disk_names_the_file_it_was_writing(tmp_path, monkeypatch):
    """F15: 'no space left on the device while writing a file' named neither."""
    import errno
    from pathlib import Path

    from llmhist.cli.common import oserror_message
    from llmhist.core.files import write_json

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as e:
        write_json(tmp_path / "fits" / "x-chinchilla.json", {"law": "chinchilla"})
    msg = oserror_message(e.value)
    assert e.value.errno == errno.ENOSPC and str(tmp_path / "fits" / "x-chinchilla.json") in msg, msg
    assert not list((tmp_path / "fits").iterdir())

