"""Per-GPU memory and step time (llmhist.archs.parallel) against the published formulas: ZeRO's model
states (Rajbhandari et al. 2020, Fig. 1), Korthikanti et al. 2022's activation memory per layer
(Table 2) and per pipeline stage (eq. 4, §4.3), and training configurations papers report."""

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from llmhist.archs import get
from llmhist.archs.accounting import activation_bytes_per_token, layers, params
from llmhist.archs.parallel import (
    Layout,
    LayoutError,
    estimate,
    layer_activation_bytes,
    model_state_bytes,
    stage_activations,
    stage_params,
)
from llmhist.cli.main import app
from llmhist.core.report import parallel
from llmhist.train.hardware import MEMORY, PEAK

GB = 1e9


def test_zero_model_states_match_figure_1():
    # ZeRO Fig. 1: Ψ = 7.5B, N_d = 64, K = 12: 120 GB baseline, 31.4 GB P_os, 16.6 GB P_os+g, 1.88 GB P_os+g+p
    got = [sum(model_state_bytes(7.5e9, 64, z).values()) for z in range(4)]
    assert got[0] == 120 * GB
    assert got[1] == pytest.approx(31.4 * GB, abs=0.05 * GB)
    assert got[2] == pytest.approx(16.6 * GB, abs=0.05 * GB)
    assert got[3] == pytest.approx(1.88 * GB, abs=0.005 * GB)
    one = model_state_bytes(7.5e9, 1, 3)  # one data-parallel rank: nothing to divide
    assert sum(one.values()) == 120 * GB and one["optimizer"] == 12 * 7.5e9


def _gpt3_layer_terms():
    e = get("gpt3-175b")
    return e.arch, layers(e.arch)[0]


@pytest.mark.parametrize("t,sp,recompute,per_sbh", [
    # Korthikanti et al. 2022 Table 2 with s = 2048, h = 12288, a = 96 (GPT-3 175B), t = 8
    (1, False, "none", lambda t, r: 34 + 5 * r),  # no parallelism (eq. 1)
    (8, False, "none", lambda t, r: 10 + 24 / t + 5 * r / t),  # tensor parallel baseline (eq. 2)
    (8, True, "none", lambda t, r: 34 / t + 5 * r / t),  # tensor + sequence parallel (eq. 3)
    (8, False, "selective", lambda t, r: 10 + 24 / t),  # tensor parallel + selective recompute
    (8, True, "selective", lambda t, r: 34 / t),  # tensor + sequence parallel + selective recompute
    (8, True, "full", lambda t, r: 2),  # full activation recompute
])
def test_activation_memory_per_layer_matches_korthikanti_table_2(t, sp, recompute, per_sbh):
    a, L = _gpt3_layer_terms()
    s, b, h, heads = 2048, 3, a.d_model, a.n_heads
    got = layer_activation_bytes(a, L, s, b, t, sp, recompute)
    assert got == pytest.approx(s * b * h * per_sbh(t, heads * s / h), rel=1e-12)


def test_activation_memory_is_gqa_and_gated_mlp_aware():
    # Llama 3 70B: 8 KV heads of 128 and a SwiGLU MLP of 28,672. Korthikanti's terms, term by term:
    # replicated 10 h (two block inputs 2h each, two dropout masks h each, two norm inputs 2h each);
    # split: Q and K (2 d_attn + 2 d_kv), V (2 d_kv), output projection input (2 d_attn), MLP gate and up
    # outputs and the product fed to down (2 f each).
    a = get("llama3-70b").arch
    h, da, dkv, f = 8192, 8192, 1024, 28672
    assert (a.d_attn, a.d_kv, a.d_ff) == (da, dkv, f)
    split = 2 * da + 2 * dkv + 2 * dkv + 2 * da + 3 * 2 * f
    got = layer_activation_bytes(a, layers(a)[0], 4096, 1, 8, False, "selective")
    assert got == 4096 * (10 * h + split / 8)
    assert activation_bytes_per_token(a, T=4096) == 80 * (10 * h + split)  # one device: the same terms summed


