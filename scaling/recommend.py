"""Compute-optimal recommendations under each law, with intervals from a fit's bootstrap samples, and
(with --gpus) each N_opt's model state per GPU and the days its budget takes on those GPUs.

Pure Python except the inference-aware optimum, which uses scipy's scalar minimiser (imported
there only).
"""

from __future__ import annotations

import math
from dataclasses import replace

from . import laws


class BudgetError(laws.LawError):
    """A budget option that is not a positive finite number, or given with the wrong companions."""


EXAMPLES = {"--params": "7e9", "--tokens": "2e12", "--gpu-hours": "1000", "--inference-tokens": "1e13"}


def number(value, option: str) -> float:
    """value (a number, or the text a user typed) as a float, or a BudgetError naming the option and,
    where the text says what it meant (10**21, 1,000,000, 1e21FLOPs), how to write it."""
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    meant = _meant(str(value))
    how = f"write {option} {meant}" if meant else f"e.g. {option} {EXAMPLES.get(option, '1e21')}"
    raise BudgetError(f"{option} {value!r}: not a number; {how} (scientific notation: 1e21, 2.5e20)") from None


def _meant(text: str) -> str | None:
    """The number a user meant by a power (10**21, 10^21), thousands separators (1,000,000) or a unit
    suffix (1e21FLOPs), written the way the option takes it; None where the text says nothing clear."""
    import re

    from ..core.numbers import short_sci

    t = text.strip().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:\*\*|\^)(\d+)", t)
    if m:
        v = float(m.group(1)) ** int(m.group(2))
    elif re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        v = float(t.replace(",", ""))
    elif re.fullmatch(r"[-+.\deE_]+[A-Za-z/]+", t) and re.sub(r"[A-Za-z/]+$", "", t):
        try:
            v = float(re.sub(r"[A-Za-z/]+$", "", t))
        except ValueError:
            return None
    else:
        return None
    return short_sci(v) if math.isfinite(v) else None


# A typo guard, not physics: the largest trained models used ~1e26 FLOPs (Llama 3.1 405B: 3.8e25), so
# 1e32 leaves a millionfold headroom and still refuses a slipped exponent (1e300).
MAX_VALUE = 1e32


def positive(value, option: str) -> float:
    """value as a positive finite float at most MAX_VALUE, or a BudgetError naming the option."""
    v = number(value, option)
    if not math.isfinite(v) or v <= 0:
        raise BudgetError(f"{option} {v:g}: must be a positive finite number (e.g. {option} "
                          f"{EXAMPLES.get(option, '1e21')})")
    if v > MAX_VALUE:
        raise BudgetError(f"{option} {v:g}: above {MAX_VALUE:g}, which no training run comes near (a typo in the "
                          f"exponent?); e.g. {option} {EXAMPLES.get(option, '1e21')}")
    return v


def budget_from(flops=None, gpu_hours=None, gpu=None, mfu=0.4, dtype="bf16") -> float:
    """C in FLOPs from --flops, or --gpu-hours on --gpu at --mfu (the peak from the one hardware table)."""
    return budget(flops, gpu_hours, gpu, mfu, dtype)["C"]


def budget(flops=None, gpu_hours=None, gpu=None, mfu=0.4, dtype="bf16") -> dict:
    """The budget and how it was reached: {"C"} from --flops; from --gpu-hours also the device the
    --gpu name was read as, its dense peak with the peak's source, the MFU, and a line saying all that."""
    from ..train import hardware

    if flops is not None:
        return {"C": positive(flops, "--flops")}
    if gpu_hours is not None:
        h = positive(gpu_hours, "--gpu-hours")
        peak = hardware.gpu_peak(gpu, dtype)
        if not (0 < mfu <= 1):
            raise BudgetError(f"--mfu {mfu}: must be in (0, 1]")
        name = str(gpu)  # gpu_peak refused a missing or unknown name
        key = name.lower() if name.lower() in hardware.PEAK else str(hardware.match(name))
        source = hardware.PEAK[key][dtype][1]
        read = "" if key == name.lower() else f"--gpu {gpu} read as the table's {key}; "
        C = h * 3600 * peak * mfu
        return {"C": C, "gpu_hours": h, "gpu": gpu, "device": key, "dtype": dtype, "peak_flops": peak,
                "peak_source": source, "mfu": mfu,
                "note": f"{read}C = {h:g} GPU-h x 3600 s x {peak:.3g} FLOP/s ({key} {dtype} dense peak: {source}) "
                        f"x MFU {mfu:g} = {C:.3g} FLOPs"}
    if gpu is not None:
        raise BudgetError(f"--gpu {gpu} needs --gpu-hours H (the budget is hours on that device)")
    raise BudgetError("give a budget: --flops C, or --gpu-hours H --gpu NAME [--mfu 0.4], or --params N, or --tokens D")


