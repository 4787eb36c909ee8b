"""Every historical model, one catalogue entry per published size, with a source for every value.

A family base holds the choices its members share (each with its source), its recipe and the
entry whose proportions the family keeps at custom sizes; a size table lists its members as
keyword rows. A family derived from another re-sources every value it inherits, so a value is
never credited to a paper that does not state it. Values a paper does not give are written with
"assumed: <reason>". Traps worth knowing are commented where they bite.

API: get(name) -> catalogue.Entry (name, alias or family; .arch is the buildable spec.Arch or None
where the shape was never published); arch(name) -> Arch (SpecError if unpublished);
template(family_or_name) -> Arch; build_spec(...) -> Arch; ENTRIES: list[Entry].
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, replace

from ..core.errors import UserError
from .catalogue import ASSUMED, Entry, Recipe, objective_for
from .recipes import SWITCH_AUX
from .spec import MLA, Arch, MoE, RopeScaling, SpecError, resize, small

ARCH_FIELDS = frozenset(f.name for f in fields(Arch))
ENTRY_FIELDS = frozenset(f.name for f in fields(Entry))


def S(groups: dict[str, str]) -> dict[str, str]:
    """Expand {"a b c": source} into {"a": source, "b": source, "c": source}."""
    return {k: v for ks, v in groups.items() for k in ks.split()}


def A(reason: str) -> str:
    """The source of an assumed value."""
    return ASSUMED + reason


@dataclass
class Family:
    """What a family's members share: choices and catalogue facts (with sources), recipe, template."""

    family: str
    year: int
    paper: str
    arch: dict = field(default_factory=dict)  # Arch keyword values
    cat: dict = field(default_factory=dict)  # Entry keyword values (train_tokens, optimizer, ...)
    src: dict = field(default_factory=dict)  # value -> source
    recipe: Recipe | None = None
    template: str | None = None  # the member whose proportions the family keeps at custom sizes

    def derive(self, family: str | None = None, *, src: dict | None = None, recipe: Recipe | None = None,
               template: str | None = None, year: int | None = None, paper: str | None = None, **kw) -> Family:
        arch = dict(self.arch)
        cat = dict(self.cat)
        for k, v in kw.items():
            (arch if k in ARCH_FIELDS else cat)[k] = v
        return Family(family or self.family, year or self.year, paper or self.paper, arch, cat,
                      {**self.src, **(src or {})}, recipe or self.recipe, template)


ENTRIES: list[Entry] = []
FAMILY_TEMPLATE: dict[str, str] = {}  # family -> the entry its custom sizes keep the proportions of


