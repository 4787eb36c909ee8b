"""`llmhist archs`, `show`, `compare`: the registry as tables (pure Python, no torch)."""

from __future__ import annotations

from pathlib import Path

from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import console, human, nbytes, print_json, sci, user_errors

JSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SIZE = Annotated[Optional[str], typer.Option("--size", help="Named small size (nano, micro, mini, small, base) or a registry name.")]
DM = Annotated[Optional[int], typer.Option("--d-model", help="Explicit width (with --n-layers, --n-heads).")]
NL = Annotated[Optional[int], typer.Option("--n-layers")]
NH = Annotated[Optional[int], typer.Option("--n-heads")]
LAWS = ("hoffmann2022-unrounded", "epoch2024")


def choices(a) -> str:
    """One short line of the key architectural choices."""
    if not a.shape_known:
        return "shape not published"
    pos = {"rope": f"RoPE {a.rope_theta:g}" + (" scaled" if a.rope_scaling else ""), "learned": "learned pos",
           "xl_relative": "XL rel pos", "t5_bias": "T5 rel bias", "sinusoidal": "sinusoidal"}.get(a.positions, a.positions)
    attn = "MHA" if a.kv_heads == a.n_heads else ("MQA" if a.kv_heads == 1 else f"GQA {a.n_heads}/{a.kv_heads}")
    parts = [f"{a.norm_placement}-{a.norm}", pos, attn, a.mlp]
    if "local" in a.attn_pattern:
        parts.append("local/global" if a.attn_pattern[0] == "local" else "dense/banded")
    if a.moe:
        parts.append(f"MoE {a.moe.n_experts}x top-{a.moe.top_k}" + (" +shared" if a.moe.d_ff_shared else ""))
    if a.parallel_block:
        parts.append("parallel")
    if a.attn_softcap:
        parts.append("soft-cap")
    if a.is_encoder_decoder:
        parts.append("enc-dec")
    return ", ".join(parts)


def row(a) -> dict:
    from llmhist.archs.accounting import params

    out = {"name": a.name, "family": a.family, "year": a.year, "paper": a.paper, "source": a.source,
           "shape_known": a.shape_known, "train_tokens": a.train_tokens, "ctx_len": a.ctx_len,
           "params_published": a.published_params, "choices": choices(a)}
    if a.shape_known:
        p = params(a)
        out.update(params_total=p.total, params_non_embedding=p.non_embedding, params_active=p.active)
    else:
        out.update(params_total=None, params_non_embedding=None, params_active=None)
    return out


def list_archs(family: str | None = None, since: int | None = None, until: int | None = None) -> list[dict]:
    from llmhist.archs.registry import ENTRIES, FAMILIES

    if family and family.lower() not in FAMILIES:
        import difflib

        near = difflib.get_close_matches(family.lower(), FAMILIES, n=3)
        raise ValueError(f"unknown family {family!r}" + (f"; did you mean {', '.join(near)}?" if near else "")
                         + f" (families: {', '.join(FAMILIES)})")
    es = [e for e in ENTRIES if (not family or e.family == family.lower())
          and (since is None or e.year >= since) and (until is None or e.year <= until)]
    return [row(e) for e in sorted(es, key=lambda e: (e.year, e.family, e.published_params or 0))]


def resolve(name: str, size=None, d_model=None, n_layers=None, n_heads=None, need_shape: bool = True):
    from llmhist.archs.registry import build_spec, get

    if size or d_model or n_layers or n_heads:
        return build_spec(name, size, d_model=d_model, n_layers=n_layers, n_heads=n_heads)
    a = get(name)
    return a.require_shape() if need_shape else a


def describe(a) -> dict:
    """Everything known about one entry: values with sources, accounting, optimality."""
    from dataclasses import fields

    from llmhist.archs.accounting import summary
    from llmhist.scaling import laws

    vals = {f.name: getattr(a, f.name) for f in fields(a) if f.name not in ("field_sources",)}
    out = {"spec": a.to_dict(), "sources": {k: a.source_of(k) for k in vals}}
    if not a.shape_known:
        return out
    s = summary(a)
    out["accounting"] = s
    N = s["params"]["active"]
    out["tokens_20x"] = laws.tokens_20x(N)
    out["compute_optimal"] = {}
    for name in LAWS:
        law = laws.PUBLISHED[name]
        entry = {"D_opt_for_N": law.d_opt_for_n(N)}
        if a.train_tokens:
            entry.update(laws.compute_optimality(N, a.train_tokens, law))
        out["compute_optimal"][name] = entry
    return out


