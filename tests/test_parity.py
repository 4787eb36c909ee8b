"""Parity with transformers: same weights, same logits; same parameter counts at published sizes.

Three layers of checks. (1) Every family transformers implements, at a small size built from our
registry, against the class hf.py maps it to. (2) Each choice that nano sizes never exercise (GQA with
several groups, decoupled head widths, Gemma-2-27B's query scale, Llama 3.1's RoPE scaling past its
original context, T5's far buckets and clamp), each shown to matter before it is compared. (3) One
configuration per family typed in here from the released config.json (or the paper's table), shrunk
only in depth/width/vocabulary, against our registry entry shrunk the same way, so a misread constant
in the registry is caught; families with no transformers class use the closest independent reference.
"""

import math
from dataclasses import replace

import pytest
import torch
import transformers  # the test extra: pip install -e ".[test]"; fail loudly without it

from llmhist.archs import (
    ENTRIES,
    RopeScaling,
    build_spec,
    flops_per_token,
    get,
    hf,
    params,
)
from llmhist.archs.model import MoE as MoEModule
from llmhist.archs.model import build, t5_bucket

# families transformers has no class for, each with the independent reference that covers it here
NO_HF_CLASS = {
    "gpt3": "alternating locally banded layers: test_gpt3_band_is_an_explicit_mask (+ GPT2Config at T < band)",
    "gopher": "Transformer-XL relative attention: test_xl_attention_is_dai_et_al_formula",
    "chinchilla": "Transformer-XL relative attention (Gopher's): test_xl_attention_is_dai_et_al_formula",
    "palm": "parallel block, no biases, MQA, shared embeddings: transformers' Cohere model",
}


def _mapped(a):
    try:
        return hf.model_type(a)
    except hf.NoHFEquivalent:
        return None


# one entry per (family, transformers class): derived from the registry, so a new family is tested
ARCHS = [e.arch for e in ENTRIES if e.arch is not None]  # the buildable entries
PARITY = list({(e.family, _mapped(e)): e.name for e in ARCHS if _mapped(e)}.values())


def test_every_family_has_a_reference():
    shaped = {e.family for e in ENTRIES if e.shape_known}
    covered = {e.family for e in ENTRIES if e.name in PARITY}
    assert shaped - covered == set(NO_HF_CLASS), "a family with neither a transformers class nor a listed reference"
    assert set(INDEPENDENT) >= {get(n).family for n in PARITY} | set(NO_HF_CLASS) - {"gopher", "chinchilla"}


