"""Changes between registry entries: derived from the data, dated, and built as real specs."""

from dataclasses import fields

import pytest

from llmhist.archs import accounting, registry
from llmhist.archs import changes as CH
from llmhist.archs import dating as DT
from llmhist.archs.spec import Arch

V = {"d_model": 64, "n_layers": 2, "n_heads": 8, "vocab_size": 256, "ctx_len": 64}
CATALOGUE = {"name", "family", "year", "paper", "source", "notes", "optimizer", "tokenizer", "train_tokens",
             "published_params", "aliases", "flagship", "field_sources"}


def names(base, target):
    return [c.name for c in CH.derive(base, target)]


def test_gpt2_to_llama3_changes_are_the_differing_fields():
    ch = {c.name: c for c in CH.derive("gpt2", "llama3")}
    b, t = registry.template("gpt2"), registry.template("llama3")  # the proportions custom sizes keep
    assert ch["positions"].after == {"positions": "rope"}
    assert ch["rope_theta"].after == {"rope_theta": t.rope_theta} and ch["rope_theta"].requires == ("positions",)
    assert ch["norm"].after["norm"] == t.norm
    assert ch["attention"].after == {"kv_ratio": t.n_heads // t.kv_heads}
    assert ch["tied_embeddings"].before == {"tied_embeddings": b.tied_embeddings}
    assert ch["mlp_width"].requires == ("mlp",)
    assert {"optimizer", "weight_decay", "grad_clip", "schedule", "init"} <= set(ch)
    assert "norm_placement" not in ch  # both are pre-norm


def test_introduced_by_is_the_earliest_entry_documenting_the_value():
    for c in CH.derive("gpt2", "llama3"):
        e = registry.get(c.introduced_by)
        assert e.year == c.year and c.dating
        if c.kind == "arch" and "dated by the target" not in c.dating:
            assert DT.documents(e, "arch", c.after), c.name  # never an assumed value
            same = [x for x in registry.ENTRIES if x.arch is not None and x.year < c.year
                    and DT.documents(x, "arch", c.after)
                    and all(DT.idea(f, CH.arch_value(x.arch, f)) == DT.idea(f, v) for f, v in c.after.items())]
            assert not same, (c.name, [x.name for x in same])


def test_history_is_dated_by_documented_values_not_assumptions():
    """W1: an assumed recipe value never introduces a change; GQA dates from Llama 2 (2023) and names
    Llama 3's exact ratio; a return to GPT-1's init says it is one."""
    ch = {c.name: c for c in CH.derive("gpt2", "llama3")}
    assert registry.get("t5-small").recipe.sources["min_lr_ratio"].startswith("assumed")  # the trap
    assert (ch["schedule"].year, ch["schedule"].introduced_by) == (2020, "gpt3-125m")
    assert (ch["attention"].year, ch["attention"].introduced_by) == (2023, "llama2-34b")
    assert "exactly this value first in llama3-8b (2024)" in ch["attention"].dating
    # a return to GPT-1's N(0, 0.02): dated by GPT-1, which documents it, and said to be a return
    assert (ch["init"].year, ch["init"].introduced_by) == (2018, "gpt1-117m")
    assert "a return: gpt2-1.5b (2019) had moved away from gpt1-117m's choice" in ch["init"].dating
    assert ch["init"].to_dict()["dating"] == ch["init"].dating
    for c in ch.values():  # the introducing entry documents the value, or the dating says it does not
        e = registry.get(c.introduced_by)
        assert DT.documents(e, c.kind, c.after) or "dated by the target" in c.dating, c.name


def test_ladder_is_historical_and_dependencies_come_first():
    ch = CH.derive("gpt2", "llama3")
    years = [c.year for c in ch]
    assert years == sorted(years)
    seen = set()
    for c in ch:
        assert set(c.requires) <= seen
        seen.add(c.name)


def test_all_changes_reach_the_target_choices_and_build():
    allc = names("gpt2", "llama3")
    v = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": allc}, **V)
    t = registry.build_spec("llama3", **{k if k != "ctx_len" else "ctx_len": x for k, x in V.items()})
    for f in fields(Arch):
        if f.name not in CATALOGUE:
            assert getattr(v, f.name) == getattr(t, f.name), f.name
    assert accounting.params(v).total == accounting.params(t).total
    r = CH.variant_recipe({"base": "gpt2", "target": "llama3", "changes": allc})
    from llmhist.archs.recipes import recipe_for

    rt = recipe_for("llama3")
    assert {k: getattr(r, k) for k in ("optimizer", "betas", "eps", "weight_decay", "grad_clip", "min_lr_ratio",
                                       "init")} == \
           {k: getattr(rt, k) for k in ("optimizer", "betas", "eps", "weight_decay", "grad_clip", "min_lr_ratio",
                                        "init")}


def test_base_variant_is_the_base_and_each_step_builds_in_the_model():
    import torch

    from llmhist.archs.model import build

    base = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": []}, **V)
    assert base == registry.build_spec("gpt2", **V)
    allc = names("gpt2", "llama3")
    for i in range(len(allc) + 1):
        a = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": allc[:i]}, **V)
        m = build(a)
        assert sum(p.numel() for p in m.parameters()) == accounting.params(a).total
        assert m(torch.zeros(1, 8, dtype=torch.long)).shape[-1] == 256


def test_mlp_change_keeps_parameters_matched():
    a = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["mlp"]}, d_model=192, n_layers=2,
                        n_heads=8, vocab_size=256, ctx_len=64)
    b = registry.build_spec("gpt2", d_model=192, n_layers=2, n_heads=8, vocab_size=256, ctx_len=64)
    assert a.mlp == "swiglu" and a.d_ff == 512  # 2/3 of 768, a multiple of 32
    def mlp_params(x):
        return sum(m.d_in * m.d_out * m.copies for m in accounting.mlp_inventory(x))

    assert mlp_params(a) == pytest.approx(mlp_params(b), rel=0.01)
    w = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["mlp", "mlp_width"]}, d_model=192,
                        n_layers=2, n_heads=8, vocab_size=256, ctx_len=64)
    assert w.d_ff == 672  # llama3's 3.5 d_model