def register(app: typer.Typer) -> None:
    @app.command("archs")
    def archs_(
        family: Annotated[Optional[str], typer.Option("--family", "-f", help="Only this family (gpt2, llama, ...).")] = None,
        since: Annotated[Optional[int], typer.Option(help="Only models from this year on.")] = None,
        until: Annotated[Optional[int], typer.Option(help="Only models up to this year.")] = None,
        as_json: JSON = False,
    ):
        """The registry as a timeline: year, name, parameters, tokens, key choices."""
        with user_errors():
            rows = list_archs(family, since, until)
        if as_json:
            return print_json(rows)
        t = Table(title="LLM architectures, oldest first", header_style="bold")
        for c, j in (("year", "right"), ("name", "left"), ("params", "right"), ("active", "right"),
                     ("tokens", "right"), ("tok/param", "right"), ("ctx", "right"), ("choices", "left")):
            t.add_column(c, justify=j, no_wrap=c in ("name", "params", "tokens"))
        for r in rows:
            P = r["params_total"] or r["params_published"]
            tpp = r["train_tokens"] / r["params_active"] if (r["train_tokens"] and r["params_active"]) else None
            t.add_row(str(r["year"]), r["name"], human(P), human(r["params_active"]) if r["params_active"] != r["params_total"] else "",
                      human(r["train_tokens"]), f"{tpp:.1f}" if tpp else "n/a", f"{r['ctx_len']:,}" if r["ctx_len"] else "n/a", r["choices"])
        console.print(t)

    @app.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="Registry name or family (gpt2-124m, llama3, ...).")],
        size: SIZE = None, d_model: DM = None, n_layers: NL = None, n_heads: NH = None,
        as_json: JSON = False,
    ):
        """Everything about one model, with the source of each value."""
        with user_errors():
            a = resolve(name, size, d_model, n_layers, n_heads, need_shape=False)
            d = describe(a)
        if as_json:
            return print_json(d)
        t = Table(title=f"{a.name} ({a.year}) - {a.paper}", header_style="bold", show_lines=False)
        t.add_column("field")
        t.add_column("value")
        t.add_column("source", style="dim")
        for k, v in d["spec"].items():
            if k in ("field_sources", "name") or v in (None, (), [], "") and k not in ("train_tokens",):
                continue
            t.add_row(k, str(v), d["sources"].get(k, "") if k not in ("paper", "source", "notes", "family", "year") else "")
        console.print(t)
        if "accounting" not in d:
            console.print(f"[yellow]{a.name}: shape never published; no accounting.[/]")
            return
        s = d["accounting"]
        t = Table(title="accounting", header_style="bold")
        t.add_column("quantity")
        t.add_column("value", justify="right")
        for k, v in s["params"].items():
            t.add_row(f"params {k}", f"{v:,}")
        for k, v in s["flops_per_token"].items():
            t.add_row(f"training FLOPs/token ({k})", sci(v))
        t.add_row("weights bf16", nbytes(s["weight_bytes"]["bf16"]))
        t.add_row("training state (16 B/param)", nbytes(16 * s["params"]["total"]))
        t.add_row("activations/token (no / full remat)",
                  f"{nbytes(s['activation_bytes_per_token'])} / {nbytes(s['activation_bytes_per_token_recompute'])}")
        t.add_row("KV cache per token (bf16)", nbytes(s["kv_cache_bytes_per_token_bf16"]))
        t.add_row("training tokens D", human(s["D"]))
        t.add_row("training compute 6ND", sci(s["C_6ND"]))
        t.add_row("tokens per parameter", f"{s['tokens_per_param']:.1f}" if s["tokens_per_param"] else "n/a")
        t.add_row("20 tokens/param rule", human(d["tokens_20x"]))
        for law, o in d["compute_optimal"].items():
            t.add_row(f"D_opt for this N ({law})", human(o["D_opt_for_N"]))
            if "N_opt" in o:
                t.add_row(f"N_opt at its compute ({law})", f"{human(o['N_opt'])} (N/N_opt {o['N_over_N_opt']:.2f})")
        console.print(t)

    @app.command("compare")
    def compare(
        names: Annotated[list[str], typer.Argument(help="Two or more registry names or families.")],
        fit: Annotated[Optional[list[str]], typer.Option("--fit", help="Also judge optimality under a fit JSON from `llmhist fit`.")] = None,
        as_json: JSON = False,
    ):
        """Side by side: shapes, choices, parameters, FLOPs, memory, KV cache, tokens, optimality."""
        with user_errors():
            if len(names) < 2:
                raise ValueError("compare needs at least two models, e.g. `llmhist compare gpt3 chinchilla`")
            specs = [resolve(n) for n in names]
            rows = compare_rows(specs, fit or [])
        if as_json:
            return print_json({"models": [a.name for a in specs], "rows": rows})
        t = Table(title="compare (differences highlighted)", header_style="bold")
        t.add_column("")
        for a in specs:
            t.add_column(a.name, justify="right")
        section = None
        for r in rows:
            if r["section"] != section:
                section = r["section"]
                t.add_row(f"[bold cyan]{section}[/]", *[""] * len(specs))
            shown = r["shown"]
            diff = len(set(shown)) > 1
            t.add_row(r["label"], *[f"[yellow]{v}[/]" if diff else v for v in shown])
        console.print(t)