def _randomise(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial weights: norms and biases away from their inits
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return m


def _logits(m, a, x, y=None):
    with torch.no_grad():
        if a.is_encoder_decoder:
            return m(x, y)
        return m(x)


def _ref_logits(ref, a, x, y=None):
    with torch.no_grad():
        if a.is_encoder_decoder:
            return ref(input_ids=x, decoder_input_ids=y).logits
        return ref(input_ids=x).logits


def _inputs(a, T=20, Td=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, a.vocab_size, (2, T), generator=g)
    return x, torch.randint(0, a.vocab_size, (2, Td), generator=g)


def parity(a, T=20, Td=13, ref=None, without=None):
    """Max |our logits - transformers'| on the same weights; with `without` (a spec differing in one
    choice), also the distance of that spec's logits from the reference (it must be far)."""
    m = _randomise(build(a).eval())
    if ref is None:
        ref = hf.hf_model(a).eval()
    hf.load_into_hf(a, m, ref)
    assert sum(p.numel() for p in ref.parameters()) == params(a).total
    x, y = _inputs(a, T, Td)
    theirs = _ref_logits(ref, a, x, y)
    diff = (_logits(m, a, x, y) - theirs).abs().max().item()
    if without is None:
        return diff
    w = build(without).eval()
    w.load_state_dict(m.state_dict())
    return diff, (_logits(w, without, x, y) - theirs).abs().max().item()


TOL = 1e-4


@pytest.mark.parametrize("name", PARITY)
def test_logits_match_transformers(name):
    a = build_spec(name, "nano")
    if "local" in a.attn_pattern:
        a = replace(a, window=6)  # the sliding window must bite at T = 20
    assert parity(a) <= TOL


@pytest.mark.parametrize("name", PARITY)
def test_weight_mapping_round_trips(name):
    a = build_spec(name, "nano")
    sd = build(a).state_dict()
    back = hf.from_hf(a, hf.to_hf(a, sd))
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def _has_hf(a):
    try:
        hf.model_type(a)
        return True
    except (hf.NoHFEquivalent, AttributeError, TypeError):
        return False


@pytest.mark.parametrize("e", [e.arch for e in ENTRIES if e.arch is not None and _has_hf(e.arch)], ids=lambda a: a.name)
def test_published_counts_equal_transformers(e):
    ref = hf.hf_model(e, device="meta")
    assert sum(p.numel() for p in ref.parameters()) == params(e).total


def test_refuses_families_transformers_lacks():
    for name in NO_HF_CLASS:
        with pytest.raises(hf.NoHFEquivalent, match="no model class"):
            hf.model_type(build_spec(name, "nano"))


# ------------------------------------------------------------------- choices nano never exercises
def test_gqa_with_several_groups():
    """Llama 3 style, 8 query heads sharing 2 KV heads (4 per group)."""
    a = build_spec("llama3", d_model=64, n_layers=2, n_heads=8, n_kv_heads=2)
    assert (a.n_heads, a.kv_heads) == (8, 2)
    assert parity(a) <= TOL


def test_decoupled_head_width_gemma2():
    """Gemma 2's 256-wide heads at a d_model they do not divide into (2 x 256 != 64)."""
    a = replace(build_spec("gemma2", "nano"), head_dim=256, n_heads=2, n_kv_heads=1, window=6)
    assert a.d_attn != a.d_model
    assert parity(a) <= TOL


def test_decoupled_head_width_t5():
    """T5-3B/11B: d_kv x heads (4 x 32 = 128) != d_model (64)."""
    a = replace(build_spec("t5", "nano"), head_dim=32)
    assert a.d_attn != a.d_model
    assert parity(a) <= TOL


def test_gemma2_27b_query_scale():
    """queries scaled by query_pre_attn_scalar^-0.5 = 144^-0.5 with heads 128 wide, not 128^-0.5."""
    a = replace(build_spec("gemma2", "nano"), head_dim=128, n_heads=2, n_kv_heads=1, window=6,
                query_scale=144 ** -0.5)
    assert hf.hf_config(a).query_pre_attn_scalar == 144
    diff, far = parity(a, without=replace(a, query_scale=None))
    assert far > 100 * TOL and diff <= TOL


def test_llama31_rope_scaling_where_it_bites():
    """Positions past the original context and past the low-frequency wavelength: there the
    "llama3" frequency scaling moves logits far more than the tolerance, and ours match."""
    a = replace(build_spec("llama3.1", d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, ctx_len=256),
                rope_scaling=RopeScaling(8.0, 1.0, 4.0, 32))
    low_wavelen = a.rope_scaling.original_ctx / a.rope_scaling.low_freq_factor
    inv = [a.rope_theta ** (-i / a.d_head) for i in range(0, a.d_head, 2)]
    assert sum(2 * math.pi / f > low_wavelen for f in inv) >= 2  # several frequencies are slowed 8x
    T = 200  # > original context 32 and > every slowed wavelength's threshold
    diff, far = parity(a, T=T, without=replace(a, rope_scaling=None))
    assert far > 100 * TOL and diff <= TOL


def test_t5_far_buckets_and_clamp():
    """Sequences past max_distance 128: distances 128..159 share the last bucket (the clamp), and
    the log-spaced buckets between 8 and 128 are all used."""
    a = build_spec("t5", "nano")
    T = 160
    pos = torch.arange(T)
    rel = pos[None] - pos[:, None]
    causal = t5_bucket(rel, False, a.rel_buckets, a.rel_max_distance)
    assert set(causal[T - 1, : T - 128 + 1].tolist()) == {a.rel_buckets - 1}  # every distance >= 128: last bucket
    exact = a.rel_buckets // 2
    unclamped = exact + math.log((T - 1) / exact) / math.log(a.rel_max_distance / exact) * (a.rel_buckets - exact)
    assert unclamped > a.rel_buckets  # without the clamp the farthest distance would leave the table
    assert len(set(causal.flatten().tolist())) >= a.rel_buckets - 2  # the log-spaced buckets are in use
    assert parity(a, T=T, Td=150) <= TOL


# ------------------------------------------------- one released configuration per family, typed in
def _rope(theta, **scaling):
    return {"rope_parameters": {"rope_type": "llama3" if scaling else "default", "rope_theta": theta, **scaling}}


# family: (registry entry, transformers model_type, the released config's values, shrink for transformers,
#          the same shrink in our field names). Shrinking keeps heads, head widths, norms, positions,
#          vocabulary handling and every constant; it cuts depth to 2 and d_model / MLP widths / vocab rows.
LLAMA_SHRINK = ({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 512, "head_dim": 128},
                {"d_model": 64, "d_ff": 128, "n_layers": 2, "vocab_size": 512, "head_dim": 128})
INDEPENDENT = {
    # HF openai-community/openai-gpt config.json
    "gpt1": ("gpt1-117m", "openai-gpt",
             {"vocab_size": 40478, "n_positions": 512, "n_embd": 768, "n_layer": 12, "n_head": 12, "afn": "gelu", "layer_norm_epsilon": 1e-5},
             {"n_embd": 96, "n_layer": 2, "vocab_size": 512}, {"d_model": 96, "d_ff": 384, "n_layers": 2, "vocab_size": 512}),
    # HF openai-community/gpt2-xl config.json
    "gpt2": ("gpt2-1.5b", "gpt2",
             {"vocab_size": 50257, "n_positions": 1024, "n_embd": 1600, "n_layer": 48, "n_head": 25, "n_inner": None,
                  "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5},
             {"n_embd": 100, "n_layer": 2, "vocab_size": 512}, {"d_model": 100, "d_ff": 400, "n_layers": 2, "vocab_size": 512}),
    # Brown et al. 2020 Table 2.1 (175B: 96 layers, d 12288, 96 heads, 2048 context; FFN 4 d; GPT-2's BPE). Below
    # the band (T < window) a GPT-3 layer is a GPT-2 layer; the band itself: test_gpt3_band_is_an_explicit_mask
    "gpt3": ("gpt3-175b", "gpt2",
             {"vocab_size": 50257, "n_positions": 2048, "n_embd": 12288, "n_layer": 96, "n_head": 96, "activation_function": "gelu_new",
                  "layer_norm_epsilon": 1e-5},
             {"n_embd": 192, "n_layer": 2, "vocab_size": 512}, {"d_model": 192, "d_ff": 768, "n_layers": 2, "vocab_size": 512}),
    # Lieber et al. 2021 Table 1 (Jumbo: 76 layers, d 13824, 96 heads; 256k vocabulary; 2048 context)
    "jurassic1": ("jurassic1-jumbo", "gpt2",
                  {"vocab_size": 256000, "n_positions": 2048, "n_embd": 13824, "n_layer": 76, "n_head": 96,
                       "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5},
                  {"n_embd": 192, "n_layer": 2, "vocab_size": 512}, {"d_model": 192, "d_ff": 768, "n_layers": 2, "vocab_size": 512}),
    # Smith et al. 2022 §3.1 (105 layers, hidden 20480, 128 heads, sequence 2048)
    "mtnlg": ("mtnlg-530b", "gpt2",
              {"vocab_size": 51200, "n_positions": 2048, "n_embd": 20480, "n_layer": 105, "n_head": 128, "activation_function": "gelu_new",
                   "layer_norm_epsilon": 1e-5},
              {"n_embd": 256, "n_layer": 2, "vocab_size": 512}, {"d_model": 256, "d_ff": 1024, "n_layers": 2, "vocab_size": 512}),
    # HF huggyllama/llama-7b config.json
    "llama": ("llama-7b", "llama",
              dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                   num_key_value_heads=32, rms_norm_eps=1e-6, vocab_size=32000, max_position_embeddings=2048,
                   tie_word_embeddings=False, hidden_act="silu", **_rope(10000.0)), *LLAMA_SHRINK),
    # HF meta-llama/Llama-2-70b-hf config.json
    "llama2": ("llama2-70b", "llama",
               dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                    num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=32000, max_position_embeddings=4096,
                    tie_word_embeddings=False, hidden_act="silu", **_rope(10000.0)), *LLAMA_SHRINK),
    # HF meta-llama/Meta-Llama-3-8B config.json
    "llama3": ("llama3-8b", "llama",
               dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=128256, max_position_embeddings=8192,
                    tie_word_embeddings=False, hidden_act="silu", **_rope(500000.0)), *LLAMA_SHRINK),
    # HF meta-llama/Llama-3.1-8B config.json
    "llama3.1": ("llama3.1-8b", "llama",
                 dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=128256, max_position_embeddings=131072,
                      tie_word_embeddings=False, hidden_act="silu",
                      **_rope(500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                              original_max_position_embeddings=8192)), *LLAMA_SHRINK),
    # HF meta-llama/Llama-3.2-1B config.json (tied embeddings, head_dim 64, llama3 scaling with factor 32)
    "llama3.2": ("llama3.2-1b", "llama",
                 dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                      num_key_value_heads=8, head_dim=64, rms_norm_eps=1e-5, vocab_size=128256,
                      max_position_embeddings=131072, tie_word_embeddings=True, hidden_act="silu",
                      **_rope(500000.0, factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                              original_max_position_embeddings=8192)), *LLAMA_SHRINK),
    # HF mistralai/Mixtral-8x7B-v0.1 config.json
    "mixtral": ("mixtral-8x7b", "mixtral",
                dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, rms_norm_eps=1e-5, vocab_size=32000, max_position_embeddings=32768,
                     num_local_experts=8, num_experts_per_tok=2, sliding_window=None, tie_word_embeddings=False,
                     hidden_act="silu", **_rope(1e6)),
                LLAMA_SHRINK[0], {**LLAMA_SHRINK[1], "moe.d_ff_expert": 128}),
    # HF google/gemma-2-27b config.json (the sliding window shrunk to 6 so it bites at T = 20)
    "gemma2": ("gemma2-27b", "gemma2",
               dict(hidden_size=4608, intermediate_size=36864, num_hidden_layers=46, num_attention_heads=32,
                    num_key_value_heads=16, head_dim=128, rms_norm_eps=1e-6, vocab_size=256000,
                    max_position_embeddings=8192, query_pre_attn_scalar=144, sliding_window=4096,
                    attn_logit_softcapping=50.0, final_logit_softcapping=30.0, hidden_activation="gelu_pytorch_tanh",
                    tie_word_embeddings=True, **_rope(10000.0)),
               {**LLAMA_SHRINK[0], "sliding_window": 6}, {**LLAMA_SHRINK[1], "window": 6}),
    # HF Qwen/Qwen2-7B config.json
    "qwen2": ("qwen2-7b", "qwen2",
              dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                   num_key_value_heads=4, rms_norm_eps=1e-6, vocab_size=152064, max_position_embeddings=131072,
                   tie_word_embeddings=False, use_sliding_window=False, hidden_act="silu", **_rope(1e6)), *LLAMA_SHRINK),
    # HF google-t5/t5-3b config.json
    "t5": ("t5-3b", "t5",
           {"d_model": 1024, "d_kv": 128, "d_ff": 16384, "num_heads": 32, "num_layers": 24, "num_decoder_layers": 24, "vocab_size": 32128,
                "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6,
                "feed_forward_proj": "relu", "tie_word_embeddings": True},
           {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "vocab_size": 512},
           {"d_model": 64, "d_ff": 128, "n_layers": 2, "n_enc_layers": 2, "vocab_size": 512, "head_dim": 128}),
    # Chowdhery et al. 2022 Table 1 (540B: 118 layers, d 18432, 48 heads of 256, MQA, FFN 4 d, 256k vocabulary;
    # §2: SwiGLU, parallel layers, RoPE, shared embeddings, no biases; §5: logits scaled by d^-0.5). Against
    # transformers' Cohere model: the same block; its logit_scale is d^-0.5 at the shrunk d. Norm eps: not published.
    "palm": ("palm-540b", "cohere",
             dict(hidden_size=18432, intermediate_size=73728, num_hidden_layers=118, num_attention_heads=48,
                  num_key_value_heads=1, head_dim=256, vocab_size=256000, max_position_embeddings=2048,
                  logit_scale=18432 ** -0.5, layer_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
                  use_qk_norm=False, hidden_act="silu", **_rope(10000.0)),
             {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "vocab_size": 512,
              "logit_scale": 64 ** -0.5},
             {"d_model": 64, "d_ff": 256, "n_layers": 2, "vocab_size": 512}),
    # Gunter et al. 2024 §2 table (on-device: d 3072, 26 layers, 24 query / 8 KV heads of 128, query/key norm,
    # tied embeddings); width of the MLP, vocabulary rows, eps and theta are not published. Against Qwen3.
    "afm": ("afm-on-device", "qwen3",
            dict(hidden_size=3072, intermediate_size=8064, num_hidden_layers=26, num_attention_heads=24,
                 num_key_value_heads=8, head_dim=128, vocab_size=49152, tie_word_embeddings=True, rms_norm_eps=1e-5,
                 attention_bias=False, hidden_act="silu", max_position_embeddings=4096, **_rope(500000.0)),
            *LLAMA_SHRINK),
    # HF EleutherAI/gpt-j-6b config.json (heads cut to 2 to shrink d_model while keeping 256-wide heads and
    # 64 rotary dims)
    "gptj": ("gptj-6b", "gptj",
             {"vocab_size": 50400, "n_positions": 2048, "n_embd": 4096, "n_layer": 28, "n_head": 16, "rotary_dim": 64,
              "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "tie_word_embeddings": False},
             {"n_embd": 512, "n_head": 2, "n_layer": 2, "vocab_size": 512, "n_inner": 1024},
             {"d_model": 512, "n_heads": 2, "n_layers": 2, "vocab_size": 512, "d_ff": 1024}),
}
# ------------------------------------------------- the families since mid-2024, typed in the same way
INDEPENDENT.update({
    # HF Qwen/Qwen3-8B config.json
    "qwen3": ("qwen3-8b", "qwen3",
              dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                   num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6, vocab_size=151936,
                   max_position_embeddings=40960, tie_word_embeddings=False, attention_bias=False, hidden_act="silu",
                   use_sliding_window=False, **_rope(1e6)), *LLAMA_SHRINK),
    # HF allenai/OLMo-2-1124-7B config.json (heads cut to 4 to shrink d_model; q/k norms stay full-width)
    "olmo2": ("olmo2-7b", "olmo2",
              dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                   num_key_value_heads=32, rms_norm_eps=1e-6, vocab_size=100352, max_position_embeddings=4096,
                   tie_word_embeddings=False, attention_bias=False, hidden_act="silu", **_rope(500000.0)),
              {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 512,
               "num_attention_heads": 4, "num_key_value_heads": 4},
              {"d_model": 64, "d_ff": 128, "n_layers": 2, "vocab_size": 512, "n_heads": 4}),
    # HF google/gemma-3-1b-pt config.json (6 layers: five local, one global; the window shrunk to 6 so it
    # bites at T = 20; the two RoPE bases and the 256-wide heads kept)
    "gemma3": ("gemma3-1b", "gemma3_text",
               dict(hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
                    num_key_value_heads=1, head_dim=256, rms_norm_eps=1e-6, vocab_size=262144,
                    max_position_embeddings=32768, query_pre_attn_scalar=256, sliding_window=512,
                    sliding_window_pattern=6, rope_theta=1e6, rope_local_base_freq=10000.0,
                    attn_logit_softcapping=None, final_logit_softcapping=None, hidden_activation="gelu_pytorch_tanh",
                    tie_word_embeddings=True),
               {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6, "vocab_size": 512,
                "sliding_window": 6}, {"d_model": 64, "d_ff": 128, "n_layers": 6, "vocab_size": 512, "window": 6}),
    # HF deepseek-ai/DeepSeek-V3 config.json (4 layers: the three dense ones and one MoE layer; heads cut to 4;
    # the ranks, head widths, 256 experts in 8 groups and YaRN's constants kept)
    "deepseek-v3": ("deepseek-v3-671b", "deepseek_v3",
                    dict(hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048, num_hidden_layers=61,
                         num_attention_heads=128, num_key_value_heads=128, n_shared_experts=1, n_routed_experts=256,
                         routed_scaling_factor=2.5, kv_lora_rank=512, q_lora_rank=1536, qk_rope_head_dim=64,
                         v_head_dim=128, qk_nope_head_dim=128, n_group=8, topk_group=4, num_experts_per_tok=8,
                         first_k_dense_replace=3, norm_topk_prob=True, max_position_embeddings=163840,
                         rms_norm_eps=1e-6, vocab_size=129280, tie_word_embeddings=False, hidden_act="silu",
                         rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 40.0,
                                          "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
                                          "mscale": 1.0, "mscale_all_dim": 1.0}),
                    {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 4,
                     "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 512},
                    {"d_model": 64, "d_ff": 128, "moe.d_ff_expert": 32, "moe.d_ff_shared": 32, "n_layers": 4,
                     "n_heads": 4, "vocab_size": 512}),
    # HF meta-llama/Llama-4-Scout-17B-16E config.json, text_config (4 layers so one is NoPE; chunk cut to 6
    # and the temperature floor to 4 so both bite at T = 20; heads cut to 4, 16 experts kept)
    "llama4": ("llama4-scout", "llama4_text",
               dict(hidden_size=5120, intermediate_size=8192, intermediate_size_mlp=16384, num_hidden_layers=48,
                    num_attention_heads=40, num_key_value_heads=8, head_dim=128, vocab_size=202048,
                    max_position_embeddings=10485760, rms_norm_eps=1e-5, num_local_experts=16, num_experts_per_tok=1,
                    interleave_moe_layer_step=1, use_qk_norm=True, attention_chunk_size=8192,
                    attn_temperature_tuning=True, floor_scale=8192, attn_scale=0.1, tie_word_embeddings=False,
                    hidden_act="silu", **_rope(500000.0, factor=16.0, low_freq_factor=1.0, high_freq_factor=1.0,
                                               original_max_position_embeddings=8192)),
               {"hidden_size": 64, "intermediate_size": 32, "intermediate_size_mlp": 128, "num_hidden_layers": 4,
                "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "attention_chunk_size": 6,
                "floor_scale": 4},
               {"d_model": 64, "d_ff": 128, "moe.d_ff_expert": 32, "moe.d_ff_shared": 32, "n_layers": 4,
                "n_heads": 4, "n_kv_heads": 2, "head_dim": 128, "vocab_size": 512, "attn_chunk": 6,
                "nope_temp_floor": 4}),
    # HF openai/gpt-oss-20b config.json (heads cut to 4 with their width 64, window to 6; 32 experts kept)
    "gpt-oss": ("gpt-oss-20b", "gpt_oss",
                dict(hidden_size=2880, intermediate_size=2880, num_hidden_layers=24, num_attention_heads=64,
                     num_key_value_heads=8, head_dim=64, vocab_size=201088, max_position_embeddings=131072,
                     rms_norm_eps=1e-5, num_local_experts=32, num_experts_per_tok=4, sliding_window=128,
                     attention_bias=True, swiglu_limit=7.0, tie_word_embeddings=False,
                     rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                                      "beta_slow": 1.0, "original_max_position_embeddings": 4096, "truncate": False}),
                {"hidden_size": 64, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "vocab_size": 512, "sliding_window": 6},
                {"d_model": 64, "d_ff": 32, "moe.d_ff_expert": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2,
                 "head_dim": 64, "vocab_size": 512, "window": 6}),
})
# Qwen 3's MoE member: HF Qwen/Qwen3-30B-A3B config.json
INDEPENDENT_QWEN3_MOE = ("qwen3-30b-a3b", "qwen3_moe",
                         dict(hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=48,
                              num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128,
                              num_experts_per_tok=8, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                              rms_norm_eps=1e-6, vocab_size=151936, max_position_embeddings=40960,
                              tie_word_embeddings=False, use_sliding_window=False, hidden_act="silu", **_rope(1e6)),
                         {**LLAMA_SHRINK[0], "moe_intermediate_size": 32}, {**LLAMA_SHRINK[1], "moe.d_ff_expert": 32})
