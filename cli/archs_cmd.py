"""`llmhist archs`, `show`, `compare`: render the rows of llmhist.core.report (pure Python, no torch)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..core.numbers import human, nbytes, sci, tokens_len
from .common import console, print_json, say, user_errors

JSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SIZE = Annotated[str | None, typer.Option("--size", help="Named small size (nano, micro, mini, small, base: width, depth and heads, so parameters differ by family) or a registry name.")]
DM = Annotated[int | None, typer.Option("--d-model", help="Explicit width (with --n-layers, --n-heads).")]
NL = Annotated[int | None, typer.Option("--n-layers")]
NH = Annotated[int | None, typer.Option("--n-heads")]

# the parallel layout (llmhist.archs.parallel): show and compare print per-GPU memory and step time when one is given
GPUS = Annotated[int | None, typer.Option("--gpus", help="GPUs in all (default: tp x pp, one data-parallel rank).", rich_help_panel="per-GPU memory")]
TP = Annotated[int | None, typer.Option("--tp", help="Tensor-parallel degree (default 1).", rich_help_panel="per-GPU memory")]
PP = Annotated[int | None, typer.Option("--pp", help="Pipeline stages (default 1; 1F1B schedule).", rich_help_panel="per-GPU memory")]
ZERO = Annotated[int | None, typer.Option("--zero", help="ZeRO stage 0-3 over the data-parallel ranks (default 0).", rich_help_panel="per-GPU memory")]
MB = Annotated[int | None, typer.Option("--micro-batch", help="Sequences per micro-batch (default 1).", rich_help_panel="per-GPU memory")]
GB = Annotated[int | None, typer.Option("--global-batch", help="Sequences per optimizer step (default: dp x micro-batch x m, m = 4 pp).", rich_help_panel="per-GPU memory")]
RECOMPUTE = Annotated[str | None, typer.Option("--recompute", help="Activation recomputation: none, selective (default), full.", rich_help_panel="per-GPU memory")]
SEQP = Annotated[bool, typer.Option("--seq-parallel", help="Sequence parallelism in the tensor-parallel group.", rich_help_panel="per-GPU memory")]
CTX = Annotated[int | None, typer.Option("--ctx", help="Sequence length (default: pre-training length; the KV cache: ctx_len).", rich_help_panel="per-GPU memory")]
GPU = Annotated[str | None, typer.Option("--gpu", help="Device of the hardware table (default h100).", rich_help_panel="per-GPU memory")]
MFU = Annotated[float | None, typer.Option("--mfu", help="Model FLOPs utilisation for the step time (default 0.4).", rich_help_panel="per-GPU memory")]

app = typer.Typer()


@app.command("archs")
def archs_(
    family: Annotated[str | None, typer.Option("--family", "-f", help="Only this family (gpt2, llama, ...).")] = None,
    since: Annotated[int | None, typer.Option(help="Only models from this year on.")] = None,
    until: Annotated[int | None, typer.Option(help="Only models up to this year.")] = None,
    as_json: JSON = False,
) -> None:
    """The registry as a timeline: year, name, parameters, tokens, key choices."""
    from ..core.report import list_archs, no_rows_note

    with user_errors():
        rows = list_archs(family, since, until)
    if as_json:
        return print_json(rows)
    if not rows:
        return say(no_rows_note(family, since, until))
    console.print(_timeline(rows))


def _timeline(rows: list[dict]) -> Table:
    """The timeline at any width (80 columns and pipes too): numbers never wrap, the choices wrap
    between choices (never inside one), a column no row fills is left out, GQA reads query/KV heads."""
    moe = any(r["params_active"] != r["params_total"] for r in rows)
    cols = [c for c in ("year", "name", "params", "active", "tokens", "tok/param", "ctx", "choices")
            if c != "active" or moe]
    cells = []
    for r in rows:
        tpp = r["tokens_per_param"]
        cells.append({"year": str(r["year"]), "name": r["name"],
                      "params": human(r["params_total"] or r["params_published"]),
                      "active": human(r["params_active"]) if r["params_active"] != r["params_total"] else "",
                      "tokens": human(r["train_tokens"]),
                      "tok/param": "n/a" if tpp is None else f"{tpp:.1f}" if tpp < 100 else f"{tpp:,.0f}",
                      "ctx": tokens_len(r["ctx_len"]), "choices": r["choices"]})
    fixed = sum(max(len(c), *(len(x[c]) for x in cells)) + 1 for c in cols if c != "choices")
    width = max(20, console.width - fixed)
    t = Table(title="LLM architectures, oldest first", header_style="bold", box=box.SIMPLE_HEAD, padding=0,
              show_edge=False, caption="active: per token (MoE); GQA q/kv: query/KV heads; MoE k/E: top-k of E experts; ctx: k = 1,024 tokens",
              caption_justify="left")
    for c in cols:
        t.add_column(c, justify="left" if c in ("name", "choices") else "right", no_wrap=True, overflow="fold")
    for x in cells:
        x["choices"] = _wrap(x["choices"].split(", "), width)
        t.add_row(*(x[c] for c in cols))
    return t


def _wrap(parts: list[str], width: int) -> str:
    """Choices joined by ', ' in lines of at most `width`, breaking only between choices."""
    lines = [""]
    for i, p in enumerate(parts):
        word = p + ("," if i < len(parts) - 1 else "")
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return "\n".join(lines)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Registry name or family (gpt2-124m, llama3, ...).")],
    size: SIZE = None, d_model: DM = None, n_layers: NL = None, n_heads: NH = None,
    gpus: GPUS = None, tp: TP = None, pp: PP = None, zero: ZERO = None, micro_batch: MB = None, global_batch: GB = None,
    recompute: RECOMPUTE = None, seq_parallel: SEQP = False, ctx: CTX = None, gpu: GPU = None, mfu: MFU = None,
    as_json: JSON = False,
) -> None:
    """Everything about one model, with the source of each value (assumed values and the
    numbers resting on them are marked *); with --gpus/--tp/--pp/--zero/... its memory per GPU."""
    from ..archs.catalogue import is_assumed
    from ..archs.parallel import layout_from
    from ..core.report import describe, fmt_value, resolve

    with user_errors():
        layout = layout_from(gpus, tp, pp, zero, micro_batch, global_batch, recompute, seq_parallel, ctx, gpu, mfu)
        e = resolve(name, size, d_model, n_layers, n_heads, need_shape=layout is not None)
        d = describe(e, layout)
    if as_json:
        return print_json(d)
    t = Table(title=f"{e.name} ({e.year}) - {e.paper}", header_style="bold", show_lines=False)
    t.add_column("field")
    t.add_column("value")
    t.add_column("source", style="dim")
    for k, v in e.shown().items():
        src = e.sources[k]
        mark = " [yellow]*[/]" if is_assumed(src) else ""
        t.add_row(k, fmt_value(v, k) + mark, src)
    console.print(t)
    if e.notes:
        console.print(f"[dim]{e.notes}[/]")
    if "accounting" not in d:
        console.print(f"[yellow]{e.name}: shape never published; no accounting.[/]")
        return
    rest = d["rests_on_assumed"]
    console.print(_accounting_table(e, d))
    _print_parallel(d.get("parallel"), rest)
    used = sorted({k for v in rest.values() for k in v})
    for k in used:
        console.print(f"[yellow]*[/] {k} = {fmt_value(e.shown()[k], k)}: {e.sources[k]}")


def _accounting_table(e, d: dict) -> Table:
    """show's accounting table (parameters, FLOPs, memory, training, compute-optimal), each value
    resting on an assumed one marked *."""
    from ..archs.catalogue import FLOPS_RESTS

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
    t.add_row("training tokens D", human(s["D"]) + (m("D") if s["D"] else ""))
    t.add_row("training compute 6ND", sci(s["C_6ND"]) + (m("tokens") if s["C_6ND"] else ""))
    t.add_row("tokens per parameter", f"{s['tokens_per_param']:.1f}{m('tokens')}" if s["tokens_per_param"] else "n/a")
    t.add_row("20 tokens/param rule", human(d["tokens_20x"]) + m("params"))
    for law, o in d["compute_optimal"].items():
        t.add_row(f"D_opt for this N ({law})", human(o["D_opt_for_N"]) + m("params"))
        if "N_opt" in o:
            t.add_row(f"N_opt at its compute ({law})", f"{human(o['N_opt'])} (N/N_opt {o['N_over_N_opt']:.2f}){m('tokens')}")
    return t


def _print_parallel(est: dict | None, rest: dict) -> None:
    """show's per-GPU table (with a layout), then the formula behind each number and the flags."""
    from ..core.report import layout_label, parallel_rows

    if est is None:
        return
    t = Table(title=f"per GPU: {layout_label(est)}", header_style="bold")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for r in parallel_rows([est]):
        mark = " [yellow]*[/]" if any(rest.get(q) for q in r["rests"]) else ""
        t.add_row(r["label"], r["shown"][0] + mark)
    console.print(t)
    _print_how_and_flags(est["how"], est["flags"])


