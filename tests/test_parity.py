"""Parity with transformers: same weights, same logits; same parameter counts at published sizes."""

from dataclasses import replace

import pytest
import torch

from llmhist.archs import ENTRIES, FAMILIES, build_spec, get, params
from llmhist.archs import hf
from llmhist.archs.model import MoE as MoEModule, build

import transformers  # noqa: E402, F401  (the test extra: pip install -e ".[test]"; fail loudly without it)

PARITY = ["gpt1", "gpt2", "llama", "llama2", "llama3", "llama3.1", "mixtral", "gemma2", "qwen2",
          "qwen2-57b-a14b", "t5", "jurassic1"]


@pytest.mark.parametrize("name", PARITY)
def test_logits_match_transformers(name):
    a = build_spec(name, "nano")
    if "local" in a.attn_pattern:
        a = replace(a, window=6)  # the sliding window must bite at T = 20
    m = build(a).eval()
    with torch.no_grad():
        for p in m.parameters():  # non-trivial weights: norms and biases away from their inits
            p.normal_(0.0, 0.2)
    ref = hf.hf_model(a).eval()
    hf.load_into_hf(a, m, ref)
    assert sum(p.numel() for p in ref.parameters()) == params(a).total
    x = torch.randint(0, a.vocab_size, (2, 20))
    with torch.no_grad():
        if a.is_encoder_decoder:
            y = torch.randint(0, a.vocab_size, (2, 13))
            ours, theirs = m(x, y), ref(input_ids=x, decoder_input_ids=y).logits
        else:
            ours, theirs = m(x), ref(input_ids=x).logits
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", PARITY)
def test_weight_mapping_round_trips(name):
    a = build_spec(name, "nano")
    sd = build(a).state_dict()
    back = hf.from_hf(a, hf.to_hf(a, sd))
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def _has_hf(e):
    try:
        hf.model_type(e)
        return e.shape_known
    except (hf.NoHFEquivalent, AttributeError, TypeError):
        return False


@pytest.mark.parametrize("e", [e for e in ENTRIES if e.shape_known and _has_hf(e)], ids=lambda e: e.name)
def test_published_counts_equal_transformers(e):
    ref = hf.hf_model(e, device="meta")
    assert sum(p.numel() for p in ref.parameters()) == params(e).total


def test_refuses_families_transformers_lacks():
    for name in ("palm", "gopher", "gpt3", "afm"):
        with pytest.raises(hf.NoHFEquivalent, match="no model class"):
            hf.model_type(build_spec(name, "nano"))


@pytest.mark.parametrize("name", [e.name for e in ENTRIES if e.moe is not None])
def test_moe_aux_loss_is_transformers_load_balancing_loss(name):
    """The recipes' coefficients are transformers' router_aux_loss_coef: the loss they multiply must be
    load_balancing_loss_func on the same router logits (not 1/top_k of it)."""
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    a = build_spec(name, "nano")
    m = build(a)
    logits = []
    hooks = [mod.router.register_forward_hook(lambda _m, _i, out: logits.append(out))
             for mod in m.modules() if isinstance(mod, MoEModule)]
    m(torch.randint(0, a.vocab_size, (2, 24)))
    for h in hooks:
        h.remove()
    assert len(logits) == a.n_layers
    ref = load_balancing_loss_func(tuple(logits), a.moe.n_experts, a.moe.top_k)
    ours = m.aux_loss()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    assert ours.item() > 0.5 * a.moe.top_k  # a near-uniform router gives about top_k, not 1


def gptj_spec(d_model=64, n_layers=2, n_heads=4, rotary_dim=8, vocab_size=256, ctx_len=64, d_ff=None):
    """GPT-J's choices (Wang & Komatsuzaki 2021, mesh-transformer-jax; HF EleutherAI/gpt-j-6b config.json):
    a parallel block with one LayerNorm, rotary on the first rotary_dim dims of each head in interleaved
    pairs, biases on the MLP and the untied LM head only, GELU (tanh). Built here with replace so the
    test does not depend on a registry entry."""
    base = build_spec("gpt2", d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=vocab_size, ctx_len=ctx_len)
    return replace(base, name="gptj-test", family="gptj", positions="rope", rope_theta=10000.0, rotary_dim=rotary_dim,
                   rope_interleaved=True, parallel_block=True, bias="mlp", tied_embeddings=False, lm_head_bias=True,
                   d_ff=d_ff or 4 * d_model).check()


def test_gptj_logits_match_transformers():
    a = gptj_spec()
    assert hf.model_type(a) == "gptj"
    m = build(a).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    ref = hf.hf_model(a).eval()
    hf.load_into_hf(a, m, ref)
    assert sum(p.numel() for p in ref.parameters()) == params(a).total
    x = torch.randint(0, a.vocab_size, (2, 40))
    with torch.no_grad():
        ours, theirs = m(x), ref(input_ids=x).logits
    assert (ours - theirs).abs().max().item() <= 1e-4
    # the partial, interleaved rotation is what makes them agree: halves or full rotary do not
    for wrong in (replace(a, rope_interleaved=False), replace(a, rotary_dim=None)):
        w = build(wrong).eval()
        w.load_state_dict(m.state_dict())
        with torch.no_grad():
            assert (w(x) - theirs).abs().max().item() > 1e-2


def test_gptj_6b_count():
    """GPT-J 6B at its released shape (config.json: n_embd 4096, n_layer 28, n_head 16, rotary_dim 64,
    vocab 50400, n_positions 2048, n_inner 4 x 4096): exactly transformers' count, and the model card's
    n_parameters 6,053,381,344 within 0.05% (the card's figure is 2,498,560 = 610 x 4096 above the
    checkpoint's tensors, which transformers' GPTJForCausalLM holds exactly)."""
    a = gptj_spec(d_model=4096, n_layers=28, n_heads=16, rotary_dim=64, vocab_size=50400, ctx_len=2048, d_ff=16384)
    assert params(a).total == sum(p.numel() for p in hf.hf_model(a, device="meta").parameters())
    assert params(a).total == pytest.approx(6_053_381_344, rel=5e-4)
