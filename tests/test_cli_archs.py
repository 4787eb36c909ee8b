"""`llmhist archs / show / compare` through typer's CliRunner, and their start-up cost."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from llmhist.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_archs_json_has_required_fields_and_filters():
    r = invoke("archs", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    names = {x["name"] for x in rows}
    assert {"gpt1-117m", "gpt3-175b", "chinchilla-70b", "llama3.1-405b", "t5-11b", "gpt4", "codex-12b"} <= names
    for x in rows:
        assert {"name", "family", "year", "params_total", "params_non_embedding", "params_active"} <= set(x)
    years = [x["year"] for x in rows]
    assert years == sorted(years)
    mix = next(x for x in rows if x["name"] == "mixtral-8x7b")
    assert mix["params_active"] < mix["params_total"]
    r = invoke("archs", "--family", "llama2", "--json")
    assert {x["name"] for x in json.loads(r.output)} == {"llama2-7b", "llama2-13b", "llama2-34b", "llama2-70b"}
    r = invoke("archs", "--since", "2024", "--json")
    assert all(x["year"] >= 2024 for x in json.loads(r.output))
    r = invoke("archs", "--family", "lama")
    assert r.exit_code == 2 and "llama" in r.output


def test_archs_table():
    r = invoke("archs")
    assert r.exit_code == 0 and "gpt3-175b" in r.output and "chinchilla-70b" in r.output


def test_show_json_and_sources():
    r = invoke("show", "Llama3.1-405B", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["spec"]["n_kv_heads"] == 8 and d["accounting"]["params"]["total"] == 405_853_388_800
    assert "config.json" in d["sources"]["d_ff"]
    r = invoke("show", "afm-on-device", "--json")
    assert "not published" in json.loads(r.output)["sources"]["d_ff"]
    r = invoke("show", "gpt4")  # unknown shape: what is known, no accounting
    assert r.exit_code == 0 and "never published" in r.output
    r = invoke("show", "gemma2", "--size", "micro", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["spec"]["d_model"] == 128
    d = json.loads(r.output)
    assert all(d["sources"].values())  # a custom size sources every value too (choices: its template's)


def test_show_uses_the_pretraining_length_and_marks_assumptions():
    d = json.loads(invoke("show", "llama3.1-405b", "--json").output)
    assert d["accounting"]["train_ctx_len"] == 8192 and d["catalogue"]["train_ctx_len"] == 8192
    assert d["spec"]["ctx_len"] == 131072
    d = json.loads(invoke("show", "gpt3-175b", "--json").output)
    assert "window" in d["assumed"] and "window" in d["rests_on_assumed"]["kv_cache"]
    assert d["rests_on_assumed"]["params"] == [] and d["rests_on_assumed"]["flops"] == []
    assert "window" in d["rests_on_assumed"]["flops_useful"]  # only attention over the band depends on it
    r = invoke("show", "gpt3-175b")
    kv = next(line for line in r.output.splitlines() if "KV cache per token" in line)
    assert "*" in kv and "window = 256: assumed" in r.output.replace("\n", " ")
    params_line = next(line for line in r.output.splitlines() if "params total" in line)
    assert "*" not in params_line
    d = json.loads(invoke("show", "llama3", "--d-model", "256", "--n-layers", "4", "--n-heads", "8", "--json").output)
    assert d["spec"]["n_kv_heads"] == 2  # the README's command keeps Llama 3's 4:1 GQA


def test_compare_gpt3_chinchilla():
    r = invoke("compare", "gpt3", "chinchilla", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["models"] == ["gpt3-175b", "chinchilla-70b"]
    rows = {(x["section"], x["label"]): x["values"] for x in d["rows"]}
    tpp = rows[("training", "tokens / parameter")]
    assert tpp[0] < 2 and 19 < tpp[1] < 21  # GPT-3 1.7 tokens/param; Chinchilla 20
    over = rows[("compute-optimal (epoch2024)", "N / N_opt (>1 undertrained)")]
    assert over[0] > 2 and 0.8 < over[1] < 1.25  # GPT-3 far too big for its compute; Chinchilla near optimal
    kv = next(x for x in d["rows"] if x["label"] == "KV cache / token bf16")
    assert "window" in kv["assumed"][0] and kv["assumed"][1] == []  # GPT-3's band width is an assumption
    r = invoke("compare", "gpt3", "chinchilla")
    assert r.exit_code == 0 and "N_opt" in r.output and "window = 256: assumed" in r.output


def test_bad_input_exits_2_with_suggestions():
    r = invoke("show", "llama5")
    assert r.exit_code == 2 and "did you mean" in r.output and "llama" in r.output
    r = invoke("compare", "gpt4", "gpt3")
    assert r.exit_code == 2 and "never published" in r.output
    r = invoke("compare", "gpt3")
    assert r.exit_code == 2 and "at least two" in r.output
    r = invoke("show", "llama2-70b", "--d-model", "384", "--n-layers", "2", "--n-heads", "12")
    assert r.exit_code == 2 and "multiple of 8" in r.output
    r = invoke("show", "llama", "--size", "gpt2-124m")
    assert r.exit_code == 2 and "not a member" in r.output


def test_fast_commands_do_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from llmhist.cli.main import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['archs'], ['compare', 'gpt3', 'chinchilla'], ['show', 'llama'], ['recommend', '--flops', '1e21'],\n"
        "             ['show', 'llama3-70b', '--gpus', '64', '--tp', '8', '--pp', '2', '--zero', '1'],\n"
        "             ['compare', 'gpt3', 'chinchilla', '--tp', '8'], ['recommend', '--flops', '1e21', '--gpus', '64']):\n"
        "    res = r.invoke(app, args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'scipy', 'pandas') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_fit_imports_neither_torch_nor_matplotlib_without_plots(tmp_path):
    rows = ["N,D,loss"] + [f"{n},{c / (6 * n)},{1.9 + 400 / n**0.33 + 1200 / (c / (6 * n))**0.3}"
                           for c in (1e17, 1e18, 1e19) for n in (1e7, 3e7, 1e8, 3e8, 1e9)]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from llmhist.cli.main import app\n"
        f"res = CliRunner().invoke(app, ['fit', {str(tmp_path / 'p.csv')!r}, '--bootstrap', '0', '--plot', 'none',"
        f" '--out', {str(tmp_path / 'f')!r}])\n"
        "assert res.exit_code == 0, res.output\n"
        "print([m for m in ('torch', 'matplotlib') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
