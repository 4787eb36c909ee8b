"""Writing files so that no reader ever sees half of one: the one mechanism every writer uses
(run folders, fit files, caches, plots). No heavy imports."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path` (same folder, same suffix, so tools that infer a format
    from the name still work); when the block succeeds, fsync it and rename it over `path`. On any
    failure (a full disk included) the temporary is removed and the old file is left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, payload: bytes | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload.encode() if isinstance(payload, str) else payload)


def _json_default(o):
    import numpy as np  # only reached for non-JSON values, which come from numpy

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    return str(o)


def write_json(path: str | Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=_json_default) + "\n")
