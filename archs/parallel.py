"""Per-GPU memory and step time of an Arch trained (and served) under data, tensor, pipeline and sequence
parallelism, ZeRO stages 0-3 and activation recomputation. Pure Python, no torch; the numbers come
from the inventory (accounting.layers), so GQA, MoE and untied heads count as built.

Model state (Rajbhandari et al. 2020, ZeRO §3 and Fig. 1): mixed-precision Adam keeps 2Ψ bytes of
16-bit parameters, 2Ψ of 16-bit gradients and KΨ of optimizer state (K = 12: fp32 master copy,
momentum and variance). Stage 1 divides the KΨ across the N_d data-parallel ranks, stage 2 the
gradients too, stage 3 the parameters too. Tensor and pipeline parallelism divide the model first:
Ψ is what one GPU of one pipeline stage holds (its matmuls / t, its norms whole).

Activations (Korthikanti et al. 2022, "Reducing activation recomputation in large transformer
models"): each layer's per-token terms (accounting.activation_terms) under tensor parallelism t
(eq. 2: the replicated part whole, the rest / t), with sequence parallelism (eq. 3: all / t),
selective recompute (the 5as/h term dropped; Table 2) or full recompute (sbh(2) per layer; Table 2).
Pipeline parallelism with the 1F1B schedule: stage i holds min(p - i, m) micro-batches in flight
(§4.2.3: the first stage holds p, so its L/p layers store L layers' worth, eq. 4), plus the input
embedding's dropout mask on the first stage and the output layer on the last (§4.3). The heaviest
stage is the one reported.

Step time: 6 N_active tokens / (GPUs x peak x MFU) at a stated MFU. The 1F1B bubble (p - 1)/m
(Narayanan et al. 2021, §2.2) is reported beside it: a stated MFU already includes it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .accounting import Layer, activation_terms, kv_cache_bytes_per_token, layers, params
from .spec import Arch, SpecError

RECOMPUTE = ("none", "selective", "full")
ZERO_K = 12  # ZeRO's K for mixed-precision Adam: fp32 master weights, momentum, variance (4 + 4 + 4 bytes)
NOT_COUNTED = ("not counted: the CUDA context, communication buffers, allocator fragmentation and temporary "
               "buffers (ZeRO-3's gathered layers, fp32 upcasts): keep 10-20% of the GPU free")


class LayoutError(SpecError):
    """A parallel layout that cannot work (gpus not divisible by tp x pp, tp not dividing the heads, ...)."""


@dataclass(frozen=True)
class Layout:
    """How a training run is spread over GPUs. None means: the default named beside each field."""

    gpus: int | None = None  # all GPUs; None: tp x pp (one data-parallel rank)
    tp: int = 1  # tensor-parallel degree t
    pp: int = 1  # pipeline stages p
    zero: int = 0  # ZeRO stage 0-3 over the data-parallel ranks
    micro_batch: int = 1  # sequences per micro-batch (b)
    global_batch: int | None = None  # sequences per optimizer step; None: dp x b x m, m = 1 (p = 1) or 4 p
    recompute: str = "selective"  # none | selective | full
    seq_parallel: bool = False  # Korthikanti et al.'s sequence parallelism inside the tensor-parallel group
    ctx: int | None = None  # sequence length s; None: the pre-training length (training), ctx_len (KV cache)
    gpu: str = "h100"
    mfu: float = 0.4

    @property
    def n_gpus(self) -> int:
        return self.gpus if self.gpus is not None else self.tp * self.pp

    @property
    def dp(self) -> int:
        return self.n_gpus // (self.tp * self.pp)

    @property
    def micro_batches(self) -> int:
        """m: micro-batches per step on each data-parallel rank (gradient accumulation, pipeline fill)."""
        if self.global_batch is None:
            return 1 if self.pp == 1 else 4 * self.pp
        return self.global_batch // (self.dp * self.micro_batch)

    def check(self) -> Layout:
        """Every option on its own and together, before any work; a LayoutError names the option."""
        for opt, v in (("--gpus", self.gpus), ("--tp", self.tp), ("--pp", self.pp), ("--micro-batch", self.micro_batch),
                       ("--global-batch", self.global_batch), ("--ctx", self.ctx)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise LayoutError(f"{opt} {v}: must be a whole number >= 1")
        if self.zero not in (0, 1, 2, 3):
            raise LayoutError(f"--zero {self.zero}: ZeRO has stages 0 (off), 1 (optimizer state), 2 (+ gradients), "
                              "3 (+ parameters); give one of 0-3")
        if self.recompute not in RECOMPUTE:
            raise LayoutError(f"--recompute {self.recompute!r}: one of {', '.join(RECOMPUTE)}")
        if not (isinstance(self.mfu, (int, float)) and 0 < self.mfu <= 1):
            raise LayoutError(f"--mfu {self.mfu}: must be in (0, 1] (model FLOPs utilisation, e.g. 0.4)")
        if self.n_gpus % (self.tp * self.pp):
            raise LayoutError(f"--gpus {self.n_gpus} is not divisible by --tp {self.tp} x --pp {self.pp} = "
                              f"{self.tp * self.pp}: the data-parallel degree must be whole (e.g. --gpus "
                              f"{self.tp * self.pp * max(1, self.n_gpus // (self.tp * self.pp))})")
        per_step = self.dp * self.micro_batch
        if self.global_batch is not None and self.global_batch % per_step:
            raise LayoutError(f"--global-batch {self.global_batch} is not divisible by data-parallel {self.dp} x "
                              f"--micro-batch {self.micro_batch} = {per_step}: give a multiple of {per_step}")
        return self

    def check_for(self, a: Arch, s: int) -> None:
        """What the shape must allow: t divides the heads and the MLP widths, p at most the layers."""
        t, name = self.tp, a.name
        if a.n_heads % t:
            raise LayoutError(f"--tp {t} does not divide {name}'s {a.n_heads} attention heads: tensor parallelism "
                              f"gives each GPU whole heads; choose one of {_divisors(a.n_heads)}")
        widths = {"d_ff": a.d_ff} if a.moe is None else {"d_ff_expert": a.moe.d_ff_expert,
                                                          "d_ff_shared": a.moe.d_ff_shared or t}
        for k, w in widths.items():
            if w % t:
                raise LayoutError(f"--tp {t} does not divide {name}'s {k} {w}: the MLP's columns are split over "
                                  f"the tensor-parallel GPUs; choose one of {_divisors(math.gcd(w, a.n_heads))}")
        n = len(layers(a))
        if self.pp > n:
            raise LayoutError(f"--pp {self.pp}: {name} has {n} layers; a pipeline stage needs at least one")
        if self.seq_parallel and s % t:
            raise LayoutError(f"--seq-parallel splits the {s} tokens of a sequence over --tp {t}: give --ctx "
                              f"divisible by {t}")


def layout_from(gpus: int | None = None, tp: int | None = None, pp: int | None = None, zero: int | None = None,
                micro_batch: int | None = None, global_batch: int | None = None, recompute: str | None = None,
                seq_parallel: bool = False, ctx: int | None = None, gpu: str | None = None,
                mfu: float | None = None) -> Layout | None:
    """The Layout the command-line options describe (checked), or None when none of them was given."""
    if all(v is None for v in (gpus, tp, pp, zero, micro_batch, global_batch, recompute, ctx, gpu, mfu)) \
            and not seq_parallel:
        return None
    d = Layout()
    return Layout(gpus=gpus, tp=d.tp if tp is None else tp, pp=d.pp if pp is None else pp,
                  zero=d.zero if zero is None else zero,
                  micro_batch=d.micro_batch if micro_batch is None else micro_batch, global_batch=global_batch,
                  recompute=recompute or d.recompute, seq_parallel=seq_parallel, ctx=ctx, gpu=gpu or d.gpu,
                  mfu=d.mfu if mfu is None else mfu).check()


def _divisors(n: int) -> str:
    return ", ".join(str(k) for k in range(1, n + 1) if n % k == 0 and k <= 64)


# ------------------------------------------------------------------------------- model state
def model_state_bytes(psi: float, dp: int, zero: int) -> dict[str, float]:
    """ZeRO's model states per GPU for Ψ parameters on it (Rajbhandari et al. 2020, Fig. 1):
    2Ψ + 2Ψ + KΨ with K = 12, stage 1 dividing KΨ by N_d, stage 2 also 2Ψ of gradients, stage 3 also
    2Ψ of parameters."""
    return {"params": 2 * psi / (dp if zero >= 3 else 1), "grads": 2 * psi / (dp if zero >= 2 else 1),
            "optimizer": ZERO_K * psi / (dp if zero >= 1 else 1)}


def stages(a: Arch, p: int) -> list[list[Layer]]:
    """The layers of each of p pipeline stages, contiguous and as even as the count allows."""
    ls = layers(a)
    n = len(ls)
    return [ls[i * n // p:(i + 1) * n // p] for i in range(p)]


def stage_params(a: Arch, t: int, p: int) -> list[float]:
    """Parameters one GPU of each pipeline stage holds: its layers' matmuls / t and their norms whole; the
    token embedding (vocab-parallel, / t) and learned positions on the first stage; the final norm and
    the LM head on the last (a tied head is a second copy there when p > 1, as Megatron keeps it)."""
    d, V = a.d_model, a.vocab_size
    P = params(a)
    final = P.non_embedding - sum(L.params for L in layers(a))
    out = []
    for i, chunk in enumerate(stages(a, p)):
        n = sum(sum(m.params for m in L.matmuls) / t + sum(L.other_params.values()) for L in chunk)
        if i == 0:
            n += V * d / t + (a.ctx_len * d if a.positions == "learned" else 0)
        if i == p - 1:
            n += final + ((V * d if not a.tied_embeddings or p > 1 else 0) + (V if a.lm_head_bias else 0)) / t
        out.append(n)
    return out


# ------------------------------------------------------------------------------- activations
def layer_activation_bytes(a: Arch, L: Layer, s: int, b: int, t: int, seq_parallel: bool, recompute: str) -> float:
    """One layer's activations for one micro-batch on one GPU (Korthikanti et al. 2022, Table 2)."""
    if recompute == "full":
        return 2 * s * b * a.d_model  # only the layer's input is kept: sbh(2)
    replicated, split, scores = activation_terms(a, L, s)
    per_token = replicated / (t if seq_parallel else 1) + split / t + (scores / t if recompute == "none" else 0)
    return s * b * per_token