def _percentiles(values, q=(10, 90)):
    v = sorted(x for x in values if math.isfinite(x))
    if not v:
        return None
    def pct(p):
        k = (len(v) - 1) * p / 100
        lo, hi = math.floor(k), math.ceil(k)
        return v[lo] + (v[hi] - v[lo]) * (k - lo)
    return tuple(pct(p) for p in q)


def _with_samples(law, fn):
    """fn(law) for the law and for each bootstrap sample it carries -> (value, (lo, hi) | None)."""
    val = fn(law)
    if val is None or not law.samples or law.kind not in ("chinchilla", "power"):
        return val, None
    vals = []
    for row in law.samples:
        try:
            s = (laws.Chinchilla("s", *row) if law.kind == "chinchilla"
                 else laws.PowerLaw("s", row[0], row[2], row[1], row[3]))
            vals.append(fn(s))
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            continue
    return val, _percentiles([v for v in vals if v is not None])


def recommend(law, C: float | None = None, N: float | None = None, D: float | None = None) -> dict:
    """N_opt, D_opt, tokens/param and predicted loss for a budget C (or the C at which N or D is
    optimal), with bootstrap intervals where the law carries samples."""
    if C is None:
        if N is not None:
            C = law.c_opt_for_n(positive(N, "--params"))
        elif D is not None:
            C = _c_for_d(law, positive(D, "--tokens"))
        else:
            raise BudgetError("need C, N or D")
    else:
        C = positive(C, "--flops")
    out = {"law": law.name, "C": C, "source": law.source, "loss_data": getattr(law, "loss_data", ""),
           "warning": law.extrapolation(C)}
    for key, fn in (("N_opt", lambda l: l.n_opt(C)), ("D_opt", lambda l: l.d_opt(C)),
                    ("tokens_per_param", lambda l: l.d_opt(C) / l.n_opt(C)),
                    ("loss", lambda l: l.loss(l.n_opt(C), l.d_opt(C)))):
        v, iv = _with_samples(law, fn)
        out[key] = v
        if iv:
            out[key + "_interval"] = iv
    if law.kind == "kaplan" and getattr(law, "c_min_over_c", 1.0) != 1.0:
        w = law.as_written()
        # the same question under the other reading: a fixed N or D stays fixed, its budget moves
        Cw = w.c_opt_for_n(N) if N is not None else _c_for_d(w, D) if D is not None else C
        out["as_written"] = {"convention": "C_min = C (Kaplan's formula applied to C as it stands)", "C": Cw,
                             "N_opt": w.n_opt(Cw), "D_opt": w.d_opt(Cw), "warning": w.extrapolation(Cw)}
        out["convention"] = (f"C_min = {law.c_min_over_c:g} C (training at the critical batch costs 2 C_min; "
                             "Hoffmann et al. 2022 App. D.4 read Kaplan this way)")
    return out


def _c_for_d(law, D):
    # D_opt(C) is increasing in C: bisect in log space
    lo, hi = 1e10, 1e32
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if law.d_opt(mid) < D:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def inference_aware(law, C: float, inference_tokens: float) -> dict:
    """Sardana & Frankle 2023: the model reaching the loss of the Chinchilla optimum at C that
    minimises training (6 N D) plus inference (2 N D_inf) FLOPs. Solved numerically over N."""
    from scipy.optimize import minimize_scalar

    if law.kind != "chinchilla":
        raise laws.LawError(f"{law.name}: inference-aware sizing needs a parametric L(N, D) of the Chinchilla form")
    N0, D0 = law.n_opt(C), law.d_opt(C)
    target = law.loss(N0, D0)

    def d_for(N):  # tokens needed for N params to reach the target loss
        gap = target - law.E - law.A / N**law.alpha
        return (law.B / gap) ** (1 / law.beta) if gap > 0 else math.inf

    def cost(logN):
        N = math.exp(logN)
        D = d_for(N)
        return math.log(6 * N * D + 2 * N * inference_tokens) if math.isfinite(D) else 1e9

    # the smallest N that can reach the target at all: A / N^alpha < target - E
    n_min = (law.A / (target - law.E)) ** (1 / law.alpha)
    res = minimize_scalar(cost, bounds=(math.log(n_min * 1.0001), math.log(N0 * 1.5)), method="bounded",
                          options={"xatol": 1e-6})
    N = math.exp(res.x)
    D = d_for(N)
    return {"law": law.name, "inference_tokens": inference_tokens, "target_loss": target, "N": N, "D_train": D,
            "tokens_per_param": D / N,
            "N_vs_chinchilla": N / N0, "D_vs_chinchilla": D / D0,
            "total_flops": 6 * N * D + 2 * N * inference_tokens,
            "chinchilla_total_flops": 6 * N0 * D0 + 2 * N0 * inference_tokens}