def add(fam: Family, name: str, *, src: dict | None = None, recipe: Recipe | None = None,
        template: str | None = None, shape: bool = True, **kw) -> Entry:
    """One published model: the family's values overridden by this row's (each with its source)."""
    arch_kw = {**fam.arch, **{k: v for k, v in kw.items() if k in ARCH_FIELDS}}
    cat_kw = {**fam.cat, **{k: v for k, v in kw.items() if k in ENTRY_FIELDS}}
    year, paper = cat_kw.pop("year", fam.year), cat_kw.pop("paper", fam.paper)
    unknown = set(kw) - ARCH_FIELDS - ENTRY_FIELDS
    assert not unknown, (name, unknown)
    sources = {**fam.src, **(src or {})}
    a = None
    if shape:
        arch_kw.setdefault("n_kv_heads", arch_kw["n_heads"])
        arch_kw.setdefault("head_dim", arch_kw["d_model"] // arch_kw["n_heads"])
        a = Arch(name=name, family=fam.family, **arch_kw)
    r = recipe or fam.recipe
    assert r is not None, name
    if a is not None and r.objective != objective_for(a):
        r = replace(r, objective=objective_for(a))
    e = Entry(name=name, family=fam.family, year=year, paper=paper, arch=a, sources=sources, recipe=r,
              template=template or name, **cat_kw)
    ENTRIES.append(e)
    if fam.template:
        FAMILY_TEMPLATE.setdefault(fam.family, fam.template)
    return e


# ================================================================================== recipes
# Each field with its source; peak learning rate and warmup are scaled for small runs (recipes.py).
SMALL_RUN = S({"warmup_frac": A("published warmups (375M tokens, 2,000 steps) exceed a whole small run; "
                                "2% of the steps"),
               "embed_std": A("N(0, 0.02) as the other weights, where the paper gives no embedding init")})
GPT1_RECIPE = Recipe(
    optimizer="adam", betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, grad_clip=None, min_lr_ratio=0.0,
    init="normal02", schedule="cosine",
    sources={**SMALL_RUN, **S({
        "optimizer schedule min_lr_ratio": "GPT-1 §4.1: Adam, cosine annealing to 0",
        "betas eps": A("Adam's defaults (0.9, 0.999, 1e-8); GPT-1 §4.1 gives none"),
        "weight_decay": "GPT-1 §4.1: modified L2 regularisation, w = 0.01",
        "grad_clip": A("none; GPT-1 §4.1 states no clipping"),
        "init": "GPT-1 §4.1: N(0, 0.02)",
        "z_loss aux_loss": "GPT-1 §4.1: cross-entropy only"})},
)
GPT2_RECIPE = GPT1_RECIPE.with_(
    init="gpt2_scaled", grad_clip=None,
    sources=S({"init": "GPT-2 §2.3: residual-layer weights scaled by 1/sqrt(N) at initialisation",
               "optimizer betas eps weight_decay": A("GPT-1's (GPT-2 §2.3 describes only init and norm changes)"),
               "grad_clip": A("none, as GPT-1"), "schedule min_lr_ratio": A("GPT-1's cosine to 0"),
               "z_loss aux_loss": "GPT-2 §2: language modelling, cross-entropy only"}),
)
GPT3_RECIPE = Recipe(
    optimizer="adam", betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1,
    init="gpt2_scaled", schedule="cosine",
    sources={**SMALL_RUN, **S({
        "optimizer betas eps": "GPT-3 App. B: Adam with beta1 0.9, beta2 0.95, eps 1e-8",
        "grad_clip": "GPT-3 App. B: global norm clipped at 1.0",
        "schedule min_lr_ratio": "GPT-3 App. B: cosine decay to 10% of the peak",
        "weight_decay": "GPT-3 App. B: weight decay 0.1",
        "init": "GPT-3 §2.1: GPT-2's modified initialisation",
        "z_loss aux_loss": "GPT-3 App. B: cross-entropy only"})},
)
LLAMA_RECIPE = Recipe(
    optimizer="adamw", betas=(0.9, 0.95), eps=1e-5, weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1,
    init="normal02", schedule="cosine",
    sources={**SMALL_RUN, **S({
        "optimizer betas": "LLaMA §2.2: AdamW, beta1 0.9, beta2 0.95",
        "eps": "Llama 2 §2.2: eps 1e-5",
        "weight_decay grad_clip": "LLaMA §2.2: weight decay 0.1, gradient clipping 1.0",
        "schedule min_lr_ratio": "LLaMA §2.2: cosine schedule, final learning rate 10% of the maximum",
        "init": A("N(0, 0.02) (initializer_range of the released config.json); the paper gives none"),
        "z_loss aux_loss": "LLaMA §2.2: cross-entropy only"})},
)


def _inherit(r: Recipe, why: str, **changes) -> Recipe:
    """Another family's recipe, every field re-sourced as an assumption `why` unless changed."""
    srcs = {k: A(why) for k in r.sources if k not in ("warmup_frac", "embed_std")}
    srcs.update(changes.pop("sources", {}))
    return replace(r, sources={**r.sources, **srcs}, **changes)

# ==================================================================================== GPT-1
_gpt1 = Family(
    "gpt1", 2018, "Radford et al. 2018, Improving Language Understanding by Generative Pre-Training",
    arch={"norm": "layernorm", "norm_bias": True, "norm_eps": 1e-5, "norm_placement": "post", "final_norm": False,
          "positions": "learned", "mlp": "gelu_tanh", "bias": "all", "tied_embeddings": True},
    cat={"optimizer": "Adam", "tokenizer": "BPE (40k merges, ftfy/spaCy pre-tokenised)", "train_ctx_len": 512,
         "notes": "BooksCorpus, 100 epochs of 64x512-token minibatches; no token count was reported."},
    src=S({"d_model n_layers n_heads d_ff ctx_len": "GPT-1 §4.1: 12 layers, 768-d states, 12 heads, 3072-d "
                                                    "inner states, 512-token sequences",
           "n_kv_heads head_dim": "GPT-1 §4.1: 12 masked self-attention heads of 768 / 12 (multi-head)",
           "vocab_size": "HF openai-community/openai-gpt config.json (vocab_size 40478)",
           "norm norm_bias norm_placement final_norm": "GPT-1 §3.1 / the original Transformer: LayerNorm(x + f(x)) "
                                                       "after each sub-layer, none at the end",
           "norm_eps": "HF openai-community/openai-gpt config.json (layer_norm_epsilon 1e-5)",
           "positions": "GPT-1 §4.1: learned position embeddings",
           "mlp": "GPT-1 §4.1: GELU (OpenAI's code and HF openai-gpt use the tanh approximation, gelu_new)",
           "bias": "HF openai-community/openai-gpt (Conv1D layers with biases)",
           "tied_embeddings": "GPT-1 §3.1 eq. 2: the output is h W_e^T (tied)",
           "train_ctx_len": "GPT-1 §4.1: 512-token sequences",
           "optimizer": "GPT-1 §4.1: Adam", "tokenizer": "GPT-1 §4.1: BPE with 40,000 merges"}),
    recipe=GPT1_RECIPE,
)
add(_gpt1, "gpt1-117m", d_model=768, n_layers=12, n_heads=12, d_ff=3072, vocab_size=40478, ctx_len=512,
    published_params=117e6, flagship=True, aliases=("gpt1", "gpt-1", "openai-gpt"),
    src={"published_params": "GPT-2 paper Table 2: 117M for the smallest model, 'equivalent to the original GPT' "
                             "(the GPT-1 paper prints no count)"})

# ==================================================================================== GPT-2
_gpt2 = _gpt1.derive(
    "gpt2", year=2019, paper="Radford et al. 2019, Language Models are Unsupervised Multitask Learners",
    norm_placement="pre", final_norm=True, vocab_size=50257, ctx_len=1024,
    tokenizer="byte-level BPE (50,257)", train_ctx_len=1024,
    notes="WebText (40 GB); no token count was reported. The paper's 117M/345M/762M/1542M understate the real sizes.",
    src=S({"d_model n_layers": "GPT-2 Table 2 (layers, d_model)",
           "n_heads n_kv_heads head_dim d_ff": "HF openai-community/gpt2{,-medium,-large,-xl} config.json "
                                               "(n_head; n_inner = 4 d_model); multi-head",
           "vocab_size ctx_len": "GPT-2 §2.3: vocabulary 50,257, context 1024 tokens",
           "norm norm_bias norm_placement final_norm": "GPT-2 §2.3: LayerNorm moved to each sub-block's input, "
                                                       "an additional LayerNorm after the final block",
           "norm_eps bias": "HF openai-community/gpt2 config.json (layer_norm_epsilon 1e-5; Conv1D with biases)",
           "positions mlp tied_embeddings": "GPT-2 §2.3: GPT-1's model otherwise (learned positions, GELU, tied "
                                            "output); HF gpt2 uses gelu_new",
           "train_ctx_len": "GPT-2 §2.3: context 1024 tokens", "optimizer": A("GPT-1's Adam; GPT-2 gives none"),
           "tokenizer": "GPT-2 §2.2: byte-level BPE, 50,257 tokens",
           "published_params": "GPT-2 Table 2"}),
    recipe=GPT2_RECIPE, template="gpt2-1.5b",
)
add(_gpt2, name="gpt2-124m", d_model=768, n_layers=12, n_heads=12, d_ff=3072, published_params=117e6,
    aliases=("gpt2-small",))
add(_gpt2, name="gpt2-355m", d_model=1024, n_layers=24, n_heads=16, d_ff=4096, published_params=345e6,
    aliases=("gpt2-medium",))
add(_gpt2, name="gpt2-774m", d_model=1280, n_layers=36, n_heads=20, d_ff=5120, published_params=762e6,
    aliases=("gpt2-large",))
add(_gpt2, name="gpt2-1.5b", d_model=1600, n_layers=48, n_heads=25, d_ff=6400, published_params=1542e6,
    aliases=("gpt2", "gpt2-xl", "gpt-2"), flagship=True)

# ==================================================================================== GPT-3
_GPT3_SAME = "GPT-3 §2.1: 'the same model and architecture as GPT-2' (pre-norm LayerNorm, learned positions, GELU, tied)"
_gpt3 = _gpt2.derive(
    "gpt3", year=2020, paper="Brown et al. 2020, Language Models are Few-Shot Learners",
    ctx_len=2048, train_ctx_len=2048, train_tokens=300e9, optimizer="Adam (beta2 0.95)",
    tokenizer="GPT-2 byte-level BPE (50,257)",
    # "alternating dense and locally banded sparse attention patterns in the layers": adds no
    # parameters; the band width was never published, so it is a setting here.
    attn_pattern=("global", "local"), window=256,
    notes="Table 2.1 is inconsistent for XL (24 heads x 128 != 2048) and 13B (5140 != 40 x 128): the published "
          "sizes come out with attention width = d_model. The band width of the sparse layers was never "
          "published (256 is this tool's assumption; it lowers the KV cache).",
    src=S({"d_model n_layers n_heads head_dim": "GPT-3 Table 2.1 (d_model, n_layers, n_heads, d_head)",
           "n_kv_heads": "GPT-3 §2.1: GPT-2's multi-head attention",
           "d_ff": "GPT-3 §2.1: 'the size of the feedforward layer is always four times the bottleneck layer'",
           "ctx_len train_ctx_len": "GPT-3 §2.1: context window of n_ctx = 2048 tokens",
           "vocab_size tokenizer": "GPT-3 §2.1/§2.2: GPT-2's byte-level BPE (50,257)",
           "norm norm_bias norm_placement final_norm norm_eps positions mlp bias tied_embeddings": _GPT3_SAME,
           "attn_pattern": "GPT-3 §2.1: 'alternating dense and locally banded sparse attention patterns'",
           "window": A("the band width was never published (GPT-3 §2.1 cites the Sparse Transformer); 256 is "
                       "this tool's setting"),
           "train_tokens": "GPT-3 Table 2.1 / §2.2: 300B training tokens",
           "optimizer": "GPT-3 App. B: Adam (0.9, 0.95)", "published_params": "GPT-3 Table 2.1 (n_params)"}),
    recipe=GPT3_RECIPE, template="gpt3-175b",
)
add(_gpt3, name="gpt3-125m", d_model=768, n_layers=12, n_heads=12, head_dim=64, d_ff=3072, published_params=125e6,
    aliases=("gpt3-small",))
add(_gpt3, name="gpt3-350m", d_model=1024, n_layers=24, n_heads=16, head_dim=64, d_ff=4096, published_params=350e6,
    aliases=("gpt3-medium",))
add(_gpt3, name="gpt3-760m", d_model=1536, n_layers=24, n_heads=16, head_dim=96, d_ff=6144, published_params=760e6,
    aliases=("gpt3-large",))
# 24 x 128 != 2048: the published 1.3B needs attention width d_model
add(_gpt3, name="gpt3-1.3b", d_model=2048, n_layers=24, n_heads=24, head_dim=128, attn_width="d_model", d_ff=8192,
    published_params=1.3e9, aliases=("gpt3-xl",),
    src={"attn_width": A("Table 2.1's 24 heads x 128 != d_model 2048; width d_model reproduces its 1.3B")})
add(_gpt3, name="gpt3-2.7b", d_model=2560, n_layers=32, n_heads=32, head_dim=80, d_ff=10240, published_params=2.7e9)
add(_gpt3, name="gpt3-6.7b", d_model=4096, n_layers=32, n_heads=32, head_dim=128, d_ff=16384, published_params=6.7e9)
add(_gpt3, name="gpt3-13b", d_model=5140, n_layers=40, n_heads=40, head_dim=128, attn_width="d_model", d_ff=20560,
    published_params=13.0e9,
    src={"attn_width": A("Table 2.1's 40 heads x 128 != d_model 5140; width d_model reproduces its 13B")})
add(_gpt3, name="gpt3-175b", d_model=12288, n_layers=96, n_heads=96, head_dim=128, d_ff=49152, published_params=175e9,
    aliases=("gpt3", "gpt-3", "davinci"), flagship=True)

_codex = Family("codex", 2021, "Chen et al. 2021, Evaluating Large Language Models Trained on Code",
                recipe=_inherit(GPT3_RECIPE, "Codex §3.2: fine-tuned with GPT-3's settings (Adam, 0.9/0.95, "
                                             "wd 0.1, cosine)"))
add(_codex, "codex-12b", shape=False, published_params=12e9, optimizer="Adam", train_tokens=100e9,
    tokenizer="GPT-3 BPE plus whitespace tokens", flagship=True, aliases=("codex",), known={"ctx_len": 4096},
    src={"published_params": "Codex §3: a 12B-parameter GPT model", "optimizer": "Codex §3.2: Adam",
         "train_tokens": "Codex §3.2: fine-tuned for 100B tokens on 159 GB of Python",
         "tokenizer": "Codex §3.2: GPT-3's tokenizer with added whitespace tokens",
         "ctx_len": "Codex §3.2 / OpenAI API: 4,096-token context"},
    notes="Known: GPT-3 family, 12B parameters, 4,096-token context, fine-tuned on 159 GB of GitHub Python. "
          "Unknown: its exact shape (the 12B GPT-3 is not in Table 2.1).")

_gpt4 = Family("gpt4", 2023, "OpenAI 2023, GPT-4 Technical Report",
               recipe=_inherit(GPT3_RECIPE, "GPT-4's recipe was never published; GPT-3's shown"))
add(_gpt4, "gpt4", shape=False, tokenizer="cl100k_base BPE", flagship=True, aliases=("gpt-4",),
    known={"ctx_len": 8192},
    src={"ctx_len": "technical report: 8,192 and 32,768-token versions",
         "optimizer": "technical report: withholds the training method",
         "tokenizer": "OpenAI tiktoken: cl100k_base is GPT-4's encoding"},
    notes="Known: a Transformer-style pre-trained model; 8k and 32k context. Unknown: parameters, shape, "
          "training tokens, compute (the report withholds them).")

# =============================================================================== Jurassic-1
_j1 = _gpt3.derive(
    "jurassic1", year=2021, paper="Lieber et al. 2021, Jurassic-1: Technical Details and Evaluation",
    vocab_size=256000, tokenizer="SentencePiece, 256k multi-word vocabulary", attn_pattern=("global",), window=None,
    train_tokens=300e9,
    notes="Architecture otherwise follows GPT-3 (the paper describes only depth, width and heads).",
    src=S({"d_model n_layers n_heads": "Jurassic-1 white paper Table 1",
           "head_dim n_kv_heads": "Jurassic-1 Table 1: d_model / n_heads, multi-head",
           "d_ff": A("4 d_model as GPT-3; Jurassic-1 does not print it"),
           "vocab_size tokenizer": "Jurassic-1 §2.1: a 256K-entry SentencePiece vocabulary",
           "norm norm_bias norm_placement final_norm norm_eps positions mlp bias tied_embeddings ctx_len "
           "train_ctx_len": A("GPT-3's (Jurassic-1 describes only depth, width and heads)"),
           "attn_pattern": A("dense everywhere; Jurassic-1 mentions no sparse layers"),
           "train_tokens": "Jurassic-1 §3: trained on 300B tokens",
           "optimizer": A("GPT-3's Adam; Jurassic-1 publishes no recipe"),
           "published_params": "Jurassic-1 Table 1"}),
    recipe=_inherit(GPT3_RECIPE, "Jurassic-1 publishes no recipe; GPT-3's"), template=None,
)
add(_j1, name="jurassic1-large", d_model=4096, n_layers=32, n_heads=32, d_ff=16384, published_params=7.5e9,
    aliases=("jurassic1-7.5b",))
add(_j1, name="jurassic1-jumbo", d_model=13824, n_layers=76, n_heads=96, d_ff=55296, published_params=178e9,
    aliases=("jurassic1", "jurassic1-178b", "j1-jumbo"), flagship=True)

# =================================================================================== MT-NLG
_mtnlg = _j1.derive(
    "mtnlg", year=2022, paper="Smith et al. 2022, Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B",
    vocab_size=51200, train_tokens=270e9, tokenizer="GPT-2 BPE (50,257, padded to 51,200 rows)",
    notes="GPT-3-style decoder.",
    src=S({"d_model n_layers n_heads ctx_len train_ctx_len": "MT-NLG §3.1: 105 layers, hidden 20480, 128 heads, "
                                                             "sequence length 2048",
           "head_dim n_kv_heads": "MT-NLG §3.1: multi-head, 20480 / 128",
           "d_ff": A("4 d_model, the Megatron GPT default; MT-NLG does not print it"),
           "vocab_size": A("Megatron-LM pads GPT-2's 50,257 to a multiple of 128 x tensor-parallel 8 = 51,200"),
           "tokenizer": "MT-NLG §3.1: GPT-2's BPE",
           "norm norm_bias norm_placement final_norm norm_eps positions mlp bias tied_embeddings":
               "MT-NLG §3.1: 'the transformer decoder' of Megatron/GPT-3 (pre-LN, learned positions, GELU, tied)",
           "train_tokens": "MT-NLG §3.2: 270B tokens", "published_params": "MT-NLG title / §3.1: 530B",
           "optimizer": "MT-NLG §3.2: Adam (0.9, 0.95)"}),
    recipe=_inherit(GPT3_RECIPE, "MT-NLG §3.2's Adam settings are GPT-3's",
                    sources=S({"optimizer betas eps": "MT-NLG §3.2: Adam, beta 0.9/0.95, eps 1e-8",
                               "grad_clip": "MT-NLG §3.2: gradient norm clipped at 1.0",
                               "weight_decay": "MT-NLG §3.2: weight decay 0.1",
                               "schedule min_lr_ratio": "MT-NLG §3.2: cosine decay to 10% of the peak"})),
)
add(_mtnlg, "mtnlg-530b", d_model=20480, n_layers=105, n_heads=128, d_ff=81920, published_params=530e9,
    aliases=("mtnlg", "mt-nlg", "megatron-turing-nlg"), flagship=True)

# =================================================================================== Gopher
_gopher = Family(
    "gopher", 2021, "Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
    arch={"vocab_size": 32000, "ctx_len": 2048, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-6, "norm_placement": "pre",
          "final_norm": True,
          # Transformer-XL relative positions: a projection W_r of the sinusoidal relative encodings per
          # layer (+ biases u, v): ~13 d^2 per layer instead of 12 d^2. Needed to reproduce Table 1.
          "positions": "xl_relative", "mlp": "gelu", "bias": "all", "tied_embeddings": True},
    cat={"train_tokens": 300e9, "train_ctx_len": 2048, "optimizer": "Adam", "tokenizer": "SentencePiece (32k)",
         "notes": "MLP activation, biases and tied embeddings are not stated in the paper (Transformer-XL's "
                  "GELU and biases and GPT-2's tied output assumed); they reproduce Table 1's sizes."},
    src=S({"d_model n_layers n_heads head_dim": "Gopher Table 1 (layers, heads, key/value size, d_model)",
           "n_kv_heads": "Gopher §3: multi-head attention (Table 1 heads)",
           "d_ff": "Gopher §3: 'the feed-forward size is 4 x d_model'",
           "vocab_size tokenizer": "Gopher §3: SentencePiece with a vocabulary of 32,000",
           "ctx_len train_ctx_len": "Gopher §3 / App. C: 2048-token context",
           "norm norm_bias norm_placement final_norm": "Gopher §3: RMSNorm instead of LayerNorm (pre-norm)",
           "norm_eps": A("1e-6 (RMSNorm's usual epsilon); Gopher gives none"),
           "positions": "Gopher §3: Transformer-XL's relative positional encoding",
           "mlp": A("GELU as Transformer-XL/GPT-2; Gopher does not name the activation"),
           "bias": A("biases on every linear as Transformer-XL; Gopher does not say; they reproduce Table 1"),
           "tied_embeddings": A("tied input/output embeddings; Gopher does not say; untied overshoots Table 1"),
           "train_tokens": "Gopher §3 / Table 1: 300B training tokens",
           "optimizer": "Gopher App. C: Adam", "published_params": "Gopher Table 1"}),
    recipe=_inherit(GPT3_RECIPE, "Gopher App. C gives Adam, clip 1.0 and a 10x cosine decay",
                    weight_decay=0.0, init="normal02",
                    sources=S({"optimizer": "Gopher App. C: Adam",
                               "grad_clip": "Gopher App. C: gradients clipped at global norm 1.0",
                               "schedule min_lr_ratio": "Gopher App. C: cosine decay by 10x",
                               "weight_decay": "Chinchilla §4.1 contrasts its AdamW with Gopher's Adam (no decay)",
                               "init": A("N(0, 0.02); Gopher gives none")})),
    template="gopher-280b",
)
add(_gopher, name="gopher-44m", d_model=512, n_layers=8, n_heads=16, head_dim=32, d_ff=2048, published_params=44e6)
add(_gopher, name="gopher-117m", d_model=768, n_layers=12, n_heads=12, head_dim=64, d_ff=3072, published_params=117e6)
add(_gopher, name="gopher-417m", d_model=1536, n_layers=12, n_heads=12, head_dim=128, d_ff=6144, published_params=417e6)
add(_gopher, name="gopher-1.4b", d_model=2048, n_layers=24, n_heads=16, head_dim=128, d_ff=8192, published_params=1.4e9)
add(_gopher, name="gopher-7.1b", d_model=4096, n_layers=32, n_heads=32, head_dim=128, d_ff=16384, published_params=7.1e9)
add(_gopher, name="gopher-280b", d_model=16384, n_layers=80, n_heads=128, head_dim=128, d_ff=65536,
    published_params=280e9, aliases=("gopher",), flagship=True)

_chinchilla = _gopher.derive(
    "chinchilla", year=2022, paper="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models",
    train_tokens=1.4e12, optimizer="AdamW", tokenizer="SentencePiece (32k, no NFKC normalisation)",
    src=S({"d_model n_layers n_heads head_dim": "Chinchilla Table 4: 80 layers, 64 heads, key/value size 128, "
                                                "d_model 8192",
           "n_kv_heads d_ff": "Chinchilla §4.1: Gopher's architecture (multi-head, 4 d_model feed-forward)",
           "vocab_size ctx_len train_ctx_len norm norm_bias norm_placement final_norm positions":
               "Chinchilla §4.1: the same architecture and training setup as Gopher (RMSNorm, relative positions)",
           "norm_eps mlp bias tied_embeddings": A("Gopher's (assumed there too)"),
           "train_tokens": "Chinchilla Table 1 / §4.1: 1.4 trillion tokens",
           "optimizer": "Chinchilla §4.1: AdamW", "published_params": "Chinchilla Table 1: 70B",
           "tokenizer": "Chinchilla §4.1: a slightly modified SentencePiece tokenizer without NFKC"}),
    recipe=_inherit(LLAMA_RECIPE, "Chinchilla App. A gives Gopher's settings otherwise", eps=1e-8,
                    sources=S({"optimizer": "Chinchilla §4.1: AdamW",
                               "schedule min_lr_ratio": "Chinchilla §3 / App. A: cosine decay by 10x, cycle length "
                                                        "matched to the run"})),
    template=None,
)
add(_chinchilla, "chinchilla-70b", d_model=8192, n_layers=80, n_heads=64, head_dim=128, d_ff=32768,
    published_params=70e9, aliases=("chinchilla",), flagship=True)

# ===================================================================================== PaLM
_palm = Family(
    "palm", 2022, "Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways",
    arch={"vocab_size": 256000, "ctx_len": 2048, "norm": "layernorm", "norm_bias": False, "norm_eps": 1e-6,
          "norm_placement": "pre", "parallel_block": True, "positions": "rope", "rope_theta": 10000.0, "rope_interleaved": True,
          "mlp": "swiglu", "bias": "none", "tied_embeddings": True, "output_scale": True},
    cat={"train_tokens": 780e9, "train_ctx_len": 2048, "optimizer": "Adafactor (no factorisation)",
         "tokenizer": "SentencePiece (256k)"},
    src=S({"d_model n_layers n_heads head_dim": "PaLM Table 1 (layers, heads, d_model; head size 256)",
           "n_kv_heads": "PaLM §2: multi-query attention (keys and values shared across heads)",
           "d_ff": "PaLM §2 / Table 1: SwiGLU with feed-forward size 4 d_model",
           "vocab_size tokenizer": "PaLM §2: SentencePiece vocabulary of 256k tokens",
           "ctx_len train_ctx_len": "PaLM §5: sequence length 2048",
           "norm norm_bias bias": "PaLM §2: no biases in any dense kernel or layer norm",
           "norm_eps": A("1e-6 (T5X/Flax LayerNorm default); PaLM gives none"),
           "final_norm": A("a final LayerNorm as T5X/Mesh-TF decoders; PaLM §2 does not say"),
           "norm_placement parallel_block": "PaLM §2: parallel formulation y = x + MLP(LN(x)) + Attn(LN(x))",
           "positions": "PaLM §2: RoPE embeddings",
           "rope_theta": A("10,000, the RoPE paper's base; PaLM gives none"),
           "rope_interleaved": A("pairs of adjacent dimensions as in the RoPE paper (Mesh-TF/T5X); PaLM gives none"),
           "mlp": "PaLM §2: SwiGLU activation",
           "tied_embeddings": "PaLM §2: shared input-output embeddings",
           "output_scale": "PaLM §5: shared embeddings, so the pre-softmax logits are scaled by 1/sqrt(n)",
           "train_tokens": "PaLM Table 1 / §3: 780 billion tokens",
           "optimizer": "PaLM §5: Adafactor without factorisation", "published_params": "PaLM Table 1"}),
    recipe=Recipe(
        optimizer="adamw", betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, grad_clip=1.0, min_lr_ratio=0.1,
        init="fan_in", embed_std=1.0, z_loss=1e-4, schedule="cosine",
        sources={**SMALL_RUN, **S({
            "optimizer betas eps": "PaLM §5: Adafactor without factorisation (Adam with parameter scaling), "
                                   "beta1 0.9, beta2 0.99 schedule -> AdamW (0.9, 0.99) here",
            "weight_decay": A("0 here; PaLM §5's lr^2 decay does not carry to small runs"),
            "grad_clip": "PaLM §5: global norm clipping at 1.0",
            "schedule min_lr_ratio": A("cosine to 10% so the schedule ends with the token budget (PaLM §5 "
                                       "uses an inverse-sqrt decay)"),
            "init": "PaLM §5: fan-in variance 1/n_in for kernels",
            "embed_std": "PaLM §5: input embeddings N(0, 1)",
            "z_loss": "PaLM §5: auxiliary z-loss 1e-4 * log^2 Z",
            "aux_loss": "PaLM §5: dense model, no router"})}),
    template="palm-8b",
)
add(_palm, name="palm-8b", d_model=4096, n_layers=32, n_heads=16, n_kv_heads=1, head_dim=256, d_ff=16384,
    published_params=8.63e9)
add(_palm, name="palm-62b", d_model=8192, n_layers=64, n_heads=32, n_kv_heads=1, head_dim=256, d_ff=32768,
    published_params=62.50e9)
# 48 heads x 256 = 12288 != d_model 18432: the head width is explicit, not d_model / n_heads
add(_palm, name="palm-540b", d_model=18432, n_layers=118, n_heads=48, n_kv_heads=1, head_dim=256, d_ff=73728,
    published_params=540.35e9, aliases=("palm",), flagship=True)

# ==================================================================================== LLaMA
_llama = Family(
    "llama", 2023, "Touvron et al. 2023, LLaMA: Open and Efficient Foundation Language Models",
    arch={"vocab_size": 32000, "ctx_len": 2048, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-6, "norm_placement": "pre",
          "final_norm": True, "positions": "rope", "rope_theta": 10000.0, "mlp": "swiglu", "bias": "none",
          "tied_embeddings": False},
    cat={"train_ctx_len": 2048, "optimizer": "AdamW (0.9, 0.95, wd 0.1)", "tokenizer": "SentencePiece BPE (32k)"},
    src=S({"d_model n_layers n_heads": "LLaMA Table 2 (dimension, n heads, n layers)",
           "n_kv_heads head_dim": "LLaMA §2.2: multi-head attention, d_model / n_heads",
           # FFN width = 256 * ceil(int(8d/3) / 256): 11008, 13824, 17920, 22016 (LLaMA 1 and Llama 2 7B/13B)
           "d_ff": "HF huggyllama/llama-{7b,13b,30b,65b} config.json (intermediate_size; 2/3 4d rounded to 256)",
           "vocab_size tokenizer": "LLaMA §2.1: SentencePiece BPE, 32k tokens",
           "ctx_len train_ctx_len": "LLaMA §2.2 / Table 2: context length 2048",
           "norm norm_bias norm_placement final_norm": "LLaMA §2.2: pre-normalization with RMSNorm",
           "norm_eps": "HF huggyllama/llama-7b config.json (rms_norm_eps 1e-6)",
           "positions": "LLaMA §2.2: rotary embeddings (RoPE)",
           "rope_theta": "HF huggyllama/llama-7b / Meta's reference code (theta 10000)",
           "mlp": "LLaMA §2.2: SwiGLU",
           "bias tied_embeddings": "HF huggyllama/llama-7b (no biases; separate lm_head)",
           "train_tokens": "LLaMA Table 2: 1.0T tokens (7B, 13B), 1.4T (33B, 65B)",
           "optimizer": "LLaMA §2.2: AdamW (0.9, 0.95), weight decay 0.1",
           "published_params": "LLaMA Table 2 (params)"}),
    recipe=LLAMA_RECIPE, template="llama-65b",
)
add(_llama, name="llama-7b", d_model=4096, n_layers=32, n_heads=32, d_ff=11008, train_tokens=1.0e12,
    published_params=6.7e9)
add(_llama, name="llama-13b", d_model=5120, n_layers=40, n_heads=40, d_ff=13824, train_tokens=1.0e12,
    published_params=13.0e9)
# "30b" in the released checkpoints
add(_llama, name="llama-33b", d_model=6656, n_layers=60, n_heads=52, d_ff=17920, train_tokens=1.4e12,
    published_params=32.5e9, aliases=("llama-30b",))
add(_llama, name="llama-65b", d_model=8192, n_layers=80, n_heads=64, d_ff=22016, train_tokens=1.4e12,
    published_params=65.2e9, aliases=("llama", "llama1"), flagship=True)

_LLAMA2_SAME = "Llama 2 §2.2: 'the standard transformer architecture ... of Llama 1' (pre-RMSNorm, SwiGLU, RoPE)"
_llama2 = _llama.derive(
    "llama2", year=2023, paper="Touvron et al. 2023, Llama 2: Open Foundation and Fine-Tuned Chat Models",
    ctx_len=4096, train_ctx_len=4096, norm_eps=1e-5, train_tokens=2.0e12,
    src=S({"d_model n_layers n_heads n_kv_heads d_ff head_dim": "HF meta-llama/Llama-2-{7b,13b,70b}-hf config.json",
           "ctx_len train_ctx_len": "Llama 2 Table 1: context length 4k",
           "norm_eps": "HF meta-llama/Llama-2-7b-hf config.json (rms_norm_eps 1e-5)",
           "norm norm_bias norm_placement final_norm positions mlp": _LLAMA2_SAME,
           "rope_theta bias tied_embeddings": "HF meta-llama/Llama-2-7b-hf config.json (rope_theta 10000, no "
                                              "biases, tie_word_embeddings false)",
           "vocab_size tokenizer": "Llama 2 §2.1: Llama 1's tokenizer, 32k tokens",
           "train_tokens": "Llama 2 Table 1: 2.0T tokens",
           "optimizer": "Llama 2 §2.2: AdamW (0.9, 0.95), eps 1e-5, weight decay 0.1",
           "published_params": "Llama 2 Table 1 (params)"}),
    recipe=LLAMA_RECIPE, template="llama2-70b",
)
add(_llama2, name="llama2-7b", d_model=4096, n_layers=32, n_heads=32, d_ff=11008, published_params=7e9)
add(_llama2, name="llama2-13b", d_model=5120, n_layers=40, n_heads=40, d_ff=13824, published_params=13e9)
# 34B was never released; its shape is Code Llama 34B's (same architecture, GQA 8)
add(_llama2, name="llama2-34b", d_model=8192, n_layers=48, n_heads=64, n_kv_heads=8, d_ff=22016, published_params=34e9,
    src=S({"d_model n_layers n_heads n_kv_heads d_ff head_dim":
           "HF codellama/CodeLlama-34b-hf config.json (Llama 2 34B itself unreleased; Table 1: GQA)"}))
# Llama 2 70B: int(8d/3) * 1.3 rounded up to a multiple of 4096 = 28672
add(_llama2, name="llama2-70b", d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, d_ff=28672, published_params=70e9,
    aliases=("llama2", "llama-2"), flagship=True)

_llama3 = _llama2.derive(
    "llama3", year=2024, paper="Llama Team 2024, The Llama 3 Herd of Models",
    vocab_size=128256, ctx_len=8192, train_ctx_len=8192, rope_theta=500000.0, train_tokens=15e12,
    tokenizer="tiktoken BPE (128k)",
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps rope_theta bias "
           "tied_embeddings": "HF meta-llama/Meta-Llama-3-{8B,70B} config.json",
           "norm norm_bias norm_placement final_norm positions mlp": "Llama 3 §3.2: 'a standard, dense Transformer' "
                                                                    "as Llama 2, with GQA (8 KV heads)",
           "train_ctx_len": "Llama 3 §3.4.1: pre-trained on sequences of 8,192 tokens before the long-context stage",
           "tokenizer": "Llama 3 §3.2: 128K tokens (100K tiktoken + 28K)",
           "train_tokens": "Meta Llama 3 model card: pre-trained on over 15T tokens",
           "optimizer": "Llama 3 §3.4: AdamW as Llama 2", "published_params": "Meta Llama 3 model card (8B, 70B)"}),
    recipe=_inherit(LLAMA_RECIPE, "Llama 3 §3.4.1 gives AdamW and cosine; Llama 2's other settings",
                    sources=S({"optimizer": "Llama 3 §3.4.1: AdamW",
                               "schedule min_lr_ratio": "Llama 3 §3.4.1: cosine schedule"})),
    template="llama3-8b",
)
add(_llama3, name="llama3-8b", d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, published_params=8e9)
add(_llama3, name="llama3-70b", d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, d_ff=28672, published_params=70e9,
    aliases=("llama3", "llama-3"), flagship=True)

