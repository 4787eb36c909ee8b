"""The registry: every entry is complete and every value sourced; counts reproduce papers and
transformers; small sizes keep each family's choices; recipes and templates are data on the entry."""

import typing
from dataclasses import fields, replace

import pytest

from llmhist.archs import (
    ENTRIES,
    FAMILIES,
    SMALL_SIZES,
    Arch,
    SpecError,
    UnknownArch,
    build_spec,
    get,
    params,
    template,
)
from llmhist.archs.accounting import kv_cache_bytes_per_token, summary
from llmhist.archs.catalogue import (
    RECIPE_SOURCED,
    is_assumed,
    objective_for,
    rests_on_assumed,
)
from llmhist.archs.recipes import recipe_for
from llmhist.archs.registry import BY_NAME, FAMILY_TEMPLATE
from llmhist.archs.spec import attention_kind

HF_FREE_FAMILIES = {"gpt3", "jurassic1", "mtnlg", "gopher", "chinchilla", "palm"}
SHAPED = [e for e in ENTRIES if e.arch is not None]
MARKERS = ("§", "App. ", "Table", "table", "config.json", "model card", "assumed: ", "report", "announcement", "tiktoken",
           "not published", "HF ")


@pytest.mark.parametrize("e", ENTRIES, ids=lambda e: e.name)
def test_entry_is_complete_and_every_value_has_its_own_source(e):
    assert e.name == e.name.lower() and e.family and e.paper
    assert 2017 <= e.year <= 2025
    assert e.optimizer and e.tokenizer and e.recipe and e.template in BY_NAME
    shown = e.shown()
    # no fallback to an entry-wide source: each value shown has a source of its own
    missing = [k for k in shown if not e.sources.get(k)]
    assert not missing, f"{e.name}: no source for {missing}"
    for k in shown:
        s = e.sources[k]
        # a section, table, config or model card, or an assumption with its reason; never a bare title
        assert s != e.paper and any(m in s for m in MARKERS), (k, s)
        if is_assumed(s):
            assert len(s) > len("assumed: ") + 10, (k, s)  # says why
    for k in RECIPE_SOURCED:
        assert e.recipe.sources.get(k), f"{e.name}: recipe field {k} has no source"
    if e.arch is not None:
        assert e.arch.name == e.name and e.arch.family == e.family
        a = e.arch
        if a.attn_width == "d_model":  # GPT-3 XL and 13B as Table 2.1 prints them
            with pytest.raises(SpecError, match="integer width"):
                a.check()
        else:
            a.check()
        assert e.require_arch() is a
    else:
        assert "Unknown" in e.notes or "unknown" in e.notes.lower()
        with pytest.raises(SpecError, match="never published"):
            e.require_arch()


def test_buildable_arch_is_all_concrete():
    hints = typing.get_type_hints(Arch)
    shape = ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "ctx_len",
             "n_enc_layers")
    assert all(hints[k] is int for k in shape)
    for k in ("year", "paper", "train_tokens", "published_params", "optimizer", "tokenizer", "aliases"):
        assert k not in {f.name for f in fields(Arch)}


def test_older_spec_documents_still_load():
    old = get("llama2-7b").arch.to_dict()
    old.update(year=2023, paper="x", source="y", train_tokens=2e12, shape_known=True, n_kv_heads=None, head_dim=None,
               field_sources=[], window_published=True)
    assert Arch.from_dict(old) == get("llama2-7b").arch
    assert Arch.from_dict(get("gemma2-27b").arch.to_dict()) == get("gemma2-27b").arch
    with pytest.raises(SpecError, match="not known"):
        Arch.from_dict({**old, "frobnicate": 1})


def test_names_aliases_and_flagships():
    assert get("GPT2-124M").name == "gpt2-124m"
    assert get("llama-30b").name == "llama-33b"
    for fam, flagship in [("gpt3", "gpt3-175b"), ("llama2", "llama2-70b"), ("gemma2", "gemma2-27b"),
                          ("mixtral", "mixtral-8x7b"), ("qwen2", "qwen2-72b"), ("t5", "t5-11b"),
                          ("chinchilla", "chinchilla-70b"), ("llama3.1", "llama3.1-405b"), ("gptj", "gptj-6b")]:
        assert get(fam).name == flagship
    with pytest.raises(UnknownArch) as ei:
        get("llama5")
    assert ei.value.suggestions and all(s in BY_NAME or get(s) for s in ei.value.suggestions)
    assert len(set(ei.value.suggestions)) == len(ei.value.suggestions)