def compare_rows(specs, fits: list[str] = ()) -> list[dict]:
    """Rows for `compare`: raw values (for --json) and formatted ones."""
    from llmhist.archs.accounting import activation_bytes_per_token, flops_per_token, kv_cache_bytes_per_token, params, weight_bytes
    from llmhist.scaling import laws

    rows = []

    def add(section, label, values, fmt=str):
        rows.append({"section": section, "label": label, "values": values, "shown": [fmt(v) for v in values]})

    ps = [params(a) for a in specs]
    add("identity", "year", [a.year for a in specs])
    add("identity", "family", [a.family for a in specs])
    for k in ("d_model", "n_layers", "n_heads", "kv_heads", "d_head", "d_ff", "vocab_size", "ctx_len"):
        add("shape", k, [getattr(a, k) for a in specs], lambda v: f"{v:,}")
    add("shape", "encoder layers", [a.n_enc_layers for a in specs])
    for k in ("norm", "norm_placement", "final_norm", "positions", "rope_theta", "mlp", "bias", "tied_embeddings",
              "parallel_block", "attn_pattern", "window", "attn_softcap", "final_softcap", "embed_scale", "qk_norm"):
        add("choices", k, [getattr(a, k) for a in specs], lambda v: "-" if v is None else (", ".join(v) if isinstance(v, tuple) else str(v)))
    add("choices", "MoE", [f"{a.moe.n_experts}x top-{a.moe.top_k}" if a.moe else "-" for a in specs])
    add("choices", "optimizer", [a.optimizer for a in specs])
    add("choices", "tokenizer", [a.tokenizer for a in specs])
    add("parameters", "total", [p.total for p in ps], human)
    add("parameters", "non-embedding", [p.non_embedding for p in ps], human)
    add("parameters", "active per token", [p.active for p in ps], human)
    add("parameters", "published", [a.published_params for a in specs], human)
    for conv in ("6N", "chinchilla", "kaplan"):
        add("FLOPs / token (train)", conv, [flops_per_token(a, conv) for a in specs], sci)
    add("memory", "weights bf16", [weight_bytes(a)["bf16"] for a in specs], nbytes)
    add("memory", "training state 16 B/param", [16 * p.total for p in ps], nbytes)
    add("memory", "activations / token", [activation_bytes_per_token(a) for a in specs], nbytes)
    add("memory", "KV cache / token bf16", [kv_cache_bytes_per_token(a) for a in specs], nbytes)
    add("memory", "KV cache at ctx_len", [kv_cache_bytes_per_token(a) * a.ctx_len for a in specs], nbytes)
    D = [a.train_tokens for a in specs]
    add("training", "tokens D", D, human)
    add("training", "compute C = 6ND", [6 * p.active * d if d else None for p, d in zip(ps, D)], sci)
    add("training", "tokens / parameter", [d / p.active if d else None for p, d in zip(ps, D)],
        lambda v: "n/a" if v is None else f"{v:.1f}")
    chosen = [(n, laws.PUBLISHED[n]) for n in LAWS] + [(Path(f).stem, laws.load(f)) for f in fits]
    for name, law in chosen:
        opt = [laws.compute_optimality(p.active, d, law) if d else None for p, d in zip(ps, D)]
        add(f"compute-optimal ({name})", "N_opt at its C", [o and o["N_opt"] for o in opt], human)
        add(f"compute-optimal ({name})", "D_opt at its C", [o and o["D_opt"] for o in opt], human)
        add(f"compute-optimal ({name})", "N / N_opt (>1 undertrained)", [o and o["N_over_N_opt"] for o in opt],
            lambda v: "n/a" if v is None else f"{v:.2f}x")
        add(f"compute-optimal ({name})", "D_opt for its N", [law.d_opt_for_n(p.active) for p in ps], human)
        if any(o and o.get("warning") for o in opt):  # a fit judged far outside its data (h5)
            add(f"compute-optimal ({name})", "warning", [o and o.get("warning") for o in opt], lambda v: v or "-")
    add("compute-optimal (20 tok/param)", "D for its N", [laws.tokens_20x(p.active) for p in ps], human)
    return rows