_llama31 = _llama3.derive(
    "llama3.1", ctx_len=131072, rope_scaling=RopeScaling(8.0, 1.0, 4.0, 8192), train_tokens=15e12,
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps rope_theta rope_scaling "
           "bias tied_embeddings": "HF meta-llama/Llama-3.1-{8B,70B,405B} config.json",
           "train_tokens": "Meta Llama 3.1 model card: ~15 trillion tokens",
           "published_params": "Llama 3 Table 3 (8B, 70B, 405B)"}),
    template="llama3.1-8b",
)
add(_llama31, name="llama3.1-8b", d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, published_params=8e9)
add(_llama31, name="llama3.1-70b", d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, d_ff=28672,
    published_params=70e9)
# 8 KV heads (an early config with 16 duplicated them); FFN 8d/3*1.2 -> multiple of 4096 = 53248
add(_llama31, name="llama3.1-405b", d_model=16384, n_layers=126, n_heads=128, n_kv_heads=8, d_ff=53248,
    train_tokens=15.6e12, published_params=405e9, aliases=("llama3.1", "llama-3.1"), flagship=True,
    src={"train_tokens": "Llama 3 §1 / Table 1: the flagship pre-trained on 15.6T tokens"})
_llama32 = _llama31.derive(
    "llama3.2", paper="Meta 2024, Llama 3.2 model card (meta-llama/Llama-3.2-1B)", tied_embeddings=True,
    rope_scaling=RopeScaling(32.0, 1.0, 4.0, 8192), train_tokens=9e12,
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps rope_theta rope_scaling "
           "bias tied_embeddings": "HF meta-llama/Llama-3.2-{1B,3B} config.json (tie_word_embeddings true, "
                                   "llama3 rope scaling factor 32)",
           "norm norm_bias norm_placement final_norm positions mlp": "Meta Llama 3.2 model card: the Llama 3.1 "
                                                                    "architecture (optimized transformer)",
           "train_ctx_len": A("8,192 as Llama 3.1's pre-training (original_max_position_embeddings of the config); "
                              "the 3.2 pre-training length is not published"),
           "train_tokens": "Meta Llama 3.2 model card: up to 9 trillion tokens",
           "published_params": "Meta Llama 3.2 model card (1.23B, 3.21B)",
           "tokenizer": "Meta Llama 3.2 model card: Llama 3's 128K tokenizer",
           "optimizer": A("Llama 3's AdamW; the 3.2 model card gives none")}),
    template="llama3.2-1b",
)
add(_llama32, name="llama3.2-1b", d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8, head_dim=64, d_ff=8192,
    published_params=1.23e9)