def test_gpt2_small_conventions():
    p = params(get("gpt2-124m").arch)
    assert p.total == 124_439_808
    assert p.total - 1024 * 768 == 123_653_376  # minus position table only
    assert p.non_embedding == 85_056_000  # Kaplan's convention


@pytest.mark.parametrize("e", [e for e in SHAPED if e.family in HF_FREE_FAMILIES], ids=lambda e: e.name)
def test_reproduces_paper_figures(e):
    # papers print sizes to 2-3 significant figures
    assert params(e.arch).total == pytest.approx(e.published_params, rel=0.02)


def test_traps():
    a = {e.name: e.arch for e in SHAPED}
    assert [a[n].d_ff for n in ("llama-7b", "llama-13b", "llama-33b", "llama-65b")] == [11008, 13824, 17920, 22016]
    assert [a[n].d_ff for n in ("llama2-70b", "llama3-8b", "llama3.1-405b")] == [28672, 14336, 53248]
    assert a["llama3-8b"].rope_theta == 500000 and a["llama2-7b"].rope_theta == 10000
    assert a["llama3.1-405b"].kv_heads == 8 and a["llama3.1-8b"].rope_scaling.factor == 8
    assert a["qwen2-7b"].vocab_size == 152064 and a["qwen2-0.5b"].vocab_size == 151936
    assert a["qwen2-0.5b"].tied_embeddings and not a["qwen2-7b"].tied_embeddings
    g = a["gemma2-27b"]
    assert g.d_head == 128 and g.query_scale == pytest.approx(144**-0.5) and g.attn_pattern[0] == "local"
    assert a["palm-540b"].d_attn == 12288 != a["palm-540b"].d_model
    assert a["gopher-280b"].positions == "xl_relative" and get("chinchilla-70b").optimizer == "AdamW"
    m = a["qwen2-57b-a14b"].moe
    assert (m.n_experts, m.top_k, m.renormalize, m.d_ff_shared) == (64, 8, False, 20480)
    # T5-Large: the paper's 770M counts an untied head
    t5l = a["t5-large"]
    assert params(t5l).total + t5l.vocab_size * t5l.d_model == pytest.approx(770e6, rel=0.002)
    # Qwen2-72B's released config says 1e-5 where the smaller ones say 1e-6
    assert a["qwen2-72b"].norm_eps == 1e-5 and a["qwen2-7b"].norm_eps == 1e-6
    assert "Qwen2-72B" in get("qwen2-72b").sources["norm_eps"]


def test_published_figures_are_what_the_papers_printed():
    t5 = get("t5-11b")
    assert t5.year == 2019  # arXiv 1910.10683
    assert t5.train_tokens == 1_000_000 * 2**11 * 512  # §3.7, ~1T; not §3.1's 2^35 baseline
    assert "§3.7" in t5.sources["train_tokens"]
    assert get("t5-3b").published_params == 2.8e9
    assert "GPT-2" in get("gpt1-117m").sources["published_params"]
    assert [get(f"qwen2-{s}").published_params for s in ("0.5b", "1.5b", "7b", "72b")] == [0.5e9, 1.5e9, 7e9, 72e9]
    assert "config.json" not in get("llama3-8b").sources["train_tokens"]
    assert is_assumed(get("palm-540b").sources["rope_theta"])
    for k in ("bias", "mlp", "tied_embeddings"):
        assert is_assumed(get("gopher-280b").sources[k])


def test_training_flops_use_the_pretraining_length():
    e = get("llama3.1-405b")
    assert e.arch.ctx_len == 131072 and e.train_ctx_len == 8192
    s = summary(e.arch, e.train_tokens, e.train_ctx_len)
    at_max = summary(e.arch, e.train_tokens)
    assert s["train_ctx_len"] == 8192 and s["flops_per_token"]["palm"] < at_max["flops_per_token"]["palm"] / 2
    assert s["kv_cache_bytes_per_token_bf16"] == kv_cache_bytes_per_token(e.arch)  # KV cache at the maximum
    assert get("qwen2-72b").train_ctx_len == 4096 and get("mixtral-8x7b").train_ctx_len == 32768
    for x in SHAPED:
        assert x.train_ctx_len and x.train_ctx_len <= x.arch.ctx_len and x.sources["train_ctx_len"]
    assert is_assumed(get("mixtral-8x22b").sources["train_ctx_len"])


def test_assumed_band_width_is_marked_where_it_changes_a_number():
    e = get("gpt3-175b")
    assert "window" in e.assumed()
    assert "window" in rests_on_assumed(e, "kv_cache")
    dense = replace(e.arch, attn_pattern=("global",), window=None)
    assert kv_cache_bytes_per_token(dense) > kv_cache_bytes_per_token(e.arch)  # it does change the number
    assert "window" not in rests_on_assumed(e, "params")
    assert not rests_on_assumed(get("llama3-8b"), "kv_cache")


