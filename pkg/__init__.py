"""llmhist: historical LLM architectures, built for real, and the scaling laws fitted to them.

Where each module lives. The repository's top-level folders are mapped into this one namespace
(setup.py derives the mapping; always import as `llmhist.x.y`, never by folder name):

    llmhist            pkg/       this file, and the namespace's own modules:
      llmhist.errors   pkg/errors.py    UserError, the base of every error a user can cause and fix
      llmhist.files    pkg/files.py     atomic writes, locks, fault injection (every file write goes here)
      llmhist.numbers  pkg/numbers.py   numbers as people read them (1.23M, 4.5 GiB)
      llmhist.report   pkg/report.py    rows of `archs`, `show`, `compare` (joins archs with scaling)
      llmhist.__main__ pkg/__main__.py  `python -m llmhist`
    llmhist.archs      archs/     registry, catalogue, accounting, the model, the transformers mapping
    llmhist.scaling    scaling/   laws, fitters, the fit pipeline, recommendations, plots
    llmhist.train      train/     run config, data, the training loop, run folders, sweeps, worker
    llmhist.cli        cli/       the `llmhist` command: one Typer app per module, composed in main.py
"""

__version__ = "0.1.0"