add(_llama32, name="llama3.2-3b", d_model=3072, n_layers=28, n_heads=24, n_kv_heads=8, head_dim=128, d_ff=8192,
    published_params=3.21e9, aliases=("llama3.2", "llama-3.2"), flagship=True)

# ================================================================================== Mixtral
_MOE_LOSS = "transformers' load-balancing loss (Switch Transformer's form) with router_aux_loss_coef"
_mixtral = _llama2.derive(
    "mixtral", year=2024, paper="Jiang et al. 2024, Mixtral of Experts",
    vocab_size=32000, ctx_len=32768, train_ctx_len=32768, rope_theta=1e6, norm_eps=1e-5, train_tokens=None,
    optimizer="not published",
    notes="Training data and token count not published.",
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff ctx_len vocab_size": "Mixtral Table 1 "
           "(dim, n_layers, head_dim, hidden_dim, n_heads, n_kv_heads, context_len, vocab_size)",
           "moe": "Mixtral §2.1 / Table 1: every layer 8 experts, top-2 of a softmax, renormalised",
           "norm norm_bias norm_placement final_norm positions mlp": "Mixtral §2: Mistral 7B's architecture "
                                                                    "(pre-RMSNorm, RoPE, SwiGLU)",
           "norm_eps rope_theta bias tied_embeddings": "HF mistralai/Mixtral-8x7B-v0.1 config.json",
           "train_ctx_len": "Mixtral §1: pre-trained with a context size of 32k tokens",
           "tokenizer": "HF mistralai/Mixtral-8x7B-v0.1 tokenizer.json (SentencePiece BPE, 32,000)",
           "optimizer": "Mixtral: not published",
           "published_params": "Mixtral §1: 47B parameters, 13B active per token"}),
    tokenizer="SentencePiece BPE (32k)",
    recipe=_inherit(LLAMA_RECIPE, "Mixtral publishes no recipe; Llama 2's AdamW", aux_loss=0.02,
                    sources={"aux_loss": "HF mistralai/Mixtral-8x7B-v0.1 config.json router_aux_loss_coef 0.02 "
                                         f"({_MOE_LOSS})"}),
    template="mixtral-8x7b",
)
add(_mixtral, "mixtral-8x7b", d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336,
    # every layer MoE: softmax over 8 experts -> top-2 -> renormalise; no sliding window
    moe=MoE(n_experts=8, top_k=2, d_ff_expert=14336, renormalize=True), published_params=47e9,
    aliases=("mixtral",), flagship=True)
add(_mixtral, "mixtral-8x22b", d_model=6144, n_layers=56, n_heads=48, n_kv_heads=8, d_ff=16384, ctx_len=65536,
    vocab_size=32000, train_ctx_len=65536, moe=MoE(n_experts=8, top_k=2, d_ff_expert=16384, renormalize=True),
    published_params=141e9, paper="Mistral AI 2024, Cheaper, Better, Faster, Stronger (Mixtral 8x22B announcement)",
    recipe=_inherit(LLAMA_RECIPE, "Mixtral publishes no recipe; Llama 2's AdamW", aux_loss=0.001,
                    sources={"aux_loss": "HF mistral-community/Mixtral-8x22B-v0.1 config.json router_aux_loss_coef "
                                         f"0.001 ({_MOE_LOSS})"}),
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff ctx_len vocab_size norm_eps rope_theta bias "
           "tied_embeddings moe": "HF mistral-community/Mixtral-8x22B-v0.1 config.json (8 experts, 2 per token)",
           "train_ctx_len": A("not published; the maximum context (64k, Mistral's announcement) is used"),
           "published_params": "Mistral AI announcement 'Cheaper, Better, Faster, Stronger' (2024): 141B total"}),
    notes="No paper; training data, token count and pre-training length not published.")

# =================================================================================== Gemma 2
_gemma2 = Family(
    "gemma2", 2024, "Gemma Team 2024, Gemma 2: Improving Open Language Models at a Practical Size",
    arch={"vocab_size": 256000, "ctx_len": 8192, "norm": "rmsnorm_1p", "norm_bias": False, "norm_eps": 1e-6,
          "norm_placement": "sandwich", "final_norm": True, "positions": "rope", "rope_theta": 10000.0,
          "attn_pattern": ("local", "global"), "window": 4096, "attn_softcap": 50.0, "final_softcap": 30.0,
          "mlp": "geglu", "bias": "none", "tied_embeddings": True, "embed_scale": True},
    cat={"train_ctx_len": 8192, "tokenizer": "SentencePiece (256k)",
         "notes": "The paper's 'feedforward dim' is twice the per-branch GeGLU width written here; its 256,128 "
                  "vocabulary is 256,000 rows in the checkpoints."},
    src=S({"d_model n_layers n_heads n_kv_heads head_dim": "Gemma 2 Table 1; HF google/gemma-2-{2b,9b,27b} config.json",
           "d_ff": "HF google/gemma-2-* config.json intermediate_size (Table 1's feedforward dim is 2x)",
           "vocab_size": "HF google/gemma-2-* config.json (256,000 rows; Table 1 says 256,128)",
           "tokenizer": "Gemma 2 §2: Gemini's SentencePiece tokenizer, 256k entries",
           "ctx_len train_ctx_len": "Gemma 2 §2 / Table 1: context length 8192",
           "norm norm_bias norm_placement final_norm": "Gemma 2 §2: RMSNorm on the input and output of each "
                                                       "sub-layer",
           "norm_eps embed_scale": "HF google/gemma-2-9b config.json (rms_norm_eps 1e-6) and Gemma's reference "
                                   "code (x * (1 + w), embeddings x sqrt(d_model))",
           "positions rope_theta": "Gemma 2 §2: RoPE; HF config.json rope_theta 10000",
           "attn_pattern window": "Gemma 2 §2: local sliding window (4096) and global attention (8192) alternating "
                                  "every other layer; config.json sliding_window 4096",
           "attn_softcap final_softcap": "Gemma 2 §2: logit soft-capping 50.0 (attention) and 30.0 (final)",
           "mlp": "Gemma 2 §2: GeGLU (approximated GELU)",
           "bias": "HF google/gemma-2-* config.json (attention_bias false; no MLP biases)",
           "tied_embeddings": "Gemma 2 §2: 'tied embeddings'",
           "query_scale": "HF google/gemma-2-27b config.json query_pre_attn_scalar 144 = d_model / n_heads",
           "train_tokens": "Gemma 2 §3.1: 13T tokens (27B), 8T (9B), 2T (2B)",
           "optimizer": "Gemma 2: not published", "published_params": "Gemma 2 Table 2 (parameter counts)"}),
    recipe=_inherit(LLAMA_RECIPE, "Gemma 2 publishes no recipe; Llama's AdamW",
                    sources={"init": "HF google/gemma-2-* config.json initializer_range 0.02"}),
    template="gemma2-27b",
)
add(_gemma2, name="gemma2-2b", d_model=2304, n_layers=26, n_heads=8, n_kv_heads=4, head_dim=256, d_ff=9216,
    train_tokens=2e12, published_params=2.6e9)