def test_moe_active_params():
    p = params(get("mixtral-8x7b").arch)
    assert p.total == 46_702_792_704 and p.active == pytest.approx(12.9e9, rel=0.01)


# ------------------------------------------------------------------------------- new rows
def _meta_count(cfg_cls, **kw) -> int:
    import torch
    import transformers

    cfg = getattr(transformers, cfg_cls)(**kw)
    model_cls = getattr(transformers, cfg_cls.replace("Config", "ForCausalLM"))
    with torch.device("meta"):
        m = model_cls(cfg)
    return sum(p.numel() for p in m.parameters())


def test_llama32_counts_equal_transformers_from_the_released_configs():
    # the released config.json values typed here, independently of the registry
    rope = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    for name, d, L, h, hd in (("llama3.2-1b", 2048, 16, 32, 64), ("llama3.2-3b", 3072, 28, 24, 128)):
        n = _meta_count("LlamaConfig", vocab_size=128256, hidden_size=d, intermediate_size=8192, num_hidden_layers=L,
                        num_attention_heads=h, num_key_value_heads=8, head_dim=hd, max_position_embeddings=131072,
                        rope_theta=500000.0, rope_scaling=rope, tie_word_embeddings=True, rms_norm_eps=1e-5)
        a = get(name).arch
        assert params(a).total == n
        assert a.tied_embeddings and a.rope_scaling.factor == 32
    assert params(get("llama3.2-1b").arch).total == 1_235_814_400


def test_mixtral_8x22b_count_equals_transformers_from_the_released_config():
    n = _meta_count("MixtralConfig", vocab_size=32000, hidden_size=6144, intermediate_size=16384, num_hidden_layers=56,
                    num_attention_heads=48, num_key_value_heads=8, num_local_experts=8, num_experts_per_tok=2,
                    max_position_embeddings=65536, rope_theta=1e6, tie_word_embeddings=False)
    assert params(get("mixtral-8x22b").arch).total == n


def test_gptj_count_equals_transformers_from_the_released_config():
    # Needs the GPT-J choices in accounting (bias "mlp", lm_head_bias), which h4's branch adds.
    a = get("gptj-6b").arch
    assert (a.parallel_block, a.rotary_dim, a.rope_interleaved, a.bias, a.lm_head_bias, a.tied_embeddings) == \
        (True, 64, True, "mlp", True, False)
    n = _meta_count("GPTJConfig", vocab_size=50400, n_positions=2048, n_embd=4096, n_layer=28, n_head=16,
                    rotary_dim=64, activation_function="gelu_new", tie_word_embeddings=False)
    assert params(a).total == n


def test_new_rows_are_in_the_timeline():
    from llmhist.core.report import list_archs

    rows = list_archs()
    names = [r["name"] for r in rows]
    for n in ("llama3.2-1b", "llama3.2-3b", "mixtral-8x22b", "gptj-6b"):
        assert n in names
    assert [r["year"] for r in rows] == sorted(r["year"] for r in rows)
    assert get("gptj-6b").year == 2021


# --------------------------------------------------------------------- recipes and templates
def test_every_family_has_a_recipe_and_a_template():
    assert set(FAMILY_TEMPLATE) == set(FAMILIES)
    for f in FAMILIES:
        t = BY_NAME[FAMILY_TEMPLATE[f]]
        assert t.family == f
        assert recipe_for(f) is get(f).recipe
        if t.arch is not None:
            assert template(f) is t.arch
        else:
            with pytest.raises(SpecError, match="never published"):
                template(f)


def test_recipes_are_read_from_the_entry():
    r = recipe_for("llama3.1")
    assert r is get("llama3.1").recipe and "Llama 3" in r.sources["optimizer"]
    assert recipe_for("llama3.1") is not recipe_for("llama")
    with pytest.raises(UnknownArch):
        recipe_for("llama5")
    assert recipe_for("qwen2-57b-a14b").aux_loss == 0.001 and recipe_for("mixtral-8x22b").aux_loss == 0.001
    assert recipe_for(build_spec("qwen2", "nano"), moe=True).aux_loss == 0.001  # the family's MoE member's


def test_objective_follows_the_spec_not_the_family():
    t5 = build_spec("t5", "nano")
    assert recipe_for(t5).objective == "span_corruption"
    assert recipe_for(replace(t5, n_enc_layers=0)).objective == "causal_lm"
    g = build_spec("gpt2", "nano")
    assert objective_for(replace(g, n_enc_layers=2)) == "span_corruption"
    assert get("t5-base").recipe.objective == "span_corruption" and get("gpt2").recipe.objective == "causal_lm"


