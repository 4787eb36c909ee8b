"""Every historical model, one entry per published size, each with its source.

Entries are written as changes from a predecessor (dataclasses.replace), so a reader sees what each
generation changed. Shapes come from the paper's table or the released config.json named in
`source`; where a value has another source it is listed in `field_sources`. Traps worth knowing
are commented where they bite.
"""

from __future__ import annotations

from llmhist.errors import UserError

import difflib
from dataclasses import replace

from .spec import Arch, MoE, RopeScaling, SpecError, resize, small

R = replace
ENTRIES: list[Arch] = []


def add(a: Arch, **kw) -> Arch:
    a = replace(a, **kw) if kw else a
    ENTRIES.append(a)
    return a


def sizes(base: Arch, table: list[tuple], cols: tuple[str, ...]) -> list[Arch]:
    out = []
    for row in table:
        out.append(add(base, **dict(zip(cols, row))))
    return out


# ------------------------------------------------------------------------------------ GPT-1
gpt1 = add(Arch(
    name="gpt1-117m", family="gpt1", year=2018,
    paper="Radford et al. 2018, Improving Language Understanding by Generative Pre-Training",
    source="paper §4.1 (12 layers, 768 d, 12 heads, 3072 FFN, 512 positions); HF openai-community/openai-gpt config.json",
    d_model=768, n_layers=12, n_heads=12, d_ff=3072, vocab_size=40478, ctx_len=512,
    norm="layernorm", norm_eps=1e-5, norm_placement="post", final_norm=False,  # LN(x + f(x)), no final norm
    # GELU with the tanh approximation, as OpenAI's code (and transformers' openai-gpt) compute it
    positions="learned", mlp="gelu_tanh", bias="all", tied_embeddings=True,
    train_tokens=None, optimizer="Adam", tokenizer="BPE (40k merges, ftfy/spaCy pre-tokenised)",
    published_params=117e6, flagship=True, aliases=("gpt1", "gpt-1", "openai-gpt"),
    notes="BooksCorpus, 100 epochs of 64x512-token minibatches; no token count was reported.",
))

# ------------------------------------------------------------------------------------ GPT-2
_gpt2 = R(gpt1, family="gpt2", year=2019,
          paper="Radford et al. 2019, Language Models are Unsupervised Multitask Learners",
          source="paper Table 2; HF openai-community/gpt2{,-medium,-large,-xl} config.json",
          norm_placement="pre", final_norm=True,  # moved LN to each sub-block's input, added a final LN
          vocab_size=50257, ctx_len=1024, aliases=(), flagship=False,
          tokenizer="byte-level BPE (50,257)",
          notes="WebText (40 GB); no token count was reported. The paper's 117M/345M/762M/1542M understate the real sizes.")
sizes(_gpt2, [
    ("gpt2-124m", 768, 12, 12, 3072, 117e6, ("gpt2-small",), False),
    ("gpt2-355m", 1024, 24, 16, 4096, 345e6, ("gpt2-medium",), False),
    ("gpt2-774m", 1280, 36, 20, 5120, 762e6, ("gpt2-large",), False),
    ("gpt2-1.5b", 1600, 48, 25, 6400, 1542e6, ("gpt2", "gpt2-xl", "gpt-2"), True),
], ("name", "d_model", "n_layers", "n_heads", "d_ff", "published_params", "aliases", "flagship"))

# ------------------------------------------------------------------------------------ GPT-3
_gpt3 = R(_gpt2, family="gpt3", year=2020,
          paper="Brown et al. 2020, Language Models are Few-Shot Learners",
          source="paper Table 2.1",
          ctx_len=2048, train_tokens=300e9, optimizer="Adam (beta2 0.95)",
          # "alternating dense and locally banded sparse attention patterns in the layers":
          # adds no parameters; the band width was never published, so it is a setting here.
          attn_pattern=("global", "local"), window=256, window_published=False,
          notes="Table 2.1 is inconsistent for XL (24 heads x 128 != 2048) and 13B (5140 != 40 x 128): "
                "the published sizes come out with attention width = d_model. Band width of the sparse "
                "layers never published (256 is this tool's default).")
