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
    (dict(d_model=64), "--d-model", "needs all three"),
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
