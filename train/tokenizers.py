"""Tokenisers: raw bytes (vocabulary 256) or a byte-level BPE trained locally on a corpus's training
split with the `tokenizers` library, cached with its token arrays under the corpus fingerprint
(in llmhist.train.data's cache folder), and `tokenize`, which turns a corpus's splits into ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import UserError
from ..core.files import atomic_path, fault
from .config import bpe_vocab
from .data import DataError, _load_cached, cache_dir

# bumped when BPE training changes, so caches of tokenizers (and their token arrays) from an older
# trainer are not reused: v2 stopped feeding the trainer overlapping copies of the text
BPE_CACHE_VERSION = 2


class ByteTokenizer:
    """Raw UTF-8 bytes: vocabulary 256, nothing to train, one byte per token."""

    name = "bytes"
    vocab_size = 256

    def encode(self, b: bytes) -> np.ndarray:
        return np.frombuffer(b, dtype=np.uint8).astype(np.uint16)

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if i < 256).decode("utf-8", errors="replace")


class BPETokenizer:
    """Byte-level BPE trained locally on the training split with the `tokenizers` library
    (its Rust trainer is far faster than anything we would write), cached by corpus fingerprint."""

    def __init__(self, vocab_size: int, train_bytes: bytes | Callable[[], Iterable[str]], cache: Path):
        """train_bytes: the training split, or a function giving its texts as an iterator (a
        streamed corpus: the trainer counts words as they come and never holds the text whole)."""
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError as e:
            raise DataError("the BPE tokenizer needs the `tokenizers` package: pip install 'llmhist[bpe]' "
                            "(from a checkout: pip install -e '.[bpe]')") from e
        self.name, self.vocab_size = f"bpe{vocab_size}", vocab_size
        self.tok: Any = None
        if cache.exists():
            try:
                self.tok = Tokenizer.from_file(str(cache))
            except Exception:  # noqa: BLE001  (a damaged cache, only a cache: train it again)
                cache.unlink(missing_ok=True)
        if self.tok is None:
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
            )
            if callable(train_bytes):
                chunks: Iterable[str] = train_bytes()
            else:
                text = train_bytes.decode("utf-8", errors="replace")
                chunks = (text[i : i + (1 << 20)] for i in range(0, len(text), 1 << 20))
            tok.train_from_iterator(chunks, trainer=trainer)
            fault("data/bpe_trained")
            with atomic_path(cache) as tmp:
                tok.save(str(tmp))
            self.tok = tok

    def encode(self, b: bytes) -> np.ndarray:
        text = b.decode("utf-8", errors="replace")
        lines = text.splitlines(keepends=True)
        ids = []
        for enc in self.tok.encode_batch(["".join(lines[i : i + 256]) for i in range(0, len(lines), 256)]):
            ids.extend(enc.ids)
        return np.asarray(ids, dtype=np.uint16 if self.vocab_size <= 65536 else np.uint32)

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids])


def tokenize(tokenizer: str, fp: str, train_b: bytes, val_b: bytes):
    """(tokenizer, train ids, val ids) for a --tokenizer value: bytes, or a BPE trained on the
    training split and cached with its token arrays under the corpus fingerprint."""
    tok = tokenizer_for(tokenizer, fp, train_b)
    if isinstance(tok, ByteTokenizer):
        return tok, tok.encode(train_b), tok.encode(val_b)
    return (tok, *_cached_tokens(fp, tok, train_b, val_b))


def tokenizer_for(tokenizer: str, fp: str, train: bytes | Callable[[], Iterable[str]]):
    """The tokenizer a --tokenizer value names: bytes, or a BPE trained on `train` (the training
    split, or a function streaming its texts) and cached under the corpus fingerprint."""
    if tokenizer == "bytes":
        return ByteTokenizer()
    try:
        size = bpe_vocab(tokenizer)  # the one check of a --tokenizer value (TrainConfig makes it too)
    except UserError as e:
        raise DataError(str(e)) from None
    assert size is not None  # "bytes" returned above
    return BPETokenizer(size, train, cache_dir() / "tokenizers" / f"{fp[:16]}-bpe{size}-v{BPE_CACHE_VERSION}.json")


def _cached_tokens(fp: str, tok, train_b: bytes, val_b: bytes) -> tuple[np.ndarray, np.ndarray]:
    d = cache_dir() / "tokens" / f"{fp[:16]}-{tok.name}-v{BPE_CACHE_VERSION}"
    out = []
    for split, b in (("train", train_b), ("val", val_b)):
        p = d / f"{split}.npy"
        arr = _load_cached(p)
        if arr is None:
            fault("data/bpe_encode")
            with atomic_path(p) as tmp:
                np.save(tmp, tok.encode(b))
            arr = np.load(p, mmap_mode="r")
        out.append(arr)
    return out[0], out[1]