sizes(_gpt3, [
    ("gpt3-125m", 768, 12, 12, 125e6, ("gpt3-small",), False),
    ("gpt3-350m", 1024, 24, 16, 350e6, ("gpt3-medium",), False),
    ("gpt3-760m", 1536, 24, 16, 760e6, ("gpt3-large",), False),
    ("gpt3-1.3b", 2048, 24, 24, 1.3e9, ("gpt3-xl",), False),
    ("gpt3-2.7b", 2560, 32, 32, 2.7e9, (), False),
    ("gpt3-6.7b", 4096, 32, 32, 6.7e9, (), False),
    ("gpt3-13b", 5140, 40, 40, 13.0e9, (), False),
    ("gpt3-175b", 12288, 96, 96, 175.0e9, ("gpt3", "gpt-3", "davinci"), True),
], ("name", "d_model", "n_layers", "n_heads", "published_params", "aliases", "flagship"))
ENTRIES[:] = [R(e, d_ff=4 * e.d_model) if e.family == "gpt3" else e for e in ENTRIES]

add(Arch(
    name="codex-12b", family="codex", year=2021,
    paper="Chen et al. 2021, Evaluating Large Language Models Trained on Code",
    source="paper §3 (fine-tuned from a GPT-3 12B model; no shape table)",
    d_model=None, n_layers=None, n_heads=None, d_ff=None, vocab_size=None, ctx_len=None,
    shape_known=False, published_params=12e9, optimizer="Adam", tokenizer="GPT-3 BPE plus whitespace tokens",
    train_tokens=100e9, flagship=True, aliases=("codex",),
    field_sources=(("train_tokens", "paper §3.2: fine-tuned for 100B tokens on 159 GB of Python"),),
    notes="Known: GPT-3 family, 12B parameters, 4,096-token context, fine-tuned on 159 GB of GitHub Python. "
          "Unknown: its exact shape (the 12B GPT-3 is not in Table 2.1).",
))
add(Arch(
    name="gpt4", family="gpt4", year=2023, paper="OpenAI 2023, GPT-4 Technical Report",
    source="technical report (withholds architecture, size, compute and data)",
    d_model=None, n_layers=None, n_heads=None, d_ff=None, vocab_size=None, ctx_len=8192,
    shape_known=False, optimizer="not published", tokenizer="cl100k_base BPE", flagship=True, aliases=("gpt-4",),
    field_sources=(("ctx_len", "technical report: 8,192 and 32,768-token versions"),),
    notes="Known: a Transformer-style pre-trained model; 8k and 32k context. Unknown: parameters, shape, "
          "training tokens, compute (the report withholds them).",
))

# ------------------------------------------------------------------------------ Jurassic-1
_j1 = R(_gpt3, name="", family="jurassic1", year=2021,
        paper="Lieber et al. 2021, Jurassic-1: Technical Details and Evaluation",
        source="white paper Table 1", vocab_size=256000, tokenizer="SentencePiece, 256k multi-word vocabulary",
        attn_pattern=("global",), window=None, window_published=True,
        notes="Architecture otherwise follows GPT-3 (the paper describes only depth, width and heads).")
sizes(_j1, [
    ("jurassic1-large", 4096, 32, 32, 16384, 7.5e9, ("jurassic1-7.5b",), False),
    ("jurassic1-jumbo", 13824, 76, 96, 55296, 178e9, ("jurassic1", "jurassic1-178b", "j1-jumbo"), True),
], ("name", "d_model", "n_layers", "n_heads", "d_ff", "published_params", "aliases", "flagship"))

# ---------------------------------------------------------------------------------- MT-NLG
add(_j1, name="mtnlg-530b", family="mtnlg", year=2022,
    paper="Smith et al. 2022, Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B",
    source="paper §3.1 (105 layers, 20480 hidden, 128 heads, 2048 sequence)",
    d_model=20480, n_layers=105, n_heads=128, d_ff=81920, vocab_size=51200, train_tokens=270e9,
    tokenizer="GPT-2 BPE (50,257, padded to 51,200 rows)", published_params=530e9,
    aliases=("mtnlg", "mt-nlg", "megatron-turing-nlg"), flagship=True,
    field_sources=(("vocab_size", "Megatron-LM pads 50,257 to a multiple of 128 x tensor-parallel 8"),),
    notes="GPT-3-style decoder.")

