"""The one mapping between our models and transformers': config and weights, both directions.

Used by the parity tests and by `llmhist export`. The transformers class is chosen from the
spec's choices (not its name), and a spec with a choice the class cannot express is refused.
transformers is imported only inside the functions (it is a test/export extra).
"""

from __future__ import annotations

from ..core.errors import UserError
from .spec import Arch


class NoHFEquivalent(UserError, ValueError):
    pass


RECENT = ("qwen3", "qwen3_moe", "olmo2", "gemma3_text", "deepseek_v3", "llama4_text", "gpt_oss")


def model_type(a: Arch) -> str:
    """The transformers model_type that implements exactly these choices, or NoHFEquivalent."""
    why = []
    recent = _recent_model_type(a)
    if recent is not None:
        return recent
    if a.positions == "t5_bias" and a.is_encoder_decoder and a.mlp == "relu" and a.query_scale == 1.0:
        return "t5"
    if a.positions == "learned" and a.norm == "layernorm" and a.bias == "all" and a.tied_embeddings \
            and not a.parallel_block and a.attn_pattern == ("global",) and a.moe is None and a.kv_heads == a.n_heads:
        if a.norm_placement == "post" and not a.final_norm and a.mlp == "gelu_tanh" and a.d_ff == 4 * a.d_model:
            return "openai-gpt"
        if a.norm_placement == "pre" and a.final_norm and a.mlp == "gelu_tanh":
            return "gpt2"
    if a.mla is not None or a.qk_norm_width != "head" or a.norm_placement == "output" or a.rope_theta_local \
            or a.moe is not None and (a.moe.router != "softmax" or a.moe.route_bias or a.moe.n_groups > 1
                                      or a.moe.routed_scale != 1.0 or a.moe.first_dense):
        why.append("a choice only the recent families' classes take")
    elif a.positions == "rope" and a.norm_placement == "pre" and not a.parallel_block and not a.qk_norm \
            and a.norm == "rmsnorm" and a.mlp == "swiglu" and a.attn_pattern == ("global",) \
            and a.query_scale is None and not a.attn_softcap and not a.embed_scale:
        if a.moe is None and a.bias == "none":
            return "llama"
        if a.moe is None and a.bias == "qkv" and a.rope_scaling is None:
            return "qwen2"
        if a.moe is not None and a.bias == "none" and a.moe.renormalize and not a.moe.d_ff_shared:
            return "mixtral"
        if a.moe is not None and a.bias == "qkv" and a.moe.shared_gate:
            return "qwen2_moe"
    if a.positions == "rope" and a.parallel_block and a.norm == "layernorm" and a.norm_bias and a.bias == "mlp" \
            and a.mlp == "gelu_tanh" and a.rope_interleaved and a.rope_theta == 10000.0 and a.rope_scaling is None \
            and not a.tied_embeddings and a.lm_head_bias and a.final_norm and a.attn_pattern == ("global",) \
            and a.moe is None and a.kv_heads == a.n_heads and a.d_head * a.n_heads == a.d_model and a.query_scale is None \
            and not a.qk_norm and not a.output_scale and not a.embed_scale and not a.attn_softcap and not a.final_softcap:
        return "gptj"
    if a.norm == "rmsnorm_1p" and a.norm_placement == "sandwich" and a.mlp == "geglu" and a.embed_scale \
            and a.positions == "rope" and a.tied_embeddings and a.bias == "none" and a.moe is None \
            and not a.qk_norm and a.rope_theta_local is None:
        return "gemma2"
    if a.qk_norm:
        why.append("query/key norm")
    if a.parallel_block:
        why.append("parallel block")
    if a.positions in ("xl_relative", "sinusoidal"):
        why.append(f"{a.positions} positions")
    if "local" in a.attn_pattern and a.norm != "rmsnorm_1p":
        why.append("locally banded attention")
    raise NoHFEquivalent(
        f"{a.name}: transformers has no model class with exactly these choices"
        + (f" ({', '.join(why)})" if why else "")
        + "; export supports openai-gpt, gpt2, gptj, llama, mixtral, gemma2, qwen2, qwen2_moe, t5, "
        + ", ".join(RECENT) + " layouts"
    )