add(_gemma2, name="gemma2-9b", d_model=3584, n_layers=42, n_heads=16, n_kv_heads=8, head_dim=256, d_ff=14336,
    train_tokens=8e12, published_params=9.2e9)
# 27B: head_dim 128 but queries scaled by (d_model/n_heads)^-0.5 = 144^-0.5
add(_gemma2, name="gemma2-27b", d_model=4608, n_layers=46, n_heads=32, n_kv_heads=16, head_dim=128, d_ff=36864,
    query_scale=144 ** -0.5, train_tokens=13e12, published_params=27.2e9, aliases=("gemma2", "gemma-2"),
    flagship=True)

# ===================================================================================== Qwen2
_QWEN_CFG = "HF Qwen/Qwen2-{0.5B,1.5B,7B,72B,57B-A14B} config.json"
_qwen2 = _llama.derive(
    "qwen2", year=2024, paper="Yang et al. 2024, Qwen2 Technical Report",
    bias="qkv", rope_theta=1e6, norm_eps=1e-6, ctx_len=32768, train_ctx_len=4096, optimizer="AdamW",
    tokenizer="byte-level BPE (151,643 + 3 control)",
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff": "Qwen2 Table 1 (hidden size, layers, query/KV heads, "
                                                                "head size, intermediate size)",
           "tied_embeddings": "Qwen2 Table 1 (embedding tying: 0.5B and 1.5B only)",
           "vocab_size": f"{_QWEN_CFG} (151,936 or 152,064 rows; the tokenizer has 151,646)",
           "ctx_len": "Qwen2 §3.2: context length extended from 4,096 to 32,768 tokens in the final pre-training phase",
           "train_ctx_len": "Qwen2 §3.2: pre-trained at 4,096 tokens, extended to 32,768 in the final phase",
           "norm norm_bias norm_placement final_norm positions mlp": "Qwen2 §2.2.1: SwiGLU, RoPE, RMSNorm and "
                                                                    "pre-normalization",
           "bias": "Qwen2 §2.2.1: QKV bias",
           "rope_theta": "Qwen2 §3.2: RoPE base frequency raised from 10,000 to 1,000,000",
           "norm_eps": f"{_QWEN_CFG} rms_norm_eps 1e-6",
           "tokenizer": "Qwen2 §2.1: 151,643 regular tokens and 3 control tokens",
           "train_tokens": "Qwen2 §3.1: 7T tokens (0.5B: 12T)", "optimizer": "Qwen2 report: AdamW",
           "published_params": "Qwen2 report's model names (Table 1 prints no parameter count)"}),
    recipe=_inherit(LLAMA_RECIPE, "Qwen2's report gives AdamW only; Llama's other settings",
                    sources={"optimizer": "Qwen2 report: AdamW"}),
    template="qwen2-72b",
)
# vocabulary rows: 151,936 (0.5B/1.5B/57B) vs 152,064 (7B/72B); tied only at 0.5B and 1.5B
add(_qwen2, name="qwen2-0.5b", d_model=896, n_layers=24, n_heads=14, n_kv_heads=2, d_ff=4864, vocab_size=151936,
    tied_embeddings=True, train_tokens=12e12, published_params=0.5e9)
add(_qwen2, name="qwen2-1.5b", d_model=1536, n_layers=28, n_heads=12, n_kv_heads=2, d_ff=8960, vocab_size=151936,
    tied_embeddings=True, train_tokens=7e12, published_params=1.5e9)
add(_qwen2, name="qwen2-7b", d_model=3584, n_layers=28, n_heads=28, n_kv_heads=4, d_ff=18944, vocab_size=152064,
    tied_embeddings=False, train_tokens=7e12, published_params=7e9)
add(_qwen2, name="qwen2-72b", d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, d_ff=29568, vocab_size=152064,
    tied_embeddings=False, train_tokens=7e12, published_params=72e9, norm_eps=1e-5, aliases=("qwen2",),
    flagship=True, src={"norm_eps": "HF Qwen/Qwen2-72B config.json rms_norm_eps 1e-5"})
add(_qwen2, "qwen2-57b-a14b", d_model=3584, n_layers=28, n_heads=28, n_kv_heads=4, d_ff=2560, vocab_size=151936,
    tied_embeddings=False, train_tokens=4.5e12, published_params=57e9,
    # 64 routed experts of width 2560, top-8 WITHOUT renormalisation, plus one shared expert of width
    # 20480 (= 8 x 2560) behind a sigmoid gate
    moe=MoE(n_experts=64, top_k=8, d_ff_expert=2560, renormalize=False, d_ff_shared=20480, shared_gate=True),
    aliases=("qwen2-moe",),
    src={"moe": f"Qwen2 §2.2.2 / Table 1 (64 routed experts, 8 activated, shared experts); {_QWEN_CFG} "
                "(norm_topk_prob false, shared_expert_intermediate_size 20480, sigmoid shared-expert gate)",
         "train_tokens": "Qwen2 §3.1: 4.5T additional tokens after upcycling"},
    recipe=_inherit(LLAMA_RECIPE, "Qwen2's report gives AdamW only; Llama's other settings", aux_loss=0.001,
                    sources={"optimizer": "Qwen2 report: AdamW",
                             "aux_loss": f"HF Qwen/Qwen2-57B-A14B config.json router_aux_loss_coef 0.001 ({_MOE_LOSS})"}),
    notes="Upcycled from Qwen2-7B-style dense weights; trained on 4.5T additional tokens.")

# ======================================================================================= AFM
_AFM = "AFM §2 table (d 3072, head 128, 24 query / 8 KV heads, 26 layers, 2.58B non-embedding, 0.15B embedding)"
_afm = _llama3.derive(
    "afm", year=2024, paper="Gunter et al. 2024, Apple Intelligence Foundation Language Models",
    vocab_size=49152, ctx_len=4096, train_ctx_len=4096, qk_norm=True, tied_embeddings=True, rope_theta=500000.0,
    train_tokens=7.4e12, optimizer="decoupled AdamW (0.9, 0.95)", tokenizer="BPE (49k)",
    src=S({"d_model n_layers n_heads n_kv_heads head_dim": _AFM,
           "d_ff": A("not published: 8064 (a multiple of 128) is the width nearest the stated 2.58B non-embedding "
                     "parameters"),
           "vocab_size": A("AFM §2: a 49k vocabulary (0.15B embedding params / 3072 = 48.8k rows); 49,152 rows"),
           "ctx_len train_ctx_len": "AFM §3.1: core pre-training at sequence length 4096",
           "norm norm_bias norm_placement final_norm positions mlp bias": "AFM §2: decoder-only Transformer with "
               "RMSNorm pre-normalization, RoPE, SwiGLU, no biases (as Llama)",
           "qk_norm": "AFM §2: query/key normalization", "tied_embeddings": "AFM §2: shared input/output embedding",
           "rope_theta": "AFM §2: RoPE base frequency 500k",
           "norm_eps": A("1e-5 as Llama 3; AFM gives none"),
           "train_tokens": "AFM §3: 6.3T core + 1T continued + 100B context-lengthening tokens",
           "optimizer": "AFM §3: decoupled AdamW-style optimizer (0.9, 0.95)",
           "tokenizer": "AFM §2: BPE, 49k vocabulary (100k for the server model)",
           "published_params": "AFM §2 table: 2.58B non-embedding + 0.15B embedding parameters (their sum)"}),
    recipe=_inherit(LLAMA_RECIPE, "AFM §3 gives a decoupled AdamW-like optimizer only", weight_decay=0.0,
                    sources=S({"optimizer betas": "AFM §3: 'decoupled weight decay' AdamW-like, (0.9, 0.95)",
                               "weight_decay": A("0: AFM's decay value is not comparable at this scale")})),
    template="afm-on-device",
)
add(_afm, "afm-on-device", d_model=3072, n_layers=26, n_heads=24, n_kv_heads=8, d_ff=8064, published_params=2.73e9,
    aliases=("afm", "afm-3b"), flagship=True, notes="FFN width not published (chosen to match the stated "
                                                     "non-embedding count).")
add(_afm, "afm-server", shape=False, known={"ctx_len": 4096, "vocab_size": 100352}, published_params=None,
    src={"vocab_size": "AFM §2: a 100k vocabulary for AFM-server (100,352 rows assumed as a multiple of 128)"},
    notes="Known: same design as AFM-on-device (RMSNorm, GQA 8 KV heads, SwiGLU, RoPE, tied embeddings, "
          "qk-norm), 100k vocabulary, 6.3T + 1T + 100B tokens. Unknown: parameters and shape.",
    tokenizer="BPE (100k)")

# ======================================================================================= T5
_t5 = Family(
    "t5", 2019,
    "Raffel et al. 2019 (JMLR 2020), Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer",
    arch={"vocab_size": 32128, "ctx_len": 512, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-6, "norm_placement": "pre",
          "final_norm": True, "positions": "t5_bias", "rel_buckets": 32, "rel_max_distance": 128, "query_scale": 1.0,
          "mlp": "relu", "bias": "none", "tied_embeddings": True, "output_scale": True},
    # §3.7: "1 million steps on a batch size of 2^11 sequences of length 512" (not §3.1's 2^35 baseline)
    cat={"train_tokens": 1e6 * 2**11 * 512, "train_ctx_len": 512, "optimizer": "AdaFactor",
         "tokenizer": "SentencePiece (32k)",
         "notes": "Encoder-decoder pre-trained with span corruption. The released models saw ~1T tokens (§3.7), "
                  "32x the 2^35-token baseline of the paper's ablations (§3.1)."},
    src=S({"d_model n_layers n_heads head_dim d_ff n_enc_layers": "T5 §3.7 (model sizes); HF google-t5/t5-{small,"
                                                                  "base,large,3b,11b} config.json",
           "n_kv_heads": "T5 §3.1.1: the original Transformer's multi-head attention",
           "vocab_size": "HF google-t5/t5-* config.json (32,128 rows: 32k SentencePiece + padding)",
           "tokenizer": "T5 §2.2: SentencePiece, 32,000 wordpieces",
           "ctx_len train_ctx_len": "T5 §3.1.2 / §3.7: sequences of 512 tokens",
           "norm norm_bias norm_placement final_norm": "T5 §2.1: simplified layer norm (rescale only, no bias), "
                                                       "outside the residual path, and after the final block",
           "norm_eps": "HF google-t5/t5-* config.json (layer_norm_epsilon 1e-6)",
           "positions rel_buckets rel_max_distance": "T5 §2.1: 32 relative-position buckets up to distance 128, "
                                                     "shared across layers",
           "query_scale": "Mesh-TF / HF T5: no 1/sqrt(d_kv) (folded into the initialisation)",
           "mlp": "T5 §2.1 / §3.1.1: dense-ReLU-dense feed-forward",
           "bias": "T5 §2.1: 'layer norm bias removed'; HF T5 has no linear biases",
           "tied_embeddings output_scale": "HF google-t5/t5-* (tie_word_embeddings; tied head on h * d^-0.5)",
           "train_tokens": "T5 §3.7: '1 million steps on a batch size of 2^11 sequences of length 512, ... about 1 "
                           "trillion pre-training tokens'",
           "optimizer": "T5 §3.1.2: AdaFactor", "published_params": "T5 §3.7 (model sizes)"}),
    recipe=Recipe(
        optimizer="adafactor", betas=(0.9, 0.999), eps=1e-30, weight_decay=0.0, grad_clip=None, min_lr_ratio=0.1,
        init="fan_in", embed_std=1.0, schedule="cosine", objective="span_corruption",
        sources={**SMALL_RUN, **S({
            "optimizer": "T5 §3.1.2: AdaFactor",
            "betas eps": A("torch Adafactor's defaults (no momentum; eps 1e-30); T5 gives none"),
            "weight_decay grad_clip": A("none; T5 §3.1.2 states neither"),
            "schedule min_lr_ratio": A("cosine to 10% so the schedule ends with the token budget (T5 §3.1.2 "
                                       "uses inverse-sqrt)"),
            "init": "Mesh-TF T5: fan-in initialisation",
            "embed_std": "Mesh-TF T5: embeddings N(0, 1)",
            "z_loss aux_loss": "T5 §3.1.4: cross-entropy on the span-corruption targets only"})}),
    template="t5-base",
)
add(_t5, name="t5-small", d_model=512, n_layers=6, n_enc_layers=6, n_heads=8, d_ff=2048, published_params=60e6)
add(_t5, name="t5-base", d_model=768, n_layers=12, n_enc_layers=12, n_heads=12, d_ff=3072, published_params=220e6)
# the paper's 770M counts an untied head
add(_t5, name="t5-large", d_model=1024, n_layers=24, n_enc_layers=24, n_heads=16, d_ff=4096, published_params=770e6)
# 3B/11B keep d_model 1024 and widen heads and MLP
add(_t5, name="t5-3b", d_model=1024, n_layers=24, n_enc_layers=24, n_heads=32, head_dim=128, d_ff=16384,
    published_params=2.8e9)
