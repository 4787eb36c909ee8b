"""Corpora the way public pre-training data ships: parquet and JSON-lines files with a text column
(one file, a quoted glob, or a folder), a dataset saved with `datasets`' save_to_disk, and a named
Hugging Face Hub dataset, read through `datasets` only when the user names one with ``hub:``.

Spelling of ``--data`` (settings after the last colon, as ``markov:`` has them):
- ``PATH[:column=text,rows=N]``: PATH a ``.parquet``, ``.jsonl``/``.ndjson`` (optionally ``.gz``) or
  ``.json.gz`` (JSON lines, as Dolma ships) file, a glob of such files, a folder holding them, or a
  folder that ``Dataset.save_to_disk`` wrote (then also ``split=NAME`` for a saved DatasetDict);
- ``hub:NAME[:split=train,config=C,revision=R,column=text,rows=N]``: a Hub dataset, streamed.
``column`` defaults to ``text`` (FineWeb, TinyStories, SlimPajama, Dolma); ``rows`` reads only the
first N rows. Nothing is ever downloaded unless the value starts with ``hub:``.

Rows are read a batch at a time (a parquet row group, one JSON line, one batch of
a saved dataset), so memory stays near one row group whatever the corpus size;
llmhist.train.tokencache streams them into the token cache. Files are checked before any work
(not empty, the column there and holding text), from parquet schemas and first JSON lines.

Split: a row goes to validation when a hash of its text is 0 mod 20 (about 5%): the same whatever
the file order or sharding, and duplicate rows never straddle the split. A corpus too small to put
a row on each side gives the last 5% of its tokens to validation instead.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARQUET_SUFFIXES = (".parquet",)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json.gz")
SAVED_MARKERS = ("state.json", "dataset_dict.json")  # what save_to_disk writes (Dataset, DatasetDict)
SETTINGS = {"files": ("column", "rows"), "saved": ("column", "rows", "split"),
            "hub": ("column", "rows", "split", "config", "revision")}
TEXT_TYPES = {"string", "large_string", "string_view", "str", "NoneType"}
ROW_BATCH = 128  # rows per parquet / saved-dataset batch: bounded memory for long documents


def data_error(msg: str) -> Exception:
    from .data import DataError

    return DataError(msg)


@dataclass(frozen=True)
class Source:
    data: str  # the --data value as given
    kind: str  # "files" (parquet / JSON lines), "saved" (save_to_disk folder), "hub"
    target: str  # the path or glob, or the Hub name
    column: str = "text"
    rows: int | None = None
    split: str | None = None
    config: str | None = None
    revision: str | None = None

    def spelled(self, **settings: str) -> str:
        """This source's --data value with some settings replaced (for the hints in messages)."""
        kw = {k: getattr(self, k) for k in SETTINGS[self.kind] if getattr(self, k) not in (None, "text")}
        kw.update(settings)
        body = ",".join(f"{k}={v}" for k, v in kw.items())
        return ("hub:" if self.kind == "hub" else "") + self.target + (f":{body}" if body else "")


# ------------------------------------------------------------------------------- parsing


def _is_table(p: Path) -> bool:
    return p.name.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES)


def _split_settings(body: str) -> tuple[str, str]:
    if Path(body).expanduser().exists():
        return body, ""
    head, sep, tail = body.rpartition(":")
    if sep and head and tail and all("=" in item for item in tail.split(",")):
        return head, tail
    return body, ""


def _local_kind(target: str) -> str | None:
    p = Path(target).expanduser()
    if not p.exists():  # a glob: ours when it names table files or matches files (else: "no such file")
        if not glob.has_magic(target):
            return None
        named = target.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES)
        return "files" if named or glob.glob(os.path.expanduser(target), recursive=True) else None
    if p.is_file():
        return "files" if _is_table(p) else None
    if not p.is_dir() or (p / "train.bin").exists():
        return None
    if any((p / m).exists() for m in SAVED_MARKERS):
        return "saved"
    from .data import text_files

    return "files" if any(_is_table(f) for f in text_files(p, None)) else None


def parse(data: str) -> Source | None:
    """The Source a --data value names, or None when it is not one of these corpora (a text file
    or folder, token files, a built-in source). Unknown settings are refused here."""
    hub = data.startswith("hub:")
    target, settings = _split_settings(data[4:] if hub else data)
    kind = "hub" if hub else _local_kind(target)
    if kind is None:
        if settings:
            raise data_error(f"--data {data}: settings ({settings}) apply to parquet / JSON-lines files, a saved "
                             f"dataset or hub:NAME, but {target} is none of these (or does not exist)")
        return None
    if not target:
        raise data_error(f"--data {data}: name the dataset, e.g. hub:roneneldan/TinyStories")
    kw: dict[str, Any] = {}
    for item in filter(None, settings.split(",")):
        k, _, v = item.partition("=")
        if k not in SETTINGS[kind] or not v:
            raise data_error(f"--data {data}: unknown or empty setting {item!r}; for this source the settings are "
                             f"{', '.join(SETTINGS[kind])} (e.g. {target}:column=text)")
        kw[k] = v
    if "rows" in kw:
        if not kw["rows"].isdigit() or int(kw["rows"]) < 1:
            raise data_error(f"--data {data}: rows={kw['rows']} must be a whole number >= 1")
        kw["rows"] = int(kw["rows"])
    return Source(data=data, kind=kind, target=target, **kw)


