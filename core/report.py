"""The registry as report rows: the timeline (`archs`), one entry in full (`show`), and entries side by
side (`compare`), each judged against published scaling laws, and with a parallel layout their memory
per GPU and step time (llmhist.archs.parallel on a device of the hardware table). Pure Python, no
torch; the CLI (llmhist.cli.archs_cmd) only renders these rows.

It lives in core/ (llmhist.core.report), beside archs/ and scaling/, because it joins llmhist.archs with
llmhist.scaling: inside archs/ it would make archs and scaling import each other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..archs.catalogue import Entry
from ..archs.spec import Arch, SpecError
from .numbers import human, nbytes, sci, short_sci

LAWS = ("hoffmann2022-unrounded", "epoch2024")


NORM = {"layernorm": "LN", "rmsnorm": "RMSNorm", "rmsnorm_1p": "RMSNorm(1+w)"}
MLP = {"gelu": "GELU", "gelu_tanh": "GELU", "relu": "ReLU", "swiglu": "SwiGLU", "geglu": "GeGLU",
       "swiglu_clamped": "SwiGLU clamped"}


def attention(a: Arch) -> str:
    """MHA, MQA, or GQA as query heads / KV heads (`GQA 32/8`: 32 query heads share 8 KV heads); MLA
    (DeepSeek's latent attention: one compressed latent cached for all heads)."""
    if a.mla is not None:
        return "MLA"
    if a.kv_heads == a.n_heads:
        return "MHA"
    return "MQA" if a.kv_heads == 1 else f"GQA {a.n_heads}/{a.kv_heads}"


def choices(a: Arch | None) -> str:
    """One short line of the key architectural choices (a is an Arch, or None: shape unpublished),
    words separated by spaces so that a narrow table wraps it between choices."""
    if a is None:
        return "shape not published"
    pos = {"rope": f"RoPE {short_sci(a.rope_theta)}" + (" scaled" if a.rope_scaling else "")
                   + (f" partial {a.rotary_dim}" if a.rotary_dim else ""),
           "learned": "learned pos", "xl_relative": "XL rel pos", "t5_bias": "T5 rel bias",
           "sinusoidal": "sinusoidal"}.get(a.positions, a.positions)
    parts = [f"{a.norm_placement}-{NORM.get(a.norm, a.norm)}", pos, attention(a), MLP.get(a.mlp, a.mlp)]
    if "local" in a.attn_pattern:
        parts.append("local/global" if a.attn_pattern[0] == "local" else "dense/banded")
    if a.moe:
        parts.append(f"MoE {a.moe.top_k}/{a.moe.n_experts}" + (" +shared" if a.moe.d_ff_shared else ""))
    if a.parallel_block:
        parts.append("parallel")
    if a.attn_softcap:
        parts.append("soft-cap")
    if a.is_encoder_decoder:
        parts.append("enc-dec")
    return ", ".join(parts)


def row(e: Entry) -> dict:
    """One catalogue entry as a timeline row."""
    from ..archs.accounting import params

    out = {"name": e.name, "family": e.family, "year": e.year, "paper": e.paper,
           "shape_known": e.arch is not None, "train_tokens": e.train_tokens, "train_ctx_len": e.train_ctx_len,
           "ctx_len": e.ctx_len, "params_published": e.published_params, "choices": choices(e.arch)}
    if e.arch is not None:
        p = params(e.arch)
        out.update(params_total=p.total, params_non_embedding=p.non_embedding, params_active=p.active)
    else:
        out.update(params_total=None, params_non_embedding=None, params_active=None)
    # per active parameter; a model whose shape was never published counts its published figure
    N = (params(e.arch).active if e.arch is not None else None) or e.published_params
    out["tokens_per_param"] = e.train_tokens / N if e.train_tokens and N else None
    return out


def list_archs(family: str | None = None, since: int | None = None, until: int | None = None) -> list[dict]:
    from ..archs.registry import ENTRIES, FAMILIES, UnknownArch

    if family and family.lower() not in FAMILIES:
        import difflib

        near = difflib.get_close_matches(family.lower(), FAMILIES, n=3)
        raise UnknownArch(family, near, what="--family")
    es = [e for e in ENTRIES if (not family or e.family == family.lower())
          and (since is None or e.year >= since) and (until is None or e.year <= until)]
    return [row(e) for e in sorted(es, key=lambda e: (e.year, e.family, e.published_params or 0))]


def no_rows_note(family: str | None = None, since: int | None = None, until: int | None = None) -> str:
    """What `archs` says when its filters leave no model: which filter, and the years the registry spans."""
    from ..archs.registry import ENTRIES

    pool = [e.year for e in ENTRIES if not family or e.family == family.lower()]
    what = f"no {family.lower()} model" if family else "no model"
    when = " and ".join(x for x in (f"from {since} on" if since is not None else "",
                                     f"up to {until}" if until is not None else "") if x)
    span = f"{min(pool)}" if min(pool) == max(pool) else f"{min(pool)}-{max(pool)}"
    return (f"{what} {when}: the registry's {family.lower() + ' ' if family else ''}models span {span} "
            f"(`llmhist archs{' --family ' + family.lower() if family else ''}` lists them)")


def resolve(name: str, size: str | None = None, d_model: int | None = None, n_layers: int | None = None,
            n_heads: int | None = None, need_shape: bool = True) -> Entry:
    """The catalogue entry to show: a registry entry, or a custom size described as one."""
    from ..archs.registry import build_spec, custom_entry, get

    if size is not None or any(v is not None for v in (d_model, n_layers, n_heads)):
        a = build_spec(name, size, d_model=d_model, n_layers=n_layers, n_heads=n_heads)
        if _is_entry(a.name):  # --size named a registry entry of the family
            return get(a.name)
        how = f"--size {size}" if size else f"--d-model {d_model} --n-layers {n_layers} --n-heads {n_heads}"
        return custom_entry(a, name, how)
    e = get(name)
    if need_shape:
        e.require_arch()
    return e


def _is_entry(name: str) -> bool:
    from ..archs.registry import BY_NAME

    return name in BY_NAME


def describe(e: Entry, layout: Any = None) -> dict:
    """Everything known about one entry: each value with its source, accounting, optimality, and
    which derived numbers rest on an assumed value; with a parallel layout (llmhist.archs.parallel.Layout)
    also the per-GPU memory and step time under it ("parallel")."""
    from ..archs.accounting import summary
    from ..archs.catalogue import CATALOGUE_SOURCED, DEPENDS, rests_on_assumed
    from ..scaling import laws

    shown = e.shown()
    out = {"name": e.name, "family": e.family, "year": e.year, "paper": e.paper, "notes": e.notes,
           "aliases": list(e.aliases), "template": e.template,
           "catalogue": {k: getattr(e, k) for k in CATALOGUE_SOURCED} | {"known": dict(e.known)},
           "spec": e.arch.to_dict() if e.arch is not None else None,
           "recipe": e.recipe.to_dict(),
           "values": {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in shown.items()},
           "sources": {k: e.sources.get(k) for k in shown},
           "assumed": e.assumed()}
    if e.arch is None:
        return out
    if layout is not None:
        out["parallel"] = parallel(e, layout)
    s = summary(e.arch, e.train_tokens, e.train_ctx_len)
    out["accounting"] = s
    out["rests_on_assumed"] = {q: sorted(rests_on_assumed(e, q)) for q in DEPENDS}
    N = s["params"]["active"]
    out["tokens_20x"] = laws.tokens_20x(N)
    optimal: dict[str, dict] = {}
    for name in LAWS:
        law = laws.PUBLISHED[name]
        entry = {"D_opt_for_N": law.d_opt_for_n(N)}
        if e.train_tokens:
            entry.update(laws.compute_optimality(N, e.train_tokens, law))
        optimal[name] = entry
    out["compute_optimal"] = optimal
    return out


COUNTS = ("published_params", "train_tokens")  # counts a paper prints rounded (70B, 1.4T)


def fmt_value(v: Any, key: str | None = None) -> str:
    """A shown value as people read it: a rounded published count as 70B, an exact one as
    6,053,381,344; other floats to 4 significant digits (0.1768, 1e-05); whole floats as integers."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if key in COUNTS and isinstance(v, (int, float)):
        return f"{v:,}" if isinstance(v, int) else human(v)
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    if isinstance(v, tuple):
        return ", ".join(map(str, v))
    return str(v)



def compare(names: Sequence[str], fits: Sequence[str] = (), layout: Any = None) -> tuple[list[Entry], list[dict]]:
    """`compare`'s entries (each must have a published shape) and rows; fits are JSON files from `llmhist fit`;
    a parallel layout adds the per-GPU rows."""
    if len(names) < 2:
        raise SpecError("compare needs at least two models, e.g. `llmhist compare gpt3 chinchilla`")
    entries = [resolve(n) for n in names]
    return entries, compare_rows(entries, fits, layout)


def _optimality_rows(add: Callable, rows: list[dict], section: str, law, N: list, D: list) -> None:
    """compare's rows judging each model (N active parameters, D tokens) under one law: the optimum
    at its compute, and where the law's runs do not reach that compute, a short warning cell (the
    full warning as the row's note)."""
    from ..scaling import laws

    opt = [laws.compute_optimality(n, d, law) if d else None for n, d in zip(N, D)]
    add(section, "N_opt at its C", [o and o["N_opt"] for o in opt], human, rests="tokens")
    add(section, "D_opt at its C", [o and o["D_opt"] for o in opt], human, rests="tokens")
    add(section, "N / N_opt (>1 undertrained)", [o and o["N_over_N_opt"] for o in opt],
        lambda v: "n/a" if v is None else f"{v:.2f}x", rests="tokens")
    add(section, "D_opt for its N", [law.d_opt_for_n(n) for n in N], human, rests="params")
    if any(o and o.get("outside") for o in opt):  # a law judging a run far outside its data
        add(section, "warning", [o and o.get("warning") for o in opt], lambda v: "-" if not v else "yes")
        rows[-1]["shown"] = [", ".join(f"{x['quantity']} {laws.times(x['factor'])} {x['side']}" for x in o["outside"])
                             if o and o.get("outside") else "-" for o in opt]
        rows[-1]["note"] = next(o["warning"] for o in opt if o and o.get("warning"))


def compare_rows(entries: Sequence[Entry], fits: Sequence[str] = (), layout: Any = None) -> list[dict]:
    """Rows for `compare`: raw values (for --json), formatted ones, and per model the assumed
    values each row rests on."""
    from ..archs.accounting import params
    from ..archs.catalogue import applies, rests_on_assumed
    from ..scaling import laws

    rows: list[dict] = []
    specs = [e.require_arch() for e in entries]

    def add(section: str, label: str, values: list, fmt: Callable[[Any], str] = str, rests: str | None = None) -> None:
        if rests is None:
            assumed = [sorted(e.assumed([label]) if label in e.sources else []) for e in entries]
        else:
            assumed = [sorted(rests_on_assumed(e, rests)) for e in entries]
        rows.append({"section": section, "label": label, "values": values, "shown": [fmt(v) for v in values],
                     "assumed": assumed})

    ps = [params(a) for a in specs]
    T = [e.train_ctx_len or a.ctx_len for e, a in zip(entries, specs)]
    add("identity", "year", [e.year for e in entries])
    add("identity", "family", [e.family for e in entries])
    for k in ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "ctx_len"):
        add("shape", k, [getattr(a, k) for a in specs], lambda v: f"{v:,}")
    add("shape", "train_ctx_len", T, lambda v: f"{v:,}")
    add("shape", "n_enc_layers", [a.n_enc_layers for a in specs])
    for k in ("norm", "norm_placement", "final_norm", "positions", "rope_theta", "mlp", "bias", "tied_embeddings",
              "parallel_block", "attn_pattern", "window", "attn_softcap", "final_softcap", "embed_scale", "qk_norm"):
        add("choices", k, [getattr(a, k) if applies(a, k) else None for a in specs],
            lambda v: "-" if v is None else (", ".join(v) if isinstance(v, tuple) else fmt_value(v)))
    add("choices", "MoE", [f"{a.moe.n_experts}x top-{a.moe.top_k}" if a.moe else "-" for a in specs])
    add("choices", "optimizer", [e.optimizer for e in entries])
    add("choices", "tokenizer", [e.tokenizer for e in entries])
    _accounting_rows(add, entries, specs, ps, T)
    D = [e.train_tokens for e in entries]
    add("training", "tokens D", D, human, rests="D")
    add("training", "compute C = 6ND", [6 * p.active * d if d else None for p, d in zip(ps, D)], sci, rests="tokens")
    add("training", "tokens / parameter", [d / p.active if d else None for p, d in zip(ps, D)],
        lambda v: "n/a" if v is None else f"{v:.1f}", rests="tokens")
    chosen = [(n, laws.PUBLISHED[n]) for n in LAWS] + [(Path(f).stem, laws.load(f)) for f in fits]
    for name, law in chosen:
        _optimality_rows(add, rows, f"compute-optimal ({name})", law, [p.active for p in ps], D)
    add("compute-optimal (20 tok/param)", "D for its N", [laws.tokens_20x(p.active) for p in ps], human, rests="params")
    rows += _parallel_compare_rows(entries, layout)
    return rows