def test_first_pipeline_stage_holds_p_micro_batches():
    # Korthikanti §4.2.3 (eq. 4): under 1F1B the first stage keeps p micro-batches of its L/p layers, i.e.
    # L layers' worth (sbhL/t * 34 with SP + selective), plus the embedding's dropout mask sbh/t each (§4.3)
    a = get("gpt3-175b").arch
    s, h, t, p, L = 2048, 12288, 8, 8, 96
    lay = Layout(gpus=64, tp=t, pp=p, global_batch=64, seq_parallel=True, recompute="selective")
    acts = stage_activations(a, lay, s)
    assert acts[0] == pytest.approx(s * h * L * 34 / t + p * s * h / t, rel=1e-12)
    assert acts[1] == pytest.approx(s * h * (L // p) * (p - 1) * 34 / t, rel=1e-12)  # one fewer in flight
    few = stage_activations(a, Layout(gpus=64, tp=t, pp=p, global_batch=2, seq_parallel=True), s)
    assert few[0] == pytest.approx(2 / p * (acts[0]), rel=1e-12)  # m = 2 < p: only m in flight


@pytest.mark.parametrize("name", ["llama3-70b", "gpt2-124m", "mixtral-8x7b", "t5-11b", "gemma2-9b"])
def test_stage_parameters_add_up_to_the_model(name):
    a = get(name).arch
    total = params(a).total
    assert sum(stage_params(a, 1, 1)) == total
    head_copy = a.vocab_size * a.d_model if a.tied_embeddings else 0  # a tied head is copied to the last stage
    assert sum(stage_params(a, 1, 4)) == total + head_copy


def test_kv_cache_per_gpu_never_splits_a_head():
    e = get("llama3-70b")
    kv_total = 80 * 2 * 8 * 128 * 2 * 8192  # layers x (K, V) x KV heads x head_dim x bf16 x tokens: 2.5 GiB
    for tp, share in ((1, 1), (8, 1 / 8), (16, 1 / 8)):  # 16 GPUs, 8 heads: each keeps one whole head
        got = parallel(e, Layout(tp=tp, ctx=8192))["inference"]["kv_cache"]
        assert got == kv_total * share


def _show_json(*args):
    r = CliRunner().invoke(app, ["show", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)["parallel"]


def test_show_llama3_70b_on_64_gpus_each_number_from_the_formulas():
    p = _show_json("llama3-70b", "--gpus", "64", "--tp", "8", "--pp", "2", "--zero", "1")
    h, da, dkv, f, V, L, s = 8192, 8192, 1024, 28672, 128256, 80, 8192
    t, pp, dp, m = 8, 2, 4, 8  # m = 4 pp micro-batches of one sequence (the stated default)
    assert (p["layout"]["dp"], p["layout"]["micro_batches"]) == (dp, m)
    layer_matmuls = h * da + 2 * h * dkv + da * h + 3 * h * f
    n0 = L // pp  # 40 layers on stage 0
    psi0 = n0 * layer_matmuls / t + n0 * 2 * h + V * h / t  # stage 0: its layers (norms whole) + embedding
    tr = p["training"]
    assert tr["stage"] == 0 and tr["params_on_gpu"] == psi0
    assert (tr["params"], tr["grads"], tr["optimizer"]) == (2 * psi0, 2 * psi0, 12 * psi0 / dp)  # ZeRO-1
    per_layer = s * (10 * h + (4 * da + 4 * dkv + 6 * f) / t)  # Table 2: TP + selective, no SP
    assert tr["activations"] == pytest.approx(2 * (n0 * per_layer + s * h), rel=1e-12)  # 2 = min(p, m) in flight
    assert tr["total"] == pytest.approx(2 * psi0 + 2 * psi0 + 12 * psi0 / dp + tr["activations"], rel=1e-12)
    assert tr["memory"] == MEMORY["h100"][0] and tr["fits"] == (tr["total"] <= 80e9) and not tr["fits"]
    n_active = params(get("llama3-70b").arch).active
    tokens = dp * 1 * m * s
    assert p["step"]["seconds"] == pytest.approx(6 * n_active * tokens / (64 * PEAK["h100"]["bf16"][0] * 0.4))
    assert p["step"]["bubble_fraction"] == (pp - 1) / m
    assert p["inference"]["kv_cache"] == L * 2 * 8 * 128 * 2 * s / t / pp  # 160 MiB: 1 of 8 KV heads, half the layers
    assert any("does not fit" in x for x in p["flags"]) and "ZeRO" in p["how"]["model_state"]
    sp = _show_json("llama3-70b", "--gpus", "64", "--tp", "8", "--pp", "2", "--zero", "1", "--seq-parallel")
    assert sp["training"]["fits"]  # sequence parallelism divides the replicated 10 h by t: it fits


def test_show_prints_the_table_how_and_flags():
    r = CliRunner().invoke(app, ["show", "llama3-70b", "--gpus", "64", "--tp", "8", "--pp", "2", "--zero", "1"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "per GPU: 64 x h100, tp 8, pp 2, ZeRO-1" in out and "optimizer state" in out
    assert "how activations: Korthikanti" in out and "FLAG" in out and "fits (training)" in out
    r = CliRunner().invoke(app, ["show", "mixtral-8x7b", "--tp", "8", "--json"])
    assert any("expert parallelism is not modelled" in x for x in json.loads(r.output)["parallel"]["flags"])
    for recompute, says in (("none", "eq. 2"), ("selective", "no 5as/h"), ("full", "2 s b h")):
        how = _show_json("gpt3", "--tp", "8", "--recompute", recompute)["how"]["activations"]
        assert says in how, (recompute, how)
    assert "eq. 3" in _show_json("gpt3", "--tp", "8", "--recompute", "none", "--seq-parallel")["how"]["activations"]
    r = CliRunner().invoke(app, ["show", "llama3-70b"])
    assert "per GPU" not in r.output  # without a layout, show is as before


def test_compare_carries_the_per_gpu_rows():
    r = CliRunner().invoke(app, ["compare", "llama3-70b", "mixtral-8x7b", "--tp", "8", "--pp", "2", "--gpus", "16",
                                 "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["label"]: x for x in json.loads(r.output)["rows"] if x["section"].startswith("per GPU")}
    direct = [parallel(get(n), Layout(gpus=16, tp=8, pp=2)) for n in ("llama3-70b", "mixtral-8x7b")]
    assert rows["activations"]["values"] == [d["training"]["activations"] for d in direct]
    assert rows["fits (training)"]["values"] == [d["training"]["fits"] for d in direct]
    assert any("expert parallelism" in x for x in rows["flags"]["values"][1])
    text = CliRunner().invoke(app, ["compare", "llama3-70b", "mixtral-8x7b", "--tp", "8"]).output
    assert "how model_state" in text and "FLAG mixtral-8x7b" in text


def test_megatron_turing_530b_as_trained_fits_80gb_a100s():
    # Korthikanti et al. 2022 (abstract): the 530B model trained on 2,240 A100s (80 GB) with sequence
    # parallelism and selective recompute, 54.2% MFU against 42.1% with full recompute; MT-NLG's layout:
    # 8-way tensor slicing in a node, 35-way pipeline (280 GPUs a replica: 8 replicas), micro-batch 1,
    # sequence 2,048. The global batch is not the paper's: memory needs only m >= p.
    e = get("mtnlg-530b")
    lay = dict(gpus=2240, tp=8, pp=35, micro_batch=1, global_batch=8 * 140, gpu="a100", mfu=0.542)
    ours = parallel(e, Layout(recompute="selective", seq_parallel=True, **lay))["training"]
    assert ours["fits"] and ours["total"] < 80e9  # about 52 GB: 33 GB model state, 19 GB activations
    base = parallel(e, Layout(recompute="none", seq_parallel=False, **lay))["training"]
    assert not base["fits"]  # tensor parallelism alone would not fit: why the baseline needed full recompute
    full = parallel(e, Layout(recompute="full", seq_parallel=False, **lay))["training"]
    assert full["fits"] and full["activations"] < ours["activations"]


def test_llama3_405b_table_4_layout_fits_80gb_h100s():
    # Llama 3 (Table 4): 16,384 H100 80GB, TP 8, CP 1, PP 16, DP 128, sequence 8,192, 16M tokens a batch
    # (2,048 sequences), 41% BF16 MFU. Llama 3 shards with FSDP; ZeRO stage 2's memory (parameters whole
    # during the step, gradients and optimizer state sharded) is this test's assumption for it.
    e = get("llama3.1-405b")
    lay = Layout(gpus=16384, tp=8, pp=16, zero=2, micro_batch=1, global_batch=2048, recompute="selective",
                 seq_parallel=True, gpu="h100", mfu=0.41)
    out = parallel(e, lay)
    tr = out["training"]
    assert tr["fits"] and 0.9 * 80e9 < tr["total"] < 80e9  # fits, with under 10% to spare: flagged
    assert any("within 10%" in x for x in out["flags"])
    assert out["layout"]["dp"] == 128 and out["step"]["tokens"] == 2048 * 8192
    assert out["step"]["bubble_fraction"] == 15 / 16  # plain 1F1B with m = p (Llama 3 interleaved: flagged)


def test_a_layout_is_checked_before_any_work():
    a = get("llama3-70b").arch
    with pytest.raises(LayoutError, match="--tp 3 does not divide"):
        estimate(a, Layout(tp=3), 8192, 1e15, 80e9)
    with pytest.raises(LayoutError, match="--gpus 48 is not divisible"):
        Layout(gpus=48, tp=8, pp=4).check()
    with pytest.raises(LayoutError, match="--zero 4"):
        Layout(zero=4).check()
    with pytest.raises(LayoutError, match="--pp 81"):
        estimate(a, Layout(pp=81), 8192, 1e15, 80e9)
    with pytest.raises(LayoutError, match="--tp 8 does not divide .* d_ff 28673"):
        estimate(replace(a, d_ff=28673), Layout(tp=8), 8192, 1e15, 80e9)


def test_recommend_spreads_n_opt_over_the_gpus():
    r = CliRunner().invoke(app, ["recommend", "--flops", "1e24", "--gpus", "1024", "--gpu", "a100", "--zero", "3",
                                 "--json"])
    assert r.exit_code == 0, r.output
    for row in json.loads(r.output)["recommendations"]:
        g = row["per_gpu"]
        assert g["model_state"] == pytest.approx(16 * row["N_opt"] / 1024)  # ZeRO-3: (2 + 2 + 12) Ψ / N_d
        assert g["days"] == pytest.approx(1e24 / (1024 * 312e12 * 0.4) / 86400)
        assert g["fits_model_state"] == (g["model_state"] <= 80e9) and "activations not counted" in g["flag"]
    r = CliRunner().invoke(app, ["recommend", "--gpu-hours", "1e6", "--gpu", "h100", "--gpus", "1000", "--tp", "8",
                                 "--pp", "5"])
    assert r.exit_code == 0 and "N_opt on 1,000 x h100 (dp 25 x tp 8 x pp 5, ZeRO-0)" in r.output
