"""Parity with transformers: same weights, same logits; same parameter counts at published sizes."""

from dataclasses import replace

import pytest
import torch

from llmhist.archs import ENTRIES, build_spec, params
from llmhist.archs import hf
from llmhist.archs.model import build

import transformers  # noqa: E402, F401  (the test extra: pip install -e ".[test]"; fail loudly without it)

PARITY = ["gpt1", "gpt2", "llama", "llama2", "llama3", "llama3.1", "mixtral", "gemma2", "qwen2",
          "qwen2-57b-a14b", "t5", "jurassic1"]


@pytest.mark.parametrize("name", PARITY)
def test_logits_match_transformers(name):
    a = build_spec(name, "nano")
    if "local" in a.attn_pattern:
        a = replace(a, window=6)  # the sliding window must bite at T = 20
    m = build(a).eval()
    with torch.no_grad():
        for p in m.parameters():  # non-trivial weights: norms and biases away from their inits
            p.normal_(0.0, 0.2)
    ref = hf.hf_model(a).eval()
    hf.load_into_hf(a, m, ref)
    assert sum(p.numel() for p in ref.parameters()) == params(a).total
    x = torch.randint(0, a.vocab_size, (2, 20))
    with torch.no_grad():
        if a.is_encoder_decoder:
            y = torch.randint(0, a.vocab_size, (2, 13))
            ours, theirs = m(x, y), ref(input_ids=x, decoder_input_ids=y).logits
        else:
            ours, theirs = m(x), ref(input_ids=x).logits
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name", PARITY)
def test_weight_mapping_round_trips(name):
    a = build_spec(name, "nano")
    sd = build(a).state_dict()
    back = hf.from_hf(a, hf.to_hf(a, sd))
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def _has_hf(a):
    try:
        hf.model_type(a)
        return True
    except (hf.NoHFEquivalent, AttributeError, TypeError):
        return False


@pytest.mark.parametrize("e", [e.arch for e in ENTRIES if e.arch is not None and _has_hf(e.arch)], ids=lambda a: a.name)
def test_published_counts_equal_transformers(e):
    ref = hf.hf_model(e, device="meta")
    assert sum(p.numel() for p in ref.parameters()) == params(e).total


def test_refuses_families_transformers_lacks():
    for name in ("palm", "gopher", "gpt3", "afm"):
        with pytest.raises(hf.NoHFEquivalent, match="no model class"):
            hf.model_type(build_spec(name, "nano"))