# Qwen2's MoE member is a second transformers class in the qwen2 family: HF Qwen/Qwen2-57B-A14B config.json
INDEPENDENT_MOE = ("qwen2-57b-a14b", "qwen2_moe",
                   dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                        num_key_value_heads=4, rms_norm_eps=1e-6, vocab_size=151936, max_position_embeddings=32768,
                        moe_intermediate_size=2560, shared_expert_intermediate_size=20480, num_experts=64,
                        num_experts_per_tok=8, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[],
                        tie_word_embeddings=False, use_sliding_window=False, hidden_act="silu", **_rope(1e6)),
                   {**LLAMA_SHRINK[0], "moe_intermediate_size": 32, "shared_expert_intermediate_size": 256},
                   {**LLAMA_SHRINK[1], "moe.d_ff_expert": 32, "moe.d_ff_shared": 256})


def _shrunk(entry, ours):
    e = get(entry).arch
    moe = {k[4:]: v for k, v in ours.items() if k.startswith("moe.")}
    kw = {k: v for k, v in ours.items() if not k.startswith("moe.")}
    if moe:
        kw["moe"] = replace(e.moe, **moe)
    # a shrunk width keeps the entry's head layout: coupled head widths follow d_model/n_heads, and
    # multi-head attention stays multi-head (the spec stores both explicitly)
    d, h = kw.get("d_model", e.d_model), kw.get("n_heads", e.n_heads)
    if "head_dim" not in kw and e.head_dim * e.n_heads == e.d_model:
        kw["head_dim"] = d // h
    if "n_kv_heads" not in kw and e.n_kv_heads == e.n_heads:
        kw["n_kv_heads"] = h
    return replace(e, **kw).check()


