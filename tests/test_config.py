"""TrainConfig: one declaration of a run's options, every range checked on construction with the
option named, the same refusal for a Python caller, a grid and the command line."""

import json
import os
from dataclasses import fields

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.train import sweep as S
from llmhist.train.config import RunError, TrainConfig

runner = CliRunner()
CORES = os.cpu_count() or 1

# (options, the flag the message must name, a fragment of what it must say)
BAD = [
    (dict(lr=0), "--lr", "> 0"),
    (dict(lr=-1e-3), "--lr", "> 0"),
    (dict(lr=float("nan")), "--lr", "finite"),
    (dict(lr=float("inf")), "--lr", "finite"),
    (dict(warmup=-1), "--warmup", ">= 0"),
    (dict(warmup=float("nan")), "--warmup", "finite"),
    (dict(warmup=1), "--warmup", "< 1"),
    (dict(warmup=5), "--warmup", "< 1"),
    (dict(decay=0), "--decay", "> 0"),
    (dict(decay=3), "--decay", "<= 1"),
    (dict(eval_every=0), "--eval-every", ">= 1"),
    (dict(eval_batches=0), "--eval-batches", ">= 1"),
    (dict(micro_batch=0), "--micro-batch", ">= 1"),
    (dict(micro_batch=-1), "--micro-batch", ">= 1"),
    (dict(micro_batch=32, batch=16), "--micro-batch", "at most --batch"),
    (dict(batch=0), "--batch", ">= 1"),
    (dict(ctx=0), "--ctx", ">= 8"),
    (dict(ctx=7), "--ctx", ">= 8"),
    (dict(tokens=0), "--tokens", "> 0"),
    (dict(tokens=-5), "--tokens", "> 0"),
    (dict(tokens=float("nan")), "--tokens", "finite"),
    (dict(tokens=1e30), "--tokens", "far beyond"),
    (dict(tokens="2e6"), "--tokens", "whole number"),
    (dict(flops=-1.0), "--flops", "> 0"),
    (dict(flops=float("inf")), "--flops", "finite"),
    (dict(flops=1e40), "--flops", "far beyond"),
    (dict(tokens=1000, flops=1e9), "--tokens", "not both"),
    (dict(peak_flops=0), "--peak-flops", "> 0"),
    (dict(peak_flops=-1), "--peak-flops", "> 0"),
    (dict(threads=0), "--threads", ">= 1"),
    (dict(threads=-2), "--threads", ">= 1"),
    (dict(threads=CORES + 1), "--threads", f"{CORES} cores"),
    (dict(threads=100000), "--threads", f"{CORES} cores"),
    (dict(seed=-1), "--seed", ">= 0"),
    (dict(d_model=0, n_layers=2, n_heads=2), "--d-model", ">= 1"),
    (dict(d_model=64, n_layers=0, n_heads=2), "--n-layers", ">= 1"),
    (dict(d_model=64, n_layers=2, n_heads=-1), "--n-heads", ">= 1"),
    (dict(d_model=64), "--d-model", "needs all of"),
    (dict(size="nano", d_model=64, n_layers=2, n_heads=2), "--size", "not both"),
    (dict(arch="gpt2", size="llama-7b"), "--size", "llama model"),
    (dict(arch="llama", size="gpt2-small"), "--size", "gpt2 model"),
    (dict(arch="gpt5"), "--arch", "unknown architecture"),
    (dict(schedule="linear"), "--schedule", "cosine, wsd, constant"),
    (dict(token_dtype="int8"), "--token-dtype", "uint16, uint32"),
    (dict(tokenizer="words"), "--tokenizer", "bytes or bpeN"),
    (dict(tokenizer="bpe10"), "--tokenizer", "between 257"),
    (dict(vocab_size=1), "--vocab-size", ">= 2"),
    (dict(device="meta"), "--device", "auto, cpu, cuda"),
    (dict(device="tpu"), "--device", "auto, cpu, cuda"),
    (dict(device="cuda:7"), "--device cuda:7", ""),
    (dict(branches="0.5"), "--branches", "--schedule wsd"),
    (dict(branches="2", schedule="wsd"), "--branches", "(0, 1)"),
    (dict(branches="a,b", schedule="wsd"), "--branches", "fractions"),
    (dict(data="/nonexistent/corpus"), "--data", "no such file"),
    (dict(remat="yes"), "--remat", "true or false"),
    (dict(ctx=128.5), "--ctx", "whole number"),
]


