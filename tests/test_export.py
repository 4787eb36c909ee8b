"""`llmhist export` writes folders transformers loads with from_pretrained, with the same logits;
`llmhist bench` measures both implementations."""

import json
import statistics

import pytest
import torch
import transformers  # the test extra
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.train.config import TrainConfig
from llmhist.train.export import load_run
from llmhist.train.loop import train

runner = CliRunner()


def _exportable() -> list[str]:
    """One family per transformers class the export writes (and per RoPE-scaling config it must carry),
    derived from the registry: a new family with a transformers class is exported without an edit."""
    from llmhist.archs import FAMILIES, get, hf

    out: dict[tuple, str] = {}
    for f in FAMILIES:
        a = get(f).arch
        if a is None:
            continue
        try:
            out.setdefault((hf.model_type(a), a.rope_scaling is not None), f)
        except hf.NoHFEquivalent:
            continue
    return sorted(out.values())


EXPORTABLE = _exportable()


def test_exportable_families_cover_the_choices_the_config_carries():
    assert {"gpt2", "llama3.1", "mixtral", "t5"} <= set(EXPORTABLE)  # learned pos, scaled RoPE, MoE, enc-dec


@pytest.mark.parametrize("family", EXPORTABLE)
def test_export_round_trips_through_transformers(family, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(arch=family, size="nano", ctx=32, batch=8, tokens=32 * 8 * 2, data="markov:tokens=20000",
                      out=str(run)))
    import os

    umask = os.umask(0o022)
    try:
        r = runner.invoke(app, ["export", str(run), str(tmp_path / "hf")])
    finally:
        os.umask(umask)
    assert r.exit_code == 0, r.output
    # first-hour C21: the success line names the class that loads it; K14: files 0644 like config.json
    loader = "AutoModelForSeq2SeqLM" if family == "t5" else "AutoModelForCausalLM"
    assert loader in " ".join(r.output.split())
    assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "hf").iterdir()}["model.safetensors"] == 0o644
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert "hidden_size" in cfg or "n_embd" in cfg or "d_model" in cfg
    vocab = cfg.get("vocab_size")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):  # C20: ids inside the byte vocabulary
        assert cfg.get(key) is None or not isinstance(cfg[key], int) or cfg[key] < vocab, (key, cfg[key])
    a, ours = load_run(run)
    x = torch.randint(0, 256, (2, 24))
    if family == "t5":
        ref = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "hf").eval()
        dec = torch.randint(0, 256, (2, 10))
        got, want = ref(input_ids=x, decoder_input_ids=dec).logits, ours(x, dec)
    else:
        ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
        got, want = ref(x).logits, ours(x)
    assert (got - want).abs().max().item() < 1e-4


def test_export_refuses_families_transformers_lacks(tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(arch="palm", size="nano", ctx=32, batch=8, tokens=32 * 8 * 2, data="markov:tokens=20000",
                      out=str(run)))
    r = runner.invoke(app, ["export", str(run), str(tmp_path / "hf")])
    assert r.exit_code == 2 and "palm" in r.output.lower() and not (tmp_path / "hf").exists()
    r = runner.invoke(app, ["export", str(tmp_path / "nothing"), str(tmp_path / "hf")])
    assert r.exit_code == 2 and "not a run folder" in " ".join(r.output.split())


def test_bench_times_both_implementations():
    r = runner.invoke(app, ["bench", "--arch", "llama", "--d-model", "64", "--n-layers", "2", "--n-heads", "4",
                            "--ctx", "32", "--batch", "4", "--steps", "2", "--repeats", "1", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    impls = {x["impl"]: x for x in res["results"]}
    assert set(impls) == {"llmhist eager", "transformers eager (sdpa)"}
    for x in impls.values():  # each figure follows from the timed steps, and MFU is a fraction of the peak
        assert x["tokens_per_s"] == pytest.approx(4 * 32 / (x["ms_per_step"] / 1e3), rel=1e-9)
        assert x["ms_per_step"] == pytest.approx(statistics.median(x["all_ms"]), rel=1e-9)
        assert 0 < x["mfu"] <= 1  # the peak is a real ceiling (p2's device.mfu re-measures a CPU peak below it)
    assert impls["transformers eager (sdpa)"]["ratio_vs_hf"] == 1.0


def test_export_into_an_unwritable_place_is_a_clear_error(tmp_path, monkeypatch):
    import errno
    import os

    run = tmp_path / "run"
    train(TrainConfig(arch="gpt2", size="nano", ctx=32, batch=8, tokens=32 * 8 * 2, data="markov:tokens=20000",
                      out=str(run)))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    r = runner.invoke(app, ["export", str(run), str(tmp_path / "hf")])
    assert r.exit_code == 2 and "free space" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "hf").exists() and not list(tmp_path.glob(".hf*"))
    monkeypatch.undo()
    (run / "model.safetensors").write_bytes(b"garbage")
    r = runner.invoke(app, ["export", str(run), str(tmp_path / "hf")])
    assert r.exit_code == 2 and "model.safetensors" in r.output and "damaged" in r.output


def test_export_uses_the_checkpoint_folder_swap_and_leaves_the_users_folders_alone(tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(arch="llama", size="nano", ctx=32, batch=8, tokens=32 * 8 * 2, data="markov:tokens=20000",
                      out=str(run)))
    (tmp_path / "hf").mkdir()  # an empty folder is exported into
    (tmp_path / "hf.old").mkdir()  # a folder of the user's that a swap's default name would take
    (tmp_path / "hf.old" / "mine.txt").write_text("keep")
    (tmp_path / ".hf.999999999.tmp").mkdir()  # a killed export's staging folder (cosmetic list): removed
    r = runner.invoke(app, ["export", str(run), str(tmp_path / "hf")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "hf" / "config.json").exists() and (tmp_path / "hf" / "llmhist.json").exists()
    assert (tmp_path / "hf.old" / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "hf.old", "run"]
