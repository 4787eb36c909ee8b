"""Data sources: the stdlib corpus, text and token files, the synthetic Markov source, batches."""

import math

import numpy as np
import pytest

from llmhist.train import data


def test_stdlib_corpus_is_real_split_and_fingerprinted():
    c = data.load("stdlib")
    assert c.vocab_size == 256 and c.tokenizer == "bytes" and c.bytes_per_token == 1.0
    assert len(c.train) > 5_000_000 and 0.02 < len(c.val) / (len(c.train) + len(c.val)) < 0.10
    files = data.text_files(data.stdlib_root(), {".py"})
    assert not any(part in ("test", "tests") for f in files for part in f.parts[-4:-1])
    text = bytes(np.asarray(c.train[:200_000], dtype=np.uint8)).decode("utf-8", errors="replace")
    assert "def " in text and "import" in text
    again = data.load("stdlib")
    assert again.fingerprint == c.fingerprint and np.array_equal(again.val[:1000], c.val[:1000])


def test_text_folder_split_by_file_and_single_file(tmp_path):
    for i in range(60):
        (tmp_path / f"doc{i}.txt").write_text(f"document {i} " * 50)
    c = data.load(str(tmp_path))
    assert 0 < len(c.val) < len(c.train)
    one = tmp_path / "doc0.txt"
    c1 = data.load(str(one))
    assert len(c1.train) + len(c1.val) == one.stat().st_size


def test_token_files_are_memmapped_and_checked(tmp_path):
    d = tmp_path / "tok"
    d.mkdir()
    np.arange(5000, dtype=np.uint16).tofile(d / "train.bin")
    (np.arange(500, dtype=np.uint16) % 7).tofile(d / "val.bin")
    c = data.load(str(d))
    assert isinstance(c.train, np.memmap) and c.vocab_size == 5000 and c.bytes_per_token is None
    assert data.bits_per_byte(2.0, c.bytes_per_token) is None
    with pytest.raises(data.DataError, match="outside --vocab-size"):
        data.load(str(d), vocab_size=100)
    (d / "odd.bin").write_bytes(b"abc")
    with pytest.raises(data.DataError, match="whole number of uint16"):
        data.load(str(d / "odd.bin"))


def test_bad_data_paths_say_what_to_do(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.load(str(tmp_path / "missing"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(data.DataError, match="empty"):
        data.load(str(tmp_path / "empty.txt"))
    with pytest.raises(data.DataError, match="fewer than one sequence"):
        data.batch_windows(10, 64, 4, 0, 0)
    with pytest.raises(data.DataError, match="unknown or empty setting"):
        data.load("markov:colour=3")


def test_markov_entropy_is_exact():
    m = data.Markov(order=1, alphabet=8, zipf=1.3, tokens=200_000, seed=3)
    p = m.probs()
    assert m.entropy_nats == pytest.approx(-(p * np.log(p)).sum())
    seq = m.generate() - 65
    # empirical conditional entropy H(X_t | X_{t-1}) from counts approaches the exact rate
    counts = np.zeros((8, 8))
    np.add.at(counts, (seq[:-1], seq[1:]), 1)
    cond = counts / counts.sum(1, keepdims=True)
    h = -(counts * np.log(np.where(cond > 0, cond, 1))).sum() / counts.sum()
    assert abs(h - m.entropy_nats) < 0.01
    c = data.load("markov:order=1,alphabet=8,zipf=1.3,tokens=200000,seed=3")
    assert c.entropy_nats == pytest.approx(m.entropy_nats) and len(c.val) == 20_000


def test_the_evaluated_tokens_floor_is_the_mean_true_nll_of_exactly_those_tokens():
    """entropy_eval_nats_per_token: -log p_true of each scored target, from the chain's own table."""
    c = data.load("markov:order=2,alphabet=5,zipf=1.1,tokens=6000,seed=4")
    m = data.Markov(order=2, alphabet=5, zipf=1.1, tokens=6000, seed=4)
    whole = np.concatenate([np.asarray(c.train), np.asarray(c.val)]).astype(np.int64) - 65
    table, p = m.table(), m.probs()
    T, starts = 16, data.val_windows(len(c.val), 16, 7)
    by_hand = []
    for s0 in starts:
        for t in range(1, T + 1):  # the targets of window s0: val[s0 + 1 .. s0 + T]
            j = len(c.train) + s0 + t
            ctx = whole[j - 2] * 5 + whole[j - 1]
            by_hand.append(-np.log(p[list(table[ctx]).index(whole[j])]))
    floor = data.eval_entropy(c, starts, T)
    assert floor == pytest.approx(float(np.mean(by_hand)), rel=1e-12)
    assert floor != pytest.approx(m.entropy_nats, abs=1e-6)  # a sample of 112 tokens, not the rate
    # over the whole sequence the mean true NLL is the entropy rate
    assert m.nll(whole + 65, np.arange(2, len(whole))).mean() == pytest.approx(m.entropy_nats, abs=0.03)
    assert data.eval_entropy(data.load("stdlib"), starts, T) is None  # unknown source: no floor


def test_batches_are_a_pure_function_of_seed_and_step():
    a = data.batch_windows(10_000, 32, 8, seed=1, step=5)
    assert np.array_equal(a, data.batch_windows(10_000, 32, 8, seed=1, step=5))
    assert not np.array_equal(a, data.batch_windows(10_000, 32, 8, seed=1, step=6))
    assert not np.array_equal(a, data.batch_windows(10_000, 32, 8, seed=2, step=5))
    assert a.max() <= 10_000 - 33


def test_span_corruption_reconstructs_the_text():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4, 128))
    inp, tgt = data.span_corrupt(x, rng, sentinel0=355)
    n_noise, n_spans = data.span_lengths(128)
    assert inp.shape == (4, 128 - n_noise + n_spans) and tgt.shape == (4, n_noise + n_spans + 1)
    for row, i, t in zip(x, inp, tgt):
        # put each sentinel's span back where its sentinel stands
        spans, cur = {}, None
        for tok in t:
            if tok > 255:
                cur = tok
                spans[cur] = []
            else:
                spans[cur].append(tok)
        rebuilt = [tok for s in i for tok in (spans[s] if s > 255 else [s])]
        assert rebuilt == list(row)
    assert math.isclose(n_noise / 128, 0.15, abs_tol=0.01)


def test_bpe_tokenizer_trained_locally_reports_bytes_per_token(tmp_path):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "scaling", "law", "token"]
    rng = np.random.default_rng(0)
    for i in range(40):
        (tmp_path / f"d{i}.txt").write_text(" ".join(rng.choice(words, 400)))
    c = data.load(str(tmp_path), tokenizer="bpe300")
    assert c.vocab_size == 300 and c.tokenizer == "bpe300"
    assert c.bytes_per_token > 1.5  # merges make tokens longer than a byte
    assert int(np.max(c.train)) < 300
    with pytest.raises(data.DataError, match="use bytes or bpeN"):
        data.load(str(tmp_path), tokenizer="wordpiece")


