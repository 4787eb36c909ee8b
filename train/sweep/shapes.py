"""Model shapes, shared by sweeps and ablations: the ladder of (d_model, n_layers, n_heads, N) a
family (or every variant of an ablation) can train, the aspect-ratio picker, and where an isoFLOP
budget's sizes are centred.

The ladder follows the proportions of the families' small sizes: head width 8 below d_model 32, 16
below 128, 32 up to 256 and 64 above (whole heads; GQA kept in whole groups), and aspect ratios
d_model / n_layers between 16 and 64 (Kaplan et al. 2020, Fig. 5: loss is flat over a wide range of
shapes at fixed N), so N grows in small steps from ~10^4 to ~10^8.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ...archs import accounting
from ...archs.registry import build_spec, template
from ...archs.spec import Arch, SpecError

MIN_LAYERS, MAX_LAYERS = 1, 48
WIDTHS = (16, 24, *range(32, 257, 16), *range(288, 1025, 32))
ASPECT = 32  # the preferred d_model / n_layers among near ties in N
# Chinchilla's compute-optimal D/N (Hoffmann et al. 2022): an isoFLOP sweep's sizes are centred on
# N = sqrt(C / (6 x 20)); an ablation centres its own on another D/N (--centre-tokens-per-param)
CHINCHILLA_TOKENS_PER_PARAM = 20.0
ISOFLOP_CENTRE = 6 * CHINCHILLA_TOKENS_PER_PARAM  # C / N^2 at the expected optimum (= 120)


class Shape(NamedTuple):
    d_model: int
    n_layers: int
    n_heads: int
    N: int  # total parameters of the spec the ladder was built from


def head_width(d_model: int) -> int:
    return 8 if d_model < 32 else 16 if d_model < 128 else (32 if d_model <= 256 else 64)


def centre_N(C: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> float:
    """The size a budget's sizes are centred on: N = sqrt(C / (6 x D/N))."""
    return math.sqrt(C / (6 * tokens_per_param))


def budget_at(N: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> float:
    """The budget whose centre is N (the inverse of centre_N)."""
    return 6 * tokens_per_param * N**2


def targets(n_mid: float, spread: float, points: int) -> list[float]:
    """`points` sizes log-spaced over `spread` (max/min N), centred on n_mid."""
    return [n_mid * spread ** (i / (points - 1) - 0.5) for i in range(points)]


def ladder(build: Callable[[int, int, int], Arch], heads: Callable[[int], Iterable[int]], min_head_dim: int,
           n_max: float = math.inf, probe: Callable[[int, int], bool] | None = None) -> list[Shape]:
    """Every shape `build(d, L, h)` accepts (a SpecError skips it), sorted by N. Per width, the head
    counts `heads(d // head_width)` are tried in turn and the first that splits d into even heads at
    least min_head_dim wide (and that `probe(d, h)` accepts) is kept. N is counted on the spec
    built; shapes stop at 4 x n_max."""
    out = []
    for d in WIDTHS:
        hd = head_width(d)
        if d % hd:
            continue
        smallest = None
        for h in heads(d // hd):
            if d % h or (d // h) % 2 or d // h < min_head_dim or (probe and not probe(d, h)):
                continue
            for L in range(max(MIN_LAYERS, math.ceil(d / 64)), min(MAX_LAYERS, d // 16) + 1):
                try:
                    N = accounting.params(build(d, L, h)).active
                except SpecError:
                    continue
                smallest = N if smallest is None else smallest
                if N > 4 * n_max:
                    break
                out.append(Shape(d, L, h, N))
            break
        if smallest is not None and smallest > 4 * n_max:
            break
    return sorted(out, key=lambda s: s.N)


def gqa_ratio(kv_heads: int, n_heads: int) -> int:
    """Query heads per KV head (1 for MHA and MQA: their head count is free)."""
    return n_heads // kv_heads if kv_heads not in (1, n_heads) else 1


def family_ladder(arch: str, vocab: int = 256, ctx: int = 128) -> list[Shape]:
    """A family's shapes (its template at each shape), its GQA ratio kept with at least two KV heads
    (one would be MQA), heads at least 8 wide."""
    base = template(arch)
    ratio = gqa_ratio(base.kv_heads, base.n_heads)

    def heads(h0: int) -> list[int]:
        return [ratio * max(2, h0 // ratio)] if ratio > 1 else [h0]

    def build(d: int, L: int, h: int):
        return build_spec(arch, d_model=d, n_layers=L, n_heads=h, vocab_size=vocab, ctx_len=ctx)

    return ladder(build, heads, 8)


def nearest(shapes: list[Shape], target_N: float, tol: float = 0.08) -> Shape:
    """Among shapes within tol (in log N) of the nearest to target_N, the one closest to aspect ratio ASPECT."""
    best = min(shapes, key=lambda s: abs(math.log(s.N / target_N)))
    close = [s for s in shapes if abs(math.log(s.N / target_N)) <= abs(math.log(best.N / target_N)) + tol]
    return min(close, key=lambda s: abs(math.log(s.d_model / s.n_layers / ASPECT)))


def pick_distinct(shapes: list[Shape], wanted: list[float]) -> list[Shape]:
    """One shape per target, each strictly larger than the last (so `points` targets give `points`
    distinct sizes), nearest the target in log N, preferring aspect ratio ~32 among near ties."""
    chosen: list[Shape] = []
    for t in wanted:
        pool = [s for s in shapes if not chosen or s.N > chosen[-1].N * 1.05]
        if not pool:
            break
        chosen.append(nearest(pool, t))
    return chosen


def pick_nearest(shapes: list[Shape], wanted: list[float]) -> list[Shape]:
    """The nearest shape to each target (nearest), repeats dropped: at most one per target."""
    chosen: list[Shape] = []
    for t in wanted:
        s = nearest(shapes, t)
        if s not in chosen:
            chosen.append(s)
    return chosen