def stage_activations(a: Arch, lay: Layout, s: int) -> list[float]:
    """Activation bytes per GPU of each stage under 1F1B: stage i holds min(p - i, m) micro-batches; the
    first also the embedding's dropout mask (sbh), the last the output layer for one micro-batch
    (4sbh + 4sbv: final norm, head input, fp32 logits; §4.3)."""
    t, p, b, m, sp = lay.tp, lay.pp, lay.micro_batch, lay.micro_batches, lay.seq_parallel
    rep = t if sp else 1
    out = []
    for i, chunk in enumerate(stages(a, p)):
        per = sum(layer_activation_bytes(a, L, s, b, t, sp, lay.recompute) for L in chunk)
        if i == 0:
            per += s * b * a.d_model / rep
        last = s * b * (4 * a.d_model / rep + 4 * a.vocab_size / t) if i == p - 1 else 0.0
        out.append(per * min(p - i, m) + last)
    return out


def kv_cache_per_gpu(a: Arch, lay: Layout, T: int, chunk: list[Layer]) -> float:
    """bf16 KV cache of lay.micro_batch sequences of T tokens held by one GPU of a stage: the stage's
    share of the decoder layers, and ceil(n_kv / t) of the n_kv heads (a head is never split)."""
    n_dec = sum(1 for L in chunk if L.stack == "decoder")
    total = kv_cache_bytes_per_token(a, T=T) * T * lay.micro_batch
    return total * n_dec / a.n_layers * math.ceil(a.kv_heads / lay.tp) / a.kv_heads