# ------------------------------------------------------------------------------------ Gopher
_gopher = Arch(
    name="", family="gopher", year=2021,
    paper="Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
    source="paper Table 1", d_model=0, n_layers=0, n_heads=0, d_ff=0, vocab_size=32000, ctx_len=2048,
    norm="rmsnorm", norm_bias=False, norm_eps=1e-6, norm_placement="pre", final_norm=True,
    # Transformer-XL relative positions: a projection W_r of the sinusoidal relative encodings per
    # layer (+ biases u, v): ~13 d^2 per layer instead of 12 d^2. Needed to reproduce Table 1.
    positions="xl_relative", mlp="gelu", bias="all", tied_embeddings=True,
    train_tokens=300e9, optimizer="Adam", tokenizer="SentencePiece (32k)",
    notes="MLP activation and biases are not stated in the paper (GELU and biases as in Transformer-XL assumed).",
)
sizes(_gopher, [
    ("gopher-44m", 512, 8, 16, 32, 44e6, (), False),
    ("gopher-117m", 768, 12, 12, 64, 117e6, (), False),
    ("gopher-417m", 1536, 12, 12, 128, 417e6, (), False),
    ("gopher-1.4b", 2048, 24, 16, 128, 1.4e9, (), False),
    ("gopher-7.1b", 4096, 32, 32, 128, 7.1e9, (), False),
    ("gopher-280b", 16384, 80, 128, 128, 280e9, ("gopher",), True),
], ("name", "d_model", "n_layers", "n_heads", "head_dim", "published_params", "aliases", "flagship"))
ENTRIES[:] = [R(e, d_ff=4 * e.d_model) if e.family == "gopher" else e for e in ENTRIES]

add(_gopher, name="chinchilla-70b", family="chinchilla", year=2022,
    paper="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models",
    source="paper Table 4 (80 layers, 64 heads, key/value size 128, d_model 8192)",
    d_model=8192, n_layers=80, n_heads=64, head_dim=128, d_ff=32768, train_tokens=1.4e12,
    optimizer="AdamW", published_params=70e9, aliases=("chinchilla",), flagship=True,
    tokenizer="SentencePiece (32k, no NFKC normalisation)")

# -------------------------------------------------------------------------------------- PaLM
_palm = Arch(
    name="", family="palm", year=2022,
    paper="Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways",
    source="paper Table 1", d_model=0, n_layers=0, n_heads=0, d_ff=0, vocab_size=256000, ctx_len=2048,
    norm="layernorm", norm_bias=False, norm_eps=1e-6,  # no biases anywhere, LayerNorm scale only
    norm_placement="pre", parallel_block=True,  # x + Attn(LN(x)) + MLP(LN(x)), one shared LN
    positions="rope", mlp="swiglu", bias="none", tied_embeddings=True,
    output_scale=True,  # shared embeddings: pre-softmax logits scaled by 1/sqrt(d) (§5, weight initialization)
    n_kv_heads=1, head_dim=256,  # multi-query attention, head size 256
    train_tokens=780e9, optimizer="Adafactor (no factorisation)", tokenizer="SentencePiece (256k)",
    field_sources=(("output_scale", "paper §5: input embeddings N(0, 1); since they are shared, the pre-softmax "
                                    "output logits are scaled by 1/sqrt(n), n the embedding size"),),
)
sizes(_palm, [
    ("palm-8b", 4096, 32, 16, 16384, 8.63e9, (), False),
    ("palm-62b", 8192, 64, 32, 32768, 62.50e9, (), False),
    # 48 heads x 256 = 12288 != d_model 18432: the head width is explicit, not d_model / n_heads
    ("palm-540b", 18432, 118, 48, 73728, 540.35e9, ("palm",), True),
], ("name", "d_model", "n_layers", "n_heads", "d_ff", "published_params", "aliases", "flagship"))