def test_gqa_keeps_the_target_ratio():
    a = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["attention"]}, d_model=128, n_layers=2,
                        n_heads=16, vocab_size=256, ctx_len=64)
    t = registry.template("llama3")
    assert a.n_heads // a.kv_heads == t.n_heads // t.kv_heads
    with pytest.raises(registry.SpecError, match="multiple of 4"):
        CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["attention"]}, d_model=48, n_layers=2,
                        n_heads=6, vocab_size=256, ctx_len=64)


def test_other_pairs_derive_post_to_pre_norm_and_parallel_blocks():
    ch = {c.name: c for c in CH.derive("gpt1", "palm")}
    assert ch["norm_placement"].after == {"norm_placement": "pre", "final_norm": True}
    assert ch["parallel_block"].requires == ("norm_placement",)
    assert ch["attention"].after == {"kv_ratio": "mqa"}
    assert "rope_theta" not in ch  # PaLM's theta is the default the base already holds
    allc = list(ch)
    v = CH.variant_spec({"base": "gpt1", "target": "palm", "changes": allc}, **V)
    assert v.parallel_block and v.kv_heads == 1 and v.norm_placement == "pre"


def test_refusals():
    with pytest.raises(registry.UnknownArch):
        CH.derive("gtp2", "llama3")
    with pytest.raises(CH.ChangeError, match="same choices"):
        CH.derive("llama-7b", "llama-65b")
    with pytest.raises(CH.ChangeError, match="depends on 'positions'"):
        CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["rope_theta"]}, **V)
    with pytest.raises(CH.ChangeError, match="no such change"):
        CH.check_names("gpt2", "llama3", ["rope"])
    with pytest.raises(CH.ChangeError, match="do not differ"):
        CH.check_names("gpt2", "llama3", ["parallel_block"])
    with pytest.raises(CH.ChangeError, match="never published"):
        CH.derive("gpt2", "gpt4")
    with pytest.raises(CH.ChangeError, match="encoder-decoder"):
        CH.derive("gpt2", "t5")
    with pytest.raises(CH.ChangeError, match="'mla' cannot be ablated: multi-head latent attention"):
        CH.variant_spec({"base": "llama3", "target": "deepseek-v3", "changes": ["mla"]}, **V)
    with pytest.raises(CH.ChangeError, match="unknown key"):
        CH.variant_spec({"base": "gpt2", "target": "llama3", "extra": 1}, **V)
    assert issubclass(CH.ChangeError, CH.UserError)


def test_groups_expand_to_kinds():
    got = CH.check_names("gpt2", "llama3", ["recipe"])
    assert set(got) == {c.name for c in CH.derive("gpt2", "llama3") if c.kind == "recipe"}