def _accounting_rows(add: Callable[..., None], entries: Sequence[Entry], specs: list, ps: list, T: list[int]) -> None:
    """compare's parameter, FLOP and memory rows (each resting on the assumed values it uses)."""
    from ..archs.accounting import activation_bytes_per_token, flops_per_token, kv_cache_bytes_per_token, weight_bytes
    from ..archs.catalogue import FLOPS_RESTS

    add("parameters", "total", [p.total for p in ps], human, rests="params")
    add("parameters", "non-embedding", [p.non_embedding for p in ps], human, rests="params")
    add("parameters", "active per token", [p.active for p in ps], human, rests="params")
    add("parameters", "published", [e.published_params for e in entries], human)
    for conv in ("6N", "chinchilla", "kaplan", "palm"):
        add("FLOPs / token (train, at train_ctx_len)", conv, [flops_per_token(a, conv, t) for a, t in zip(specs, T)],
            sci, rests=FLOPS_RESTS[conv])
    add("memory", "weights bf16", [weight_bytes(a)["bf16"] for a in specs], nbytes, rests="params")
    add("memory", "training state 16 B/param", [16 * p.total for p in ps], nbytes, rests="params")
    add("memory", "activations / token", [activation_bytes_per_token(a, T=t) for a, t in zip(specs, T)], nbytes,
        rests="activations")
    add("memory", "KV cache / token bf16", [kv_cache_bytes_per_token(a) for a in specs], nbytes, rests="kv_cache")
    add("memory", "KV cache at ctx_len", [kv_cache_bytes_per_token(a) * a.ctx_len for a in specs], nbytes,
        rests="kv_cache")