# ------------------------------------------------------------------------------------- LLaMA
_llama = Arch(
    name="", family="llama", year=2023,
    paper="Touvron et al. 2023, LLaMA: Open and Efficient Foundation Language Models",
    source="paper Table 2; HF huggyllama/llama-{7b,13b,30b,65b} config.json",
    d_model=0, n_layers=0, n_heads=0, d_ff=0, vocab_size=32000, ctx_len=2048,
    norm="rmsnorm", norm_bias=False, norm_eps=1e-6, norm_placement="pre", final_norm=True,
    positions="rope", rope_theta=10000.0, mlp="swiglu", bias="none", tied_embeddings=False,
    optimizer="AdamW (0.9, 0.95, wd 0.1)", tokenizer="SentencePiece BPE (32k)",
)
# FFN width = 256 * ceil(int(8d/3) / 256): 11008, 13824, 17920, 22016 (holds for LLaMA 1 only,
# and Llama 2 7B/13B); written out rather than computed.
sizes(_llama, [
    ("llama-7b", 4096, 32, 32, 11008, 1.0e12, 6.7e9, (), False),
    ("llama-13b", 5120, 40, 40, 13824, 1.0e12, 13.0e9, (), False),
    ("llama-33b", 6656, 60, 52, 17920, 1.4e12, 32.5e9, ("llama-30b",), False),  # "30b" in released checkpoints
    ("llama-65b", 8192, 80, 64, 22016, 1.4e12, 65.2e9, ("llama", "llama1"), True),
], ("name", "d_model", "n_layers", "n_heads", "d_ff", "train_tokens", "published_params", "aliases", "flagship"))

_llama2 = R(_llama, family="llama2", year=2023,
            paper="Touvron et al. 2023, Llama 2: Open Foundation and Fine-Tuned Chat Models",
            source="paper Table 1; HF meta-llama/Llama-2-{7b,13b,70b}-hf config.json",
            ctx_len=4096, norm_eps=1e-5, train_tokens=2.0e12)
sizes(_llama2, [
    ("llama2-7b", 4096, 32, 32, None, 11008, 7e9, (), False, _llama2.source),
    ("llama2-13b", 5120, 40, 40, None, 13824, 13e9, (), False, _llama2.source),
    # 34B was never released; its shape is Code Llama 34B's (same architecture, GQA 8)
    ("llama2-34b", 8192, 48, 64, 8, 22016, 34e9, (), False,
     "paper Table 1 (GQA); shape from HF codellama/CodeLlama-34b-hf config.json (34B itself unreleased)"),
    # Llama 2 70B: int(8d/3) * 1.3 rounded up to a multiple of 4096 = 28672
    ("llama2-70b", 8192, 80, 64, 8, 28672, 70e9, ("llama2", "llama-2"), True, _llama2.source),
], ("name", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "published_params", "aliases", "flagship", "source"))

_llama3 = R(_llama2, family="llama3", year=2024,
            paper="Llama Team 2024, The Llama 3 Herd of Models",
            source="HF meta-llama/Meta-Llama-3-{8B,70B} config.json",
            vocab_size=128256, ctx_len=8192, rope_theta=500000.0,  # theta 500k (Llama 2: 10k)
            train_tokens=15e12, tokenizer="tiktoken BPE (128k)", n_kv_heads=8)
sizes(_llama3, [
    ("llama3-8b", 4096, 32, 32, 14336, 8e9, (), False),  # 8d/3*1.3 -> multiple of 1024
    ("llama3-70b", 8192, 80, 64, 28672, 70e9, ("llama3", "llama-3"), True),
], ("name", "d_model", "n_layers", "n_heads", "d_ff", "published_params", "aliases", "flagship"))

_llama31 = R(_llama3, family="llama3.1", year=2024,
             source="paper Table 3; HF meta-llama/Llama-3.1-{8B,70B,405B} config.json",
             ctx_len=131072, rope_scaling=RopeScaling(8.0, 1.0, 4.0, 8192))