def test_templates_resolve_to_the_named_entry():
    assert template("llama-30b").name == "llama-33b"  # an alias resolves to its own entry
    assert template("llama3-70b").name == "llama3-70b"
    assert template("llama3").name == "llama3-8b"  # a family name to the family's template
    assert template("t5").name == "t5-base"
    # llama-33b's own MLP ratio (17920 / 6656), not llama-65b's (22016 / 8192 gives 17888 here)
    assert build_spec("llama-30b", d_model=6656, n_layers=1, n_heads=52).d_ff == 17920


def test_size_must_belong_to_the_arch_family():
    assert build_spec("llama", "llama-7b").name == "llama-7b"
    with pytest.raises(SpecError, match="not a member"):
        build_spec("llama", "gpt2-124m")


# -------------------------------------------------------------------------- small sizes
@pytest.mark.parametrize("fam", [f for f in FAMILIES if BY_NAME[FAMILY_TEMPLATE[f]].arch is not None])
@pytest.mark.parametrize("size", list(SMALL_SIZES))
def test_small_sizes_keep_the_family_choices(fam, size):
    t = template(fam)
    a = build_spec(fam, size)
    kind = attention_kind(t)
    assert attention_kind(a) == kind  # MHA stays MHA, MQA stays MQA, GQA r:1 stays r:1 (with >= 2 KV heads)
    if kind.startswith("GQA"):
        assert a.kv_heads >= 2
    assert a.d_model % a.n_heads == 0 and a.d_model // a.n_heads >= 16 and a.d_head % 2 == 0
    decoupled = t.head_dim != t.d_model // t.n_heads
    assert (a.head_dim != a.d_model // a.n_heads) == decoupled
    if t.query_scale == 1.0:
        assert a.query_scale == 1.0
    elif t.query_scale is not None:  # Gemma-2-27B: (d_model / n_heads)^-0.5
        assert a.query_scale == pytest.approx((a.d_model / a.n_heads) ** -0.5)
    else:
        assert a.query_scale is None
    assert (a.mlp, a.bias, a.norm, a.positions, a.parallel_block, a.tied_embeddings) == \
        (t.mlp, t.bias, t.norm, t.positions, t.parallel_block, t.tied_embeddings)


def test_custom_shapes_keep_gqa_and_mqa():
    a = build_spec("llama3", d_model=256, n_layers=4, n_heads=8)  # the README's command
    assert (a.n_heads, a.kv_heads) == (8, 2)  # llama3-8b's 32:8
    a = build_spec("llama2-70b", "micro")  # GQA 64/8 keeps 8 query heads per KV head, with 2 KV heads
    assert a.n_heads // a.kv_heads == 8 and a.kv_heads >= 2 and a.d_model // a.n_heads >= 16
    assert a.mlp == "swiglu" and a.vocab_size == 256
    q = build_spec("qwen2-57b-a14b", "nano")
    assert q.moe.n_experts == 64 and q.moe.top_k == 8 and q.n_heads % q.kv_heads == 0
    p = build_spec("palm", d_model=256, n_layers=2, n_heads=4)
    assert p.kv_heads == 1 and p.parallel_block
    assert build_spec("palm", "nano").n_heads == 4  # MQA: no head count forced up by a "ratio"
    g = build_spec("gemma2", "mini")
    assert g.attn_pattern == ("local", "global") and g.window == 128  # half the context, as 4096/8192
    j = build_spec("gptj", "mini")
    assert j.rotary_dim == j.head_dim // 4  # 64 of 256


def test_bad_shapes_are_refused_with_reasons():
    with pytest.raises(SpecError, match="multiple of 8"):
        build_spec("llama2-70b", d_model=384, n_layers=2, n_heads=12)
    with pytest.raises(SpecError, match="at least 16"):
        build_spec("llama2-70b", d_model=256, n_layers=2, n_heads=8)  # one KV head would be MQA
    with pytest.raises(SpecError, match="divisible"):
        build_spec("gpt2", d_model=100, n_layers=2, n_heads=3)
    with pytest.raises(SpecError, match="all of"):
        build_spec("gpt2", d_model=128)
    with pytest.raises(SpecError, match="unknown size"):
        build_spec("gpt2", "huge")
    with pytest.raises(SpecError, match="never published"):
        build_spec("gpt4", "nano")
    with pytest.raises(SpecError, match="integer width"):
        get("gpt3-13b").arch.check()
