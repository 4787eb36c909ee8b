"""Writing files so that no reader ever sees half of one: the one mechanism every writer uses
(run folders, fit files, caches, plots). No heavy imports."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from llmhist.errors import UserError


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


class Locked(UserError):
    """Another live process holds the lock; `holder` says who (pid, host, command, since)."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        if holder.get("what"):
            who += f" ({holder['what']})"
        super().__init__(f"{path.parent} is in use by {who}; wait for it to finish or stop it, then run again")


@contextmanager
def exclusive_lock(folder: str | Path, what: str = ""):
    """Hold `folder/.lock` exclusively for the block (fcntl.flock: the kernel drops it when the
    holder dies, SIGKILL included, so a stale lock never blocks a restart). A second process gets
    `Locked` at once, naming the holder. Re-entrant within one process is not supported: take it once.
    """
    import fcntl
    import time

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except (json.JSONDecodeError, OSError):
                holder = {}
            raise Locked(path, holder if isinstance(holder, dict) else {}) from None
        info = json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "what": what, "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