sizes(_llama31, [
    ("llama3.1-8b", 4096, 32, 32, 14336, 15e12, 8e9, (), False),
    ("llama3.1-70b", 8192, 80, 64, 28672, 15e12, 70e9, (), False),
    # 8 KV heads (an early config with 16 duplicated them); FFN 8d/3*1.2 -> multiple of 4096 = 53248
    ("llama3.1-405b", 16384, 126, 128, 53248, 15.6e12, 405e9, ("llama3.1", "llama-3.1"), True),
], ("name", "d_model", "n_layers", "n_heads", "d_ff", "train_tokens", "published_params", "aliases", "flagship"))

# ------------------------------------------------------------------------------------ Mixtral
add(_llama2, name="mixtral-8x7b", family="mixtral", year=2024,
    paper="Jiang et al. 2024, Mixtral of Experts",
    source="paper Table 1; HF mistralai/Mixtral-8x7B-v0.1 config.json",
    d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=32000, ctx_len=32768,
    rope_theta=1e6, norm_eps=1e-5,
    # every layer MoE: softmax over 8 experts -> top-2 -> renormalise; no sliding window
    moe=MoE(n_experts=8, top_k=2, d_ff_expert=14336, renormalize=True),
    train_tokens=None, optimizer="not published", published_params=46.7e9,
    aliases=("mixtral",), flagship=True, notes="Training data and token count not published.")

# ------------------------------------------------------------------------------------ Gemma 2
_gemma2 = Arch(
    name="", family="gemma2", year=2024, paper="Gemma Team 2024, Gemma 2: Improving Open Language Models at a Practical Size",
    source="paper Table 1; HF google/gemma-2-{2b,9b,27b} config.json",
    d_model=0, n_layers=0, n_heads=0, d_ff=0, vocab_size=256000,  # paper says 256,128; checkpoint has 256,000 rows
    ctx_len=8192,
    norm="rmsnorm_1p", norm_bias=False, norm_eps=1e-6, norm_placement="sandwich", final_norm=True,
    positions="rope", rope_theta=10000.0, attn_pattern=("local", "global"), window=4096,  # layer 0 local
    attn_softcap=50.0, final_softcap=30.0, mlp="geglu", bias="none", tied_embeddings=True, embed_scale=True,
    optimizer="not published", tokenizer="SentencePiece (256k)",
    notes="The paper's 'feedforward dim' is twice the per-branch GeGLU width written here.",
)
sizes(_gemma2, [
    ("gemma2-2b", 2304, 26, 8, 4, 256, 9216, None, 2e12, 2.6e9, (), False),
    ("gemma2-9b", 3584, 42, 16, 8, 256, 14336, None, 8e12, 9.2e9, (), False),
    # 27B: head_dim 128 but queries scaled by (d_model/n_heads)^-0.5 = 144^-0.5
    ("gemma2-27b", 4608, 46, 32, 16, 128, 36864, 144 ** -0.5, 13e12, 27.2e9, ("gemma2", "gemma-2"), True),
], ("name", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "query_scale", "train_tokens",
    "published_params", "aliases", "flagship"))

# -------------------------------------------------------------------------------------- Qwen2
_qwen2 = R(_llama, family="qwen2", year=2024, paper="Yang et al. 2024, Qwen2 Technical Report",
           source="paper Table 1; HF Qwen/Qwen2-{0.5B,1.5B,7B,72B,57B-A14B} config.json",
           bias="qkv",  # biases on q, k, v only
           rope_theta=1e6, norm_eps=1e-6, ctx_len=32768, optimizer="AdamW",
           tokenizer="byte-level BPE (151,643 + 3 control)")