def test_prose_corpus_is_english_from_gensims_wheel():
    c = data.load("prose")
    assert len(c.train) > 5_000_000 and len(c.val) > 100_000 and c.meta["documents"] > 300
    text = bytes(np.asarray(c.val[:50_000], dtype=np.uint8)).decode("utf-8", errors="replace")
    assert text.count(" the ") > 100
    assert data.load("prose").fingerprint == c.fingerprint


def test_only_regular_files_are_read(tmp_path):
    import os

    (tmp_path / "a.txt").write_text("some text " * 500)
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would block for ever
    assert data.text_files(tmp_path, data.TEXT_SUFFIXES) == [tmp_path / "a.txt"]
    c = data.load(str(tmp_path))
    assert len(c.train) + len(c.val) > 4000
    with pytest.raises(data.DataError, match="not a regular file"):
        data.load(str(tmp_path / "pipe.txt"))


def test_the_corpus_is_loaded_once_per_process(tmp_path):
    (tmp_path / "a.txt").write_text("some text " * 500)
    a, b = data.load(str(tmp_path / "a.txt")), data.load(str(tmp_path / "a.txt"))
    assert a is b
    (tmp_path / "a.txt").write_text("other text " * 600)  # a changed file is read again
    assert data.load(str(tmp_path / "a.txt")).fingerprint != a.fingerprint


def test_damaged_caches_are_rebuilt(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 400)
    c = data.load(str(text), tokenizer="bpe300")
    train_ids, val_ids = np.array(c.train), np.array(c.val)  # c maps the cache files
    tok_files = list((data.cache_dir() / "tokenizers").glob("*bpe300*"))
    arrays = list((data.cache_dir() / "tokens").rglob("*.npy"))
    assert tok_files and arrays
    for p in tok_files:
        p.write_text("{not json")
    for p in arrays:  # a new file in its place (writing into a mapped file would crash the mapping)
        b = p.read_bytes()[:50]
        p.unlink()
        p.write_bytes(b)
    data._LOADED.clear()
    again = data.load(str(text), tokenizer="bpe300")
    assert np.array_equal(again.train, train_ids) and np.array_equal(again.val, val_ids)
    m = np.array(data.load("markov:tokens=5000").train)
    for p in (data.cache_dir() / "markov").glob("*.npy"):
        p.unlink()
        p.write_bytes(b"garbage")
    data._LOADED.clear()
    assert np.array_equal(data.load("markov:tokens=5000").train, m)
