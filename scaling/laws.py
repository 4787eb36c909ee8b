"""Published scaling laws and their compute-optimal frontiers, in pure Python.

Chinchilla form (Hoffmann et al. 2022, Approach 3): L(N, D) = E + A / N^alpha + B / D^beta, N = all
parameters, D = training tokens, C = 6 N D. Under that constraint the frontier is closed-form:
    N_opt = G (C/6)^a,  D_opt = G^-1 (C/6)^b,  G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta / (alpha + beta)  (exponent of N_opt),  b = alpha / (alpha + beta)  (exponent of D_opt).
Kaplan form (Kaplan et al. 2020): L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D with N =
non-embedding parameters; its compute-efficient frontier N_opt = 1.3e9 (C_min / PF-day)^0.73.
Kaplan's C_min is not Chinchilla's C: C_min is the compute of training at a batch far below the
critical batch; training at the critical batch, as runs do, spends C = 2 C_min (Kaplan et al.
§5.1, eq. 5.5). When Hoffmann et al. compare the two (App. D.4: "4.68B" at 1e21 FLOPs) they read
Kaplan's law with C_min = C / 2; this module follows that convention (Kaplan.c_min_over_c = 0.5)
and recommend shows the as-written reading (C_min = C) beside it where they differ.
Losses are on each law's own data: Kaplan's on WebText2 (GPT-2 BPE), Chinchilla's on MassiveText;
they are not comparable across laws (loss_data names it).

Fitted laws are JSON files (scaling.fit writes them); `load` turns one into a law object, so
recommendations read fitted constants from files rather than retyped numbers.

Every law knows the range of the data it was fitted on (a fit's points; for a published law the
paper's runs, PUBLISHED_RANGES, with sources): `range_check` / `range_warning` say when a budget, or
the N and D a law gives for it, lies far outside (EXTRAPOLATION_WARN), and `allocation_warning` does
the same for the allocation CEG, which scores Kaplan's allocation and the optimum under one law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..core.errors import UserError

if TYPE_CHECKING:
    import numpy as np

# a loss evaluates on one point or elementwise on arrays of points (the fitters' residuals)
Num = TypeVar("Num", float, "np.ndarray")

PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day
EXTRAPOLATION_WARN = 10.0  # warn beyond this factor outside a fit's compute range


class LawError(UserError, ValueError):
    """An unknown law name or an unusable fit file; the message says which and what to give."""


def kaplan_loss(N, D, alpha_N, alpha_D, N_c, D_c):
    """Kaplan et al. 2020 eq. 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (works on arrays)."""
    return ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D


class _Allocation:
    """What every law shares once it says N_opt(C), D_opt(C) and the C at which N is optimal."""

    name: str
    kind: str  # "chinchilla", "kaplan" or "power": the form, as each subclass sets it

    def n_opt(self, C: float) -> float:
        raise NotImplementedError

    def d_opt(self, C: float) -> float:
        raise NotImplementedError

    def c_opt_for_n(self, N: float) -> float:
        raise NotImplementedError

    def loss(self, N: float, D: float) -> float | None:
        """Predicted loss at (N, D); None for a law that predicts no loss (an allocation power law)."""
        raise NotImplementedError

    def extrapolation(self, C: float) -> str | None:
        """A warning naming the fitted range when budget C, or the N_opt or D_opt it gives, lies far
        outside the data the law was fitted on (a fit's points; a published law's runs)."""
        return range_warning(self, C=C, N=self.n_opt(C), D=self.d_opt(C))

    def d_opt_for_n(self, N: float) -> float:
        return self.d_opt(self.c_opt_for_n(N))

    def optimum(self, C: float) -> dict:
        N, D = self.n_opt(C), self.d_opt(C)
        return {"N_opt": N, "D_opt": D, "tokens_per_param": D / N, "loss": self.loss(N, D), "C": C}


@dataclass(frozen=True)
class Chinchilla(_Allocation):
    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""
    n_convention: str = "total"  # which N the law was fitted with
    intervals: dict = field(default_factory=dict, compare=False)  # name -> (lo, hi)
    samples: tuple = field(default=(), compare=False)  # bootstrap (E, A, B, alpha, beta) rows
    loss_data: str = "MassiveText (SentencePiece 32k)"  # the data its losses are measured on
    fitted_range: dict | None = field(default=None, compare=False)  # {"C": [lo, hi], ...} of a fit's data

    kind = "chinchilla"

    def loss(self, N: Num, D: Num) -> Num:
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    @property
    def a(self) -> float:
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))

    def n_opt(self, C: float) -> float:
        return self.G * (C / 6) ** self.a

    def d_opt(self, C: float) -> float:
        return (C / 6) ** self.b / self.G

    def c_opt_for_n(self, N: float) -> float:
        """The budget for which N is compute-optimal."""
        return 6 * (N / self.G) ** (1 / self.a)

    def params(self) -> dict:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class Kaplan(_Allocation):
    name: str
    alpha_N: float
    alpha_D: float
    N_c: float
    D_c: float
    alpha_C: float = 0.050
    C_c_pf_days: float = 3.1e8
    n_opt_coef: float = 1.3e9  # N_opt = coef * (C_min / PF-day)^a  (Kaplan et al. 2020, Fig. 14 / eq. 6.1)
    a: float = 0.73
    source: str = ""
    n_convention: str = "non_embedding"
    intervals: dict = field(default_factory=dict, compare=False)
    samples: tuple = field(default=(), compare=False)
    c_min_over_c: float = 0.5  # C_min = C / 2 (training at the critical batch), as Hoffmann et al. App. D.4 read it
    loss_data: str = "WebText2 (GPT-2 BPE)"
    fitted_range: dict | None = field(default=None, compare=False)

    kind = "kaplan"

    def loss(self, N: float, D: float) -> float:
        return kaplan_loss(N, D, self.alpha_N, self.alpha_D, self.N_c, self.D_c)

    def loss_n(self, N: float) -> float:
        return (self.N_c / N) ** self.alpha_N

    def loss_d(self, D: float) -> float:
        return (self.D_c / D) ** self.alpha_D

    def loss_c(self, C: float) -> float:
        return (self.C_c_pf_days / (C / PF_DAY)) ** self.alpha_C

    @property
    def b(self) -> float:
        return 1 - self.a

    def n_opt(self, C: float) -> float:
        return self.n_opt_coef * (self.c_min_over_c * C / PF_DAY) ** self.a

    def d_opt(self, C: float) -> float:
        return C / (6 * self.n_opt(C))

    def c_opt_for_n(self, N: float) -> float:
        """The budget for which N is compute-efficient."""
        return PF_DAY * (N / self.n_opt_coef) ** (1 / self.a) / self.c_min_over_c

    def as_written(self) -> Kaplan:
        """The same law read with C_min = C (Kaplan's formula applied to C as it stands)."""
        from dataclasses import replace

        return replace(self, name=f"{self.name} (C_min = C)", c_min_over_c=1.0)

    def params(self) -> dict:
        return {"alpha_N": self.alpha_N, "alpha_D": self.alpha_D, "N_c": self.N_c, "D_c": self.D_c,
                "a": self.a, "b": self.b}


@dataclass(frozen=True)
class PowerLaw(_Allocation):
    """Chinchilla Approaches 1 and 2: N_opt = k_N C^a and D_opt = k_D C^b, fitted directly. They
    say how to split a budget but predict no loss (loss is None)."""

    name: str
    a: float
    k_N: float
    b: float
    k_D: float
    method: str = "isoflop"
    source: str = ""
    n_convention: str = "total"
    intervals: dict = field(default_factory=dict, compare=False)
    samples: tuple = field(default=(), compare=False)  # bootstrap (a, b, k_N, k_D) rows
    loss_data: str = ""
    fitted_range: dict | None = field(default=None, compare=False)

    kind = "power"

    def n_opt(self, C: float) -> float:
        return self.k_N * C**self.a

    def d_opt(self, C: float) -> float:
        return self.k_D * C**self.b

    def loss(self, N: float, D: float) -> None:
        return None

    def c_opt_for_n(self, N: float) -> float:
        return (N / self.k_N) ** (1 / self.a)

    def params(self) -> dict:
        return {"a": self.a, "k_N": self.k_N, "b": self.b, "k_D": self.k_D}


PUBLISHED = {
    "hoffmann2022": Chinchilla(
        "hoffmann2022", E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
        source="Hoffmann et al. 2022 (arXiv:2203.15556) App. D.2, rounded as printed"),
    "hoffmann2022-unrounded": Chinchilla(
        "hoffmann2022-unrounded", E=math.exp(0.5267228), A=math.exp(6.0073404), B=math.exp(6.0179186),
        alpha=0.33917084, beta=0.2849083,
        source="Hoffmann et al. 2022, unrounded constants as used by later replications (Besiroglu et al. 2024)"),
    "epoch2024": Chinchilla(
        "epoch2024", E=1.8169, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
        source="Besiroglu et al. 2024 (arXiv:2404.10102), refit of Chinchilla's Figure 4 points",
        loss_data="MassiveText (Chinchilla Fig. 4 points)",
        intervals={"A": (285, 744), "B": (1042, 5810), "E": (1.769, 1.871), "alpha": (0.317, 0.373),
                   "beta": (0.331, 0.415), "a": (0.493, 0.533)}),
    "kaplan2020": Kaplan(
        "kaplan2020", alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13,
        source="Kaplan et al. 2020 (arXiv:2001.08361) joint L(N, D) fit; N_opt = 1.3e9 (C_min/PF-day)^0.73, "
               "C_min = C/2 as in Hoffmann et al. 2022 App. D.4"),
}
DEFAULT_LAWS = ("hoffmann2022", "hoffmann2022-unrounded", "epoch2024", "kaplan2020")


# The runs each published law was fitted on: N in the law's own convention, D tokens, C FLOPs, each
# with its source. Outside them a law's number is an extrapolation (range_warning says so).
_CHINCHILLA_RUNS = {
    "N": [70e6, 16e9], "D": [5e9, 500e9], "C": [6e18, 3e21],
    "source": "Hoffmann et al. 2022 abstract: 70M to over 16B parameters on 5B to 500B tokens; §3.2: isoFLOP "
              "budgets 6e18-3e21"}
PUBLISHED_RANGES: dict[str, dict] = {
    "hoffmann2022": _CHINCHILLA_RUNS, "hoffmann2022-unrounded": _CHINCHILLA_RUNS,
    "epoch2024": {**_CHINCHILLA_RUNS, "source": "Besiroglu et al. 2024: Chinchilla's runs, read off Hoffmann et al. "
                                                "2022 Fig. 4 (70M-16B parameters, 5B-500B tokens)"},
    "kaplan2020": {"N": [768, 1.5e9], "D": [22e6, 23e9],
                   "source": "Kaplan et al. 2020 §3: 768 to 1.5B non-embedding parameters, 22M to 23B tokens "
                             "(secondary)"},
}
for _name, _range in PUBLISHED_RANGES.items():
    object.__setattr__(PUBLISHED[_name], "fitted_range", _range)  # frozen dataclasses: set once, here
UNITS = {"C": "FLOPs", "N": "parameters", "D": "tokens"}


def range_check(law, C: float | None = None, N: float | None = None, D: float | None = None) -> list[dict]:
    """Each given quantity lying more than EXTRAPOLATION_WARN outside the law's fitted range:
    {"quantity", "value", "range", "factor", "side"}; [] inside it, or for a law without a range.
    Pure: the ablation's allocation CEG at its budgets (law at N and D, Kaplan at C) can call it too."""
    r = getattr(law, "fitted_range", None) or {}
    out = []
    for q, v in (("C", C), ("N", N), ("D", D)):
        if v is None or q not in r or not v > 0:
            continue
        lo, hi = r[q]
        if v > EXTRAPOLATION_WARN * hi or v < lo / EXTRAPOLATION_WARN:
            out.append({"quantity": q, "value": v, "range": [lo, hi], "factor": v / hi if v > hi else lo / v,
                        "side": "above" if v > hi else "below"})
    return out


def range_warning(law, C: float | None = None, N: float | None = None, D: float | None = None) -> str | None:
    """range_check as one line: how far outside the fitted range each quantity is, and the range's source."""
    far = range_check(law, C, N, D)
    return _warning(law, ", ".join(map(_describe, far)), "the extrapolation is not tested by its data") if far \
        else None


def allocation_warning(law, C: float, kaplan=None) -> str | None:
    """The range check for the allocation CEG at budget C (scaling.ceg.allocation_ceg): `law` scores
    Kaplan's allocation (N = 1.3e9 (C_min/PF-day)^0.73, D = C/6N) and its own optimum, so the budget and
    both points must lie inside the runs it was fitted on. The ablation report's line "allocation vs
    Kaplan's ... 103x at 1e+11" should carry it (train.ablate.allocation_rows, once per budget and law)."""
    kaplan = kaplan or PUBLISHED["kaplan2020"]
    Nk = kaplan.n_opt(C)
    parts = [_describe(x) for x in range_check(law, C=C)]
    parts += [_describe(x, "Kaplan's allocation ") for x in range_check(law, N=Nk, D=C / (6 * Nk))]
    parts += [_describe(x, "its own optimum ") for x in range_check(law, N=law.n_opt(C), D=law.d_opt(C))]
    return _warning(law, ", ".join(parts), "the allocation CEG is an extrapolation") if parts else None


def _describe(x: dict, label: str = "") -> str:
    from ..core.numbers import human

    q, (lo, hi) = x["quantity"], x["range"]
    span = f"{lo:.3g}-{hi:.3g} FLOPs" if q == "C" else f"{human(lo)}-{human(hi)}"
    value = f"{x['value']:.3g} FLOPs" if q == "C" else human(x["value"])
    return f"{label}{q} = {value} is {times(x['factor'])} {x['side']} {span}"


def _warning(law, parts: str, conclusion: str) -> str:
    src = (getattr(law, "fitted_range", None) or {}).get("source")
    return (f"{law.name}: {parts}: outside the range this law was fitted on" + (f" [{src}]" if src else "")
            + f"; {conclusion}")


def times(factor: float) -> str:
    """157 -> '157x', 6e5 -> '6e5x': how many times outside."""
    from ..core.numbers import short_sci

    return f"{factor:.0f}x" if factor < 1000 else f"{short_sci(float(f'{factor:.2g}'))}x"


def tokens_20x(N: float) -> float:
    """The '~20 tokens per parameter' rule (Chinchilla Table 3, Approach 1)."""
    return 20.0 * N


ALIASES = {"chinchilla": "hoffmann2022", "hoffmann": "hoffmann2022", "epoch": "epoch2024", "kaplan": "kaplan2020"}


def get(name_or_path: str):
    """A published law by name (or alias: chinchilla = hoffmann2022), or a fit file written by `llmhist fit`."""
    name = ALIASES.get(name_or_path.lower(), name_or_path) if isinstance(name_or_path, str) else name_or_path
    if name in PUBLISHED:
        return PUBLISHED[name]
    p = Path(name_or_path)
    if p.is_file():
        return load(p)
    raise LawError(f"--law {name_or_path!r}: unknown; published laws are {', '.join(PUBLISHED)} (aliases: "
                   f"{', '.join(f'{k} = {v}' for k, v in ALIASES.items())}), or give a fit JSON with --fit")


def load(path: str | Path):
    """Read a fit JSON (written by `llmhist fit`) as a law object carrying its intervals and samples."""
    from .result import FitResult

    path = Path(path)
    return FitResult.read(path).to_law(source=str(path), default_name=path.stem)


def compute_optimality(N: float, D: float, law) -> dict:
    """How far a training run (N params, D tokens) was from compute-optimal under a law."""
    C = 6 * N * D
    N_opt, D_opt = law.n_opt(C), law.d_opt(C)
    return {
        "law": law.name, "C": C, "N_opt": N_opt, "D_opt": D_opt,
        "N_over_N_opt": N / N_opt,  # > 1: too big a model for its compute
        "tokens_per_param": D / N, "tokens_per_param_opt": D_opt / N_opt,
        "D_opt_for_N": law.d_opt_for_n(N),
        "warning": law.extrapolation(C),
        "outside": range_check(law, C, N_opt, D_opt),  # the warning's numbers, for a short table cell
    }