sizes(_qwen2, [
    # vocabulary rows: 151,936 (0.5B/1.5B/57B) vs 152,064 (7B/72B); tied only at 0.5B and 1.5B
    ("qwen2-0.5b", 896, 24, 14, 2, 4864, 151936, True, 12e12, 0.49e9, (), False),
    ("qwen2-1.5b", 1536, 28, 12, 2, 8960, 151936, True, 7e12, 1.5e9, (), False),
    ("qwen2-7b", 3584, 28, 28, 4, 18944, 152064, False, 7e12, 7.6e9, (), False),
    ("qwen2-72b", 8192, 80, 64, 8, 29568, 152064, False, 7e12, 72.7e9, ("qwen2",), True),
], ("name", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "tied_embeddings",
    "train_tokens", "published_params", "aliases", "flagship"))
add(_qwen2, name="qwen2-57b-a14b", d_model=3584, n_layers=28, n_heads=28, n_kv_heads=4, d_ff=2560,
    vocab_size=151936, tied_embeddings=False, train_tokens=4.5e12, published_params=57.4e9,
    # 64 routed experts of width 2560, top-8 WITHOUT renormalisation, plus one shared expert of
    # width 20480 (= 8 x 2560) behind a sigmoid gate
    moe=MoE(n_experts=64, top_k=8, d_ff_expert=2560, renormalize=False, d_ff_shared=20480, shared_gate=True),
    aliases=("qwen2-moe",),
    notes="Upcycled from Qwen2-7B-style dense weights; trained on 4.5T additional tokens.")

# ---------------------------------------------------------------------------------------- AFM
add(_llama3, name="afm-on-device", family="afm", year=2024,
    paper="Gunter et al. 2024, Apple Intelligence Foundation Language Models",
    source="paper §2 table (d 3072, head 128, 24 query / 8 KV heads, 26 layers, 2.58B non-embedding, 0.15B embedding)",
    d_model=3072, n_layers=26, n_heads=24, n_kv_heads=8, d_ff=8064, vocab_size=49152, ctx_len=4096,
    qk_norm=True, tied_embeddings=True, rope_theta=500000.0, train_tokens=7.4e12,
    optimizer="decoupled AdamW (0.9, 0.95)", tokenizer="BPE (49k)", published_params=2.73e9,
    aliases=("afm", "afm-3b"), flagship=True,
    field_sources=(
        ("d_ff", "not published: 8064 (a multiple of 128) is the width nearest the stated 2.58B non-embedding parameters"),
        ("vocab_size", "paper: 49k vocabulary (0.15B embedding params / 3072 = 48.8k rows); 49,152 assumed"),
        ("train_tokens", "paper §3: 6.3T core + 1T continued + 100B context-lengthening"),
    ),
    notes="FFN width not published (chosen to match the stated non-embedding count).")
add(Arch(
    name="afm-server", family="afm", year=2024, paper="Gunter et al. 2024, Apple Intelligence Foundation Language Models",
    source="paper (server model size and shape undisclosed)",
    d_model=None, n_layers=None, n_heads=None, d_ff=None, vocab_size=100352, ctx_len=4096, shape_known=False,
    train_tokens=7.4e12, optimizer="decoupled AdamW", tokenizer="BPE (100k)",
    notes="Known: same design as AFM-on-device (RMSNorm, GQA 8 KV heads, SwiGLU, RoPE, tied embeddings, "
          "qk-norm), 100k vocabulary, 6.3T + 1T + 100B tokens. Unknown: parameters and shape.",
))

