"""The CPU peak behind MFU: cached with its date and spread, measured again when a quick probe
shows the cached value was taken under load (the cache lives in a temporary folder here)."""

import json

import torch

from llmhist.train import device


def test_a_poisoned_cpu_peak_is_measured_again_and_dated(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMHIST_CACHE", str(tmp_path))
    monkeypatch.setattr(device, "WIDE_SPREAD", float("inf"))  # cached whatever the load (the next test: not so)
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


def test_a_peak_measured_with_a_wide_spread_is_not_cached_and_a_loaded_machine_is_said(tmp_path, monkeypatch):
    """First-hour C13: a busy machine's probe (rounds 3x apart) is used once, never cached for later
    runs; a narrow one is cached. A load average above the cores gives one warning line."""
    monkeypatch.setenv("LLMHIST_CACHE", str(tmp_path))
    monkeypatch.setattr(device, "_probe", lambda threads, sizes=(), rounds=0: (3e10, [1e10, 2e10, 3e10]))
    assert device.cpu_matmul_peak(threads=1) == 3e10
    assert not (tmp_path / "cpu_peak.json").exists()
    monkeypatch.setattr(device, "_probe", lambda threads, sizes=(), rounds=0: (3e10, [2.8e10, 3e10]))
    assert device.cpu_matmul_peak(threads=1) == 3e10
    assert json.loads((tmp_path / "cpu_peak.json").read_text())[device._cpu_key(1)]["flops"] == 3e10
    monkeypatch.setattr(device.os, "getloadavg", lambda: (20.0, 20.0, 20.0))
    assert "loaded (load average 20.0 on 2 cores)" in device.load_warning(cores=2)
    monkeypatch.setattr(device.os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert device.load_warning(cores=2) is None


def test_the_loop_reports_mfu_only_through_device_mfu(tmp_path, monkeypatch):
    """A run whose peak is implausibly low (a cache measured under load) re-measures it instead of
    printing MFU above 100%, and says so in summary.json; if it stays implausible it is clamped."""
    from llmhist.train import loop
    from llmhist.train.config import TrainConfig
    from llmhist.train.runfolder import read_metrics

    monkeypatch.setenv("LLMHIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(device, "peak_flops", lambda *a, **k: 1e3)  # any real run is "above 100%"
    rechecks = []

    def recheck(threads=None, value=1e15):
        rechecks.append(threads)
        return value

    monkeypatch.setattr(device, "recheck_cpu_peak", recheck)
    cfg = dict(arch="llama", size="nano", ctx=16, batch=4, tokens=16 * 4 * 3, data="markov:tokens=5000",
               device="cpu", threads=1)
    s = loop.train(TrainConfig(out=str(tmp_path / "a"), **cfg))
    rows = read_metrics(tmp_path / "a" / "metrics.csv")
    assert rechecks and s["peak_flops"] == 1e15
    assert all(r["mfu"] is None or 0 < r["mfu"] <= 1 for r in rows) and 0 < s["mfu"] <= 1
    assert "measured again" in s["mfu_note"] and "cpu_peak.json" in s["mfu_note"]
    on_disk = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert on_disk["mfu_note"] == s["mfu_note"]

    monkeypatch.setattr(device, "recheck_cpu_peak", lambda threads=None: 2e3)  # still implausible
    s = loop.train(TrainConfig(out=str(tmp_path / "b"), **cfg))
    rows = read_metrics(tmp_path / "b" / "metrics.csv")
    assert s["mfu"] == 1.0 and all(r["mfu"] == 1.0 for r in rows if r["mfu"] is not None)
    assert "clamped to 100%" in s["mfu_note"] and "still implausible" in s["mfu_note"]
