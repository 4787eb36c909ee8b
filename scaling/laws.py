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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from llmhist.errors import UserError

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
        """A warning naming the fitted compute range when C lies far outside it (fitted laws only)."""
        r = getattr(self, "fitted_range", None)
        if not r or "C" not in r:
            return None
        lo, hi = r["C"]
        if C > EXTRAPOLATION_WARN * hi or C < lo / EXTRAPOLATION_WARN:
            factor = C / hi if C > hi else lo / C
            return (f"{self.name}: C = {C:.3g} FLOPs is {factor:.2g}x outside the range this law was fitted on "
                    f"({lo:.3g}-{hi:.3g} FLOPs); the extrapolation is not tested by its data")
        return None

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
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LawError(f"{path}: not a readable fit file ({e})") from e
    if not isinstance(d, dict):
        raise LawError(f"{path}: not a fit file (expected a JSON object)")
    return FitResult.from_dict(d).to_law(source=str(path), default_name=path.stem)


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
    }