@pytest.mark.parametrize("opts,flag,fragment", BAD, ids=[str(b[0]) for b in BAD])
def test_every_range_is_refused_naming_the_option(opts, flag, fragment):
    with pytest.raises(RunError) as e:
        TrainConfig(**opts)
    msg = str(e.value)
    assert flag in msg and fragment in msg, msg


def test_valid_values_are_accepted_and_normalised():
    c = TrainConfig(tokens=2e6, warmup=0, decay=1, lr=1e-3, threads=CORES, eval_every=1, micro_batch=4, batch=16,
                    schedule="wsd", branches="0.25,0.5", device="CPU")
    assert c.tokens == 2_000_000 and isinstance(c.tokens, int) and c.device == "cpu"
    assert c.branch_fractions() == [0.25, 0.5]
    assert TrainConfig(arch="llama", size="llama-7b").size == "llama-7b"  # a registry name of the family


def test_to_dict_round_trips_as_strict_json_and_from_dict_refuses_unknown_keys():
    c = TrainConfig(arch="gpt2", size="nano", tokens=4096, variant=None)
    text = json.dumps(c.to_dict(), allow_nan=False)  # NaN can never reach config.json
    assert TrainConfig.from_dict(json.loads(text)) == c
    with pytest.raises(RunError, match=r"runs/x/run.json: unknown option 'lerning_rate'"):
        TrainConfig.from_dict({**c.to_dict(), "lerning_rate": 1.0}, source="runs/x/run.json")
    with pytest.raises(RunError, match="runs/x/run.json: --lr 0"):
        TrainConfig.from_dict({"lr": 0}, source="runs/x/run.json")
    with pytest.raises(RunError, match="table of options"):
        TrainConfig.from_dict([1, 2], source="r.json")


def test_identity_holds_what_must_match_on_resume():
    ident = TrainConfig().identity()
    assert "variant" in ident and "seed" in ident and "schedule" in ident
    assert not {"threads", "device", "out", "compile", "peak_flops"} & set(ident)
    assert TrainConfig(threads=1).identity() == TrainConfig().identity()
    assert TrainConfig(seed=1).identity() != TrainConfig().identity()


def test_cli_options_are_the_config_fields():
    cmd = get_command(app).commands["train"]
    by_name = {p.name: p for p in cmd.params}
    cli_fields = [f for f in fields(TrainConfig) if f.metadata.get("cli", True)]
    assert set(by_name) == {f.name for f in cli_fields} | {"json_out"}
    for f in cli_fields:
        p = by_name[f.name]
        flag = (f.metadata.get("flag") or "--" + f.name.replace("_", "-")).split("/")[0]
        assert flag in p.opts, (f.name, p.opts)
        if f.name != "compile":
            assert p.help == f.metadata["help"]
        if f.metadata.get("cli_default", ...) is ... and f.name != "out":
            assert p.default == f.default or (p.default is None and f.default is None), f.name
    assert not {f.name for f in fields(TrainConfig) if not f.metadata.get("cli", True)} & set(by_name)


@pytest.mark.parametrize("key,value,fragment", [("schedule", '"linear"', "--schedule 'linear'"),
                                                 ("threads", "-1", "--threads -1"),
                                                 ("lr", "0", "--lr 0")])
