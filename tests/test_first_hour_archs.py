"""The first-hour findings on the registry, `archs`, `show`, `compare` and `recommend` (issue 22,
../shared/reports/first-hour.md): each test would have caught the finding it names."""

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from llmhist.cli.main import app

runner = CliRunner()


def invoke(*args, columns=80):
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


def line_of(output: str, *words: str) -> str:
    return next(line for line in output.splitlines() if all(w in line for w in words))


# ------------------------------------------------------------------------------------ archs
def test_archs_fits_80_columns_piped_and_wraps_only_between_choices():
    """C1: at 80 columns and in a pipe no cell is cut (…), no number wraps, no choice breaks."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = subprocess.run([sys.executable, "-m", "llmhist", "archs"], capture_output=True, text=True, env=env,
                           check=True).stdout
    rows = json.loads(invoke("archs", "--json").output)
    for out in (piped, invoke("archs").output):
        lines = out.splitlines()
        assert max(len(x) for x in lines) <= 80 and "…" not in out
        for r in rows:  # each row's numbers sit on its name's line, each choice whole on one line
            row = line_of(out, f" {r['name']} ")
            assert str(r["year"]) in row and ("n/a" in row or any(c.isdigit() for c in row.split(r["name"])[1]))
            for choice in r["choices"].split(", "):
                assert any(choice in x for x in lines), (r["name"], choice)
    assert 3 * len(rows) + 6 >= len(piped.splitlines())  # at most three lines a model at 80 columns


def test_archs_shows_gqa_as_query_over_kv_heads_and_short_thetas():
    """C8 and C1: `GQA 32/8` (not `GQA 4`), `RoPE 5e5` (not a cut `RoPE 50000…`)."""
    out = invoke("archs", columns=200).output
    assert "GQA 32/8" in line_of(out, "llama3-8b ") and "RoPE 5e5" in line_of(out, "llama3-8b ")
    assert "GQA 128/8" in line_of(out, "llama3.1-405b") and "MQA" in line_of(out, "palm-540b")
    assert "GQA 32/16" in line_of(out, "gemma2-27b") and "RoPE 1e6" in line_of(out, "mixtral-8x7b")


def test_archs_leaves_out_a_column_no_row_fills():
    """C1: the `active` column only where an MoE row fills it."""
    head = next(x for x in invoke("archs", "--family", "llama").output.splitlines() if "params" in x)
    assert "active" not in head and "tokens" in head
    head = next(x for x in invoke("archs", "--family", "mixtral").output.splitlines() if "params" in x)
    assert "active" in head


def test_archs_tokens_per_param_uses_the_published_count_without_a_shape():
    """K12: codex-12b, 100B tokens on a published 12B: 8.3, not n/a."""
    rows = {r["name"]: r for r in json.loads(invoke("archs", "--json").output)}
    assert round(rows["codex-12b"]["tokens_per_param"], 1) == 8.3
    assert rows["gpt4"]["tokens_per_param"] is None  # nothing published: still n/a
    assert "8.3" in line_of(invoke("archs").output, "codex-12b")


def test_archs_with_no_matching_model_says_so():
    """K8: `archs --since 2030` printed an empty table."""
    r = invoke("archs", "--since", "2030")
    assert r.exit_code == 0 and "no model from 2030 on" in r.output and "2018-" in r.output
    r = invoke("archs", "--family", "gpt2", "--until", "2018")
    assert "no gpt2 model up to 2018" in r.output and "span 2019" in r.output
    assert json.loads(invoke("archs", "--since", "2030", "--json").output) == []


# ------------------------------------------------------------------------------------ show / compare
def test_show_marks_tokens_per_param_not_the_published_tokens():
    """W2: Chinchilla's D (Table 1: 1.4T) is published; tokens/param rests on N, which rests on
    assumed values (bias, tied embeddings)."""
    out = invoke("show", "chinchilla-70b", columns=120).output
    assert "*" not in line_of(out, "training tokens D") and "1.4T" in line_of(out, "training tokens D")
    assert "*" in line_of(out, "tokens per parameter") and "*" in line_of(out, "params total")
    d = json.loads(invoke("show", "chinchilla-70b", "--json").output)
    assert d["rests_on_assumed"]["D"] == [] and "tied_embeddings" in d["rests_on_assumed"]["tokens"]
    out = invoke("compare", "gpt3", "chinchilla", columns=120).output
    assert "*" not in line_of(out, "tokens D") and line_of(out, "tokens / parameter").rstrip(" │").endswith("*")
    d = json.loads(invoke("compare", "gpt3", "chinchilla", "--json").output)
    assert next(r for r in d["rows"] if r["label"] == "tokens D")["assumed"] == [[], []]


def test_compare_shows_a_dash_for_fields_that_do_not_apply():
    """W3: rope_theta for learned (GPT-3) and relative (Chinchilla) positions is `-`."""
    d = json.loads(invoke("compare", "gpt3", "chinchilla", "llama3", "--json").output)
    theta = next(r for r in d["rows"] if r["label"] == "rope_theta")
    assert theta["shown"] == ["-", "-", "500,000"] and theta["values"][:2] == [None, None]
    out = invoke("compare", "gpt3", "chinchilla", columns=120).output
    assert "10000" not in line_of(out, "rope_theta")


def test_show_prints_counts_and_floats_as_people_read_them():
    """K9: `70B`, not `7e+10`; `0.1768`, not 0.17677669529663687; exact counts keep their digits."""
    out = invoke("show", "chinchilla-70b", columns=120).output
    assert "70B" in line_of(out, "published_params") and "e+10" not in out
    out = invoke("show", "gemma2", "--size", "micro", columns=120).output
    assert "0.1768" in line_of(out, "query_scale") and "0.17677" not in out
    assert "6,053,381,344" in line_of(invoke("show", "gptj", columns=120).output, "published_params")


# ------------------------------------------------------------------------------------ recommend / laws
def test_published_laws_warn_far_outside_the_runs_they_were_fitted_on():
    """W5: at 1e13 FLOPs the Chinchilla-form laws are 5 decades below their runs; Kaplan at 252T
    parameters is 1.7e5x above its largest model. Table and JSON say so; at 1e21 nothing does."""
    r = invoke("recommend", "--flops", "1e13", "--json")
    rows = {x["law"]: x for x in json.loads(r.output)["recommendations"]}
    for name in ("hoffmann2022", "hoffmann2022-unrounded", "epoch2024"):
        w = rows[name]["warning"]
        assert w and "70M-16B" in w and "below" in w and "Hoffmann et al. 2022" in w, name
    out = invoke("recommend", "--flops", "1e13", columns=120).output
    assert out.count("warning: ") == 3 and "outside the range this law was fitted on" in out
    k = json.loads(invoke("recommend", "--tokens", "2e12", "--law", "kaplan", "--json").output)["recommendations"][0]
    assert "above 768-1.5B" in k["warning"] and "Kaplan et al. 2020" in k["warning"]
    assert "above 768-1.5B" in k["as_written"]["warning"]
    r = invoke("recommend", "--flops", "1e21", "--json")
    assert all(x["warning"] is None for x in json.loads(r.output)["recommendations"])
    assert "warning" not in invoke("recommend", "--flops", "1e21").output


def test_range_check_is_a_pure_function_the_allocation_ceg_can_call():
    """W6: the ablation's "allocation vs Kaplan 103x at 1e+11" scores a 235-parameter allocation with
    Hoffmann's law 7 decades below its runs; the check says so, and is silent inside the range."""
    from llmhist.scaling import laws

    h = laws.PUBLISHED["hoffmann2022"]
    far = laws.range_check(h, C=1e11, N=235, D=71e6)
    assert {x["quantity"] for x in far} == {"C", "N", "D"} and all(x["side"] == "below" for x in far)
    assert laws.range_check(h, C=1e21, N=2e9, D=8e10) == []
    w = laws.allocation_warning(h, 1e11)
    assert "Kaplan's allocation N = 235" in w and "its own optimum" in w and "extrapolation" in w
    assert laws.allocation_warning(h, 1e21) is None
    fitted = laws.Chinchilla("toy", 1.9, 400.0, 1200.0, 0.33, 0.3, fitted_range={"C": [1e11, 1e12]})
    assert laws.allocation_warning(fitted, 3e11) is None and laws.allocation_warning(fitted, 1e14)