def _recent_model_type(a: Arch) -> str | None:
    """The classes of the families since mid-2024 (transformers 5): Qwen 3 (dense, MoE), OLMo 2,
    Gemma 3 (text), DeepSeek-V3; None where none of them takes exactly these choices."""
    if a.nope_every or a.qk_norm_width == "l2" or a.attn_chunk or a.moe is not None and a.moe.scale_input:
        return _llama4(a)
    if a.attn_sinks or a.mlp == "swiglu_clamped" or a.moe is not None and a.moe.bias:
        return _gpt_oss(a)
    if a.positions != "rope" or a.parallel_block or a.bias != "none" or a.tied_embeddings and a.mla is not None \
            or a.attn_softcap or a.final_softcap or not a.final_norm or a.rope_scaling is not None and a.mla is None \
            or a.attn_sinks:
        return None
    llama_like = a.norm == "rmsnorm" and a.mlp == "swiglu" and a.attn_pattern == ("global",) and not a.embed_scale \
        and a.query_scale is None and not a.rope_interleaved and a.rope_theta_local is None and a.mla is None
    plain_moe = a.moe is None or (a.moe.router == "softmax" and not a.moe.route_bias and a.moe.n_groups == 1
                                  and a.moe.routed_scale == 1.0 and not a.moe.first_dense and not a.moe.d_ff_shared)
    if llama_like and a.qk_norm and a.qk_norm_width == "head" and a.norm_placement == "pre" and plain_moe:
        return "qwen3" if a.moe is None else "qwen3_moe"
    if llama_like and a.qk_norm and a.qk_norm_width == "full" and a.norm_placement == "output" and a.moe is None:
        return "olmo2"
    if a.norm == "rmsnorm_1p" and a.norm_placement == "sandwich" and a.mlp == "geglu" and a.embed_scale \
            and a.qk_norm and a.qk_norm_width == "head" and a.moe is None and a.mla is None and not a.rope_interleaved:
        return "gemma3_text"
    if a.mla is not None and a.norm == "rmsnorm" and a.norm_placement == "pre" and a.mlp == "swiglu" \
            and a.attn_pattern == ("global",) and a.rope_interleaved and a.query_scale is None and a.moe is not None \
            and a.moe.router == "sigmoid" and a.moe.route_bias and a.moe.d_ff_shared and not a.moe.shared_gate \
            and a.moe.renormalize and (a.rope_scaling is None or a.rope_scaling.kind == "yarn"):
        return "deepseek_v3"
    return None


def _llama4(a: Arch) -> str | None:
    """Llama 4's text model: interleaved NoPE, L2 qk-norm on RoPE layers, chunked RoPE layers, a top-k
    sigmoid router scaling the experts' input, one shared expert, every layer MoE, complex (interleaved) RoPE."""
    m = a.moe
    ok = a.norm == "rmsnorm" and a.norm_placement == "pre" and a.mlp == "swiglu" and a.bias == "none" \
        and a.rope_interleaved and a.positions == "rope" and a.attn_pattern == ("global",) and a.mla is None \
        and (not a.qk_norm or a.qk_norm_width == "l2") and not a.tied_embeddings and not a.attn_sinks \
        and m is not None and m.router == "sigmoid" and m.scale_input and not m.renormalize \
        and m.d_ff_shared == m.d_ff_expert and not m.shared_gate and not m.route_bias and m.n_groups == 1 \
        and m.routed_scale == 1.0 and not m.first_dense and a.query_scale is None and not a.embed_scale \
        and (a.rope_scaling is None or a.rope_scaling.kind == "llama3") and a.nope_temp_floor > 0
    return "llama4_text" if ok else None


def _gpt_oss(a: Arch) -> str | None:
    """gpt-oss: attention sinks, biases on attention, router and experts, the clamped SwiGLU, softmax over
    the top-k router logits, sliding / full layers, YaRN (halves rotation), untied."""
    m = a.moe
    ok = a.attn_sinks and a.mlp == "swiglu_clamped" and a.bias == "all" and a.norm == "rmsnorm" \
        and a.norm_placement == "pre" and a.positions == "rope" and not a.rope_interleaved and a.mla is None \
        and not a.qk_norm and not a.tied_embeddings and a.query_scale is None and not a.embed_scale \
        and m is not None and m.bias and m.router == "softmax" and m.renormalize and not m.d_ff_shared \
        and not m.route_bias and m.n_groups == 1 and m.routed_scale == 1.0 and not m.first_dense \
        and not m.scale_input and not a.attn_softcap and not a.final_softcap \
        and (a.rope_scaling is None or a.rope_scaling.kind == "yarn")
    return "gpt_oss" if ok else None


