"""llmhist: historical LLM architectures, built for real, and the scaling laws fitted to them.

Where each module lives. The checkout's root is the `llmhist` package (setup.py maps llmhist -> "."),
so a file's folder is its package: inside the package every import is relative and resolves from a
plain checkout (`from ..core.errors import UserError`); tests and users import `llmhist.x.y`.

    llmhist              __init__.py     this file; __version__ (defined in core/__init__.py)
      llmhist.__main__   __main__.py     `python -m llmhist`
    llmhist.core         core/           the modules every other part shares:
      llmhist.core.errors   errors.py    UserError, the base of every error a user can cause and fix
      llmhist.core.files    files.py     atomic writes, locks, fault injection (every file write goes here)
      llmhist.core.numbers  numbers.py   numbers as people read them (1.23M, 4.5 GiB)
      llmhist.core.report   report.py    rows of `archs`, `show`, `compare` (joins archs with scaling)
    llmhist.archs        archs/          registry, catalogue, accounting, the model, the transformers mapping
    llmhist.scaling      scaling/        laws, fitters, the fit pipeline, recommendations, plots
    llmhist.train        train/          run config, data, the training loop, run folders, sweeps, worker
    llmhist.cli          cli/            the `llmhist` command: one Typer app per module, composed in main.py
"""


def __getattr__(name: str) -> str:
    """llmhist.__version__, defined in core/__init__.py and imported on first use: this file imports
    nothing at import time, because pytest imports it under the checkout folder's name (the root is
    a package above tests/), and a relative import there would fail or load a second copy."""
    if name == "__version__":
        from .core import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
