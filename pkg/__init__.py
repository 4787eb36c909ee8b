"""llmhist: historical LLM architectures, built for real, and the scaling laws fitted to them.

Subpackages: llmhist.archs (registry, accounting, model), llmhist.scaling (laws and fits),
llmhist.train (data, training, sweeps), llmhist.cli (the `llmhist` command).
"""

__version__ = "0.1.0"