def test_python_grid_and_cli_get_the_same_refusal(tmp_path, key, value, fragment):
    with pytest.raises(RunError) as e:
        TrainConfig(**{key: json.loads(value)})
    assert fragment in str(e.value)
    g = tmp_path / "g.toml"
    g.write_text(f'[defaults]\n{key} = {value}\n[[run]]\narch = "llama"\nsize = "nano"\ntokens = 1e5\n')
    with pytest.raises(RunError) as e2:
        S.plan_grid(g)
    assert fragment in str(e2.value) and str(g) in str(e2.value)
    r = runner.invoke(app, ["train", f"--{key}", str(json.loads(value)), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and fragment in r.output and not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------ the resolve step


def test_unset_options_take_the_recipe_value_with_its_source():
    from llmhist.archs import build_spec
    from llmhist.archs.recipes import recipe_for
    from llmhist.train import defaults as D

    t5 = TrainConfig(arch="t5", size="nano").resolve()
    assert t5.recipe.optimizer == "adafactor" and t5.lr == D.ADAFACTOR_LR and "T5 §3.1.2" in t5.sources["lr"]
    llama = TrainConfig(arch="llama", size="small").resolve()
    d = build_spec("llama", "small").d_model
    assert llama.lr == pytest.approx(min(D.PEAK_LR_CAP, D.GPT3_PEAK_LR * D.GPT3_D_MODEL / d))
    assert llama.sources["lr"].startswith("recipe: GPT-3 Table 2.1")
    r = recipe_for("llama")
    assert llama.warmup == r.warmup_frac and llama.sources["warmup"] == "recipe: " + r.source_of("warmup_frac")
    assert llama.schedule == r.schedule and llama.sources["schedule"] == "recipe: " + r.source_of("schedule")
    given = TrainConfig(arch="t5", lr=1e-3, warmup=0.1, schedule="constant").resolve()
    assert (given.lr, given.warmup, given.schedule) == (1e-3, 0.1, "constant")
    assert {given.sources[k] for k in ("lr", "warmup", "schedule")} == {"given"}
    assert given.sources["ctx"] == "default" and TrainConfig(ctx=64).resolve().sources["ctx"] == "given"
    doc = given.to_dict()
    assert set(doc) == {f.name for f in fields(TrainConfig)} - {"out"} and doc["lr"] == {"value": 1e-3, "source": "given"}
    json.dumps(doc, allow_nan=False)


def test_a_recipe_schedule_is_what_the_trainer_runs(monkeypatch):
    """One vocabulary: every recipe names a schedule the trainer runs, and a recipe's WSD is used
    (branches need no --schedule then)."""
    from llmhist.archs import ENTRIES, recipes
    from llmhist.train.schedule import SCHEDULES

    assert {e.recipe.schedule for e in ENTRIES} <= set(SCHEDULES)
    real = recipes.recipe_for
    monkeypatch.setattr(recipes, "recipe_for", lambda *a, **k: real(*a, **k).with_(
        schedule="wsd", warmup_frac=0.1, sources={"schedule": "a test's WSD", "warmup_frac": "a test's 10%"}))
    r = TrainConfig(branches="0.5").resolve()
    assert (r.schedule, r.warmup) == ("wsd", 0.1) and r.sources["schedule"] == "recipe: a test's WSD"
    with pytest.raises(RunError, match="--branches needs --schedule wsd"):
        TrainConfig(branches="0.5", schedule="cosine")


def test_a_request_with_explicit_recipe_values_is_the_same_run():
    """config.json's "train" written with the recipe's values spelled out (as before the resolve
    step) matches a request leaving them unset; a different value is another run."""
    mine = TrainConfig(arch="gpt2", size="nano").resolve()
    old_style = {**mine.config.to_dict(), "schedule": "cosine", "warmup": 0.02, "lr": None}
    assert mine.differences(old_style) == {}
    assert set(mine.differences({**old_style, "warmup": 0.05})) == {"warmup"}
    assert set(mine.differences({**old_style, "lr": mine.lr * 2, "seed": 3})) == {"lr", "seed"}
    explicit = TrainConfig(arch="gpt2", size="nano", lr=mine.lr, schedule="cosine").resolve()
    assert explicit.differences(mine.config.to_dict()) == {}


def test_train_is_a_real_definition_with_the_library_defaults():
    import inspect

    from llmhist.cli import train_cmd
    from llmhist.train import defaults as D

    assert "__signature__" not in train_cmd.train.__dict__  # no signature synthesised at import
    params = inspect.signature(train_cmd.train).parameters
    assert list(params)[:-1] == [f.name for f in fields(TrainConfig) if f.metadata.get("cli", True)]
    cmds = get_command(app).commands
    lr = next(p for p in cmds["train"].params if p.name == "lr")
    assert "Adafactor" in lr.help and f"{D.PEAK_LR_CAP:g}" in lr.help
    study = {p.name: p.default for p in cmds["study"].params}
    assert [float(x) for x in study["budgets"].split(",")] == list(D.STUDY_BUDGETS)
    assert (study["points"], study["ctx"], study["batch"], study["bootstrap"]) == (
        D.STUDY_POINTS, D.STUDY_CTX, D.STUDY_BATCH, D.STUDY_BOOTSTRAP)


def test_the_study_request_is_checked_whole_before_any_run():
    from pathlib import Path

    from llmhist.scaling.study import Study
    from llmhist.train import defaults as D

    s = Study()
    assert s.C == D.STUDY_RECOMMEND_FACTOR * max(D.STUDY_BUDGETS) and s.folder == Path("runs/study-llama")
    assert Study(flops=1e13, out=Path("x")).C == 1e13 and Study(out=Path("x")).fits_dir == Path("x/fits")
    for bad, fragment in ((dict(plot="pdf"), "--plot 'pdf'"), (dict(bootstrap=-1), "--bootstrap -1"),
                          (dict(budgets=()), "--budgets"), (dict(flops=float("nan")), "--flops nan"),
                          (dict(workers=0), "--workers 0")):
        with pytest.raises(RunError, match=fragment.replace("(", r"\(")):
            Study(**bad)