def _print_how_and_flags(how: dict, flags: list, name: str = "") -> None:
    if how:
        for k, line in how.items():
            say(f"how {k}: {line}")
    for line in flags:
        say(f"FLAG {name + ': ' if name else ''}{line}", style="yellow")


@app.command("compare")
def compare(
    names: Annotated[list[str], typer.Argument(help="Two or more registry names or families.")],
    fit: Annotated[list[str] | None, typer.Option("--fit", help="Also judge optimality under a fit JSON from `llmhist fit`.")] = None,
    gpus: GPUS = None, tp: TP = None, pp: PP = None, zero: ZERO = None, micro_batch: MB = None, global_batch: GB = None,
    recompute: RECOMPUTE = None, seq_parallel: SEQP = False, ctx: CTX = None, gpu: GPU = None, mfu: MFU = None,
    as_json: JSON = False,
) -> None:
    """Side by side: shapes, choices, parameters, FLOPs, memory, KV cache, tokens, optimality
    (* marks a number resting on an assumed value)."""
    from ..archs.parallel import layout_from
    from ..core.report import compare as compare_entries
    from ..core.report import fmt_value

    with user_errors():
        layout = layout_from(gpus, tp, pp, zero, micro_batch, global_batch, recompute, seq_parallel, ctx, gpu, mfu)
        entries, rows = compare_entries(names, fit or [], layout)
    if as_json:
        return print_json({"models": [e.name for e in entries], "rows": rows})
    t = Table(title="compare (differences highlighted; * rests on an assumed value)", header_style="bold")
    t.add_column("")
    for e in entries:
        t.add_column(e.name, justify="right")
    section = None
    below = [r for r in rows if r["label"] in ("how", "flags") and r["section"].startswith("per GPU")]
    for r in rows:
        if r in below:
            continue
        if r["section"] != section:
            section = r["section"]
            t.add_row(f"[bold cyan]{section}[/]", *[""] * len(entries))
        shown = r["shown"]
        diff = len(set(shown)) > 1
        cells = [f"[yellow]{v}[/]" if diff else v for v in shown]
        cells = [c + (" *" if a else "") for c, a in zip(cells, r["assumed"])]
        t.add_row(r["label"], *cells)
    console.print(t)
    for r in below:  # the formulas (the first model's: the others differ only in stage numbers), then each one's flags
        if r["label"] == "how":
            _print_how_and_flags(r["values"][0], [])
        else:
            for e, fl in zip(entries, r["values"]):
                _print_how_and_flags({}, fl, e.name)
    for r in rows:  # word-wrapped: a note never breaks inside a word at 80 columns
        if r.get("note"):
            console.print(Text(f"warning: {r['note']}"))
    for e in entries:
        for k, src in e.assumed().items():
            console.print(f"* {e.name}: {k} = {fmt_value(e.shown()[k], k)}: {src}")
