import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory):
    """Token caches, tokenizers and the CPU peak probe go to a per-session folder, not ~/.cache."""
    os.environ["LLMHIST_CACHE"] = str(tmp_path_factory.mktemp("llmhist-cache"))
