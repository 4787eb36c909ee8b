"""The registry: every entry is complete and sourced; counts reproduce papers and transformers."""

import pytest

from llmhist.archs import ENTRIES, SpecError, UnknownArch, build_spec, get, params
from llmhist.archs.registry import BY_NAME

HF_FREE_FAMILIES = {"gpt3", "jurassic1", "mtnlg", "gopher", "chinchilla", "palm"}


@pytest.mark.parametrize("e", ENTRIES, ids=lambda e: e.name)
def test_entry_is_complete_and_sourced(e):
    assert e.name == e.name.lower() and e.family and e.paper and e.source
    assert 2017 <= e.year <= 2025
    assert e.optimizer and e.tokenizer
    if e.shape_known:
        e.require_shape()
        assert e.ctx_len and e.vocab_size and e.d_ff
        if e.head_dim is None and e.d_model % e.n_heads:  # GPT-3 XL and 13B as Table 2.1 prints them
            with pytest.raises(SpecError, match="integer width"):
                e.check()
        else:
            e.check()
    else:
        assert "Unknown" in e.notes or "unknown" in e.notes.lower()
        with pytest.raises(SpecError, match="never published"):
            e.require_shape()


def test_names_aliases_and_flagships():
    assert get("GPT2-124M").name == "gpt2-124m"
    assert get("llama-30b").name == "llama-33b"
    for fam, flagship in [("gpt3", "gpt3-175b"), ("llama2", "llama2-70b"), ("gemma2", "gemma2-27b"),
                          ("mixtral", "mixtral-8x7b"), ("qwen2", "qwen2-72b"), ("t5", "t5-11b"),
                          ("chinchilla", "chinchilla-70b"), ("llama3.1", "llama3.1-405b")]:
        assert get(fam).name == flagship
    with pytest.raises(UnknownArch) as ei:
        get("llama5")
    assert ei.value.suggestions and all(s in BY_NAME or get(s) for s in ei.value.suggestions)
    assert len(set(ei.value.suggestions)) == len(ei.value.suggestions)


def test_gpt2_small_conventions():
    p = params(get("gpt2-124m"))
    assert p.total == 124_439_808
    assert p.total - 1024 * 768 == 123_653_376  # minus position table only
    assert p.non_embedding == 85_056_000  # Kaplan's convention


@pytest.mark.parametrize("e", [e for e in ENTRIES if e.family in HF_FREE_FAMILIES], ids=lambda e: e.name)
def test_reproduces_paper_figures(e):
    # papers print sizes to 2-3 significant figures
    assert params(e).total == pytest.approx(e.published_params, rel=0.02)


def test_traps():
    assert [get(n).d_ff for n in ("llama-7b", "llama-13b", "llama-33b", "llama-65b")] == [11008, 13824, 17920, 22016]
    assert [get(n).d_ff for n in ("llama2-70b", "llama3-8b", "llama3.1-405b")] == [28672, 14336, 53248]
    assert get("llama3-8b").rope_theta == 500000 and get("llama2-7b").rope_theta == 10000
    assert get("llama3.1-405b").kv_heads == 8 and get("llama3.1-8b").rope_scaling.factor == 8
    assert get("qwen2-7b").vocab_size == 152064 and get("qwen2-0.5b").vocab_size == 151936
    assert get("qwen2-0.5b").tied_embeddings and not get("qwen2-7b").tied_embeddings
    g = get("gemma2-27b")
    assert g.d_head == 128 and g.query_scale == pytest.approx(144**-0.5) and g.attn_pattern[0] == "local"
    assert get("palm-540b").d_attn == 12288 != get("palm-540b").d_model
    assert get("gopher-280b").positions == "xl_relative" and get("chinchilla-70b").optimizer == "AdamW"
    m = get("qwen2-57b-a14b").moe
    assert (m.n_experts, m.top_k, m.renormalize, m.d_ff_shared) == (64, 8, False, 20480)
    # T5-Large: the paper's 770M counts an untied head
    t5l = get("t5-large")
    assert params(t5l).total + t5l.vocab_size * t5l.d_model == pytest.approx(770e6, rel=0.002)


def test_moe_active_params():
    p = params(get("mixtral-8x7b"))
    assert p.total == 46_702_792_704 and p.active == pytest.approx(12.9e9, rel=0.01)


def test_any_size_keeps_family_choices():
    a = build_spec("llama2-70b", "micro")  # GQA 64/8 -> keeps 8 query heads per KV head
    assert a.n_heads // a.kv_heads == 8 and a.mlp == "swiglu" and a.vocab_size == 256
    q = build_spec("qwen2-57b-a14b", "nano")
    assert q.moe.n_experts == 64 and q.moe.top_k == 8 and q.n_heads % q.kv_heads == 0
    p = build_spec("palm", d_model=256, n_layers=2, n_heads=4)
    assert p.kv_heads == 1 and p.parallel_block
    g = build_spec("gemma2", "mini")
    assert g.attn_pattern == ("local", "global") and g.window == 128  # half the context, as 4096/8192


def test_bad_shapes_are_refused_with_reasons():
    with pytest.raises(SpecError, match="multiple of 8"):
        build_spec("llama2-70b", d_model=384, n_layers=2, n_heads=12)
    with pytest.raises(SpecError, match="divisible"):
        build_spec("gpt2", d_model=100, n_layers=2, n_heads=3)
    with pytest.raises(SpecError, match="all of"):
        build_spec("gpt2", d_model=128)
    with pytest.raises(SpecError, match="unknown size"):
        build_spec("gpt2", "huge")
    with pytest.raises(SpecError, match="never published"):
        build_spec("gpt4", "nano")
    with pytest.raises(SpecError, match="integer width"):
        get("gpt3-13b").check()
