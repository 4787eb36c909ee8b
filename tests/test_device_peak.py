"""The CPU peak behind MFU: cached with its date and spread, measured again when a quick probe
shows the cached value was taken under load (the cache lives in a temporary folder here)."""

import json

import torch

from llmhist.train import device


def test_a_poisoned_cpu_peak_is_measured_again_and_dated(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMHIST_CACHE", str(tmp_path))
    assert device.cpu_peak_cache_path() == tmp_path / "cpu_peak.json"
    key = device._cpu_key(1)
    (tmp_path / "cpu_peak.json").write_text(json.dumps({key: 1e6}))  # the old format, far too low
    peak = device.cpu_matmul_peak(threads=1)
    entry = json.loads((tmp_path / "cpu_peak.json").read_text())[key]
    assert peak > 1e8 and entry["flops"] == peak and entry["measured_at"].endswith("Z")
    lo, hi = entry["spread"]
    assert lo <= hi == peak
    assert device.cpu_matmul_peak(threads=1) == peak  # a plausible cached value is kept
    # an implausible MFU on a CPU measures the peak again (once), and never shows above 100%
    v, _, note = device.mfu(peak * 50, peak / 100, torch.device("cpu"))
    assert v <= 1.0 and note and "implausible" in note