def list_files(src: Source) -> list[Path]:
    """The files a local source reads, sorted (a folder: walked as text folders are, so test/ and
    hidden folders are skipped; a saved dataset: the arrow files of its chosen split)."""
    from .data import text_files

    p = Path(src.target).expanduser()
    if src.kind == "saved":  # the arrow files of the chosen split
        files = sorted(Path(f["filename"]) for f in open_saved(src).cache_files)
    elif p.is_dir():
        files = [f for f in text_files(p, None) if _is_table(f)]
    elif p.is_file():
        files = [p]
    else:
        found = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
        files = [f for f in found if f.is_file()]
        if not files:
            raise data_error(f"--data {src.data}: the pattern {src.target!r} matches no file (relative to "
                             f"{os.getcwd()}); check the path, and quote the pattern so the shell passes it whole")
        other = [str(f) for f in files if not _is_table(f)]
        if other:
            raise data_error(f"--data {src.data}: the pattern matches files that are neither parquet nor JSON lines "
                             f"({', '.join(other[:3])}); narrow it, e.g. '*.parquet' (text files: give their folder)")
    return files


# ------------------------------------------------------------------------- reading rows


def _need_text_column(src: Source, where: str, types: dict[str, str]) -> None:
    """Refuse a missing or non-text column, listing the columns there are (name and type)."""
    listed = ", ".join(f"{k} ({v})" for k, v in types.items()) or "none"
    hint = f"name the text column with --data '{src.spelled(column='NAME')}' (default: text)"
    if src.column not in types:
        raise data_error(f"{where}: no column {src.column!r}; the columns are {listed}; {hint}")
    if types[src.column] not in TEXT_TYPES:
        raise data_error(f"{where}: column {src.column!r} is {types[src.column]}, not text; the columns are "
                         f"{listed}; {hint}")


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise data_error("reading parquet needs the `pyarrow` package: pip install 'llmhist[parquet]' "
                         "(from a checkout: pip install -e '.[parquet]')") from e
    return pq


def _parquet_file(p: Path):
    pq = _pyarrow_parquet()
    try:
        return pq.ParquetFile(p)
    except Exception as e:  # noqa: BLE001  (pyarrow raises ArrowInvalid, OSError, ... for a damaged file)
        raise data_error(f"{p}: not a readable parquet file ({e}); remove it or narrow --data") from e


def check_file(src: Source, p: Path) -> None:
    """Refuse an empty file, and a missing or non-text column (from the schema, or the first JSON line)."""
    if p.stat().st_size == 0:
        raise data_error(f"{p}: the file is empty (0 bytes); remove it or narrow --data")
    if p.name.lower().endswith(PARQUET_SUFFIXES):
        pf = _parquet_file(p)
        if pf.metadata.num_rows == 0:
            raise data_error(f"{p}: the parquet file has no rows; remove it or narrow --data")
        _need_text_column(src, str(p), {f.name: str(f.type) for f in pf.schema_arrow})
        return
    for n, row in _jsonl_objects(p):
        _need_text_column(src, f"{p}:{n}", {k: type(v).__name__ for k, v in row.items()})
        return
    raise data_error(f"{p}: no JSON lines in the file (only blank lines); remove it or narrow --data")


