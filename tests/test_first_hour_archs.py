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