# ------------------------------------------------------------------- per-GPU memory and step time
def parallel(e: Entry, layout: Any) -> dict:
    """Per-GPU memory by part, whether it fits, and the step time of an entry under a parallel layout
    (llmhist.archs.parallel) on a named GPU of the one hardware table, with that table's sources."""
    from ..archs.parallel import estimate
    from ..train.hardware import MEMORY, PEAK, gpu_device

    layout.check()
    key, dtype, peak, memory = gpu_device(layout.gpu)
    a = e.require_arch()
    out = estimate(a, layout, e.train_ctx_len or a.ctx_len, peak, memory)
    out["device"] = {"gpu": key, "dtype": dtype, "peak_flops": peak, "memory_bytes": memory,
                     "peak_source": PEAK[key][dtype][1], "memory_source": MEMORY[key][1]}
    return out


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


_P, _A, _KV = ("params",), ("activations", "flops"), ("params", "kv_cache")
# (label, the quantities (catalogue.DEPENDS) the row rests on, value from an estimate, format)
PARALLEL_ROWS: tuple[tuple[str, tuple[str, ...], Callable[[dict], Any], Callable[[Any], str]], ...] = (
    ("GPUs = dp x tp x pp", (), lambda r: (r["layout"]["gpus"], r["layout"]["dp"], r["layout"]["tp"],
                                           r["layout"]["pp"]), lambda v: f"{v[0]:,} = {v[1]} x {v[2]} x {v[3]}"),
    ("ZeRO stage, recompute, seq-parallel", (), lambda r: (r["layout"]["zero"], r["layout"]["recompute"],
                                                           r["layout"]["seq_parallel"]),
     lambda v: f"{v[0]}, {v[1]}, {'on' if v[2] else 'off'}"),
    ("sequence x micro-batch x micro-batches", (), lambda r: (r["layout"]["ctx"], r["layout"]["micro_batch"],
                                                              r["layout"]["micro_batches"]),
     lambda v: f"{v[0]:,} x {v[1]} x {v[2]}"),
    ("heaviest stage (layers)", (), lambda r: (r["training"]["stage"], r["training"]["layers_on_stage"]),
     lambda v: f"{v[0]} ({v[1]})"),
    ("parameters bf16", _P, lambda r: r["training"]["params"], nbytes),
    ("gradients bf16", _P, lambda r: r["training"]["grads"], nbytes),
    ("optimizer state (fp32 Adam)", _P, lambda r: r["training"]["optimizer"], nbytes),
    ("activations", _A, lambda r: r["training"]["activations"], nbytes),
    ("training total", _A, lambda r: r["training"]["total"], nbytes),
    ("GPU memory", (), lambda r: (r["device"]["gpu"], r["device"]["memory_bytes"]), lambda v: f"{v[0]} {v[1] / 1e9:.0f} GB ({nbytes(v[1])})"),
    ("fits (training)", _A, lambda r: r["training"]["fits"], _yes),
    ("inference: weights bf16", _P, lambda r: r["inference"]["weights"], nbytes),
    ("inference: KV cache bf16", _KV, lambda r: (r["inference"]["kv_cache"], r["inference"]["ctx"],
                                                        r["inference"]["sequences"]),
     lambda v: f"{nbytes(v[0])} ({v[1]:,} tok x {v[2]})"),
    ("fits (inference)", _KV, lambda r: r["inference"]["fits"], _yes),
    ("step time (6N at the stated MFU)", ("flops",), lambda r: (r["step"]["seconds"], r["layout"]["mfu"]),
     lambda v: f"{v[0]:.3g} s at MFU {v[1]:g}"),
    ("pipeline bubble (p-1)/m", (), lambda r: r["step"]["bubble_fraction"], lambda v: f"{v:.1%}"),
)