# ----------------------------------------------------------------------------------------- T5
_t5 = Arch(
    name="", family="t5", year=2020,
    paper="Raffel et al. 2020, Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer",
    source="paper §3.7; HF google-t5/t5-{small,base,large,3b,11b} config.json",
    d_model=0, n_layers=0, n_heads=0, d_ff=0, vocab_size=32128, ctx_len=512,  # 32,128 rows (32k + padding)
    norm="rmsnorm", norm_bias=False, norm_eps=1e-6,  # "layer norm" with scale only, no mean subtraction
    norm_placement="pre", final_norm=True, positions="t5_bias", rel_buckets=32, rel_max_distance=128,
    query_scale=1.0,  # no 1/sqrt(d_kv): folded into the initialisation
    mlp="relu", bias="none", tied_embeddings=True, output_scale=True,  # tied head on h * d^-0.5
    train_tokens=2**35, optimizer="Adafactor", tokenizer="SentencePiece (32k)",
    notes="Encoder-decoder; pre-trained 2^19 steps x 2^16 tokens = 34B tokens with span corruption.",
)
sizes(_t5, [
    ("t5-small", 512, 6, 8, None, 2048, 60e6, (), False),
    ("t5-base", 768, 12, 12, None, 3072, 220e6, (), False),
    ("t5-large", 1024, 24, 16, None, 4096, 770e6, (), False),  # paper's 770M counts an untied head
    ("t5-3b", 1024, 24, 32, 128, 16384, 3e9, (), False),  # 3B/11B keep d_model 1024
    ("t5-11b", 1024, 24, 128, 128, 65536, 11e9, ("t5",), True),
], ("name", "d_model", "n_layers", "n_heads", "head_dim", "d_ff", "published_params", "aliases", "flagship"))
ENTRIES[:] = [R(e, n_enc_layers=e.n_layers) if e.family == "t5" else e for e in ENTRIES]


# ------------------------------------------------------------------------------------ lookup
BY_NAME: dict[str, Arch] = {}
for _e in ENTRIES:
    assert _e.name and _e.name not in BY_NAME, _e.name
    BY_NAME[_e.name] = _e
ALIASES: dict[str, str] = {}
for _e in ENTRIES:
    for _a in _e.aliases:
        assert _a not in BY_NAME and _a not in ALIASES, _a
        ALIASES[_a] = _e.name
FAMILIES: list[str] = list(dict.fromkeys(e.family for e in ENTRIES))
# The entry whose proportions a family keeps at custom sizes: its flagship unless that one's
# proportions are extreme (T5-11B's d_ff = 64 d; PaLM-540B's attention narrower than d_model).
TEMPLATE = {"t5": "t5-base", "palm": "palm-8b"}


class UnknownArch(UserError, KeyError):
    def __init__(self, name: str, suggestions: list[str]):
        self.name, self.suggestions = name, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown architecture {name!r}{hint} (`llmhist archs` lists them)")

    def __str__(self) -> str:
        return self.args[0]


def get(name: str) -> Arch:
    """Look up an entry by name or alias (case-insensitive); the bare family name is its flagship."""
    key = name.strip().lower()
    if key in BY_NAME:
        return BY_NAME[key]
    if key in ALIASES:
        return BY_NAME[ALIASES[key]]
    flag = [e for e in ENTRIES if e.family == key and e.flagship]
    if flag:
        return flag[0]
    pool = list(dict.fromkeys(list(BY_NAME) + list(ALIASES) + FAMILIES))
    matches = difflib.get_close_matches(key, pool, n=8, cutoff=0.5)
    # show each entry once, under its canonical name
    canon = list(dict.fromkeys(BY_NAME.get(m, None) and m or ALIASES.get(m, m) for m in matches))
    raise UnknownArch(name, canon[:4])


def template(family_or_name: str) -> Arch:
    a = get(family_or_name)
    fam = a.family
    if fam in TEMPLATE:
        return BY_NAME[TEMPLATE[fam]]
    if not a.shape_known:
        a.check()  # raises the "never published" message
    return a if a.name.lower() == family_or_name.lower() else get(fam)


def build_spec(
    arch: str,
    size: str | None = None,
    *,
    d_model: int | None = None,
    n_layers: int | None = None,
    n_heads: int | None = None,
    **kw,
) -> Arch:
    """Resolve a CLI-style request: a registry name, a named small size, or an explicit shape."""
    shape = (d_model, n_layers, n_heads)
    if size and any(shape):
        raise SpecError("give either --size or an explicit shape (--d-model/--n-layers/--n-heads), not both")
    if size:
        if size.lower() in [n.lower() for n in BY_NAME] + list(ALIASES):
            return get(size).require_shape()
        return small(template(arch), size.lower(), **kw)
    if any(shape):
        if not all(shape):
            raise SpecError("an explicit shape needs all of --d-model, --n-layers and --n-heads")
        return resize(template(arch), d_model, n_layers, n_heads, **kw)
    return get(arch).require_shape()