def test_every_pair_of_families_ends_at_the_target():
    """For every pair the registry can ablate, applying all changes reaches the target's choices."""
    import math

    cat = CATALOGUE | {"window_published"}
    pairs = 0
    for b in registry.FAMILIES:
        for t in registry.FAMILIES:
            try:
                ch = CH.derive(b, t)
            except CH.ChangeError:
                continue
            rs = [CH.arch_value(registry.template(x), "kv_ratio") for x in (b, t)]
            h = math.lcm(*[r for r in rs if isinstance(r, int)], 1)
            h = max(2 * h, 4)  # GQA keeps at least two KV heads (spec.resize)
            refused = [c.name for c in ch if CH.ablatable(c)]
            if refused:  # listed and dated, but refused with the reason when asked to build
                with pytest.raises(CH.ChangeError, match=f"{refused[0]!r} cannot be ablated"):
                    CH.variant_spec({"base": b, "target": t, "changes": [c.name for c in ch]}, 8 * h, 2, h, 256, 128)
                continue
            v = CH.variant_spec({"base": b, "target": t, "changes": [c.name for c in ch]}, 8 * h, 2, h, 256, 128)
            tt = registry.build_spec(t, d_model=8 * h, n_layers=2, n_heads=h, vocab_size=256, ctx_len=128)
            assert [f.name for f in fields(Arch) if f.name not in cat and getattr(v, f.name) != getattr(tt, f.name)] \
                == [], (b, t)
            pairs += 1
    assert pairs > 100


def test_a_narrow_ablation_shape_keeps_the_gqa_ratio_with_one_kv_head():
    """The ablation's smallest shapes (4 heads) keep llama3's 4:1 GQA with one KV head, which
    spec.resize refuses for the family itself (it keeps two KV heads): an ablation at d_model 32 would
    otherwise need 8 heads 4 wide, where the attention kernel's per-head cost doubles the step."""
    from llmhist.archs.spec import SpecError

    v = CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["attention"]}, 32, 2, 4, 256, 128)
    assert (v.n_heads, v.kv_heads) == (4, 1)
    assert CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["attention"]}, 64, 2, 8, 256,
                           128).kv_heads == 2
    with pytest.raises(SpecError, match="multiple of 4"):
        CH.variant_spec({"base": "gpt2", "target": "llama3", "changes": ["attention"]}, 36, 2, 6, 256, 128)
    with pytest.raises(SpecError, match="at least two KV heads"):
        registry.build_spec("llama3", d_model=32, n_layers=2, n_heads=4, vocab_size=256, ctx_len=128)


def test_changes_since_llama3_are_derived_dated_and_marked():
    """llama3 -> DeepSeek-V3 lists MLA, the MoE layout, its routing and MTP, introduced by DeepSeek-V3
    in 2024, each refused for ablation with its reason; OLMo 2's and Gemma 3's new choices build."""
    ch = {c.name: c for c in CH.derive("llama3", "deepseek-v3")}
    for n in ("mla", "moe", "router", "mtp", "rope_scaling"):
        assert (ch[n].year, ch[n].introduced_by) == (2024, "deepseek-v3-671b"), n
    assert ch["router"].requires == ("moe",)
    assert {n for n in ch if CH.ablatable(ch[n])} == {"mla", "moe", "router", "mtp"}
    assert "attention" not in ch and "head_width" not in ch  # MLA's own heads belong to the mla change
    assert ch["rope_scaling"].after["rope_scaling_kind"][0] == "yarn"
    olmo = {c.name: c for c in CH.derive("llama3", "olmo2")}
    assert olmo["norm_placement"].after == {"norm_placement": "output"} and olmo["qk_norm_width"].requires == ("qk_norm",)
    v = CH.variant_spec({"base": "llama3", "target": "olmo2", "changes": ["qk_norm", "qk_norm_width", "norm_placement"]},
                        **V)
    assert (v.qk_norm, v.qk_norm_width, v.norm_placement) == (True, "full", "output")
    g = CH.variant_spec({"base": "llama3", "target": "gemma3", "changes": ["local_attention", "rope_theta_local"]}, **V)
    assert g.attn_pattern == ("local",) * 5 + ("global",) and g.rope_theta_local == 10000.0
    # Qwen 3's MoE routes as Mixtral does: the layout is a change, the routing is not
    assert "router" not in {c.name for c in CH.derive("llama3", "qwen3-30b-a3b")}