# ------------------------------------------------------------------------------------ estimate
def estimate(a: Arch, lay: Layout, train_ctx: int, peak_flops: float, memory_bytes: float) -> dict:
    """Per-GPU memory by part (the heaviest stage), whether it fits, and the step time; with the formula
    behind each number ("how") and what cannot be trusted ("flags")."""
    lay.check()
    s = lay.ctx or train_ctx
    T_inf = lay.ctx or a.ctx_len
    lay.check_for(a, s)
    t, p, dp = lay.tp, lay.pp, lay.dp
    psi = stage_params(a, t, p)
    acts = stage_activations(a, lay, s)
    totals = [sum(model_state_bytes(x, dp, lay.zero).values()) + y for x, y in zip(psi, acts)]
    i = max(range(p), key=lambda k: totals[k])
    train = {"stage": i, "layers_on_stage": len(stages(a, p)[i]), "params_on_gpu": psi[i],
             **model_state_bytes(psi[i], dp, lay.zero), "activations": acts[i]}
    train["total"] = totals[i]
    inf_tot = [2 * x + kv_cache_per_gpu(a, lay, T_inf, c) for x, c in zip(psi, stages(a, p))]
    j = max(range(p), key=lambda k: inf_tot[k])
    infer = {"stage": j, "ctx": T_inf, "sequences": lay.micro_batch, "weights": 2 * psi[j],
             "kv_cache": kv_cache_per_gpu(a, lay, T_inf, stages(a, p)[j]), "total": inf_tot[j]}
    tokens = (lay.global_batch or dp * lay.micro_batch * lay.micro_batches) * s
    flops = 6 * params(a).active * tokens
    step = {"tokens": tokens, "flops_6N": flops, "seconds": flops / (lay.n_gpus * peak_flops * lay.mfu),
            "bubble_fraction": (p - 1) / lay.micro_batches}
    layout = asdict(lay) | {"gpus": lay.n_gpus, "dp": dp, "micro_batches": lay.micro_batches,
                            "global_batch": tokens // s, "ctx": s}
    for part in (train, infer):
        part["memory"] = memory_bytes
        part["fits"] = part["total"] <= memory_bytes
    return {"layout": layout, "training": train, "inference": infer, "step": step,
            "how": how(a, lay, s, i), "flags": flags(a, lay, train)}


def how(a: Arch, lay: Layout, s: int, stage: int) -> dict[str, str]:
    """The formula behind each number, in one short line each."""
    t, p, z = lay.tp, lay.pp, lay.zero
    divided = {0: "nothing", 1: "the optimizer state", 2: "optimizer state and gradients", 3: "all three"}[z]
    eq = {"none": "eq. 2" if not lay.seq_parallel else "eq. 3", "selective": "Table 2, selective (no 5as/h)",
          "full": "Table 2, full recompute"}[lay.recompute]
    per_layer = ("2 s b h (only the layer's input)" if lay.recompute == "full" else
                 f"s b (replicated {'/ t' if lay.seq_parallel else 'whole'} + split / t"
                 + (" + 5as/t" if lay.recompute == "none" else "") + ")")
    return {
        "model_state": f"ZeRO (Rajbhandari et al. 2020, Fig. 1): 2Ψ params + 2Ψ grads + {ZERO_K}Ψ Adam, Ψ = this "
                       f"GPU's slice of its stage (matmuls / t = {t}); stage {z} divides {divided} by N_d = {lay.dp}",
        "activations": f"Korthikanti et al. 2022 {eq}: per layer {per_layer}, s = {s:,}, b = {lay.micro_batch}; "
                       f"1F1B: stage {stage} holds min(p - {stage}, m) = {min(p - stage, lay.micro_batches)} "
                       "micro-batches (§4.2.3, eq. 4); embedding and output layer (§4.3)",
        "kv_cache": "bf16 K and V: 2 n_kv d_head bytes x layers on the stage x ctx x sequences; each GPU keeps "
                    f"ceil(n_kv / t) = {math.ceil(a.kv_heads / t)} of {a.kv_heads} KV heads",
        "step": f"6 N_active x tokens / (GPUs x peak x MFU), MFU = {lay.mfu:g} stated (6N: attention's s-dependent "
                "FLOPs not counted)",
        "bubble": f"(p - 1) / m = ({p} - 1) / {lay.micro_batches}, 1F1B (Narayanan et al. 2021); already inside the MFU",
    }


def flags(a: Arch, lay: Layout, train: dict) -> list[str]:
    """What the numbers above cannot be trusted for."""
    out = [NOT_COUNTED]
    if a.moe is not None:
        out.append("MoE: expert parallelism is not modelled; the experts are split by --tp like a dense MLP, so "
                   "the per-GPU expert weights are what TP alone gives (EP would divide them by the EP degree)")
    if lay.global_batch is None:
        out.append(f"--global-batch not given: m = {lay.micro_batches} micro-batches per step assumed "
                   + ("(4 x p; Narayanan et al. keep m >> p)" if lay.pp > 1 else "(no gradient accumulation)"))
    if lay.pp > 1:
        out.append("pipeline: plain 1F1B; an interleaved schedule (Narayanan et al. 2021 §2.2.2, as Llama 3 used) "
                   "divides the bubble by its virtual stages and holds more micro-batches in flight: not modelled")
    if lay.pp > 1 and lay.micro_batches < lay.pp:
        out.append(f"m = {lay.micro_batches} < p = {lay.pp}: the pipeline never fills")
    if len(layers(a)) % lay.pp:
        out.append(f"{len(layers(a))} layers over {lay.pp} stages: stages hold unequal layers; the heaviest is shown")
    if a.is_encoder_decoder and lay.pp > 1:
        out.append("encoder-decoder: the stages split the encoder's then the decoder's layers as one list (assumed)")
    if lay.seq_parallel and lay.tp == 1:
        out.append("--seq-parallel with --tp 1 changes nothing (it splits within the tensor-parallel group)")
    if lay.recompute == "full":
        out.append("full recompute runs the forward twice: at the same hardware utilisation the MFU is ~3/4 of it")
    if not train["fits"]:
        out.append("training does not fit: try --seq-parallel (with --tp > 1), --recompute full, a higher --zero, "
                   "more --pp or a smaller --micro-batch")
    if train["fits"] and train["total"] > 0.9 * train["memory"]:
        out.append("within 10% of the GPU's memory: the uncounted buffers may not fit")
    return out
