"""Training data: where tokens come from, how they are split and sampled (tokenisers in
llmhist.train.tokenizers).

Sources (`--data`):
- ``stdlib`` (default): the running Python's standard library sources (tests excluded), real
  human-written code, comments and docstrings found via sysconfig, no download.
- ``prose``: English prose from gensim's wheel (news articles and a Wikipedia extract), when the
  optional extra ``prose`` is installed (llmhist.train.prose);
- a text file or a folder of text files;
- pre-tokenised token files as nanoGPT writes them (``train.bin``/``val.bin`` of uint16 or uint32,
  or one ``.bin`` file), memory-mapped and never loaded whole;
- ``markov[:k=v,...]``: a synthetic Zipf-weighted order-k Markov chain whose entropy rate is known
  exactly, so a model's loss (and a fitted E) can be checked against the truth;
- parquet / JSON-lines files, globs and folders with a text column, a folder `datasets` saved, or
  ``hub:NAME`` (llmhist.train.corpora), streamed into a token cache (llmhist.train.tokencache).

Every source yields a `Corpus`: train and validation token arrays, a vocabulary size, bytes per
token (for bits per byte) and a fingerprint that runs record. Batches are a pure function of
(seed, step), so a resumed run sees exactly the data an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import UserError
from ..core.files import atomic_path

VAL_EVERY = 20  # 1 file in 20 (by a hash of its path) goes to validation: a deterministic ~5% split
TEXT_SUFFIXES = {".txt", ".md", ".py", ".rst", ".json", ".csv", ".tex", ".html", ".c", ".h", ".js", ".toml", ".yaml", ".yml"}
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", ".git"}
SEPARATOR = b"\n\n"
class DataError(UserError, ValueError):
    """Unusable data: the message says which path or option and how to fix it."""


@dataclass
class Corpus:
    name: str
    train: np.ndarray  # 1-D token ids (may be a np.memmap)
    val: np.ndarray
    vocab_size: int
    fingerprint: str  # sha256 over the source (bytes or token files) and the split rule
    bytes_per_token: float | None  # for bits per byte; None when unknown (pre-tokenised files)
    tokenizer: str = "bytes"
    entropy_nats: float | None = None  # exact entropy rate per token, synthetic sources only
    meta: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "tokenizer": self.tokenizer,
            "vocab_size": self.vocab_size,
            "train_tokens": len(self.train),
            "val_tokens": len(self.val),
            "bytes_per_token": self.bytes_per_token,
            "fingerprint": self.fingerprint,
            "entropy_nats_per_token": self.entropy_nats,
            **self.meta,
        }

    def report(self) -> str:
        """What was read, in one line: files, rows, bytes and the train/val split."""
        from ..core.numbers import nbytes

        m = self.meta or {}
        read = []
        if "files" in m:
            read.append(f"{m['files']:,} {m.get('source', '')} file{'s' * (m['files'] != 1)}".replace("  ", " "))
        if "rows" in m:
            skipped = f" ({m['rows_skipped']:,} empty skipped)" if m.get("rows_skipped") else ""
            read.append(f"{m['rows']:,} rows{skipped} of column {m['column']!r}")
        if "documents" in m:
            read.append(f"{m['documents']:,} documents")
        split = [f"{len(self.train):,} / {len(self.val):,} tokens"]
        if "train_bytes" in m:
            read.append(nbytes(m["train_bytes"] + m["val_bytes"]))
            split.insert(0, f"{nbytes(m['train_bytes'])} / {nbytes(m['val_bytes'])}")
        if "train_rows" in m:
            split.insert(0, f"{m['train_rows']:,} / {m['val_rows']:,} rows")
        how = f", {m['split']}" if m.get("split") else ""
        return f"data: read {', '.join(read) or self.name}; train/val split {', '.join(split)}{how}"


def bits_per_byte(loss_nats_per_token: float | None, bytes_per_token: float | None) -> float | None:
    if bytes_per_token is None or loss_nats_per_token is None or not math.isfinite(loss_nats_per_token):
        return None
    return loss_nats_per_token / math.log(2) / bytes_per_token


# --------------------------------------------------------------------------- text sources


def stdlib_root() -> Path:
    # sysconfig, not sys.prefix: inside a venv sys.prefix is the venv, which has no stdlib sources
    return Path(sysconfig.get_paths()["stdlib"])


def text_files(root: Path, suffixes: set[str] | None = None) -> list[Path]:
    """Sorted text files under root (test suites and caches skipped)."""
    if root.is_file():
        return [root]
    if not root.is_dir():  # a FIFO, socket or device would block or never end
        raise DataError(f"{root}: not a regular file or a folder; give a text file or a folder of text files")
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(files):
            p = Path(dirpath) / f
            if (suffixes is None or p.suffix.lower() in suffixes) and p.is_file():  # regular files only
                out.append(p)
    return out


def _is_val(rel: str) -> bool:
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % VAL_EVERY == 0


def split_text(root: Path, files: list[Path]) -> tuple[bytes, bytes]:
    """Concatenate files into train and validation byte strings, split by file (a hash of the
    relative path), so no document straddles the split and the split never changes."""
    train: list[bytes] = []
    val: list[bytes] = []
    for p in files:
        rel = p.name if root.is_file() else str(p.relative_to(root))
        b = p.read_bytes()
        if not b.strip():
            continue
        (val if _is_val(rel) else train).append(b)
    if root.is_file() or not val:  # one file (or too few files): its last 5% is validation
        allb = SEPARATOR.join(train + val)
        cut = len(allb) - max(1, len(allb) // VAL_EVERY)
        return allb[:cut], allb[cut:]
    return SEPARATOR.join(train), SEPARATOR.join(val)


def cache_dir() -> Path:
    return Path(os.environ.get("LLMHIST_CACHE", Path.home() / ".cache" / "llmhist"))


def _text_corpus(name: str, root: Path, tokenizer: str, suffixes: set[str] | None) -> Corpus:
    files = text_files(root, suffixes)
    if not files:
        raise DataError(f"{root}: no text files found (looked for {', '.join(sorted(suffixes or ['any']))}); "
                        "give a text file, a folder of text files, or token files (.bin)")
    train_b, val_b = split_text(root, files)
    if len(train_b) == 0 or len(val_b) == 0:
        raise DataError(f"{root}: the data is empty; give a non-empty text file or folder")
    fp = _fingerprint(f"split:file-hash-mod-{VAL_EVERY}\n".encode(), train_b, val_b)
    from .tokenizers import tokenize

    tok, train, val = tokenize(tokenizer, fp, train_b, val_b)
    return Corpus(
        name=name, train=train, val=val, vocab_size=tok.vocab_size, fingerprint=fp,
        bytes_per_token=len(val_b) / max(1, len(val)), tokenizer=tok.name,
        meta={"files": len(files), "train_bytes": len(train_b), "val_bytes": len(val_b), "root": str(root)},
    )


def _fingerprint(tag: bytes, train_b: bytes, val_b: bytes) -> str:
    return hashlib.sha256(tag + hashlib.sha256(train_b).digest() + hashlib.sha256(val_b).digest()).hexdigest()


def _load_cached(p: Path) -> np.ndarray | None:
    """A cached array, or None when missing or damaged (then it is rebuilt)."""
    if not p.exists():
        return None
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        p.unlink(missing_ok=True)
        return None


# ------------------------------------------------------------------------- token files


def _token_dtype(name: str) -> np.dtype:
    if name not in ("uint16", "uint32"):
        raise DataError(f"--token-dtype {name!r}: token files are uint16 or uint32 (as nanoGPT writes them)")
    return np.dtype(name)


def _max_token(a: np.ndarray, chunk: int = 1 << 24) -> int:
    return max(int(a[i : i + chunk].max()) for i in range(0, len(a), chunk))


def _fingerprint_file(p: Path) -> str:
    """sha256 of size + first and last MiB + 64 spread samples: reads kilobytes, not gigabytes."""
    h = hashlib.sha256(str(p.stat().st_size).encode())
    with open(p, "rb") as f:
        size = p.stat().st_size
        for off in [0, max(0, size - (1 << 20))] + [size * i // 64 for i in range(64)]:
            f.seek(off)
            h.update(f.read(1 << 20 if off in (0, max(0, size - (1 << 20))) else 4096))
    return h.hexdigest()


def token_corpus(path: Path, dtype: str = "uint16", vocab_size: int | None = None) -> Corpus:
    dt = _token_dtype(dtype)
    if path.is_dir():
        tr, va = path / "train.bin", path / "val.bin"
        if not tr.exists():
            raise DataError(f"{path}: a token folder needs train.bin (and val.bin), as nanoGPT's prepare.py writes")
        files = [tr] + ([va] if va.exists() else [])
    else:
        files = [path]
    arrays = []
    for p in files:
        if p.stat().st_size == 0 or p.stat().st_size % dt.itemsize:
            raise DataError(f"{p}: size {p.stat().st_size} B is empty or not a whole number of {dtype} tokens; "
                            "check --token-dtype")
        arrays.append(np.memmap(p, dtype=dt, mode="r"))
    train: np.ndarray
    val: np.ndarray
    if len(arrays) == 2:
        train, val = arrays
    else:
        a = arrays[0]
        cut = len(a) - max(1, len(a) // VAL_EVERY)
        train, val = a[:cut], a[cut:]
    top = max(_max_token(train), _max_token(val)) + 1
    if vocab_size is None:
        meta = path / "meta.json" if path.is_dir() else path.with_name("meta.json")
        vocab_size = json.loads(meta.read_text()).get("vocab_size") if meta.exists() else None
        vocab_size = vocab_size or top
    if top > vocab_size:
        raise DataError(f"{path}: token id {top - 1} is outside --vocab-size {vocab_size}")
    fp = hashlib.sha256("".join(_fingerprint_file(p) for p in files).encode()).hexdigest()
    return Corpus(name=str(path), train=train, val=val, vocab_size=int(vocab_size), fingerprint=fp,
                  bytes_per_token=None, tokenizer=f"pre-tokenised ({dtype})")


# --------------------------------------------------------------------- synthetic source


@dataclass(frozen=True)
class Markov:
    """An order-k Markov chain over `alphabet` symbols. Every context's next-symbol distribution is
    the same Zipf law (p_r proportional to r^-s), applied to a context-specific random permutation
    of the symbols. Because every context has the same distribution up to relabelling, the entropy
    rate is exactly H(Zipf) whatever the stationary distribution: the best achievable loss."""

    order: int = 2
    alphabet: int = 16
    zipf: float = 1.0
    tokens: int = 2_000_000
    seed: int = 0

    def probs(self) -> np.ndarray:
        r = np.arange(1, self.alphabet + 1, dtype=np.float64)
        p = r ** -self.zipf
        return p / p.sum()

    @property
    def entropy_nats(self) -> float:
        p = self.probs()
        return float(-(p * np.log(p)).sum())

    @property
    def offset(self) -> int:
        """Symbol s is stored as token s + offset (printable bytes 'A'.. when the alphabet allows)."""
        return 65 if self.alphabet <= 190 else 0

    def _table(self, rng: np.random.Generator) -> np.ndarray:
        """(A^k, A): rank -> symbol per context (the generator's first draw)."""
        A = self.alphabet
        return np.argsort(rng.random((A**self.order, A)), axis=1).astype(np.int64)

    def table(self) -> np.ndarray:
        return self._table(np.random.default_rng([self.seed, 0x4D41524B]))

    def nll(self, seq: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """-log p_true(seq[j] | the k symbols before it) for each index j in `targets` (each >= k):
        the source's own probability of the token actually there."""
        A, k = self.alphabet, self.order
        sym = np.asarray(seq, dtype=np.int64) - self.offset
        ctx = np.zeros(len(targets), dtype=np.int64)
        for i in range(k, 0, -1):  # ctx = x[j-k] A^(k-1) + ... + x[j-1], as generate() builds it
            ctx = ctx * A + sym[targets - i]
        rank_of = np.argsort(self.table(), axis=1)  # symbol -> rank per context
        return -np.log(self.probs()[rank_of[ctx, sym[targets]]])

    def generate(self) -> np.ndarray:
        A, k = self.alphabet, self.order
        rng = np.random.default_rng([self.seed, 0x4D41524B])
        n_ctx = A**k
        table = self._table(rng)
        ranks = rng.choice(A, size=self.tokens, p=self.probs())
        flat = table.ravel().tolist()
        ranks_l = ranks.tolist()
        out = [0] * self.tokens
        ctx = 0
        for t in range(self.tokens):  # inherently sequential; ~0.3 s per million tokens
            x = flat[ctx * A + ranks_l[t]]
            out[t] = x
            ctx = (ctx * A + x) % n_ctx
        # symbols shown as printable bytes ('A'..), so decoded samples are readable
        return np.asarray(out, dtype=np.uint16) + self.offset


def eval_entropy(corpus: Corpus, starts: np.ndarray, T: int) -> float | None:
    """The exact floor of an evaluation on a synthetic source: the mean of -log p_true over exactly
    the tokens the evaluation scores (targets 1..T of each validation window starting at `starts`).
    It differs from the entropy rate H by the sampling noise of those tokens (~0.04 nats on a few
    thousand), which is what a fitted E can recover. None for data whose source is unknown. For
    order k > 1 the first k-1 targets of a window have part of their context before the window, so
    there the floor is a lower bound (a (k-1)/T share of the tokens)."""
    meta = corpus.meta.get("markov") if corpus.meta else None
    if not meta:
        return None
    m = Markov(**meta)
    whole = np.concatenate([np.asarray(corpus.train), np.asarray(corpus.val)])
    base = len(corpus.train)
    targets = (base + np.asarray(starts, dtype=np.int64)[:, None] + np.arange(1, T + 1)[None, :]).ravel()
    if targets.min() < m.order:
        return None
    return float(m.nll(whole, targets).mean())


def markov_corpus(spec: str) -> Corpus:
    kw: dict[str, Any] = {}
    body = spec.partition(":")[2]
    for item in filter(None, body.split(",")):
        k, _, v = item.partition("=")
        if k not in Markov.__dataclass_fields__ or not v:
            raise DataError(f"--data {spec!r}: unknown or empty setting {item!r}; "
                            f"settings are {', '.join(Markov.__dataclass_fields__)} (e.g. markov:order=2,alphabet=16)")
        kw[k] = float(v) if k == "zipf" else int(float(v))
    m = Markov(**kw)
    if m.alphabet < 2 or m.order < 1 or m.tokens < 1000 or m.alphabet**m.order > 1 << 22:
        raise DataError(f"--data {spec!r}: need alphabet >= 2, order >= 1, tokens >= 1000 and alphabet^order <= 4M")
    fp = hashlib.sha256(json.dumps(m.__dict__, sort_keys=True).encode() + b"markov-v1").hexdigest()
    path = cache_dir() / "markov" / f"{fp[:16]}.npy"
    seq = _load_cached(path)
    if seq is None:
        seq = m.generate()
        with atomic_path(path) as tmp:
            np.save(tmp, seq)
    cut = len(seq) - len(seq) // 10
    return Corpus(name=f"markov(order={m.order},alphabet={m.alphabet},zipf={m.zipf},tokens={m.tokens},seed={m.seed})",
                  train=seq[:cut], val=seq[cut:], vocab_size=256, fingerprint=fp, bytes_per_token=1.0,
                  entropy_nats=m.entropy_nats, meta={"markov": dict(m.__dict__)})


# ------------------------------------------------------------------------------ loading


_LOADED: dict[tuple, Corpus] = {}
_LOADED_MAX = 4


def load(data: str = "stdlib", tokenizer: str = "bytes", token_dtype: str = "uint16",
         vocab_size: int | None = None) -> Corpus:
    """Resolve a --data value to a Corpus. Kept in memory for the process (keyed by the arguments
    and, for a path, its size and modification time), so a worker training several runs in turn
    reads and tokenises the data once."""
    key = (data, tokenizer, token_dtype, vocab_size, _stamp(data))
    if key not in _LOADED:
        corpus = _load(data, tokenizer, token_dtype, vocab_size)
        while len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = corpus
    return _LOADED[key]


def _stamp(data: str):
    p = Path(data).expanduser()
    if data in ("stdlib", "prose") or data.startswith("markov"):
        return None
    from .corpora import stamp

    table = stamp(data)  # a glob or folder of parquet / JSON lines: every file it reads
    if table is not None:
        return table
    try:
        st = p.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _load(data: str, tokenizer: str, token_dtype: str, vocab_size: int | None) -> Corpus:
    if data == "stdlib":
        root = stdlib_root()
        if not root.is_dir():
            raise DataError(f"the standard library sources were not found at {root}; give --data PATH")
        return _text_corpus("stdlib", root, tokenizer, {".py"})
    if data == "prose":
        from .prose import prose_corpus

        return prose_corpus(tokenizer)
    if data == "markov" or data.startswith("markov:"):
        if tokenizer != "bytes":
            raise DataError("the synthetic markov source is already tokenised: leave --tokenizer as bytes")
        return markov_corpus(data)
    from .corpora import parse

    if parse(data) is not None:  # parquet / JSON lines (files, globs, folders), a saved or a Hub dataset
        from .tokencache import load_table

        return load_table(data, tokenizer)
    p = Path(data).expanduser()
    if not p.exists():
        raise DataError(f"--data {data}: no such file or folder (use 'stdlib', 'prose', 'markov', a text file/folder, "
                        "or token files)")
    if p.suffix == ".bin" or (p.is_dir() and (p / "train.bin").exists()):
        if tokenizer != "bytes":
            raise DataError(f"--data {data} is pre-tokenised: leave --tokenizer as bytes")
        return token_corpus(p, token_dtype, vocab_size)
    return _text_corpus(str(p), p, tokenizer, None if p.is_file() else TEXT_SUFFIXES)


# ------------------------------------------------------------------------------ batches


def batch_windows(n_tokens: int, T: int, B: int, seed: int, step: int, micro: int = 0) -> np.ndarray:
    """Start offsets of B random windows of T+1 tokens for (seed, step, micro): a pure function,
    so resuming at any step reproduces the data exactly, and DDP ranks can take slices of the
    same global batch."""
    if n_tokens < T + 1:
        raise DataError(f"the training split has {n_tokens} tokens, fewer than one sequence of {T + 1}; "
                        "give more data or a shorter --ctx")
    rng = np.random.default_rng([seed, step, micro, 0x5EED])
    return rng.integers(0, n_tokens - T, size=B)


def gather(tokens: np.ndarray, starts: np.ndarray, T: int) -> np.ndarray:
    """(B, T+1) int64 windows, read from a memmap slice by slice."""
    return np.stack([np.asarray(tokens[s : s + T + 1], dtype=np.int64) for s in starts])


def val_windows(n_tokens: int, T: int, n: int) -> np.ndarray:
    """n evenly spaced validation windows (fixed for the run; the same for every run on the data)."""
    if n_tokens < T + 1:
        raise DataError(f"the validation split has {n_tokens} tokens, fewer than one sequence of {T + 1}; "
                        "give more data or a shorter --ctx")
    n = max(1, min(n, (n_tokens - 1) // T))
    return np.linspace(0, n_tokens - T - 1, n).astype(np.int64)


# ------------------------------------------------------------------- T5 span corruption


def span_lengths(T: int, noise: float = 0.15, mean_span: float = 3.0) -> tuple[int, int]:
    """T5's fixed counts: noise tokens round(T * 0.15), spans round(noise / mean span)."""
    n_noise = max(1, min(T - 1, round(T * noise)))
    n_spans = max(1, round(n_noise / mean_span))
    return n_noise, n_spans


def span_corrupt(x: np.ndarray, rng: np.random.Generator, sentinel0: int, noise=0.15, mean_span=3.0):
    """T5's span corruption (Raffel et al. 2020, §3.1.4) on a batch (B, T): random spans (about 15%
    of tokens, mean length 3) are replaced by one sentinel each in the input; the target lists each
    sentinel followed by its span. Sentinels count down from sentinel0 as T5's extra ids do.
    Input and target lengths are fixed for a given T, so batches stack."""
    _B, T = x.shape
    n_noise, n_spans = span_lengths(T, noise, mean_span)
    n_keep = T - n_noise
    ins, tgs = [], []
    for row in x:
        # split noise and kept tokens into n_spans segments each (random partition, >= 1 per segment)
        def seg(total):
            cuts: Any = np.sort(rng.choice(np.arange(1, total), size=n_spans - 1, replace=False)) if n_spans > 1 else []
            return np.diff(np.concatenate([[0], cuts, [total]])).astype(int)
        noise_len, keep_len = seg(n_noise), seg(n_keep)
        inp, tgt, pos = [], [], 0
        for s in range(n_spans):
            inp.extend(row[pos : pos + keep_len[s]])
            pos += keep_len[s]
            inp.append(sentinel0 - s)
            tgt.append(sentinel0 - s)
            tgt.extend(row[pos : pos + noise_len[s]])
            pos += noise_len[s]
        ins.append(inp)
        tgs.append(tgt + [sentinel0 - n_spans])  # a closing sentinel ends the target
    return np.asarray(ins, dtype=np.int64), np.asarray(tgs, dtype=np.int64)