add(_t5, name="t5-11b", d_model=1024, n_layers=24, n_enc_layers=24, n_heads=128, head_dim=128, d_ff=65536,
    published_params=11e9, aliases=("t5",), flagship=True)

# ==================================================================================== GPT-J
_gptj = Family(
    "gptj", 2021, "Wang & Komatsuzaki 2021, GPT-J-6B: A 6 Billion Parameter Autoregressive Language Model",
    arch={"vocab_size": 50400, "ctx_len": 2048, "norm": "layernorm", "norm_bias": True, "norm_eps": 1e-5, "norm_placement": "pre",
          "final_norm": True, "parallel_block": True, "positions": "rope", "rope_theta": 10000.0, "rotary_dim": 64,
          "rope_interleaved": True, "mlp": "gelu_tanh", "bias": "mlp", "lm_head_bias": True, "tied_embeddings": False},
    cat={"train_tokens": 402e9, "train_ctx_len": 2048, "optimizer": "AdamW", "tokenizer": "GPT-2 BPE (50,257; 50,400 rows)"},
    src=S({"d_model n_layers n_heads head_dim d_ff ctx_len": "GPT-J model card table (n_layers 28, d_model 4096, "
                                                             "d_ff 16384, n_heads 16, d_head 256, n_ctx 2048)",
           "n_kv_heads": "HF EleutherAI/gpt-j-6b: multi-head attention (n_head 16)",
           "vocab_size": "HF EleutherAI/gpt-j-6b config.json vocab_size 50400 (the tokenizer uses 50,257)",
           "tokenizer": "GPT-J model card: the GPT-2/GPT-3 BPEs",
           "norm norm_bias norm_placement final_norm parallel_block": "mesh-transformer-jax / HF GPTJBlock: one "
               "LayerNorm feeding attention and MLP in parallel, x + attn(ln(x)) + mlp(ln(x)); final ln_f",
           "norm_eps": "HF EleutherAI/gpt-j-6b config.json layer_norm_epsilon 1e-5",
           "positions rotary_dim": "GPT-J model card: RoPE applied to 64 dimensions of each head (rotary_dim 64)",
           "rope_theta": "HF GPTJ / mesh-transformer-jax: base 10000",
           "rope_interleaved": "mesh-transformer-jax / HF GPTJ rotate_every_two: adjacent pairs",
           "mlp": "HF EleutherAI/gpt-j-6b config.json activation_function gelu_new",
           "bias lm_head_bias": "HF GPTJ: q/k/v/out projections without bias, fc_in/fc_out and lm_head with bias",
           "tied_embeddings": "HF EleutherAI/gpt-j-6b config.json tie_word_embeddings false",
           "train_tokens": "GPT-J model card: 402 billion tokens over 383,500 steps",
           "train_ctx_len": "GPT-J model card: n_ctx 2048",
           "optimizer": A("AdamW as mesh-transformer-jax's configs; the model card names none"),
           "published_params": "GPT-J model card: n_parameters 6,053,381,344"}),
    recipe=_inherit(GPT3_RECIPE, "GPT-J's model card gives no recipe; GPT-3's (mesh-transformer-jax follows it)"),
    template="gptj-6b",
)
add(_gptj, "gptj-6b", d_model=4096, n_layers=28, n_heads=16, d_ff=16384, published_params=6_053_381_344,
    aliases=("gptj", "gpt-j", "gpt-j-6b"), flagship=True)

# ============================================================================== DeepSeek-V3
_DSV3_CFG = "HF deepseek-ai/DeepSeek-V3 config.json"
_DSV3_HP = "DeepSeek-V3 §4.2 (model hyper-parameters)"
_dsv3 = Family(
    "deepseek-v3", 2024, "DeepSeek-AI 2024, DeepSeek-V3 Technical Report (arXiv 2412.19437)",
    arch={"vocab_size": 129280, "ctx_len": 163840, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-6,
          "norm_placement": "pre", "final_norm": True, "positions": "rope", "rope_theta": 10000.0,
          "rope_interleaved": True, "mlp": "swiglu", "bias": "none", "tied_embeddings": False,
          # YaRN: factor 40 over the 4K pre-training context, beta_slow 1 / beta_fast 32, mscale 1 / 1
          "rope_scaling": RopeScaling(40.0, 1.0, 32.0, 4096, kind="yarn", mscale=1.0, mscale_all_dim=1.0),
          "mla": MLA(q_rank=1536, kv_rank=512, d_nope=128, d_rope=64, d_v=128), "mtp_depth": 1},
    cat={"train_ctx_len": 4096, "train_tokens": 14.8e12, "optimizer": "AdamW (0.9, 0.95, wd 0.1)",
         "tokenizer": "byte-level BPE (128K)",
         "notes": "671B total, 37B activated per token. The MTP module (depth 1, ~11.7B parameters of its own) "
                  "is trained but not part of inference: counted apart (params.mtp), and in training FLOPs."},
    src=S({"d_model n_layers n_heads": f"{_DSV3_HP}: 61 layers, hidden 7168, 128 attention heads",
           "n_kv_heads": f"{_DSV3_CFG} num_key_value_heads 128 (MLA: every head its own key and value)",
           "head_dim": f"{_DSV3_HP}: per-head 128 + decoupled 64 for queries and keys (qk_nope + qk_rope)",
           "mla": f"{_DSV3_HP}: KV compression d_c 512, query compression d_c' 1536, per-head 128, decoupled "
                  f"rotary 64; {_DSV3_CFG} (q_lora_rank 1536, kv_lora_rank 512, v_head_dim 128)",
           "d_ff": f"{_DSV3_CFG} intermediate_size 18432 (the dense first layers)",
           "moe": f"{_DSV3_HP}: all FFNs but the first three are MoE, 1 shared + 256 routed experts of width 2048, "
                  "8 activated, at most 4 nodes; §2.1.2: sigmoid affinities, normalised among the selected, "
                  f"bias for the choice only; {_DSV3_CFG} (n_group 8, topk_group 4, routed_scaling_factor 2.5, "
                  "first_k_dense_replace 3, norm_topk_prob true)",
           "mtp_depth": "DeepSeek-V3 §2.2 / §4.2: multi-token prediction depth D = 1",
           "vocab_size": f"{_DSV3_CFG} vocab_size 129280 (the tokenizer's 128K plus padding)",
           "ctx_len": f"{_DSV3_CFG} max_position_embeddings 163840 (§4.3 extends to 128K with YaRN)",
           "rope_scaling": f"DeepSeek-V3 §4.3: YaRN for context extension; {_DSV3_CFG} rope_scaling (yarn, "
                           "factor 40, original 4096, beta_fast 32, beta_slow 1, mscale 1, mscale_all_dim 1)",
           "norm norm_bias norm_placement final_norm": "DeepSeek-V3 §2.1 / Fig. 2: RMSNorm before attention and "
                                                       "the FFN (DeepSeek-V2's Transformer block)",
           "norm_eps rope_theta rope_interleaved bias tied_embeddings": f"{_DSV3_CFG} (rms_norm_eps 1e-6, "
               "rope_theta 10000, interleaved rotary weights, no attention bias, tie_word_embeddings false)",
           "positions": "DeepSeek-V3 §2.1.1: decoupled RoPE on a separate query/key part",
           "mlp": "DeepSeek-V3 §2.1.2: DeepSeekMoE's SwiGLU experts (hidden_act silu)",
           "train_ctx_len": "DeepSeek-V3 §4.2: maximum sequence length 4K during pre-training",
           "train_tokens": "DeepSeek-V3 §4.1: 14.8T tokens", "tokenizer": "DeepSeek-V3 §4.1: byte-level BPE, 128K",
           "optimizer": "DeepSeek-V3 §4.2: AdamW (beta1 0.9, beta2 0.95, weight_decay 0.1)",
           "published_params": "DeepSeek-V3 §1 (abstract and Table 1): 671B total parameters, 37B activated"}),
    recipe=Recipe(
        optimizer="adamw", betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1,
        init="normal02", schedule="cosine", aux_loss=0.0001,
        sources={**SMALL_RUN, **S({
            "optimizer betas weight_decay": "DeepSeek-V3 §4.2: AdamW, beta1 0.9, beta2 0.95, weight_decay 0.1",
            "eps": A("1e-8 (PyTorch's default); DeepSeek-V3 gives none"),
            "grad_clip": "DeepSeek-V3 §4.2: gradient clipping norm 1.0",
            "schedule min_lr_ratio": "DeepSeek-V3 §4.2: warmup, constant 2.2e-4 to 10T tokens, cosine to 2.2e-5 "
                                     "(10%); the constant stage is not modelled here",
            "init": A("N(0, 0.02); DeepSeek-V3 §4.2's std 0.006 is for the 671B model"),
            "z_loss": "DeepSeek-V3 §4.2: no z-loss (cross-entropy, MTP and balance losses only)",
            "aux_loss": "DeepSeek-V3 §4.2: sequence-wise balance loss alpha = 0.0001; here it multiplies "
                        "transformers' batch-wise form, top_k x eq. 17's; balancing is mainly the bias rule"})}),
    template="deepseek-v3-671b",
)
add(_dsv3, "deepseek-v3-671b", d_model=7168, n_layers=61, n_heads=128, n_kv_heads=128, head_dim=192, d_ff=18432,
    moe=MoE(n_experts=256, top_k=8, d_ff_expert=2048, renormalize=True, d_ff_shared=2048, router="sigmoid",
            route_bias=True, n_groups=8, topk_groups=4, routed_scale=2.5, first_dense=3),
    published_params=671e9, aliases=("deepseek-v3", "deepseek"), flagship=True)

# ==================================================================================== Qwen 3
_QWEN3_CFG = "HF Qwen/Qwen3-{8B,30B-A3B} config.json"
_qwen3 = Family(
    "qwen3", 2025, "Yang et al. 2025, Qwen3 Technical Report (arXiv 2505.09388)",
    arch={"vocab_size": 151936, "ctx_len": 40960, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-6,
          "norm_placement": "pre", "final_norm": True, "positions": "rope", "rope_theta": 1e6, "mlp": "swiglu",
          "bias": "none", "tied_embeddings": False, "qk_norm": True, "qk_norm_width": "head"},
    cat={"train_ctx_len": 4096, "train_tokens": 36e12, "optimizer": "not published",
         "tokenizer": "byte-level BPE (151,669)"},
    src=S({"d_model head_dim d_ff": f"{_QWEN3_CFG} (hidden_size, head_dim 128, intermediate_size)",
           "n_layers n_heads n_kv_heads tied_embeddings": "Qwen3 Table 1 / Table 2 (layers, Q / KV heads, tie "
                                                          "embedding: no for 8B and 30B-A3B)",
           "vocab_size ctx_len norm_eps rope_theta": f"{_QWEN3_CFG} (vocab_size 151936, max_position_embeddings "
                                                     "40960, rms_norm_eps 1e-6, rope_theta 1e6)",
           "norm norm_bias norm_placement final_norm positions mlp": "Qwen3 §2: GQA, SwiGLU, RoPE, RMSNorm with "
                                                                    "pre-normalization (as Qwen2.5)",
           "bias qk_norm qk_norm_width": "Qwen3 §2: 'remove QKV-bias used in Qwen2 and introduce QK-Norm' (per "
                                         "head: q_norm over head_dim in the released weights)",
           "train_ctx_len": "Qwen3 §3.1: stages 1-2 at sequence length 4,096 (stage 3: 32,768)",
           "train_tokens": "Qwen3 §3: 36 trillion tokens", "tokenizer": "Qwen3 §2: Qwen's BBPE, 151,669 tokens",
           "optimizer": "Qwen3 report: not published",
           "published_params": "HF Qwen/Qwen3-8B model card: 8.2B parameters"}),
    recipe=_inherit(LLAMA_RECIPE, "the Qwen3 report publishes no optimizer settings; Llama's AdamW"),
    template="qwen3-8b",
)
add(_qwen3, "qwen3-8b", d_model=4096, n_layers=36, n_heads=32, n_kv_heads=8, head_dim=128, d_ff=12288,
    published_params=8.2e9, aliases=("qwen3",), flagship=True)
