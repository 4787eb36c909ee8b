"""Streaming a parquet / JSON-lines / saved / Hub corpus (llmhist.train.corpora) into the token
cache, and the Corpus read back from it, memory-mapped.

The cache, cache_dir()/tokens/<fingerprint>-<tokenizer>-corpora-v1/, holds train.bin and val.bin
(raw token ids, the smallest unsigned dtype the vocabulary fits) and meta.json (what was read: files,
rows, bytes and tokens per split). It is keyed by the data's fingerprint: the sha256 of each file's
content, streamed in 1 MiB blocks and memoised per (path, size, mtime, inode), so a second load reads
no content; plus the column, the row limit and the split rule; a Hub dataset by its name, config,
split and revision. Rows are tokenised about 1 MiB of text at a time and appended to temporary
files renamed into place when complete; meta.json is written last, so a killed build leaves no
cache a later load would trust (and its temporaries are removed by the next build). One process
builds a cache at a time (a lock file); another waits and then reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.files import atomic_path, fault, write_json
from .corpora import (
    PARQUET_SUFFIXES,
    Source,
    check_file,
    data_error,
    documents,
    is_val,
    list_files,
    parse,
)

STREAM_VERSION = 1  # bumped when the cache layout or the split rule changes
CHUNK_BYTES = 1 << 20  # text tokenised and written per chunk (and read per block when hashing)


def content_hash(p: Path) -> str:
    """sha256 of a file's bytes, streamed; memoised under the cache per (path, size, mtime, inode)."""
    from .data import cache_dir

    st = p.stat()
    key = hashlib.sha256(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode()).hexdigest()
    memo = cache_dir() / "filehash" / key[:32]
    try:
        got = memo.read_text().strip()
        if len(got) == 64:
            return got
    except OSError:
        pass
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            h.update(block)
    with atomic_path(memo, durable=False) as tmp:
        tmp.write_text(h.hexdigest())
    return h.hexdigest()