def _llama_names(a):
    """Our names -> the llama-style names of transformers' Cohere and Qwen3 (no class mapping in hf.py)."""
    P = [("tok_emb.weight", "model.embed_tokens.weight"), ("decoder.final_norm.weight", "model.norm.weight")]
    for i in range(a.n_layers):
        o, h = f"decoder.blocks.{i}.", f"model.layers.{i}."
        P += [(o + f"attn.{p}.weight", h + f"self_attn.{p}_proj.weight") for p in "qkvo"]
        P += [(o + f"mlp.{p}.weight", h + f"mlp.{p}_proj.weight") for p in ("gate", "up", "down")]
        P.append((o + "attn_norm.weight", h + "input_layernorm.weight"))
        if not a.parallel_block:
            P.append((o + "mlp_norm.weight", h + "post_attention_layernorm.weight"))
        if a.qk_norm:
            P += [(o + "attn.q_norm.weight", h + "self_attn.q_norm.weight"), (o + "attn.k_norm.weight", h + "self_attn.k_norm.weight")]
    if not a.tied_embeddings:
        P.append(("lm_head.weight", "lm_head.weight"))
    return P


def _halves_to_interleaved(w, heads, hd):
    """Reorder a projection's output rows so that rotating pairs (i, i + hd/2) becomes rotating (2i, 2i + 1)."""
    perm = torch.stack([torch.arange(hd // 2), torch.arange(hd // 2) + hd // 2], dim=-1).flatten()
    return w.view(heads, hd, -1)[:, perm].reshape(heads * hd, -1)


def _load_llama_style(a, m, ref, interleaved_ref: bool):
    sd = m.state_dict()
    out = {t: sd[o] for o, t in _llama_names(a)}
    if interleaved_ref and not a.rope_interleaved:  # our half rotation -> Cohere's interleaved pairs
        for i in range(a.n_layers):
            h = f"model.layers.{i}.self_attn."
            out[h + "q_proj.weight"] = _halves_to_interleaved(out[h + "q_proj.weight"], a.n_heads, a.d_head)
            out[h + "k_proj.weight"] = _halves_to_interleaved(out[h + "k_proj.weight"], a.kv_heads, a.d_head)
    missing, unexpected = ref.load_state_dict(out, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    if a.tied_embeddings:
        ref.tie_weights()


@pytest.mark.parametrize("family", [*INDEPENDENT, "qwen2-moe", "qwen3-moe"])
def test_released_config_typed_in_matches_registry(family):
    entry, mtype, released, shrink_hf, shrink_ours = {"qwen2-moe": INDEPENDENT_MOE, "qwen3-moe": INDEPENDENT_QWEN3_MOE}.get(
        family) or INDEPENDENT[family]
    a = _shrunk(entry, shrink_ours)
    cfg = transformers.AutoConfig.for_model(mtype, **{**released, **shrink_hf})
    cfg._attn_implementation = "eager"
    if hasattr(cfg, "_experts_implementation"):
        cfg._experts_implementation = "eager"
    for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "dropout_rate", "attention_dropout"):
        if hasattr(cfg, k):
            setattr(cfg, k, 0.0)
    ref = (transformers.T5ForConditionalGeneration(cfg) if mtype == "t5"
           else transformers.AutoModelForCausalLM.from_config(cfg)).eval()
    m = _randomise(build(a).eval())
    if mtype in ("cohere", "qwen3"):
        _load_llama_style(a, m, ref, interleaved_ref=mtype == "cohere")
    else:
        # the mapping of a GPT-3 spec is GPT-2's (the band adds no weights and does not bite at T = 20 < window)
        mapped = replace(a, attn_pattern=("global",), window=None) if a.family == "gpt3" else a
        assert hf.model_type(mapped) == mtype
        hf.load_into_hf(mapped, m, ref)  # shapes from the typed config: a misread head count or width fails here
    assert sum(p.numel() for p in ref.parameters()) == params(a).total
    inv = getattr(getattr(getattr(ref, "model", None), "rotary_emb", None), "inv_freq", None)
    if inv is not None:  # theta and Llama 3.1's scaling constants, every frequency
        assert torch.allclose(m.decoder.inv_freq, inv.float(), rtol=1e-6, atol=0)
    x, y = _inputs(a)
    assert (_logits(m, a, x, y) - _ref_logits(ref, a, x, y)).abs().max().item() <= TOL


# ----------------------------------------------------------- families without a transformers class
def _attention_reference(attn, a, x, window=None, xl=False):
    """Scaled dot-product attention written out query by query: causal, optionally banded to `window`
    keys, optionally with Transformer-XL's relative terms (Dai et al. 2019, eq. in §3.3):
    A_ij = (q_i + u) . k_j + (q_i + v) . W_r R_{i-j}, R the sinusoidal encoding [sin | cos] of i - j."""
    B, T, _ = x.shape
    H, hd = a.n_heads, a.d_head
    q = attn.q(x).view(B, T, H, hd)
    k = attn.k(x).view(B, T, -1, hd).repeat_interleave(H // a.kv_heads, dim=2)
    v = attn.v(x).view(B, T, -1, hd).repeat_interleave(H // a.kv_heads, dim=2)
    scale = hd ** -0.5
    out = torch.zeros(B, T, H, hd)
    for i in range(T):
        keys = [j for j in range(i + 1) if window is None or j > i - window]
        for h in range(H):
            s = []
            for j in keys:
                score = (q[:, i, h] * k[:, j, h]).sum(-1)
                if xl:
                    inv = 1.0 / (10000 ** (torch.arange(0, a.d_model, 2).float() / a.d_model))
                    R = torch.cat([torch.sin((i - j) * inv), torch.cos((i - j) * inv)])  # R_{i-j}
                    r = attn.r(R).view(H, hd)[h]  # W_r R_{i-j}
                    score = ((q[:, i, h] + attn.u[h]) * k[:, j, h]).sum(-1) + ((q[:, i, h] + attn.v_bias[h]) * r).sum(-1)
                s.append(score * scale)
            p = torch.softmax(torch.stack(s, -1), -1)
            out[:, i, h] = sum(p[:, n, None] * v[:, j, h] for n, j in enumerate(keys))
    return attn.o(out.reshape(B, T, H * hd))


def test_gpt3_band_is_an_explicit_mask():
    """GPT-3's alternating dense and locally banded layers: layer 1 (local) sees the last `window`
    keys, written as an explicit mask; layer 0 sees all earlier keys."""
    a = replace(build_spec("gpt3", "nano"), window=4)
    m = _randomise(build(a).eval())
    x = torch.randn(2, 12, a.d_model)
    with torch.no_grad():
        for layer, window in ((0, None), (1, 4)):
            attn = m.decoder.blocks[layer].attn
            assert attn.kind == ("local" if window else "global")
            ours, ref = attn(x), _attention_reference(attn, a, x, window=window)
            assert (ours - ref).abs().max().item() <= TOL
        # the band bites: the local layer is not the dense one
        assert (m.decoder.blocks[1].attn(x) - _attention_reference(m.decoder.blocks[1].attn, a, x)).abs().max() > 100 * TOL


@pytest.mark.parametrize("family", ["gopher", "chinchilla"])
def test_xl_attention_is_dai_et_al_formula(family):
    a = build_spec(family, "nano")
    m = _randomise(build(a).eval())
    attn = m.decoder.blocks[0].attn
    x = torch.randn(2, 10, a.d_model)
    with torch.no_grad():
        assert (attn(x) - _attention_reference(attn, a, x, xl=True)).abs().max().item() <= TOL
        assert (attn(x) - _attention_reference(attn, a, x)).abs().max().item() > 100 * TOL  # the terms matter


# Gopher and Chinchilla have no released config and no transformers class: their published tables,
# typed in, against the registry (Rae et al. 2021 Table 1; Hoffmann et al. 2022 Table 4).
PUBLISHED_TABLES = {
    "gopher-44m": {"n_layers": 8, "n_heads": 16, "head_dim": 32, "d_model": 512},
    "gopher-117m": {"n_layers": 12, "n_heads": 12, "head_dim": 64, "d_model": 768},
    "gopher-417m": {"n_layers": 12, "n_heads": 12, "head_dim": 128, "d_model": 1536},
    "gopher-1.4b": {"n_layers": 24, "n_heads": 16, "head_dim": 128, "d_model": 2048},
    "gopher-7.1b": {"n_layers": 32, "n_heads": 32, "head_dim": 128, "d_model": 4096},
    "gopher-280b": {"n_layers": 80, "n_heads": 128, "head_dim": 128, "d_model": 16384},
    "chinchilla-70b": {"n_layers": 80, "n_heads": 64, "head_dim": 128, "d_model": 8192},
}


@pytest.mark.parametrize("name", PUBLISHED_TABLES)
def test_xl_family_shapes_are_the_papers_tables(name):
    e = get(name).arch
    assert {k: getattr(e, k) for k in PUBLISHED_TABLES[name]} == PUBLISHED_TABLES[name]
    assert (e.ctx_len, e.vocab_size, e.positions) == (2048, 32000, "xl_relative")

@pytest.mark.parametrize("name", [e.name for e in ARCHS if e.moe is not None and e.moe.router == "softmax"])
def test_moe_aux_loss_is_transformers_load_balancing_loss(name):
    """The recipes' coefficients are transformers' router_aux_loss_coef: the loss they multiply must be
    load_balancing_loss_func on the same router logits (not 1/top_k of it)."""
    import importlib

    a = build_spec(name, "nano")
    mtype = hf.model_type(a)  # mixtral or qwen2_moe: each model's own copy of the function
    load_balancing_loss_func = importlib.import_module(f"transformers.models.{mtype}.modeling_{mtype}").load_balancing_loss_func
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


def test_gptj_counted_flops_and_params_equal_module():
    from llmhist.archs.flopcount import count_flops

    a = gptj_spec()
    m = build(a)
    assert sum(p.numel() for p in m.parameters()) == params(a).total
    x = torch.randint(0, a.vocab_size, (1, 16))
    assert count_flops(m, x) == pytest.approx(flops_per_token(a, "counted", T=16, training=False) * 16, rel=1e-9)


# ----------------------------------------------------------- DeepSeek-V3's routing and YaRN, where they bite
def test_deepseek_v3_balancing_bias_groups_and_yarn_match_and_matter():
    """The balancing bias (a buffer the balancing rule moves, zero at initialisation) steers the
    choice only; the group limit and YaRN's temperature change the logits. Each is shown to matter,
    with the bias set away from zero in both models."""
    a = build_spec("deepseek-v3", "nano")
    assert a.moe.n_groups > 1 and a.rope_scaling.kind == "yarn" and a.moe.first_dense == 1
    m = _randomise(build(a).eval())
    g = torch.Generator().manual_seed(3)
    for mod in m.modules():
        if isinstance(mod, MoEModule):
            mod.route_bias.copy_(torch.randn(mod.route_bias.shape, generator=g) * 0.5)
    ref = hf.hf_model(a).eval()
    hf.load_into_hf(a, m, ref)
    x, _ = _inputs(a)
    theirs = _ref_logits(ref, a, x)
    assert (_logits(m, a, x) - theirs).abs().max().item() <= TOL
    for without in (replace(a, moe=replace(a.moe, route_bias=False)), replace(a, moe=replace(a.moe, n_groups=1, topk_groups=1)),
                    replace(a, rope_scaling=None)):
        w = build(without).eval()
        w.load_state_dict(m.state_dict(), strict=False)
        assert (_logits(w, without, x) - theirs).abs().max().item() > 100 * TOL


def test_mla_caches_its_latent_and_rotary_key():
    """KV cache per token and layer: MLA keeps d_c + d_h^R = 512 + 64 values (the module's kv_a output),
    against Llama 3 70B's GQA 2 x 8 x 128; at bf16 and any context: 68.6 KiB vs 320 KiB per token."""
    from llmhist.archs.accounting import kv_cache_bytes_per_token

    ds, llama = get("deepseek-v3").arch, get("llama3-70b").arch
    assert kv_cache_bytes_per_token(ds, T=8192) == 61 * (512 + 64) * 2 == 70272
    assert kv_cache_bytes_per_token(llama, T=8192) == 80 * 2 * 8 * 128 * 2 == 327680
    a = build_spec("deepseek-v3", "nano")
    attn = build(a, device="meta").decoder.blocks[0].attn
    assert attn.kv_a.out_features == a.mla.kv_rank + a.mla.d_rope
    assert kv_cache_bytes_per_token(a) == a.n_layers * attn.kv_a.out_features * 2


def test_deepseek_v3_counts_and_mtp_module():
    """671B total (transformers' count, test_published_counts_equal_transformers), 37B active; the MTP
    module counted apart from its parts: a MoE block, three RMSNorms and the 2d -> d projection, which
    DeepSeek's README_WEIGHTS.md (HF deepseek-ai/DeepSeek-V3) gives as 11.5B of its own parameters."""
    from llmhist.archs.model import Block

    a = get("deepseek-v3").arch
    p = params(a)
    assert p.total == pytest.approx(671e9, rel=0.001) and p.active == pytest.approx(37e9, rel=0.02)
    assert p.active - a.vocab_size * a.d_model == pytest.approx(36.6e9, rel=0.01)  # README: 36.6B incl. the head
    assert p.mtp == pytest.approx(11.5e9, rel=0.01)
    n = build_spec("deepseek-v3", "nano")
    with torch.device("meta"):
        blk = Block(n, n.n_layers)
    assert params(n).mtp == sum(q.numel() for q in blk.parameters()) + 3 * n.d_model + 2 * n.d_model ** 2
    assert flops_per_token(a, "6N", training=True) > 6 * p.active  # training counts the MTP module too


def test_llama4_choices_match_and_matter():
    """Llama 4: chunked attention on RoPE layers, the gate on the expert's input, the weightless qk-norm
    after RoPE, NoPE every 4th layer, and the NoPE layers' temperature (floor cut to 4 so it bites at
    T = 20): each matches transformers and moves the logits when taken away."""
    a = replace(build_spec("llama4", "nano"), attn_chunk=6, n_layers=4, nope_every=4, nope_temp_floor=4)
    assert hf.model_type(a) == "llama4_text"
    for without in (replace(a, attn_chunk=None), replace(a, moe=replace(a.moe, scale_input=False)),
                    replace(a, qk_norm=False), replace(a, nope_every=0), replace(a, nope_temp_scale=0.0)):
        diff, far = parity(a, without=without)
        assert diff <= TOL and far > 100 * TOL


def test_gpt_oss_choices_match_and_matter():
    """gpt-oss: attention sinks, the clamped SwiGLU (alpha 1.702, up + 1), YaRN without truncated bounds,
    and the 1:1 banded layers (window cut to 6 so it bites at T = 20): each matches transformers and
    moves the logits when taken away."""
    a = replace(build_spec("gpt-oss", "nano"), window=6)
    assert hf.model_type(a) == "gpt_oss" and not a.rope_scaling.truncate
    m = _randomise(build(a).eval())
    ref = hf.hf_model(a).eval()
    hf.load_into_hf(a, m, ref)
    x, _ = _inputs(a)
    theirs = _ref_logits(ref, a, x)
    assert (_logits(m, a, x) - theirs).abs().max().item() <= TOL
    for without in (replace(a, attn_sinks=False), replace(a, mlp="swiglu"),
                    replace(a, rope_scaling=replace(a.rope_scaling, truncate=True)),
                    replace(a, attn_pattern=("global",), window=None)):
        w = build(without).eval()
        w.load_state_dict(m.state_dict(), strict=False)
        assert (_logits(w, without, x) - theirs).abs().max().item() > 100 * TOL
