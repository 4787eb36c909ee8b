"""Published scaling laws and their compute-optimal frontiers, in pure Python.

Chinchilla form (Hoffmann et al. 2022, Approach 3): L(N, D) = E + A / N^alpha + B / D^beta, N = all
parameters, D = training tokens, C = 6 N D. Under that constraint the frontier is closed-form:
    N_opt = G (C/6)^a,  D_opt = G^-1 (C/6)^b,  G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta / (alpha + beta)  (exponent of N_opt),  b = alpha / (alpha + beta)  (exponent of D_opt).
Kaplan form (Kaplan et al. 2020): L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D with N =
non-embedding parameters; its compute-efficient frontier N_opt = 1.3e9 (C / PF-day)^0.73.

Fitted laws are JSON files (scaling.fit writes them); `load` turns one into a law object, so
recommendations read fitted constants from files rather than retyped numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day


class _Allocation:
    """What every law shares once it says N_opt(C), D_opt(C) and the C at which N is optimal."""

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

    kind = "chinchilla"

    def loss(self, N: float, D: float) -> float:
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
    n_opt_coef: float = 1.3e9  # N_opt = coef * (C / PF-day)^a  (Kaplan et al. 2020, Fig. 14)
    a: float = 0.73
    source: str = ""
    n_convention: str = "non_embedding"
    intervals: dict = field(default_factory=dict, compare=False)
    samples: tuple = field(default=(), compare=False)

    kind = "kaplan"

    def loss(self, N: float, D: float) -> float:
        return ((self.N_c / N) ** (self.alpha_N / self.alpha_D) + self.D_c / D) ** self.alpha_D

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
        return self.n_opt_coef * (C / PF_DAY) ** self.a

    def d_opt(self, C: float) -> float:
        return C / (6 * self.n_opt(C))

    def c_opt_for_n(self, N: float) -> float:
        """The budget for which N is compute-efficient."""
        return PF_DAY * (N / self.n_opt_coef) ** (1 / self.a)

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
        intervals={"A": (285, 744), "B": (1042, 5810), "E": (1.769, 1.871), "alpha": (0.317, 0.373),
                   "beta": (0.331, 0.415), "a": (0.493, 0.533)}),
    "kaplan2020": Kaplan(
        "kaplan2020", alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13,
        source="Kaplan et al. 2020 (arXiv:2001.08361) joint L(N, D) fit; N_opt = 1.3e9 (C/PF-day)^0.73"),
}
DEFAULT_LAWS = ("hoffmann2022", "hoffmann2022-unrounded", "epoch2024", "kaplan2020")


def tokens_20x(N: float) -> float:
    """The '~20 tokens per parameter' rule (Chinchilla Table 3, Approach 1)."""
    return 20.0 * N


def get(name_or_path: str):
    """A published law by name, or a fit file written by `llmhist fit`."""
    if name_or_path in PUBLISHED:
        return PUBLISHED[name_or_path]
    p = Path(name_or_path)
    if p.exists():
        return load(p)
    raise KeyError(f"unknown law {name_or_path!r}: published laws are {', '.join(PUBLISHED)}, or give a fit JSON path")


def load(path: str | Path):
    """Read a fit JSON (scaling.fit.save) as a law object carrying its intervals and samples."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable fit file ({e})") from e
    law, p = d.get("law"), d.get("params", {})
    iv = {k: tuple(v) for k, v in d.get("intervals", {}).items()}
    samples = tuple(tuple(r) for r in d.get("bootstrap_samples", ()))
    name = d.get("name", path.stem)
    conv = d.get("conventions", {}).get("N", "total")
    try:
        if law == "chinchilla":
            return Chinchilla(name, p["E"], p["A"], p["B"], p["alpha"], p["beta"], source=str(path),
                              n_convention=conv, intervals=iv, samples=samples)
        if law == "kaplan":
            return Kaplan(name, p["alpha_N"], p["alpha_D"], p["N_c"], p["D_c"], source=str(path),
                          n_opt_coef=p.get("n_opt_coef", 1.3e9), a=p.get("a", 0.73), n_convention=conv,
                          intervals=iv, samples=samples)
        if law in ("isoflop", "envelope"):
            rows = tuple(tuple(r) for r in d.get("bootstrap_samples", ()) if len(r) == 4)
            return PowerLaw(name, p["a"], p["k_N"], p["b"], p["k_D"], method=law, source=str(path),
                            n_convention=conv, intervals=iv, samples=rows)
    except KeyError as e:
        raise ValueError(f"{path}: fit file lacks parameter {e}") from e
    raise ValueError(f"{path}: law {law!r} is not one recommend can use (chinchilla, kaplan, isoflop, envelope)")


def compute_optimality(N: float, D: float, law) -> dict:
    """How far a training run (N params, D tokens) was from compute-optimal under a law."""
    C = 6 * N * D
    N_opt, D_opt = law.n_opt(C), law.d_opt(C)
    return {
        "law": law.name, "C": C, "N_opt": N_opt, "D_opt": D_opt,
        "N_over_N_opt": N / N_opt,  # > 1: too big a model for its compute
        "tokens_per_param": D / N, "tokens_per_param_opt": D_opt / N_opt,
        "D_opt_for_N": law.d_opt_for_n(N),
    }