add(_qwen3, "qwen3-30b-a3b", d_model=2048, n_layers=48, n_heads=32, n_kv_heads=4, head_dim=128, d_ff=6144,
    # 128 routed experts of width 768, top-8 of a softmax renormalised, no shared expert
    moe=MoE(n_experts=128, top_k=8, d_ff_expert=768, renormalize=True), published_params=30.5e9,
    aliases=("qwen3-moe",),
    src={"moe": f"Qwen3 §2 / Table 2: 128 experts, 8 activated, no shared experts; {_QWEN3_CFG} "
                "(moe_intermediate_size 768, norm_topk_prob true, decoder_sparse_step 1)",
         "published_params": "HF Qwen/Qwen3-30B-A3B model card: 30.5B total, 3.3B activated"},
    recipe=_inherit(LLAMA_RECIPE, "the Qwen3 report publishes no optimizer settings; Llama's AdamW", aux_loss=0.001,
                    sources={"aux_loss": f"HF Qwen/Qwen3-30B-A3B config.json router_aux_loss_coef 0.001 "
                                         f"({_MOE_LOSS}; Qwen3 §2: global-batch balancing)"}))

# ==================================================================================== OLMo 2
_OLMO2_CFG = "HF allenai/OLMo-2-1124-7B config.json"
_olmo2 = Family(
    "olmo2", 2024, "OLMo et al. 2024, 2 OLMo 2 Furious (arXiv 2501.00656)",
    arch={"vocab_size": 100352, "ctx_len": 4096, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-6,
          "norm_placement": "output", "final_norm": True, "positions": "rope", "rope_theta": 500000.0,
          "mlp": "swiglu", "bias": "none", "tied_embeddings": False, "qk_norm": True, "qk_norm_width": "full"},
    cat={"train_ctx_len": 4096, "train_tokens": 4.05e12, "optimizer": "AdamW (0.9, 0.95, eps 1e-8)",
         "tokenizer": "cl100k-based BPE (100,278; 100,352 rows)"},
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps tied_embeddings bias":
           f"{_OLMO2_CFG} (hidden 4096, 32 layers, 32 heads, 32 KV heads, intermediate 11008, vocab 100352, "
           "max_position_embeddings 4096, rms_norm_eps 1e-6, untied, no attention bias)",
           "norm norm_bias norm_placement final_norm": "OLMo 2 §3.2 (Table 4): RMSNorm on the outputs of attention "
                                                       "and MLP inside the residual ('reordered norm'), no input norm",
           "qk_norm qk_norm_width": "OLMo 2 §3.2: QK-norm, RMSNorm on queries and keys before RoPE (over the whole "
                                    "projection: q_norm of width 4096 in the released weights)",
           "positions rope_theta": "OLMo 2 §3.2: RoPE with theta raised from 10,000 to 500,000",
           "mlp": "OLMo 2 §2 (OLMo's architecture): SwiGLU",
           "train_ctx_len": "OLMo 2 §2: pre-training sequence length 4096",
           "train_tokens": "OLMo 2 Table 1 / §4: 7B trained on 4T tokens (stage 1) + 50B (stage 2)",
           "tokenizer": "OLMo 2 §3.3: the cl100k pre-tokenizer and vocabulary (100,278 tokens)",
           "optimizer": "OLMo 2 §3.3: AdamW, epsilon lowered to 1e-8",
           "published_params": "OLMo 2 Table 1 (7B)"}),
    recipe=Recipe(
        optimizer="adamw", betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, grad_clip=1.0, min_lr_ratio=0.1,
        init="normal02", schedule="cosine", z_loss=1e-5,
        sources={**SMALL_RUN, **S({
            "optimizer eps": "OLMo 2 §3.3: AdamW with epsilon 1e-8 (was 1e-5)",
            "betas": A("(0.9, 0.95) as OLMo 1; the OLMo 2 report's table is not restated here"),
            "weight_decay": "OLMo 2 §3.3: weight decay 0.1, none on embeddings (all weights decayed here)",
            "grad_clip": "OLMo 2 §3: gradient clipping at 1.0",
            "schedule min_lr_ratio": "OLMo 2 §4: cosine decay to 10% of the peak (7B, truncated at 4T)",
            "init": "OLMo 2 §3.1: every parameter from N(0, 0.02)",
            "z_loss": "OLMo 2 §3.3: z-loss regularisation (coefficient 1e-5 as OLMo-core's default, assumed)",
            "aux_loss": "OLMo 2: dense model, no balancing loss"})}),
    template="olmo2-7b",
)
add(_olmo2, "olmo2-7b", d_model=4096, n_layers=32, n_heads=32, d_ff=11008, published_params=7e9,
    aliases=("olmo2", "olmo-2"), flagship=True)

# =================================================================================== Gemma 3
_GEMMA3_CFG = "HF google/gemma-3-1b-pt config.json"
_gemma3 = Family(
    "gemma3", 2025, "Gemma Team 2025, Gemma 3 Technical Report (arXiv 2503.19786)",
    arch={"vocab_size": 262144, "ctx_len": 32768, "norm": "rmsnorm_1p", "norm_bias": False, "norm_eps": 1e-6,
          "norm_placement": "sandwich", "final_norm": True, "positions": "rope", "rope_theta": 1e6,
          "rope_theta_local": 10000.0, "attn_pattern": ("local",) * 5 + ("global",), "window": 512,
          "mlp": "geglu", "bias": "none", "tied_embeddings": True, "embed_scale": True, "qk_norm": True,
          "qk_norm_width": "head"},
    cat={"train_ctx_len": 32768, "train_tokens": 2e12, "tokenizer": "SentencePiece (262k)",
         "optimizer": "not published"},
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps": f"{_GEMMA3_CFG} "
           "(hidden 1152, 26 layers, 4 heads, 1 KV head, head_dim 256, intermediate 6912, vocab 262144, "
           "max_position_embeddings 32768, rms_norm_eps 1e-6)",
           "norm norm_bias norm_placement final_norm embed_scale": "Gemma 3 §2: Gemma 2's post-norm and pre-norm "
               "with RMSNorm (x (1 + w)); embeddings x sqrt(d_model) as Gemma",
           "qk_norm qk_norm_width": "Gemma 3 §2: 'we replace the soft-capping of Gemma 2 with QK-norm' (per head)",
           "attn_pattern": "Gemma 3 §2: 5 local layers for every global layer, starting with a local one",
           "window": "Gemma 3 §2: local layers span 1024 tokens; the released 1B config.json sliding_window 512",
           "positions rope_theta rope_theta_local": "Gemma 3 §2: RoPE base 1M on global layers, 10k on local ones",
           "mlp": "Gemma 3 §2: Gemma 2's GeGLU", "bias": f"{_GEMMA3_CFG} attention_bias false",
           "tied_embeddings": f"{_GEMMA3_CFG} (the head is the embedding)",
           "train_ctx_len": "Gemma 3 §2: pre-trained on 32K sequences (the 1B is not extended to 128K)",
           "train_tokens": "Gemma 3 §2.2: 2T tokens for the 1B", "tokenizer": "Gemma 3 §2.2: SentencePiece, 262k",
           "optimizer": "Gemma 3: not published",
           "published_params": "Gemma 3 Table 1: 1B (302M embedding + 698M non-embedding)"}),
    recipe=_inherit(LLAMA_RECIPE, "Gemma 3 publishes no recipe; Llama's AdamW",
                    sources={"init": f"{_GEMMA3_CFG} initializer_range 0.02"}),
    template="gemma3-1b",
)
add(_gemma3, "gemma3-1b", d_model=1152, n_layers=26, n_heads=4, n_kv_heads=1, head_dim=256, d_ff=6912,
    published_params=1.0e9, aliases=("gemma3", "gemma-3"), flagship=True)

# =================================================================================== Llama 4
_L4_CFG = "HF meta-llama/Llama-4-Scout-17B-16E config.json (text_config)"
_llama4 = Family(
    "llama4", 2025, "Meta 2025, The Llama 4 herd (blog post and Llama 4 model card)",
    arch={"vocab_size": 202048, "ctx_len": 10485760, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-5,
          "norm_placement": "pre", "final_norm": True, "positions": "rope", "rope_theta": 500000.0,
          "rope_interleaved": True, "rope_scaling": RopeScaling(16.0, 1.0, 1.0, 8192), "mlp": "swiglu",
          "bias": "none", "tied_embeddings": False, "qk_norm": True, "qk_norm_width": "l2", "nope_every": 4,
          "attn_chunk": 8192, "nope_temp_floor": 8192, "nope_temp_scale": 0.1},
    cat={"train_ctx_len": 8192, "train_tokens": 40e12, "optimizer": "not published",
         "tokenizer": "BPE (202k rows)"},
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps rope_theta bias "
           "tied_embeddings": f"{_L4_CFG} (hidden 5120, 48 layers, 40 / 8 heads of 128, intermediate_size_mlp "
           "16384 (no dense layer in Scout), vocab 202048, max_position_embeddings 10485760, rms_norm_eps 1e-5, "
           "rope_theta 500000, untied)",
           "moe": f"Llama 4 announcement (blog): 16 experts, one routed plus a shared expert per token; {_L4_CFG} "
                  "(intermediate_size 8192, num_experts_per_tok 1, interleave_moe_layer_step 1; transformers: "
                  "sigmoid of the top-1 logit scales the expert's input)",
           "norm norm_bias norm_placement final_norm mlp": f"{_L4_CFG}: Llama's pre-RMSNorm blocks with SwiGLU",
           "positions rope_interleaved": "Llama 4 announcement (blog): RoPE in most layers (Meta's code rotates complex pairs: "
                                         "interleaved)",
           "nope_every": "Llama 4 announcement (blog): 'interleaved attention layers without positional embeddings' (iRoPE); "
                         f"{_L4_CFG} no_rope_layers: every 4th layer",
           "attn_chunk": f"{_L4_CFG} attention_chunk_size 8192 (RoPE layers)",
           "nope_temp_floor nope_temp_scale": "Llama 4 announcement (blog): inference-time temperature scaling of attention; "
                                              f"{_L4_CFG} floor_scale 8192, attn_scale 0.1",
           "qk_norm qk_norm_width": f"{_L4_CFG} use_qk_norm true (a weightless L2 norm after RoPE, RoPE layers)",
           "rope_scaling": f"{_L4_CFG} rope_scaling (llama3, factor 16, low 1, high 1, original 8192)",
           "train_ctx_len": A("8192 (original_max_position_embeddings of the rope scaling); not published"),
           "train_tokens": "Llama 4 model card: ~40T tokens for Scout",
           "tokenizer": f"{_L4_CFG} vocab_size 202048", "optimizer": "Llama 4: not published",
           "published_params": "Llama 4 model card: Scout 17B activated, 109B total (with the vision encoder)"}),
    recipe=_inherit(LLAMA_RECIPE, "Llama 4 publishes no recipe (MetaP tunes per-layer rates); Llama's AdamW",
                    aux_loss=SWITCH_AUX, sources={"aux_loss": A("Switch Transformer's 0.01; Llama 4 gives none")}),
    template="llama4-scout",
)
add(_llama4, "llama4-scout", d_model=5120, n_layers=48, n_heads=40, n_kv_heads=8, head_dim=128, d_ff=16384,
    moe=MoE(n_experts=16, top_k=1, d_ff_expert=8192, renormalize=False, d_ff_shared=8192, router="sigmoid",
            scale_input=True), published_params=109e9, aliases=("llama4", "llama-4", "llama4-scout-17b-16e"),
    flagship=True, notes="The published 109B includes the vision encoder; this entry is the text model.")