def parallel_rows(ests: Sequence[dict]) -> list[dict]:
    """The estimates as report rows: label, what each rests on, raw values (for --json) and shown ones."""
    return [{"label": label, "rests": rests, "values": [get(r) for r in ests], "shown": [fmt(get(r)) for r in ests]}
            for label, rests, get, fmt in PARALLEL_ROWS]


def _parallel_compare_rows(entries: Sequence[Entry], layout: Any) -> list[dict]:
    """compare's per-GPU section (none without a layout); its formulas and flags ride in two rows printed
    under the table."""
    from ..archs.catalogue import rests_on_assumed

    if layout is None:
        return []
    ests = [parallel(e, layout) for e in entries]
    section = f"per GPU ({layout_label(ests[0])})"
    rows = [{"section": section, "label": r["label"], "values": r["values"], "shown": r["shown"],
             "assumed": [sorted(set().union(*(rests_on_assumed(e, q) for q in r["rests"]))) for e in entries]}
            for r in parallel_rows(ests)]
    for label in ("how", "flags"):
        values = [x[label] for x in ests]
        rows.append({"section": section, "label": label, "values": values,
                     "shown": [f"{len(v)} lines below" for v in values], "assumed": [[] for _ in entries]})
    return rows


def layout_label(est: dict) -> str:
    """One short line naming a layout: `64 x h100, tp 8, pp 2, ZeRO-1, selective`."""
    L = est["layout"]
    return (f"{L['gpus']:,} x {est['device']['gpu']}, tp {L['tp']}, pp {L['pp']}, ZeRO-{L['zero']}, {L['recompute']}"
            + (", seq-parallel" if L["seq_parallel"] else ""))
