"""`--data prose`: English prose shipped in gensim's wheel (its test data: the Lee news corpus and a
shortened Wikipedia dump), found without importing gensim, split into train/validation documents as
llmhist.train.data splits files, tokenised by llmhist.train.tokenizers.
"""

from __future__ import annotations

from pathlib import Path

from .data import SEPARATOR, Corpus, DataError, _fingerprint, _is_val
from .tokenizers import tokenize


def prose_files() -> tuple[Path, Path]:
    """English prose shipped inside gensim's wheel (its test data): the Lee news corpus and a
    shortened Wikipedia dump. Found without importing gensim (slow, and not needed)."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("--data prose reads English text shipped in gensim's wheel: pip install 'llmhist[prose]' "
                        "(from a checkout: pip install -e '.[prose]'; or use --data stdlib, the default)")
    d = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    lee = d / "lee_background.cor"
    wiki = d / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    if not lee.exists() or not wiki.exists():
        raise DataError(f"{d}: this gensim wheel lacks its test data (lee_background.cor, the enwiki extract)")
    return lee, wiki


def prose_documents() -> list[tuple[str, bytes]]:
    """(name, text) per document: 300 news articles and each Wikipedia article's wikitext."""
    import bz2
    import xml.etree.ElementTree as ET

    lee, wiki = prose_files()
    docs = [(f"lee/{i}", line.strip().encode()) for i, line in enumerate(lee.read_text(errors="replace").splitlines())
            if line.strip()]
    title = None
    with bz2.open(wiki) as f:
        for _, el in ET.iterparse(f):
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "title":
                title = el.text
            elif tag == "text" and el.text and not el.text.lstrip().lower().startswith("#redirect"):
                docs.append((f"wiki/{title}", el.text.encode()))
            if tag == "page":
                el.clear()
    return docs


def prose_corpus(tokenizer: str) -> Corpus:
    """`--data prose`: the documents split by a hash of their names (as files are), tokenised."""
    docs = prose_documents()
    train_b = SEPARATOR.join(b for n, b in docs if not _is_val(n))
    val_b = SEPARATOR.join(b for n, b in docs if _is_val(n))
    fp = _fingerprint(b"prose-v1", train_b, val_b)
    tok, train, val = tokenize(tokenizer, fp, train_b, val_b)
    return Corpus(name="prose (gensim test data: Lee news corpus + Wikipedia extract)", train=train, val=val,
                  vocab_size=tok.vocab_size, fingerprint=fp, bytes_per_token=len(val_b) / max(1, len(val)),
                  tokenizer=tok.name, meta={"documents": len(docs), "train_bytes": len(train_b),
                                            "val_bytes": len(val_b)})