def fingerprint(src: Source, files: list[Path]) -> str:
    from .data import VAL_EVERY

    h = hashlib.sha256(f"corpora-v{STREAM_VERSION}\ncolumn={src.column}\nrows={src.rows}\n"
                       f"split=text-hash-mod-{VAL_EVERY}\n".encode())
    if src.kind == "hub":
        h.update(json.dumps(["hub", src.target, src.config, src.split or "train", src.revision]).encode())
    else:
        h.update(f"split-of-saved={src.split}\n".encode())
        for p in files:
            h.update(content_hash(p).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------ the token cache


class _Writer:
    """Appends one split's tokens to an open file, a chunk of about CHUNK_BYTES of text at a time."""

    def __init__(self, f, tok, dtype):
        self.f, self.tok, self.dtype = f, tok, dtype
        self.buf: list[bytes] = []
        self.pending = self.rows = self.bytes = self.fed = self.tokens = 0

    def add(self, doc: bytes) -> None:
        from .data import SEPARATOR

        self.buf += (doc, SEPARATOR)  # documents end with the separator text folders use between files
        self.pending += len(doc) + len(SEPARATOR)
        self.rows += 1
        self.bytes += len(doc)
        if self.pending >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        chunk = b"".join(self.buf)
        ids = self.tok.encode(chunk).astype(self.dtype, copy=False)
        self.f.write(ids.tobytes())
        self.fed += len(chunk)
        self.tokens += len(ids)
        self.buf, self.pending = [], 0
        fault("data/stream_chunk")


def token_dtype(vocab_size: int):
    import numpy as np

    return np.dtype(np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.uint32)


def _format(src: Source, files: list[Path]) -> str:
    if src.kind != "files":
        return {"saved": "saved dataset", "hub": "Hub dataset"}[src.kind]
    kinds = sorted({"parquet" if p.name.lower().endswith(PARQUET_SUFFIXES) else "JSON-lines" for p in files})
    return " and ".join(kinds)


def _build(d: Path, src: Source, files: list[Path], tok) -> dict:
    """Stream the rows into d/train.bin and d/val.bin (each atomic), then d/meta.json (the mark of a
    complete cache). Any error removes the partial files."""
    dtype = token_dtype(tok.vocab_size)
    counts = {"rows": 0, "skipped": 0}
    for stale in d.glob(".*.tmp*"):  # left by a builder that was killed (we hold the lock: none is alive)
        stale.unlink(missing_ok=True)
    with atomic_path(d / "train.bin") as t_tmp, atomic_path(d / "val.bin") as v_tmp:
        with open(t_tmp, "wb") as ft, open(v_tmp, "wb") as fv:
            w = {"train": _Writer(ft, tok, dtype), "val": _Writer(fv, tok, dtype)}
            for text in documents(src, files, counts):
                doc = text.encode("utf-8", "replace")
                w["val" if is_val(doc) else "train"].add(doc)
            for x in w.values():
                x.flush()
        if not w["train"].rows and not w["val"].rows:
            raise data_error(f"--data {src.data}: no text in column {src.column!r} ({counts['rows']:,} rows read, "
                             "all empty or null); name the text column with column=NAME")
    meta: dict[str, Any] = {"source": _format(src, files), "column": src.column, "files": len(files),
                            "rows": counts["rows"], "rows_skipped": counts["skipped"], "dtype": dtype.name}
    for k, x in w.items():
        meta.update({f"{k}_rows": x.rows, f"{k}_bytes": x.bytes, f"{k}_fed_bytes": x.fed, f"{k}_tokens": x.tokens})
    write_json(d / "meta.json", meta)
    return meta


def _read_cache(d: Path) -> dict | None:
    """The meta of a complete cache (meta.json there, token files of the sizes it states), else None."""
    import numpy as np

    try:
        meta = json.loads((d / "meta.json").read_text())
        size = np.dtype(meta["dtype"]).itemsize
        for k in ("train", "val"):
            if (d / f"{k}.bin").stat().st_size != meta[f"{k}_tokens"] * size:
                return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def _building(d: Path):
    """Hold d/.lock while building (blocking: a second process waits, then finds the cache built)."""
    import fcntl

    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _corpus(src: Source, d: Path, meta: dict, tok, fp: str):
    import numpy as np

    from .data import VAL_EVERY, Corpus

    dt = np.dtype(meta["dtype"])
    arr = {k: np.memmap(d / f"{k}.bin", dtype=dt, mode="r") if meta[f"{k}_tokens"] else np.zeros(0, dt)
           for k in ("train", "val")}
    train, val = arr["train"], arr["val"]
    split = f"by a hash of each row's text (1 in {VAL_EVERY})"
    fed, n_tok = meta["val_fed_bytes"], meta["val_tokens"]
    if not len(train) or not len(val):  # too few rows for both sides: the last 5% of the tokens
        a = train if len(train) else val
        cut = len(a) - max(1, len(a) // VAL_EVERY)
        train, val = a[:cut], a[cut:]
        split = f"the last 1/{VAL_EVERY} of the tokens (too few rows to split by row)"
        fed, n_tok = meta["train_fed_bytes"] + meta["val_fed_bytes"], meta["train_tokens"] + meta["val_tokens"]
    keep = ("source", "column", "files", "rows", "rows_skipped", "train_rows", "val_rows", "train_bytes", "val_bytes")
    info = {k: meta[k] for k in keep} | {"split": split, "root": src.target}
    if src.kind == "hub":  # the cache cannot see the Hub's content change: say what it is keyed by
        info["fingerprint_of"] = "name, config, split, revision and settings (pin revision= for the content)"
    return Corpus(name=src.data, train=train, val=val, vocab_size=tok.vocab_size, fingerprint=fp,
                  bytes_per_token=fed / max(1, n_tok), tokenizer=tok.name, meta=info)


def load_table(data: str, tokenizer: str = "bytes"):
    """The Corpus of a parquet / JSON-lines / saved / Hub source: from the token cache when its
    fingerprint is there, else streamed into it (a BPE is first trained on the training rows, streamed)."""
    from .data import cache_dir
    from .tokenizers import tokenizer_for

    src = parse(data)
    if src is None:
        raise data_error(f"--data {data}: not a parquet, JSON-lines, saved or Hub dataset")
    files = [] if src.kind == "hub" else list_files(src)
    if src.kind == "files":
        for p in files:
            check_file(src, p)
    fp = fingerprint(src, files)

    def train_texts() -> Iterator[str]:
        for text in documents(src, files, {"rows": 0, "skipped": 0}):
            if not is_val(text.encode("utf-8", "replace")):
                yield text

    tok = tokenizer_for(tokenizer, fp, train_texts)
    d = cache_dir() / "tokens" / f"{fp[:16]}-{tok.name}-corpora-v{STREAM_VERSION}"
    meta = _read_cache(d)
    if meta is None:
        with _building(d):
            meta = _read_cache(d) or _build(d, src, files, tok)
    return _corpus(src, d, meta, tok, fp)
