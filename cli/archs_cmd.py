"""`llmhist archs`, `show`, `compare`: the registry as tables (pure Python, no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from llmhist.archs.spec import SpecError
from rich.table import Table

from .common import console, human, nbytes, print_json, sci, user_errors

JSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SIZE = Annotated[str | None, typer.Option("--size", help="Named small size (nano, micro, mini, small, base) or a registry name.")]
DM = Annotated[int | None, typer.Option("--d-model", help="Explicit width (with --n-layers, --n-heads).")]
NL = Annotated[int | None, typer.Option("--n-layers")]
NH = Annotated[int | None, typer.Option("--n-heads")]
LAWS = ("hoffmann2022-unrounded", "epoch2024")


def choices(a) -> str:
    """One short line of the key architectural choices (a is an Arch, or None: shape unpublished)."""
    if a is None:
        return "shape not published"
    from llmhist.archs.spec import attention_kind

    pos = {"rope": f"RoPE {a.rope_theta:g}" + (" scaled" if a.rope_scaling else "")
                   + (f" partial {a.rotary_dim}" if a.rotary_dim else ""),
           "learned": "learned pos", "xl_relative": "XL rel pos", "t5_bias": "T5 rel bias",
           "sinusoidal": "sinusoidal"}.get(a.positions, a.positions)
    parts = [f"{a.norm_placement}-{a.norm}", pos, attention_kind(a).replace(":1", ""), a.mlp]
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


def row(e) -> dict:
    """One catalogue entry as a timeline row."""
    from llmhist.archs.accounting import params

    out = {"name": e.name, "family": e.family, "year": e.year, "paper": e.paper,
           "shape_known": e.arch is not None, "train_tokens": e.train_tokens, "train_ctx_len": e.train_ctx_len,
           "ctx_len": e.ctx_len, "params_published": e.published_params, "choices": choices(e.arch)}
    if e.arch is not None:
        p = params(e.arch)
        out.update(params_total=p.total, params_non_embedding=p.non_embedding, params_active=p.active)
    else:
        out.update(params_total=None, params_non_embedding=None, params_active=None)
    return out


def list_archs(family: str | None = None, since: int | None = None, until: int | None = None) -> list[dict]:
    from llmhist.archs.registry import ENTRIES, FAMILIES, UnknownArch

    if family and family.lower() not in FAMILIES:
        import difflib

        near = difflib.get_close_matches(family.lower(), FAMILIES, n=3)
        raise UnknownArch(f"family {family}", near)
    es = [e for e in ENTRIES if (not family or e.family == family.lower())
          and (since is None or e.year >= since) and (until is None or e.year <= until)]
    return [row(e) for e in sorted(es, key=lambda e: (e.year, e.family, e.published_params or 0))]


def resolve(name: str, size=None, d_model=None, n_layers=None, n_heads=None, need_shape: bool = True):
    """The catalogue entry to show: a registry entry, or a custom size described as one."""
    from llmhist.archs.registry import build_spec, custom_entry, get

    if size or d_model or n_layers or n_heads:
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
    from llmhist.archs.registry import BY_NAME

    return name in BY_NAME


def describe(e) -> dict:
    """Everything known about one entry: each value with its source, accounting, optimality, and
    which derived numbers rest on an assumed value."""
    from llmhist.archs.accounting import summary
    from llmhist.archs.catalogue import CATALOGUE_SOURCED, DEPENDS, rests_on_assumed
    from llmhist.scaling import laws

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
    s = summary(e.arch, e.train_tokens, e.train_ctx_len)
    out["accounting"] = s
    out["rests_on_assumed"] = {q: sorted(rests_on_assumed(e, q)) for q in DEPENDS}
    N = s["params"]["active"]
    out["tokens_20x"] = laws.tokens_20x(N)
    out["compute_optimal"] = {}
    for name in LAWS:
        law = laws.PUBLISHED[name]
        entry = {"D_opt_for_N": law.d_opt_for_n(N)}
        if e.train_tokens:
            entry.update(laws.compute_optimality(N, e.train_tokens, law))
        out["compute_optimal"][name] = entry
    return out


def _fmt(v) -> str:
    if isinstance(v, float) and (abs(v) >= 1e6 or 0 < abs(v) < 1e-3):
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return ", ".join(map(str, v))
    return str(v)


def register(app: typer.Typer) -> None:
    @app.command("archs")
    def archs_(
        family: Annotated[str | None, typer.Option("--family", "-f", help="Only this family (gpt2, llama, ...).")] = None,
        since: Annotated[int | None, typer.Option(help="Only models from this year on.")] = None,
        until: Annotated[int | None, typer.Option(help="Only models up to this year.")] = None,
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
        """Everything about one model, with the source of each value (assumed values and the
        numbers resting on them are marked *)."""
        from llmhist.archs.catalogue import FLOPS_RESTS, is_assumed

        with user_errors():
            e = resolve(name, size, d_model, n_layers, n_heads, need_shape=False)
            d = describe(e)
        if as_json:
            return print_json(d)
        t = Table(title=f"{e.name} ({e.year}) - {e.paper}", header_style="bold", show_lines=False)
        t.add_column("field")
        t.add_column("value")
        t.add_column("source", style="dim")
        for k, v in e.shown().items():
            src = e.sources[k]
            mark = " [yellow]*[/]" if is_assumed(src) else ""
            t.add_row(k, _fmt(v) + mark, src)
        console.print(t)
        if e.notes:
            console.print(f"[dim]{e.notes}[/]")
        if "accounting" not in d:
            console.print(f"[yellow]{e.name}: shape never published; no accounting.[/]")
            return
        s, rest = d["accounting"], d["rests_on_assumed"]

        def m(q: str) -> str:
            return " [yellow]*[/]" if rest.get(q) else ""

        t = Table(title="accounting (* rests on an assumed value)", header_style="bold")
        t.add_column("quantity")
        t.add_column("value", justify="right")
        for k, v in s["params"].items():
            t.add_row(f"params {k}", f"{v:,}{m('params')}")
        for k, v in s["flops_per_token"].items():
            t.add_row(f"training FLOPs/token ({k}, T = {s['train_ctx_len']:,})", sci(v) + m(FLOPS_RESTS[k]))
        t.add_row("weights bf16", nbytes(s["weight_bytes"]["bf16"]) + m("params"))
        t.add_row("training state (16 B/param)", nbytes(16 * s["params"]["total"]) + m("params"))
        t.add_row("activations/token (no / full remat)",
                  f"{nbytes(s['activation_bytes_per_token'])} / {nbytes(s['activation_bytes_per_token_recompute'])}"
                  + m("activations"))
        t.add_row(f"KV cache per token (bf16, T = {e.ctx_len:,})", nbytes(s["kv_cache_bytes_per_token_bf16"])
                  + m("kv_cache"))
        t.add_row("training tokens D", human(s["D"]) + m("tokens"))
        t.add_row("training compute 6ND", sci(s["C_6ND"]) + (m("tokens") if s["C_6ND"] else ""))
        t.add_row("tokens per parameter", f"{s['tokens_per_param']:.1f}" if s["tokens_per_param"] else "n/a")
        t.add_row("20 tokens/param rule", human(d["tokens_20x"]))
        for law, o in d["compute_optimal"].items():
            t.add_row(f"D_opt for this N ({law})", human(o["D_opt_for_N"]))
            if "N_opt" in o:
                t.add_row(f"N_opt at its compute ({law})", f"{human(o['N_opt'])} (N/N_opt {o['N_over_N_opt']:.2f})")
        console.print(t)
        used = sorted({k for v in rest.values() for k in v})
        for k in used:
            console.print(f"[yellow]*[/] {k} = {_fmt(e.shown()[k])}: {e.sources[k]}")

    @app.command("compare")
    def compare(
        names: Annotated[list[str], typer.Argument(help="Two or more registry names or families.")],
        fit: Annotated[list[str] | None, typer.Option("--fit", help="Also judge optimality under a fit JSON from `llmhist fit`.")] = None,
        as_json: JSON = False,
    ):
        """Side by side: shapes, choices, parameters, FLOPs, memory, KV cache, tokens, optimality
        (* marks a number resting on an assumed value)."""
        with user_errors():
            if len(names) < 2:
                raise SpecError("compare needs at least two models, e.g. `llmhist compare gpt3 chinchilla`")
            entries = [resolve(n) for n in names]
            rows = compare_rows(entries, fit or [])
        if as_json:
            return print_json({"models": [e.name for e in entries], "rows": rows})
        t = Table(title="compare (differences highlighted; * rests on an assumed value)", header_style="bold")
        t.add_column("")
        for e in entries:
            t.add_column(e.name, justify="right")
        section = None
        for r in rows:
            if r["section"] != section:
                section = r["section"]
                t.add_row(f"[bold cyan]{section}[/]", *[""] * len(entries))
            shown = r["shown"]
            diff = len(set(shown)) > 1
            cells = [f"[yellow]{v}[/]" if diff else v for v in shown]
            cells = [c + (" *" if a else "") for c, a in zip(cells, r["assumed"])]
            t.add_row(r["label"], *cells)
        console.print(t)
        for e in entries:
            for k, src in e.assumed().items():
                console.print(f"* {e.name}: {k} = {_fmt(e.shown()[k])}: {src}")


def compare_rows(entries, fits: list[str] = ()) -> list[dict]:
    """Rows for `compare`: raw values (for --json), formatted ones, and per model the assumed
    values each row rests on."""
    from llmhist.archs.accounting import (
        activation_bytes_per_token,
        flops_per_token,
        kv_cache_bytes_per_token,
        params,
        weight_bytes,
    )
    from llmhist.archs.catalogue import FLOPS_RESTS, rests_on_assumed
    from llmhist.scaling import laws

    rows = []
    specs = [e.require_arch() for e in entries]

    def add(section, label, values, fmt=str, rests=None):
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
        add("choices", k, [getattr(a, k) for a in specs], lambda v: "-" if v is None else (", ".join(v) if isinstance(v, tuple) else str(v)))
    add("choices", "MoE", [f"{a.moe.n_experts}x top-{a.moe.top_k}" if a.moe else "-" for a in specs])
    add("choices", "optimizer", [e.optimizer for e in entries])
    add("choices", "tokenizer", [e.tokenizer for e in entries])
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
    D = [e.train_tokens for e in entries]
    add("training", "tokens D", D, human, rests="tokens")
    add("training", "compute C = 6ND", [6 * p.active * d if d else None for p, d in zip(ps, D)], sci, rests="tokens")
    add("training", "tokens / parameter", [d / p.active if d else None for p, d in zip(ps, D)],
        lambda v: "n/a" if v is None else f"{v:.1f}", rests="tokens")
    chosen = [(n, laws.PUBLISHED[n]) for n in LAWS] + [(Path(f).stem, laws.load(f)) for f in fits]
    for name, law in chosen:
        opt = [laws.compute_optimality(p.active, d, law) if d else None for p, d in zip(ps, D)]
        add(f"compute-optimal ({name})", "N_opt at its C", [o and o["N_opt"] for o in opt], human, rests="tokens")
        add(f"compute-optimal ({name})", "D_opt at its C", [o and o["D_opt"] for o in opt], human, rests="tokens")
        add(f"compute-optimal ({name})", "N / N_opt (>1 undertrained)", [o and o["N_over_N_opt"] for o in opt],
            lambda v: "n/a" if v is None else f"{v:.2f}x", rests="tokens")
        add(f"compute-optimal ({name})", "D_opt for its N", [law.d_opt_for_n(p.active) for p in ps], human,
            rests="params")
        if any(o and o.get("warning") for o in opt):  # a fit judged far outside its data
            add(f"compute-optimal ({name})", "warning", [o and o.get("warning") for o in opt], lambda v: v or "-")
    add("compute-optimal (20 tok/param)", "D for its N", [laws.tokens_20x(p.active) for p in ps], human, rests="params")
    return rows
