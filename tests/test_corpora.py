"""Corpora as they ship: parquet / JSON-lines files, globs and folders with a text column, datasets
saved to disk, Hub datasets (offline here), streamed into the token cache with bounded memory."""

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from llmhist.cli.main import app
from llmhist.train import corpora, data, tokencache, tokenizers
from llmhist.train.config import TrainConfig

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()
WORDS = "the cat sat on a mat and then the dog ran far away over the green hills".split()


def rows(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"row {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(20, 120)))) for i in range(n)]


def write_parquet(path: Path, texts: list, row_group: int = 100, **extra) -> Path:
    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts, **extra}), path, row_group_size=row_group)
    return path


def write_jsonl(path: Path, objs: list[dict]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as f:
        for o in objs:
            f.write(json.dumps(o) + "\n")
    return path


def jsonl_folder(root: Path, texts: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    third = len(texts) // 3
    write_jsonl(root / "a.jsonl", [{"text": t, "n": 1} for t in texts[:third]])
    write_jsonl(root / "b.jsonl.gz", [{"text": t} for t in texts[third : 2 * third]])
    write_jsonl(root / "c.jsonl", [{"text": t} for t in texts[2 * third :]])
    return root


def decoded(a) -> str:
    return bytes(np.asarray(a, dtype=np.uint8)).decode()


def test_parquet_jsonl_and_glob_give_the_same_tokens_split_by_row(tmp_path):
    texts = rows(600)
    pfile = write_parquet(tmp_path / "c.parquet", texts)
    folder = jsonl_folder(tmp_path / "jl", texts)
    cp, cj = data.load(str(pfile)), data.load(str(folder))
    cg = data.load(str(folder / "*.jsonl*"))
    for c in (cj, cg):  # the same rows in another format: the same tokens on each side of the split
        assert np.array_equal(c.train, cp.train) and np.array_equal(c.val, cp.val)
    assert cp.vocab_size == 256 and cp.bytes_per_token == 1.0 and cp.tokenizer == "bytes"
    val_rows = [t for t in texts if corpora.is_val(t.encode())]
    assert cp.meta["val_rows"] == len(val_rows) and 0.02 < len(val_rows) / len(texts) < 0.1
    assert decoded(cp.val) == "".join(t + "\n\n" for t in val_rows)  # whole rows, in order, nothing straddles
    assert cp.meta["rows"] == 600 and cj.meta["files"] == 3 and cp.meta["source"] == "parquet"
    assert "read 3 JSON-lines files, 600 rows of column 'text'" in cj.report()
    assert f"{cp.meta['train_rows']:,} / {cp.meta['val_rows']:,} rows" in cp.report()
    limited = data.load(f"{pfile}:rows=50")
    assert limited.meta["rows"] == 50 and len(limited.train) + len(limited.val) < len(cp.train) // 5


def test_cache_is_keyed_by_content_and_reused_without_rereading(tmp_path, monkeypatch):
    texts = rows(300, seed=1)
    pfile = write_parquet(tmp_path / "c.parquet", texts)
    first = tokencache.load_table(str(pfile))
    os.utime(pfile, ns=(1, 1))  # a new mtime, the same content: the same fingerprint and cache

    def no_reading(*a, **k):
        raise AssertionError("rows were read again although the cache holds them")

    monkeypatch.setattr(tokencache, "documents", no_reading)
    again = tokencache.load_table(str(pfile))
    assert again.fingerprint == first.fingerprint and np.array_equal(again.train, first.train)
    assert isinstance(again.train, np.memmap)
    monkeypatch.undo()
    write_parquet(pfile, texts[:-1] + ["a changed last row"])
    changed = tokencache.load_table(str(pfile))
    assert changed.fingerprint != first.fingerprint
    other_column = tokencache.load_table(f"{write_parquet(tmp_path / 'd.parquet', texts, body=texts)}:column=body")
    assert other_column.fingerprint != tokencache.load_table(str(tmp_path / "d.parquet")).fingerprint


def test_bpe_is_trained_on_the_streamed_training_rows(tmp_path):
    texts = rows(400, seed=2)
    c = data.load(str(jsonl_folder(tmp_path / "jl", texts)), tokenizer="bpe300")
    assert c.vocab_size == 300 and c.tokenizer == "bpe300" and c.bytes_per_token > 1.5
    assert int(np.max(c.train)) >= 256  # merges are used
    tok = tokenizers.tokenizer_for("bpe300", c.fingerprint, b"")  # the cached tokenizer (no training input needed)
    val_rows = [t for t in texts if corpora.is_val(t.encode())]
    assert tok.decode(c.val) == "".join(t + "\n\n" for t in val_rows)


def test_bad_corpora_are_refused_before_work_with_what_to_do(tmp_path):
    texts = rows(50)
    pfile = write_parquet(tmp_path / "c.parquet", texts)
    with pytest.raises(data.DataError, match=r"no column 'body'; the columns are id \(int64\), text \(string\)"):
        TrainConfig(data=f"{pfile}:column=body")
    with pytest.raises(data.DataError, match="column 'id' is int64, not text"):
        TrainConfig(data=f"{pfile}:column=id")
    with pytest.raises(data.DataError, match="matches no file"):
        TrainConfig(data=str(tmp_path / "nothing" / "*.parquet"))
    with pytest.raises(data.DataError, match="unknown or empty setting 'colour=1'"):
        TrainConfig(data=f"{pfile}:colour=1")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(data.DataError, match="empty.jsonl: the file is empty"):
        data.load(str(tmp_path / "empty.jsonl"))
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(data.DataError, match="no JSON lines"):
        data.load(str(tmp_path / "blank.jsonl"))
    write_parquet(tmp_path / "none.parquet", [])
    with pytest.raises(data.DataError, match="has no rows"):
        data.load(str(tmp_path / "none.parquet"))
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    with pytest.raises(data.DataError, match=r"bad.jsonl:2: not a JSON line"):
        data.load(str(tmp_path / "bad.jsonl"))
    write_jsonl(tmp_path / "num.jsonl", [{"text": "fine"}, {"text": 3}])
    with pytest.raises(data.DataError, match=r"num.jsonl:2: column 'text' is int, not text"):
        data.load(str(tmp_path / "num.jsonl"))
    write_parquet(tmp_path / "nulls.parquet", [None, "", "  "])
    with pytest.raises(data.DataError, match=r"no text in column 'text' \(3 rows read, all empty or null\)"):
        data.load(str(tmp_path / "nulls.parquet"))
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "notes.txt").write_text("x")
    with pytest.raises(data.DataError, match="neither parquet nor JSON lines"):
        data.load(str(tmp_path / "mixed" / "*"))
    r = runner.invoke(app, ["train", "--data", f"{pfile}:column=id", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "not text" in r.output and not (tmp_path / "r").exists()


def test_small_corpora_split_by_tokens_and_folders_choose_their_reader(tmp_path):
    c = data.load(str(write_parquet(tmp_path / "tiny.parquet", ["just one row of text, " * 40, None])))
    assert len(c.val) == (len(c.train) + len(c.val)) // 20 and "last 1/20 of the tokens" in c.report()
    assert c.meta["rows_skipped"] == 1
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "readme.md").write_text("not a row")
    write_jsonl(folder / "rows.jsonl", [{"text": t} for t in rows(100)])
    assert data.load(str(folder)).meta["rows"] == 100  # the JSON lines, not the readme
    (folder / "rows.jsonl").unlink()
    assert "rows" not in data.load(str(folder)).meta  # a folder of text files is read as text, as before


def test_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    texts = rows(300, seed=3)
    datasets.Dataset.from_dict({"story": texts, "n": list(range(300))}).save_to_disk(str(tmp_path / "ds"))
    c = data.load(f"{tmp_path / 'ds'}:column=story")
    ref = data.load(str(write_parquet(tmp_path / "same.parquet", texts)))
    assert np.array_equal(c.train, ref.train) and c.meta["source"] == "saved dataset"
    with pytest.raises(data.DataError, match=r"no column 'text'; the columns are story \(string\), n \(int64\)"):
        TrainConfig(data=str(tmp_path / "ds"))
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": texts[:200]}),
                               "validation": datasets.Dataset.from_dict({"text": texts[200:]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert data.load(str(tmp_path / "dd")).meta["rows"] == 200  # train by default
    assert data.load(f"{tmp_path / 'dd'}:split=validation").meta["rows"] == 100
    with pytest.raises(data.DataError, match="has splits train, validation"):
        data.load(f"{tmp_path / 'dd'}:split=test")
    with pytest.raises(data.DataError, match="is a local path, and hub: names a dataset on the Hugging Face Hub"):
        data.load(f"hub:{tmp_path / 'ds'}")


def test_hub_datasets_stream_through_load_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    texts = rows(200, seed=4)
    calls = []

    def fake_load_dataset(name, config=None, **kw):  # the Hub is not reachable here: a local stream instead
        calls.append((name, config, kw))
        return datasets.IterableDataset.from_generator(lambda: ({"text": t, "id": i} for i, t in enumerate(texts)))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    c = data.load("hub:someone/stories:split=validation,config=en,revision=abc123,rows=150")
    assert calls[0] == ("someone/stories", "en", {"split": "validation", "streaming": True, "revision": "abc123"})
    assert c.meta["rows"] == 150 and c.meta["source"] == "Hub dataset"
    ref = data.load(str(write_parquet(tmp_path / "ref.parquet", texts[:150])))
    assert np.array_equal(c.train, ref.train) and np.array_equal(c.val, ref.val)
    with pytest.raises(data.DataError, match=r"hub:someone/stories: no column 'story'; the columns are text \(str\)"):
        data.load("hub:someone/stories:column=story")


def test_hub_offline_says_what_was_tried_and_nothing_is_fetched_by_default(tmp_path):
    pytest.importorskip("datasets")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = tmp_path / "r"
    r = subprocess.run([sys.executable, "-m", "llmhist", "train", "--data", "hub:roneneldan/TinyStories:split=train",
                        "--tokens", "2000", "--ctx", "32", "--out", str(out)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "could not open split 'train' of the Hub dataset 'roneneldan/TinyStories'" in r.stderr
    assert "HF_DATASETS_OFFLINE" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    with pytest.raises(Exception, match="no such file"):  # without hub: a Hub-like name is a path, never a download
        TrainConfig(data="roneneldan/TinyStories")


def test_a_killed_build_leaves_no_trusted_cache(tmp_path):
    pfile = write_parquet(tmp_path / "c.parquet", rows(6000, seed=5), row_group=500)  # ~3 MB: several chunks
    env = {**os.environ, "LLMHIST_CACHE": str(tmp_path / "cache"), "LLMHIST_FAULT": "data/stream_chunk:2"}
    code = f"from llmhist.train import data; data.load({str(pfile)!r})"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr
    (d,) = (tmp_path / "cache" / "tokens").iterdir()
    assert not (d / "meta.json").exists() and not (d / "train.bin").exists()
    assert list(d.glob(".*.tmp*"))  # the killed builder's temporaries
    env.pop("LLMHIST_FAULT")
    again = subprocess.run([sys.executable, "-c", code + "; c = data.load(" + repr(str(pfile)) + "); "
                            "print(len(c.train), len(c.val))"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert not list(d.glob(".*.tmp*")) and (d / "meta.json").exists()
    clean = data.load(str(pfile))  # built from scratch in this session's own cache
    assert again.stdout.split() == [str(len(clean.train)), str(len(clean.val))]
    assert np.array_equal(np.memmap(d / "train.bin", dtype=np.uint8, mode="r"), clean.train)


CAP_MIB = 24  # peak resident memory a load may add, after a warm-up on a small corpus of the same shape


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_corpus_four_times_the_memory_cap_is_streamed(tmp_path, fmt):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to measure peak resident memory")
    make = textwrap.dedent("""
        import json, sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
        from pathlib import Path
        fmt, out, total = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
        rng, doc = np.random.default_rng(0), 16384
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ", dtype=np.uint8)
        text = lambda: letters[rng.integers(0, len(letters), doc)].tobytes().decode()
        if fmt == "jsonl":
            out.mkdir()
            for f in range(4):
                with open(out / f"part{f}.jsonl", "w") as fh:
                    fh.writelines(json.dumps({"text": text()}) + "\\n" for _ in range(total // doc // 4))
        else:
            with pq.ParquetWriter(out, pa.schema([("text", pa.string())])) as w:
                for _ in range(total // doc // 256):
                    w.write_table(pa.table({"text": [text() for _ in range(256)]}))
    """)
    measure = textwrap.dedent("""
        import json, sys
        from llmhist.train import data
        def status(key):
            return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
        data.load(sys.argv[2])  # warm-up: library code pages and allocator arenas are not the corpus
        open("/proc/self/clear_refs", "w").write("5")  # the peak resident size := the current one
        base = status("VmRSS:")
        c = data.load(sys.argv[1])
        print(json.dumps({"growth": status("VmHWM:") - base, "tokens": len(c.train) + len(c.val)}))
    """)
    big_bytes = 4 * CAP_MIB * 2**20 + (8 << 20)
    suffix = "" if fmt == "jsonl" else ".parquet"
    big, warm = tmp_path / f"big{suffix}", tmp_path / f"warm{suffix}"
    for path, size in ((big, big_bytes), (warm, 3 * 256 * 16384)):
        subprocess.run([sys.executable, "-c", make, fmt, str(path), str(size)], check=True, timeout=300)
    env = {**os.environ, "LLMHIST_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-c", measure, str(big), str(warm)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    corpus_bytes = sum(p.stat().st_size for p in ([big] if big.is_file() else big.iterdir()))
    assert corpus_bytes > 4 * CAP_MIB * 2**20 and got["tokens"] > 4 * CAP_MIB * 2**20
    assert got["growth"] < CAP_MIB * 2**20, f"{fmt}: peak grew {got['growth'] / 2**20:.1f} MiB"
    print(f"{fmt}: corpus {corpus_bytes / 2**20:.1f} MiB, cap {CAP_MIB} MiB, peak growth {got['growth'] / 2**20:.1f} MiB")
    for p in sorted(tmp_path.rglob("*"), reverse=True):  # 400 MB of test data: do not leave it in /tmp
        p.unlink() if p.is_file() else p.rmdir()


def test_train_from_a_parquet_file_and_a_jsonl_folder(tmp_path):
    texts = rows(1500, seed=6)
    sources = {"parquet": str(write_parquet(tmp_path / "c.parquet", texts)),
               "jsonl": str(jsonl_folder(tmp_path / "jl", texts))}
    results = {}
    for name, src in sources.items():
        out = tmp_path / f"run-{name}"
        r = runner.invoke(app, ["train", "--data", src, "--size", "nano", "--ctx", "32", "--batch", "8", "--tokens",
                                "2048", "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert "data: read 1 parquet file" in r.output if name == "parquet" else "read 3 JSON-lines files" in r.output
        summary = json.loads((out / "summary.json").read_text())
        config = json.loads((out / "config.json").read_text())
        assert config["data"]["rows"] == 1500 and config["data"]["column"] == "text"
        assert np.isfinite(summary["val_loss"]) and summary["val_loss"] < np.log(256)
        results[name] = summary["val_loss"]
    assert results["parquet"] == pytest.approx(results["jsonl"], abs=1e-6)  # the same rows: the same run