def _jsonl_objects(p: Path) -> Iterator[tuple[int, dict]]:
    opener: Any = gzip.open if p.name.lower().endswith(".gz") else open
    try:
        with opener(p, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise data_error(f"{p}:{n}: not a JSON line ({e}); each line must be one JSON object") from e
                if not isinstance(row, dict):
                    raise data_error(f"{p}:{n}: a JSON line must be an object (with a text field), not "
                                     f"{type(row).__name__}")
                yield n, row
    except (OSError, EOFError) as e:  # a damaged .gz
        raise data_error(f"{p}: cannot be read to the end ({e}); the file may be truncated") from e


def _jsonl_values(src: Source, p: Path) -> Iterator[str | None]:
    for n, row in _jsonl_objects(p):
        v = row.get(src.column)
        if src.column not in row or not (v is None or isinstance(v, str)):
            _need_text_column(src, f"{p}:{n}", {k: type(x).__name__ for k, x in row.items()})
        yield v


def _parquet_values(src: Source, p: Path) -> Iterator[str | None]:
    # one row group at a time: ParquetFile.iter_batches reads ahead (a whole 128 MB file, measured)
    pf = _parquet_file(p)
    for i in range(pf.num_row_groups):
        for batch in pf.read_row_group(i, columns=[src.column], use_threads=False).to_batches(ROW_BATCH):
            yield from batch.column(0).to_pylist()


def _datasets(data: str):
    try:
        import datasets
    except ImportError as e:
        raise data_error(f"--data {data}: reading a saved or Hub dataset needs the `datasets` package: "
                         "pip install 'llmhist[hub]' (from a checkout: pip install -e '.[hub]')") from e
    return datasets


def open_saved(src: Source):
    """The Dataset (memory-mapped arrow) a save_to_disk folder holds, its split chosen, column checked."""
    datasets = _datasets(src.data)
    try:
        ds = datasets.load_from_disk(src.target)
    except Exception as e:  # noqa: BLE001  (datasets raises FileNotFoundError, ValueError, ... here)
        raise data_error(f"{src.target}: not a dataset `datasets` can load from disk ({e})") from e
    if isinstance(ds, datasets.DatasetDict):
        split = src.split or ("train" if "train" in ds or len(ds) != 1 else next(iter(ds)))
        if split not in ds:
            raise data_error(f"--data {src.data}: the saved dataset has splits {', '.join(ds) or 'none'}; choose "
                             f"one with --data '{src.spelled(split='NAME')}' (default: train)")
        ds = ds[split]
    elif src.split:
        raise data_error(f"--data {src.data}: {src.target} holds one Dataset, not splits; leave out split=")
    _need_text_column(src, src.target, {k: getattr(f, "dtype", type(f).__name__) for k, f in ds.features.items()})
    return ds


def open_hub(src: Source):
    """A streamed Hub dataset (nothing is fetched until rows are read); a clear error when unreachable."""
    datasets = _datasets(src.data)
    if Path(src.target).expanduser().exists():
        raise data_error(f"--data {src.data}: {src.target} is a local path, and hub: names a dataset on the Hugging "
                         f"Face Hub; for a folder save_to_disk wrote, give --data {src.target}")
    split = src.split or "train"
    try:
        return datasets.load_dataset(src.target, src.config, split=split, streaming=True, revision=src.revision)
    except Exception as e:  # noqa: BLE001  (offline, unknown name, unknown split, private: all say why)
        offline = [v for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(v, "0") not in ("", "0")]
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise data_error(
                         f"--data {src.data}: could not open split {split!r} of the Hub dataset {src.target!r} (config "
                         f"{src.config or 'default'}, revision {src.revision or 'main'}) through `datasets`: {why}"
            + (f" ({' and '.join(offline)} {'is' if len(offline) == 1 else 'are'} set: nothing is downloaded)"
               if offline else "")
            + "; check the name and that this machine reaches the Hub, or give a folder that save_to_disk wrote"
        ) from e


def _values(src: Source, files: list[Path]) -> Iterator[str | None]:
    if src.kind == "hub":
        for i, row in enumerate(open_hub(src)):
            if i == 0:
                _need_text_column(src, f"hub:{src.target}", {k: type(v).__name__ for k, v in row.items()})
            yield row.get(src.column)
    elif src.kind == "saved":
        for batch in open_saved(src).select_columns([src.column]).iter(batch_size=ROW_BATCH):
            yield from batch[src.column]
    else:
        for p in files:
            yield from (_parquet_values if p.name.lower().endswith(PARQUET_SUFFIXES) else _jsonl_values)(src, p)


def documents(src: Source, files: list[Path], counts: dict[str, int]) -> Iterator[str]:
    """The non-empty texts, in order, at most `rows` rows read; counts rows read and rows skipped."""
    for v in _values(src, files):
        if src.rows is not None and counts["rows"] >= src.rows:
            return
        counts["rows"] += 1
        if v is None or not v.strip():
            counts["skipped"] += 1
            continue
        yield v


def is_val(doc: bytes) -> bool:
    from .data import VAL_EVERY

    return int.from_bytes(hashlib.blake2b(doc, digest_size=8).digest(), "little") % VAL_EVERY == 0


# ------------------------------------------------------------------------------ checks


def stamp(data: str) -> tuple | None:
    """(path, size, mtime) of every local file a --data value reads, for an in-process cache key;
    None for anything else (or when the value is bad: loading it says why)."""
    try:
        src = parse(data)
        if src is None or src.kind == "hub":
            return None
        return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in list_files(src))
    except (ValueError, OSError):
        return None


def check_source(data: str) -> bool:
    """False when --data is not one of these corpora; else check it (files exist and are not empty,
    the column is there and holds text; the `datasets` package for hub:) and return True. Reads
    schemas and first lines only. A Hub dataset is reached only when read."""
    src = parse(data)
    if src is None:
        return False
    if src.kind == "files":
        for p in list_files(src):
            check_file(src, p)
    elif src.kind == "saved":
        open_saved(src)
    else:
        _datasets(src.data)
    return True
