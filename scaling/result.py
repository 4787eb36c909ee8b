"""One fit's result as data: the law's parameters, intervals and bootstrap samples, its flags,
the data it was fitted on (source, conventions, fitted range, group) and method details.
`to_dict` is what `llmhist fit` writes; `read(path)` / `from_dict(...)` then `to_law()` is how
recommend and compare read it back (refusing a file that is not a fit, a parameter that is not
finite, and an N_opt exponent that is not positive)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import laws

POWER_SAMPLE = ("a", "b", "k_N", "k_D")  # column order of a power law's bootstrap samples
CHIN_SAMPLE = ("E", "A", "B", "alpha", "beta")
KNOWN_KEYS = ("law", "name", "params", "intervals", "bootstrap_samples", "bootstrap", "flags", "conventions", "data",
              "data_fingerprint", "n_points", "group", "fitted_range", "seed", "skipped", "path")


@dataclass
class FitResult:
    law: str  # chinchilla | isoflop | envelope | kaplan
    name: str
    params: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)  # name -> [lo, hi] (10th, 90th percentiles)
    samples: list = field(default_factory=list)  # bootstrap rows (CHIN_SAMPLE or POWER_SAMPLE order)
    bootstrap: dict = field(default_factory=dict)  # {requested, survived, failed: {reason: count}}
    flags: list = field(default_factory=list)  # sentences: why not to trust this fit
    conventions: dict = field(default_factory=dict)
    data: str = ""
    data_fingerprint: str = ""
    n_points: int = 0
    group: dict = field(default_factory=dict)  # {"key", "label"} of the runs' spec group
    fitted_range: dict = field(default_factory=dict)  # {"C": [lo, hi], "N": [...], "D": [...]}
    seed: int = 0
    details: dict = field(default_factory=dict)  # method, goodness, residuals, minima, refused, entropy...
    skipped: str | None = None
    path: str | None = None

    def to_dict(self) -> dict:
        d = {"law": self.law, "name": self.name, "params": self.params, "intervals": self.intervals,
             "bootstrap": self.bootstrap, "flags": self.flags, "conventions": self.conventions, "data": self.data,
             "data_fingerprint": self.data_fingerprint, "n_points": self.n_points, "group": self.group,
             "fitted_range": self.fitted_range, "seed": self.seed, **self.details,
             "bootstrap_samples": self.samples}
        if self.skipped is not None:
            d["skipped"] = self.skipped
        if self.path is not None:
            d["path"] = self.path
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FitResult:
        return cls(law=d.get("law", ""), name=d.get("name", ""), params=d.get("params", {}),
                   intervals=d.get("intervals", {}), samples=d.get("bootstrap_samples", []),
                   bootstrap=d.get("bootstrap", {}), flags=d.get("flags", []), conventions=d.get("conventions", {}),
                   data=d.get("data", ""), data_fingerprint=d.get("data_fingerprint", ""),
                   n_points=d.get("n_points", 0), group=d.get("group", {}), fitted_range=d.get("fitted_range", {}),
                   seed=d.get("seed", 0), details={k: v for k, v in d.items() if k not in KNOWN_KEYS},
                   skipped=d.get("skipped"), path=d.get("path"))

    @classmethod
    def read(cls, path) -> FitResult:
        """A fit file written by `llmhist fit`; anything else (missing, binary, not JSON, not an
        object) is a LawError naming the file."""
        import json
        from pathlib import Path

        try:
            d = json.loads(Path(path).read_bytes().decode("utf-8"))
        except (OSError, ValueError) as e:  # ValueError: a binary file (UnicodeDecodeError) or bad JSON
            raise laws.LawError(f"{path}: not a readable fit file ({str(e)[:120]})") from e
        if not isinstance(d, dict):
            raise laws.LawError(f"{path}: not a fit file (expected a JSON object)")
        return cls.from_dict(d)

    def interval_note(self) -> str | None:
        """Why the parameters carry no interval (None when they do)."""
        if self.intervals or self.skipped is not None:
            return None
        if self.law == "kaplan":
            return "no intervals: the Kaplan fit is a least-squares point estimate (it is not bootstrapped)"
        if not self.bootstrap or not self.bootstrap.get("requested"):
            return "no intervals: no bootstrap was asked for (--bootstrap 0)"
        return "no intervals: too few bootstrap resamples could be refitted (see the FLAG)"

    def to_law(self, source: str = "", default_name: str = "fit"):
        """The law object (laws.Chinchilla / Kaplan / PowerLaw) with intervals, samples and fitted range.
        A fit whose N_opt exponent is not positive is refused: it says the optimal model shrinks as
        compute grows, so no allocation can be read from it."""
        where = source or self.path or "fit file"
        if self.skipped is not None:
            raise laws.LawError(f"{where}: this law was not fitted ({self.skipped})")
        for k, v in self.params.items():
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise laws.LawError(f"{where}: parameter {k} is {v!r}, not a finite number; the fit failed, refit "
                                    "with `llmhist fit` (and read its flags)")
        a = self.params.get("a")
        if self.law in ("kaplan", "isoflop", "envelope") and isinstance(a, (int, float)) and a <= 0:
            raise laws.LawError(f"{where}: the fitted N_opt exponent a = {a:.3g} is not positive (the optimal model "
                                "would shrink as compute grows), so no recommendation follows from it; refit on "
                                "points from several budgets and read the fit's FLAGs")
        p, name = self.params, self.name or default_name
        iv = {k: tuple(v) for k, v in self.intervals.items()}
        conv = self.conventions.get("N", "total")
        common = {"source": source or self.data, "n_convention": conv, "intervals": iv,
                  "fitted_range": self.fitted_range or None, "loss_data": self.data or "as fitted"}
        try:
            if self.law == "chinchilla":
                samples = tuple(tuple(r) for r in self.samples if len(r) == 5)
                return laws.Chinchilla(name, p["E"], p["A"], p["B"], p["alpha"], p["beta"], samples=samples, **common)
            if self.law == "kaplan":
                return laws.Kaplan(name, p["alpha_N"], p["alpha_D"], p["N_c"], p["D_c"], n_opt_coef=p["n_opt_coef"],
                                   a=p["a"], c_min_over_c=1.0, **common)
            if self.law in ("isoflop", "envelope"):
                samples = tuple(tuple(r) for r in self.samples if len(r) == 4)
                return laws.PowerLaw(name, p["a"], p["k_N"], p["b"], p["k_D"], method=self.law, samples=samples,
                                     **common)
        except KeyError as e:
            raise laws.LawError(f"{where}: fit file lacks parameter {e}") from e
        raise laws.LawError(f"{where}: law {self.law!r} is not one recommend can use (chinchilla, kaplan, isoflop, "
                            "envelope)")