def test_compare_marks_registry_models_judged_outside_a_laws_runs():
    """W5 in compare: GPT-3's 3.1e23 FLOPs is ~100x above Chinchilla's isoFLOP budgets."""
    d = json.loads(invoke("compare", "gpt3", "chinchilla", "--json").output)
    row = next(r for r in d["rows"] if r["label"] == "warning")
    assert row["shown"][0].startswith("C ") and "above" in row["shown"][0] and "Hoffmann" in row["note"]


def test_recommend_gpu_hours_prints_the_peak_and_how_the_name_was_read():
    """C11: the peak used and its source, in the table's notes and in JSON; `rtx4090` is not matched silently."""
    out = invoke("recommend", "--gpu-hours", "1000", "--gpu", "h100", "--mfu", "0.4", columns=200).output
    assert "1000 GPU-h" in out and "9.89e+14 FLOP/s" in out and "H100 SXM" in out and "1.42e+21" in out
    b = json.loads(invoke("recommend", "--gpu-hours", "1000", "--gpu", "h100", "--json").output)
    b = b["recommendations"][0]["budget"]
    assert b["peak_flops"] == 989e12 and "H100 SXM" in b["peak_source"] and b["device"] == "h100"
    out = invoke("recommend", "--gpu-hours", "1000", "--gpu", "rtx4090", columns=200).output
    assert "--gpu rtx4090 read as the table's 4090" in out