def _rope_parameters(a: Arch) -> dict:
    rope = {"rope_type": "default", "rope_theta": a.rope_theta}
    s = a.rope_scaling
    if s is not None and s.kind == "yarn":
        rope = {"rope_type": "yarn", "rope_theta": a.rope_theta, "factor": s.factor, "beta_slow": s.low_freq_factor,
                "beta_fast": s.high_freq_factor, "original_max_position_embeddings": s.original_ctx,
                "mscale": s.mscale, "mscale_all_dim": s.mscale_all_dim, "truncate": s.truncate}
    elif s is not None:
        rope = {"rope_type": "llama3", "rope_theta": a.rope_theta, "factor": s.factor,
                "low_freq_factor": s.low_freq_factor, "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_ctx}
    return rope


def _recent_config(a: Arch, t: str, common: dict):
    import transformers as tf

    if t == "qwen3":
        return tf.Qwen3Config(hidden_act="silu", attention_bias=False, use_sliding_window=False, **common)
    if t == "qwen3_moe":
        m = a.experts
        return tf.Qwen3MoeConfig(hidden_act="silu", attention_bias=False, num_experts=m.n_experts,
                                 num_experts_per_tok=m.top_k, moe_intermediate_size=m.d_ff_expert,
                                 norm_topk_prob=m.renormalize, decoder_sparse_step=1, mlp_only_layers=[],
                                 use_sliding_window=False, **common)
    if t == "olmo2":
        return tf.Olmo2Config(hidden_act="silu", attention_bias=False, **common)
    if t == "gemma3_text":
        scale = a.query_scale if a.query_scale is not None else a.head_dim ** -0.5
        rope = {"full_attention": common["rope_parameters"],
                "sliding_attention": {"rope_type": "default", "rope_theta": a.rope_theta_local or a.rope_theta}}
        return tf.Gemma3TextConfig(hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=round(scale**-2),
                                   sliding_window=a.window or 4096, attention_bias=False, final_logit_softcapping=None,
                                   attn_logit_softcapping=None,
                                   layer_types=["sliding_attention" if a.layer_kind(i) == "local" else "full_attention"
                                                for i in range(a.n_layers)], **{**common, "rope_parameters": rope})
    if t == "llama4_text":
        m = a.experts
        return tf.Llama4TextConfig(hidden_act="silu", intermediate_size_mlp=a.d_ff,
                                   num_local_experts=m.n_experts, num_experts_per_tok=m.top_k,
                                   moe_layers=list(range(a.n_layers)), use_qk_norm=a.qk_norm,
                                   no_rope_layers=[int(a.uses_rope(i)) for i in range(a.n_layers)],
                                   attention_chunk_size=a.attn_chunk, attn_temperature_tuning=a.nope_temp_scale > 0,
                                   floor_scale=a.nope_temp_floor, attn_scale=a.nope_temp_scale,
                                   **{**common, "intermediate_size": m.d_ff_expert})
    if t == "gpt_oss":
        m = a.experts
        return tf.GptOssConfig(num_local_experts=m.n_experts, num_experts_per_tok=m.top_k, sliding_window=a.window,
                               attention_bias=True, swiglu_limit=7.0,
                               layer_types=["sliding_attention" if a.layer_kind(i) == "local" else "full_attention"
                                            for i in range(a.n_layers)], **{**common, "intermediate_size": m.d_ff_expert})
    m, mla = a.experts, a.latent  # deepseek_v3
    return tf.DeepseekV3Config(hidden_act="silu", attention_bias=False, q_lora_rank=mla.q_rank,
                               kv_lora_rank=mla.kv_rank, qk_nope_head_dim=mla.d_nope, qk_rope_head_dim=mla.d_rope,
                               v_head_dim=mla.d_v, n_routed_experts=m.n_experts, n_shared_experts=1,
                               moe_intermediate_size=m.d_ff_expert, num_experts_per_tok=m.top_k, n_group=m.n_groups,
                               topk_group=m.topk_groups, routed_scaling_factor=m.routed_scale,
                               norm_topk_prob=m.renormalize, first_k_dense_replace=m.first_dense,
                               rope_interleave=True, **{**common, "head_dim": mla.d_rope})


def hf_config(a: Arch):
    """A transformers config object for the spec (dropout off)."""
    import transformers as tf

    t = model_type(a)
    rope = _rope_parameters(a)
    common = {"vocab_size": a.vocab_size, "hidden_size": a.d_model, "intermediate_size": a.d_ff,
                  "num_hidden_layers": a.n_layers, "num_attention_heads": a.n_heads, "num_key_value_heads": a.kv_heads,
                  "head_dim": a.d_attn // a.n_heads, "max_position_embeddings": a.ctx_len, "rms_norm_eps": a.norm_eps,
                  "rope_parameters": rope, "tie_word_embeddings": a.tied_embeddings, "attention_dropout": 0.0}
    if t in RECENT:
        return _recent_config(a, t, common)
    if t == "openai-gpt":
        return tf.OpenAIGPTConfig(vocab_size=a.vocab_size, n_positions=a.ctx_len, n_embd=a.d_model,
                                  n_layer=a.n_layers, n_head=a.n_heads, afn="gelu", layer_norm_epsilon=a.norm_eps,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    if t == "gpt2":
        return tf.GPT2Config(vocab_size=a.vocab_size, n_positions=a.ctx_len, n_embd=a.d_model, n_layer=a.n_layers,
                             n_head=a.n_heads, n_inner=a.d_ff, activation_function="gelu_new",
                             layer_norm_epsilon=a.norm_eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    if t == "gptj":
        return tf.GPTJConfig(vocab_size=a.vocab_size, n_positions=a.ctx_len, n_embd=a.d_model, n_layer=a.n_layers,
                             n_head=a.n_heads, rotary_dim=a.rotary_dim or a.d_head, n_inner=a.d_ff, activation_function="gelu_new",
                             layer_norm_epsilon=a.norm_eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                             tie_word_embeddings=False)
    if t == "llama":
        return tf.LlamaConfig(hidden_act="silu", attention_bias=False, mlp_bias=False, **common)
    if t == "qwen2":
        return tf.Qwen2Config(hidden_act="silu", use_sliding_window=False, **common)
    if t == "mixtral":
        m = a.experts
        return tf.MixtralConfig(hidden_act="silu", num_local_experts=m.n_experts, num_experts_per_tok=m.top_k,
                                sliding_window=None, **{**common, "intermediate_size": m.d_ff_expert})
    if t == "qwen2_moe":
        m = a.experts
        return tf.Qwen2MoeConfig(hidden_act="silu", num_experts=m.n_experts, num_experts_per_tok=m.top_k,
                                 moe_intermediate_size=m.d_ff_expert, shared_expert_intermediate_size=m.d_ff_shared,
                                 norm_topk_prob=m.renormalize, decoder_sparse_step=1, mlp_only_layers=[],
                                 use_sliding_window=False, **common)
    if t == "gemma2":
        scale = a.query_scale if a.query_scale is not None else (a.d_attn // a.n_heads) ** -0.5
        return tf.Gemma2Config(hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=round(scale**-2),
                               sliding_window=a.window or 4096, attn_logit_softcapping=a.attn_softcap,
                               final_logit_softcapping=a.final_softcap, attention_bias=False,
                               layer_types=["sliding_attention" if a.layer_kind(i) == "local" else "full_attention"
                                            for i in range(a.n_layers)], **common)
    if t == "t5":
        return tf.T5Config(vocab_size=a.vocab_size, d_model=a.d_model, d_kv=a.d_attn // a.n_heads, d_ff=a.d_ff,
                           num_layers=a.n_enc_layers, num_decoder_layers=a.n_layers, num_heads=a.n_heads,
                           relative_attention_num_buckets=a.rel_buckets,
                           relative_attention_max_distance=a.rel_max_distance, dropout_rate=0.0,
                           layer_norm_epsilon=a.norm_eps, feed_forward_proj="relu", tie_word_embeddings=True)
    raise AssertionError(t)


def hf_model(a: Arch, device: str = "cpu"):
    """An (uninitialised-weights) transformers model for the spec, eager attention."""
    import torch
    import transformers as tf

    cfg = hf_config(a)
    cfg._attn_implementation = "eager"
    if hasattr(cfg, "_experts_implementation"):
        cfg._experts_implementation = "eager"  # the reference loop; grouped_mm needs 16-byte strides
    cls = tf.T5ForConditionalGeneration if model_type(a) == "t5" else tf.AutoModelForCausalLM
    with torch.device(device):
        return cls.from_config(cfg) if cls is tf.AutoModelForCausalLM else cls(cfg)


# ----------------------------------------------------------------------------------- weights
def _pairs(a: Arch) -> list[tuple[str, str]]:
    """(our name, transformers name) for every plain tensor that maps one-to-one."""
    t = model_type(a)
    if t in ("llama", "qwen2", "mixtral", "qwen2_moe", "gemma2", *RECENT):
        return _llama_pairs(a, t)
    if t == "gptj":
        return _gptj_pairs(a)
    if t == "t5":
        return _t5_pairs(a)
    return _gpt_pairs(a, t)


def _llama_pairs(a: Arch, t: str) -> list[tuple[str, str]]:
    """Llama's layout and its descendants' (model.layers.i.*), with each family's norm names."""
    P: list[tuple[str, str]] = [("tok_emb.weight", "model.embed_tokens.weight")]
    for i in range(a.n_layers):
        o, h = f"decoder.blocks.{i}.", f"model.layers.{i}."
        P += _attn_pairs(a, o, h)
        if t in ("gemma2", "gemma3_text"):
            P += [(o + "attn_norm.weight", h + "input_layernorm.weight"),
                  (o + "post_attn_norm.weight", h + "post_attention_layernorm.weight"),
                  (o + "mlp_norm.weight", h + "pre_feedforward_layernorm.weight"),
                  (o + "post_mlp_norm.weight", h + "post_feedforward_layernorm.weight")]
        elif t == "olmo2":  # norms on the sublayers' outputs
            P += [(o + "attn_norm.weight", h + "post_attention_layernorm.weight"),
                  (o + "mlp_norm.weight", h + "post_feedforward_layernorm.weight")]
        else:
            P += [(o + "attn_norm.weight", h + "input_layernorm.weight"),
                  (o + "mlp_norm.weight", h + "post_attention_layernorm.weight")]
        P += _mlp_pairs(a, i, o, h)
    P.append(("decoder.final_norm.weight", "model.norm.weight"))
    if not a.tied_embeddings:
        P.append(("lm_head.weight", "lm_head.weight"))
    return P


def _gptj_pairs(a: Arch) -> list[tuple[str, str]]:
    """GPT-J's layout (transformer.h.i.*: one shared pre-norm, biased MLP and head)."""
    P = [("tok_emb.weight", "transformer.wte.weight")]
    for i in range(a.n_layers):
        o, h = f"decoder.blocks.{i}.", f"transformer.h.{i}."
        P += [(o + f"attn.{p}.weight", h + f"attn.{q}_proj.weight") for p, q in zip("qkvo", ("q", "k", "v", "out"))]
        P += [(o + f"attn_norm.{w}", h + f"ln_1.{w}") for w in ("weight", "bias")]
        P += [(o + f"mlp.{p}.{w}", h + f"mlp.{q}.{w}") for p, q in (("up", "fc_in"), ("down", "fc_out"))
              for w in ("weight", "bias")]
    P += [("decoder.final_norm.weight", "transformer.ln_f.weight"), ("decoder.final_norm.bias", "transformer.ln_f.bias"),
          ("lm_head.weight", "lm_head.weight"), ("lm_head.bias", "lm_head.bias")]
    return P


def _t5_pairs(a: Arch) -> list[tuple[str, str]]:
    """T5's encoder and decoder stacks (the relative bias lives in each stack's first block)."""
    P = [("tok_emb.weight", "shared.weight")]
    for stack, n in (("encoder", a.n_enc_layers), ("decoder", a.n_layers)):
        for i in range(n):
            o, h = f"{stack}.blocks.{i}.", f"{stack}.block.{i}.layer."
            P += [(o + f"attn.{p}.weight", h + f"0.SelfAttention.{p}.weight") for p in "qkvo"]
            P.append((o + "attn_norm.weight", h + "0.layer_norm.weight"))
            if i == 0:
                P.append((o + "attn.rel_bias.weight", h + "0.SelfAttention.relative_attention_bias.weight"))
            k = 1
            if stack == "decoder":
                P += [(o + f"cross_attn.{p}.weight", h + f"1.EncDecAttention.{p}.weight") for p in "qkvo"]
                P.append((o + "cross_norm.weight", h + "1.layer_norm.weight"))
                k = 2
            P += [(o + "mlp.up.weight", h + f"{k}.DenseReluDense.wi.weight"),
                  (o + "mlp.down.weight", h + f"{k}.DenseReluDense.wo.weight"),
                  (o + "mlp_norm.weight", h + f"{k}.layer_norm.weight")]
        P.append((f"{stack}.final_norm.weight", f"{stack}.final_layer_norm.weight"))
    return P


def _gpt_pairs(a: Arch, t: str) -> list[tuple[str, str]]:
    """openai-gpt / gpt2: transformers stores linears as Conv1D (transposed, see _conv1d) with fused qkv."""
    pre = "transformer."
    emb = ("tokens_embed", "positions_embed") if t == "openai-gpt" else ("wte", "wpe")
    P = [("tok_emb.weight", pre + emb[0] + ".weight"), ("pos_emb.weight", pre + emb[1] + ".weight")]
    for i in range(a.n_layers):
        o, h = f"decoder.blocks.{i}.", f"{pre}h.{i}."
        for ours, theirs in (("attn_norm", "ln_1"), ("mlp_norm", "ln_2")):
            P += [(o + f"{ours}.weight", h + f"{theirs}.weight"), (o + f"{ours}.bias", h + f"{theirs}.bias")]
        P += [(o + "attn.o.bias", h + "attn.c_proj.bias"), (o + "mlp.up.bias", h + "mlp.c_fc.bias"),
              (o + "mlp.down.bias", h + "mlp.c_proj.bias")]
    if a.final_norm:
        P += [("decoder.final_norm.weight", pre + "ln_f.weight"), ("decoder.final_norm.bias", pre + "ln_f.bias")]
    return P


def _conv1d(a: Arch) -> list[tuple[tuple[str, ...], str]]:
    """Ours -> transformers' transposed Conv1D weights (qkv fused into c_attn)."""
    out = []
    for i in range(a.n_layers):
        o, h = f"decoder.blocks.{i}.", f"transformer.h.{i}."
        out += [((o + "attn.q.weight", o + "attn.k.weight", o + "attn.v.weight"), h + "attn.c_attn.weight"),
                ((o + "attn.q.bias", o + "attn.k.bias", o + "attn.v.bias"), h + "attn.c_attn.bias"),
                ((o + "attn.o.weight",), h + "attn.c_proj.weight"), ((o + "mlp.up.weight",), h + "mlp.c_fc.weight"),
                ((o + "mlp.down.weight",), h + "mlp.c_proj.weight")]
    return out


def _attn_pairs(a: Arch, o: str, h: str) -> list[tuple[str, str]]:
    if a.mla is not None:  # DeepSeek-V3's names
        P = [(o + f"attn.{p}.weight", h + f"self_attn.{q}.weight") for p, q in
             (("q_a", "q_a_proj"), ("q_a_norm", "q_a_layernorm"), ("q_b", "q_b_proj"), ("kv_a", "kv_a_proj_with_mqa"),
              ("kv_a_norm", "kv_a_layernorm"), ("kv_b", "kv_b_proj"), ("o", "o_proj"))]
        return P
    P = []
    for p in ("q", "k", "v", "o"):
        P.append((o + f"attn.{p}.weight", h + f"self_attn.{p}_proj.weight"))
        if a.bias == "qkv" and p != "o":
            P.append((o + f"attn.{p}.bias", h + f"self_attn.{p}_proj.bias"))
    if a.bias == "all":  # gpt-oss
        P += [(o + "attn.o.bias", h + "self_attn.o_proj.bias")] + \
            [(o + f"attn.{p}.bias", h + f"self_attn.{p}_proj.bias") for p in "qkv"]
    if a.attn_sinks:
        P.append((o + "attn.sinks", h + "self_attn.sinks"))
    if a.qk_norm and a.qk_norm_width != "l2":  # Llama 4's L2 norm has no weights
        P += [(o + f"attn.{p}_norm.weight", h + f"self_attn.{p}_norm.weight") for p in "qk"]
    return P


def _mlp_pairs(a: Arch, i: int, o: str, h: str) -> list[tuple[str, str]]:
    if model_type(a) == "gpt_oss":  # experts stored (E, d, 2f) interleaved, (E, f, d): see _transposed
        return [(o + f"mlp.router.{w}", h + f"mlp.router.{w}") for w in ("weight", "bias")] + \
            [(o + f"mlp.{p}", h + f"mlp.experts.{q}") for p, q in (("gate_up", "gate_up_proj"), ("down", "down_proj"),
                                                                   ("gate_up_bias", "gate_up_proj_bias"),
                                                                   ("down_bias", "down_proj_bias"))]
    if model_type(a) == "llama4_text":  # experts stored (E, d, 2f) and (E, f, d): to_hf / from_hf transpose them
        return [(o + "mlp.router.weight", h + "feed_forward.router.weight"),
                (o + "mlp.gate_up", h + "feed_forward.experts.gate_up_proj"),
                (o + "mlp.down", h + "feed_forward.experts.down_proj")] + \
            [(o + f"mlp.shared.{p}.weight", h + f"feed_forward.shared_expert.{p}_proj.weight") for p in ("gate", "up", "down")]
    if a.moe is None or i < a.moe.first_dense:
        return [(o + f"mlp.{p}.weight", h + f"mlp.{p}_proj.weight") for p in ("gate", "up", "down")]
    P = [(o + "mlp.router.weight", h + "mlp.gate.weight"), (o + "mlp.gate_up", h + "mlp.experts.gate_up_proj"),
         (o + "mlp.down", h + "mlp.experts.down_proj")]
    if a.moe.route_bias:
        P.append((o + "mlp.route_bias", h + "mlp.gate.e_score_correction_bias"))
    if a.moe.d_ff_shared:
        name = "shared_expert" if a.moe.shared_gate else "shared_experts"  # Qwen2-MoE's / DeepSeek-V3's
        P += [(o + f"mlp.shared.{p}.weight", h + f"mlp.{name}.{p}_proj.weight") for p in ("gate", "up", "down")]
        if a.moe.shared_gate:
            P.append((o + "mlp.shared_gate.weight", h + "mlp.shared_expert_gate.weight"))
    return P


def _transposed(a: Arch, theirs: str, w, to_hf: bool = True):
    """Llama 4 and gpt-oss store experts with the input dimension first: (E, 2f, d) <-> (E, d, 2f), (E, d, f) <->
    (E, f, d); gpt-oss also interleaves the gate and up columns (gate at even, up at odd positions)."""
    import torch

    t = model_type(a)
    if t not in ("llama4_text", "gpt_oss") or "experts." not in theirs:
        return w
    interleaved = t == "gpt_oss" and "gate_up" in theirs
    if to_hf and interleaved:  # [g | u] along dim 1 -> (g0, u0, g1, u1, ...)
        g, u = w.chunk(2, dim=1)
        w = torch.stack((g, u), dim=2).flatten(1, 2)
    if w.dim() == 3:
        w = w.transpose(1, 2)
    if not to_hf and interleaved:
        w = torch.cat((w[:, 0::2], w[:, 1::2]), dim=1)
    return w.contiguous()


def to_hf(a: Arch, ours: dict) -> dict:
    """Our state dict -> transformers' (tied weights written once under the embedding's name)."""
    import torch

    out = {theirs: _transposed(a, theirs, ours[o]) for o, theirs in _pairs(a)}
    if model_type(a) in ("openai-gpt", "gpt2"):
        for srcs, theirs in _conv1d(a):
            ts = [ours[s] for s in srcs]
            out[theirs] = torch.cat(ts, dim=0).t().contiguous() if ts[0].dim() == 2 else torch.cat(ts)
    return out


def from_hf(a: Arch, theirs: dict) -> dict:
    """transformers' state dict -> ours (inverse of to_hf)."""
    out = {o: _transposed(a, t, theirs[t], to_hf=False) for o, t in _pairs(a)}
    if model_type(a) in ("openai-gpt", "gpt2"):
        for srcs, t in _conv1d(a):
            w = theirs[t]
            if w.dim() == 2:
                w = w.t()
            sizes = [a.d_attn, a.d_kv, a.d_kv] if len(srcs) == 3 else [w.shape[0]]
            for s, part in zip(srcs, w.split(sizes, dim=0)):
                out[s] = part.contiguous()
    if a.tied_embeddings:
        out["lm_head.weight"] = out["tok_emb.weight"]
    return out


def load_into_hf(a: Arch, ours_model, hf) -> None:
    """Copy our module's weights into a transformers module of the same config (strict)."""
    sd = to_hf(a, ours_model.state_dict())
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    # tied copies (lm_head / per-stack embeddings) are the only keys allowed to be missing
    bad = [k for k in missing if not (k.endswith("embed_tokens.weight") or k == "lm_head.weight")]
    if bad or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {bad[:5]}, unexpected {list(unexpected)[:5]}")
    if a.tied_embeddings:
        hf.tie_weights()