# =================================================================================== gpt-oss
_OSS_CFG = "HF openai/gpt-oss-20b config.json"
_gptoss = Family(
    "gpt-oss", 2025, "OpenAI 2025, gpt-oss-120b & gpt-oss-20b Model Card (arXiv 2508.10925)",
    arch={"vocab_size": 201088, "ctx_len": 131072, "norm": "rmsnorm", "norm_bias": False, "norm_eps": 1e-5,
          "norm_placement": "pre", "final_norm": True, "positions": "rope", "rope_theta": 150000.0,
          "rope_scaling": RopeScaling(32.0, 1.0, 32.0, 4096, kind="yarn", truncate=False),
          "attn_pattern": ("local", "global"), "window": 128, "attn_sinks": True, "mlp": "swiglu_clamped",
          "bias": "all", "tied_embeddings": False},
    cat={"train_ctx_len": 4096, "optimizer": "not published", "tokenizer": "o200k_harmony BPE (201,088 rows)",
         "notes": "Training tokens not published ('trillions of tokens')."},
    src=S({"d_model n_layers n_heads n_kv_heads head_dim d_ff vocab_size ctx_len norm_eps": f"{_OSS_CFG} (hidden "
           "2880, 24 layers, 64 query / 8 KV heads of 64, intermediate 2880, vocab 201088, max_position_embeddings "
           "131072, rms_norm_eps 1e-5)",
           "moe": "gpt-oss model card §2.1: 32 experts, top-4, softmax over the selected; "
                  f"{_OSS_CFG} (num_local_experts 32, experts_per_token 4; router and expert biases)",
           "norm norm_bias norm_placement final_norm": "gpt-oss model card §2.1: pre-norm RMSNorm (as GPT-2 / GPT-3 "
                                                       "with RMSNorm)",
           "attn_pattern window": "gpt-oss model card §2.1: alternating banded (128-token window) and dense layers",
           "attn_sinks": "gpt-oss model card §2.1: a learned bias in each head's softmax denominator (sink)",
           "mlp": f"gpt-oss model card §2.1: SwiGLU with clamping and a residual connection; {_OSS_CFG} "
                  "swiglu_limit 7.0 (alpha 1.702)",
           "bias": f"{_OSS_CFG} attention_bias true", "tied_embeddings": f"{_OSS_CFG} tie_word_embeddings false",
           "positions rope_theta": f"gpt-oss model card §2.1: RoPE; {_OSS_CFG} rope_theta 150000",
           "rope_scaling": f"gpt-oss model card §2.1: YaRN to 131,072 tokens; {_OSS_CFG} rope_scaling (yarn, factor "
                           "32, original 4096, beta_fast 32, beta_slow 1, truncate false)",
           "train_ctx_len": A("4096 (original_max_position_embeddings of the YaRN scaling); not published"),
           "tokenizer": "gpt-oss model card §2.3: o200k_harmony tokenizer",
           "optimizer": "gpt-oss model card: not published",
           "published_params": "gpt-oss model card Table 1: gpt-oss-20b 20.91B total, 3.61B active"}),
    recipe=_inherit(LLAMA_RECIPE, "the gpt-oss model card publishes no recipe; Llama's AdamW", aux_loss=SWITCH_AUX,
                    sources={"aux_loss": A("Switch Transformer's 0.01; the gpt-oss model card gives no "
                                           "balancing coefficient")}),
    template="gpt-oss-20b",
)
add(_gptoss, "gpt-oss-20b", d_model=2880, n_layers=24, n_heads=64, n_kv_heads=8, head_dim=64, d_ff=2880,
    moe=MoE(n_experts=32, top_k=4, d_ff_expert=2880, renormalize=True, bias=True), published_params=20.91e9,
    aliases=("gpt-oss", "gptoss"), flagship=True)


# =================================================================================== lookup
BY_NAME: dict[str, Entry] = {}
for _e in ENTRIES:
    assert _e.name and _e.name not in BY_NAME, _e.name
    BY_NAME[_e.name] = _e
ALIASES: dict[str, str] = {}
for _e in ENTRIES:
    for _a in _e.aliases:
        assert _a not in BY_NAME and _a not in ALIASES, _a
        ALIASES[_a] = _e.name
FAMILIES: list[str] = list(dict.fromkeys(e.family for e in ENTRIES))
for _f in FAMILIES:  # a family without a stated template keeps its flagship's proportions
    FAMILY_TEMPLATE.setdefault(_f, next(e.name for e in ENTRIES if e.family == _f and e.flagship))
for _f, _t in FAMILY_TEMPLATE.items():
    assert BY_NAME[_t].family == _f and BY_NAME[_t].arch is not None or _f in ("codex", "gpt4"), (_f, _t)


class UnknownArch(UserError, KeyError):
    def __init__(self, name: str, suggestions: list[str], what: str = "architecture"):
        self.name, self.suggestions = name, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {what} {name!r}{hint} (`llmhist archs` lists them)")

    def __str__(self) -> str:
        return self.args[0]


def get(name: str, buildable: bool = False) -> Entry:
    """The catalogue entry for a name or alias (case-insensitive); a bare family name is its flagship.
    An unknown name is refused with suggestions (only buildable ones where a shape is needed)."""
    key = name.strip().lower()
    if key in BY_NAME:
        return BY_NAME[key]
    if key in ALIASES:
        return BY_NAME[ALIASES[key]]
    flag = [e for e in ENTRIES if e.family == key and e.flagship]
    if flag:
        return flag[0]
    raise UnknownArch(name, suggestions(key, buildable))


def suggestions(key: str, buildable: bool = False, n: int = 4) -> list[str]:
    """Close names for a mistyped one: a family first (`lama3` -> llama3, the family), then entries
    under their canonical names; with buildable, none whose shape was never published (gpt4)."""
    def ok(entry_name: str) -> bool:
        return not buildable or BY_NAME[entry_name].arch is not None

    fams = [f for f in difflib.get_close_matches(key, FAMILIES, n=3, cutoff=0.5) if ok(FAMILY_TEMPLATE[f])]
    pool = list(dict.fromkeys(list(BY_NAME) + list(ALIASES)))
    names = [ALIASES.get(m, m) for m in difflib.get_close_matches(key, pool, n=12, cutoff=0.5)]
    return list(dict.fromkeys(fams + [x for x in names if ok(x)]))[:n]


def arch(name: str) -> Arch:
    """The buildable architecture of a registry entry; SpecError if its shape was never published."""
    return get(name).require_arch()


def family_of(name: str) -> str:
    """The family a name, alias or family name belongs to."""
    key = name.strip().lower()
    return key if key in FAMILIES else get(name).family


def template(family_or_name: str) -> Arch:
    """The architecture whose proportions custom sizes keep: for a family name, the family's template
    (e.g. `llama3` -> llama3-8b, `t5` -> t5-base); for an entry's name or alias, that entry's template
    (itself unless its family says otherwise: `llama-30b` -> llama-33b)."""
    key = family_or_name.strip().lower()
    if key in FAMILY_TEMPLATE:
        return BY_NAME[FAMILY_TEMPLATE[key]].require_arch()
    e = get(family_or_name, buildable=True)
    e.require_arch()
    return BY_NAME[e.template].require_arch()


def build_spec(
    arch: str,
    size: str | None = None,
    *,
    d_model: int | None = None,
    n_layers: int | None = None,
    n_heads: int | None = None,
    **kw,
) -> Arch:
    """Resolve a CLI-style request to a buildable Arch: a registry name, a named small size
    (nano..base) or a registry name of the same family as --size, or an explicit shape."""
    get(arch, buildable=True)  # an unknown name is refused with names that can be built
    shape = (d_model, n_layers, n_heads)
    given = any(v is not None for v in shape)
    for flag, v in zip(("--d-model", "--n-layers", "--n-heads"), shape):
        if v is not None and v < 1:
            raise SpecError(f"{flag} {v}: must be >= 1")
    if size and given:
        raise SpecError("give either --size or an explicit shape (--d-model/--n-layers/--n-heads), not both")
    if size:
        key = size.strip().lower()
        if key in BY_NAME or key in ALIASES:
            e, fam = get(key), family_of(arch)
            if e.family != fam:
                raise SpecError(f"--size {size} is a {e.family} model, not a member of --arch {arch}'s family "
                                f"({fam}); give --arch {e.name}, or a {fam} size "
                                f"({', '.join(x.name for x in ENTRIES if x.family == fam)}) or a named size")
            return e.require_arch()
        return small(template(arch), key, **kw)
    if given:
        if d_model is None or n_layers is None or n_heads is None:
            raise SpecError("an explicit shape needs all of --d-model, --n-layers and --n-heads")
        return resize(template(arch), d_model, n_layers, n_heads, **kw)
    return get(arch).require_arch()


# the values resize() sets for a custom size (the rest are the template's choices, with its sources)
RESIZED = ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "ctx_len",
           "n_enc_layers", "window", "rope_scaling", "query_scale", "rotary_dim", "moe", "attn_width")


def template_note(family_or_name: str) -> str:
    """Why custom sizes keep this template's proportions: the family's flagship, its one published
    shape, or the template the family names, with what its flagship does differently. Named sizes fix
    width, depth and heads, not parameters: an MoE or a wide FFN has more at the same size name."""
    t = template(family_or_name)
    flag = next((e for e in ENTRIES if e.family == t.family and e.flagship), None)
    built = [e for e in ENTRIES if e.family == t.family and e.arch is not None]
    if len(built) == 1:
        why = "the family's one published shape"
    elif flag is None or flag.name == t.name:
        why = "the family's flagship"
    else:
        f = flag.require_arch()
        # the proportions resize() keeps from a template
        kept = {"attention": lambda a: "MHA" if a.kv_heads == a.n_heads else "MQA" if a.kv_heads == 1
                else f"GQA {a.n_heads // a.kv_heads}:1",
                "FFN": lambda a: f"{a.d_ff / a.d_model:.3g} d_model",
                "head width": lambda a: f"{a.head_dim / (a.d_model / a.n_heads):.3g} d_model/n_heads"}
        diff = [f"{k} {fn(t)}, flagship {fn(f)}" for k, fn in kept.items() if fn(t) != fn(f)]
        why = f"the family's named template, not its flagship {flag.name}" + (f": {'; '.join(diff)}"
                                                                             if diff else "")
    return f"{t.name}'s proportions ({why})"


def custom_entry(a: Arch, requested: str, how: str) -> Entry:
    """A catalogue-style record for a custom size, so `show` can give every value a source: the
    choices keep their template's sources; the resized values say how they were chosen."""
    t = get(template(requested).name)
    chosen = f"chosen: {how}; {template_note(requested)}"
    sources = {k: v for k, v in t.sources.items() if k not in RESIZED and k not in ("published_params",
                                                                                  "train_tokens", "train_ctx_len")}
    sources.update({k: chosen for k in RESIZED})
    sources["vocab_size"] = sources["tokenizer"] = "chosen: llmhist trains on bytes (256) by default"
    return Entry(name=a.name, family=a.family, year=t.year, paper=t.paper, arch=a, sources=sources,
                 recipe=t.recipe, template=t.name, optimizer=t.optimizer, tokenizer=f"bytes ({a.vocab_size})",
                 notes=f"{t.family} choices at a custom size: {template_note(requested)}. A named size fixes "
                       "width, depth and heads, not the parameter count (an MoE or a wide FFN has more).")