def on_gpus(rows: list[dict], layout, mfu: float) -> None:
    """With --gpus: each row's N_opt spread over the layout on its --gpu: ZeRO's model state per GPU
    (llmhist.archs.parallel.model_state_bytes, N_opt / (tp x pp) on each GPU before data-parallel
    sharding), whether that fits the GPU's memory, and the days C takes at the MFU."""
    from ..archs.parallel import model_state_bytes
    from ..train.hardware import gpu_device

    key, _, peak, memory = gpu_device(layout.gpu)
    n = layout.n_gpus
    for r in rows:
        state = model_state_bytes(r["N_opt"] / (layout.tp * layout.pp), layout.dp, layout.zero)
        r["per_gpu"] = {"gpu": key, "gpus": n, "tp": layout.tp, "pp": layout.pp, "dp": layout.dp, "zero": layout.zero,
                        **state, "model_state": sum(state.values()), "memory": memory,
                        "fits_model_state": sum(state.values()) <= memory, "days": r["C"] / (n * peak * mfu) / 86400,
                        "how": f"ZeRO-{layout.zero} (Rajbhandari et al. 2020): 2Ψ + 2Ψ + 12Ψ, Ψ = N_opt / (tp pp), "
                               f"divided by dp = {layout.dp} by stage; days = C / (GPUs x peak x MFU {mfu:g})",
                        "flag": "activations not counted (N_opt has no shape): `llmhist show ARCH --gpus ...` "
                                "counts them for an architecture"}


Number = float | str  # a number, or the text a user typed for one (parsed by `number`)


def recommendations(laws_: list[str] | None = None, fits: list[str] | None = None, flops: Number | None = None,
                    gpu_hours: Number | None = None, gpu: str | None = None, mfu: float = 0.4,
                    N: Number | None = None, D: Number | None = None,
                    inference_tokens: Number | None = None, layout=None) -> tuple[list[dict], list[dict] | None]:
    """`llmhist recommend` as a library function: one row per law (published names, then fit JSON
    files) for one budget, and with inference_tokens the inference-aware rows (Chinchilla-form laws);
    with a parallel layout (--gpus, ...) each row's model state per GPU and the days on those GPUs.
    Every option is checked before any work; a bad one raises a BudgetError/LawError naming it."""
    chosen = [laws.get(n) for n in (laws_ or laws.DEFAULT_LAWS)] + [laws.load(f) for f in (fits or [])]
    if sum(x is not None for x in (flops, gpu_hours, N, D)) > 1:
        raise BudgetError("give one budget: --flops, --gpu-hours, --params or --tokens")
    if inference_tokens is not None:
        inference_tokens = number(inference_tokens, "--inference-tokens")
        if not inference_tokens >= 0 or not math.isfinite(inference_tokens):
            raise BudgetError(f"--inference-tokens {inference_tokens:g}: must be >= 0 (tokens the model will serve)")
    N = None if N is None else positive(N, "--params")
    D = None if D is None else positive(D, "--tokens")
    if layout is not None:
        from ..train.hardware import gpu_device

        if not (0 < mfu <= 1):
            raise BudgetError(f"--mfu {mfu}: must be in (0, 1]")
        gpu_device(gpu or layout.gpu)  # an unknown device fails here, before any work
        layout = replace(layout, gpu=gpu or layout.gpu)
    budget_gpu = gpu if layout is None or gpu_hours is not None else None  # --gpu names the devices of --gpus
    b = budget(flops, gpu_hours, budget_gpu, mfu) if N is None and D is None else {}
    rows = [recommend(l, C=b.get("C"), N=N, D=D) for l in chosen]
    for r in rows:
        if "note" in b:
            r["budget"] = b  # how --gpu-hours became C: device, peak and its source, MFU
    if layout is not None:
        on_gpus(rows, layout, mfu)
    if inference_tokens is None:
        return rows, None
    return rows, [inference_aware(l, r["C"], inference_tokens) for l, r in zip(chosen, rows) if l.kind == "chinchilla"]


def loss_data_note(rows: list[dict]) -> str | None:
    """Which data each law's loss is measured on (losses compare within a law, not across)."""
    by_data: dict[str, list[str]] = {}
    for r in rows:
        if r.get("loss") is not None:
            by_data.setdefault(r.get("loss_data") or "its own data", []).append(r["law"])
    if not by_data:
        return None
    return ("loss is measured on: " + "; ".join(f"{d} ({', '.join(ls)})" for d, ls in by_data.items())
            + ". Compare losses within a law, not across.")