def test_kaplan_as_written_row_keeps_the_users_fixed_n_or_d():
    """C12: with --params 7e9 both Kaplan rows have N = 7B (their budgets differ); with --tokens 2e12, D = 2T."""
    k = json.loads(invoke("recommend", "--params", "7e9", "--law", "kaplan", "--json").output)["recommendations"][0]
    assert abs(k["N_opt"] / 7e9 - 1) < 1e-9 and abs(k["as_written"]["N_opt"] / 7e9 - 1) < 1e-9
    assert k["as_written"]["C"] < k["C"]  # C_min = C needs half the budget for the same N
    k = json.loads(invoke("recommend", "--tokens", "2e12", "--law", "kaplan", "--json").output)["recommendations"][0]
    assert abs(k["as_written"]["D_opt"] / 2e12 - 1) < 1e-6
    out = invoke("recommend", "--params", "7e9", "--law", "kaplan", columns=120).output
    assert line_of(out, "(C_min = C)").count("7B") == 1 and "11.6B" not in out


def test_recommend_numbers_take_any_python_float_spelling():
    """C25: 1_000e18 and 1E21 work; 10**21 gets the hint (the bad-input table checks the message)."""
    for spelling in ("1_000e18", "1E21", "1e+21"):
        r = invoke("recommend", "--flops", spelling, "--law", "epoch", "--json")
        assert r.exit_code == 0 and json.loads(r.output)["recommendations"][0]["C"] == 1e21
    r = invoke("recommend", "--flops", "10**21")
    assert r.exit_code == 2 and "write --flops 1e21" in r.output


# ------------------------------------------------------------------------------------ names and templates
def test_suggestions_put_families_first_and_train_suggests_only_buildable_models():
    """K13: `show lama3` suggests the family llama3 first; `train --arch gpt5` never suggests gpt4,
    whose shape was never published (show may: it lists what is known)."""
    from llmhist.archs import registry

    assert registry.suggestions("lama3")[0] == "llama3"
    r = invoke("show", "lama3")
    assert r.exit_code == 2 and "did you mean llama3," in r.output
    assert "gpt4" in registry.suggestions("gpt5") and "gpt4" not in registry.suggestions("gpt5", buildable=True)
    r = invoke("train", "--arch", "gpt5", "--size", "nano", "--tokens", "1e4", "--out", "unused-h22a")
    assert r.exit_code == 2 and "gpt5" in r.output and "did you mean" in r.output and "gpt4" not in r.output
    r = invoke("ablate", "gpt5", "llama3", "--list")
    assert r.exit_code == 2 and "gpt4" not in r.output


def test_a_custom_size_says_why_its_template_was_chosen():
    """C9: llama -> llama-65b (the flagship), llama3 -> llama3-8b (not the flagship: GQA 4:1 where the
    70B has 8:1), and a named size fixes the shape, not the parameter count."""
    d = json.loads(invoke("show", "llama", "--size", "micro", "--json").output)
    assert "llama-65b's proportions (the family's flagship)" in d["notes"]
    assert "not the parameter count" in d["notes"] and "llama-65b's proportions" in d["sources"]["d_model"]
    d = json.loads(invoke("show", "llama3", "--size", "micro", "--json").output)
    assert "not its flagship llama3-70b" in d["notes"] and "GQA 4:1, flagship GQA 8:1" in d["notes"]
    d = json.loads(invoke("show", "gptj", "--size", "nano", "--json").output)
    assert "one published shape" in d["notes"]


# ------------------------------------------------------------------------------------ README
README = (__import__("pathlib").Path(__file__).parent.parent / "README.md").read_text()


def test_readme_says_how_to_get_the_cpu_wheel_on_a_stock_pip():
    """C26: PyPI's Linux torch is the CUDA build; the README said `torch==2.13.0` installs the CPU wheel."""
    assert "first installs the CPU wheel" not in README
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in README
    assert "pip install torch==2.13.0 && pip install -e . && llmhist study" in README  # the two commands stay


def test_readme_archs_sample_is_what_archs_prints_at_80_columns():
    """C8: the README showed `GQA 32/8` while the tool printed `GQA 4`; the sample is now the output."""
    block = README.split("`llmhist archs` lists the registry as a timeline")[1].split("```")[1]
    out = [x.rstrip() for x in invoke("archs").output.splitlines()]
    sample = [x.rstrip() for x in block.strip("\n").splitlines()]
    assert len(sample) > 5 and all(x in out for x in sample), [x for x in sample if x not in out]
