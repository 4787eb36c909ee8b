"""Writing files so that no reader ever sees half of one: the one mechanism every writer uses
(run folders, fit files, caches, plots). No heavy imports."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


def fault(event: str) -> None:
    """A named point where a test may kill this process: with LLMHIST_FAULT=EVENT[:N] in the
    environment, the N-th (default first) time EVENT is reached the process SIGKILLs itself, as a
    power cut or an OOM kill would. Costs one dictionary lookup when the variable is unset.
    Events: see tests/test_faults.py (e.g. `metrics.csv/before_rename`, `checkpoint/between_renames`)."""
    want = os.environ.get("LLMHIST_FAULT")
    if not want:
        return
    name, _, nth = want.rpartition(":") if want.rpartition(":")[2].isdigit() else (want, "", "1")
    if name != event:
        return
    _FAULT_HITS[event] = _FAULT_HITS.get(event, 0) + 1
    if _FAULT_HITS[event] == int(nth):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_HITS: dict[str, int] = {}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file here (0644 under the usual umask 022)


def fsync_path(path: str | Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_path(path: str | Path, durable: bool = True):
    """Yield a temporary path beside `path` (same folder, same suffix, so tools that infer a format
    from the name still work); when the block succeeds, give it the usual file mode (some writers,
    e.g. safetensors, create 0600 files), fsync it (unless durable=False: a file rewritten often
    that nothing depends on) and rename it over `path`. On any failure (a full disk included) the
    temporary is removed and the old file is left untouched; an OSError that names no file (a full
    disk during write()) is raised again naming `path`, so the message says which file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        if durable:
            fault(f"{path.name}/before_fsync")
            fsync_path(tmp)
        fault(f"{path.name}/before_rename")
        os.replace(tmp, path)
        fault(f"{path.name}/after_rename")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno is not None and e.filename in (None, str(tmp)):  # a failed write() names no file: name it
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, payload: bytes | str, durable: bool = True) -> None:
    with atomic_path(path, durable=durable) as tmp:
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
            raise Locked(path, _holder(fd)) from None
        info = json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "what": what, "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _holder(fd: int) -> dict:
    """What the holder of a lock file wrote into it (pid, host, what, since); {} if unreadable."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (json.JSONDecodeError, OSError):
        return {}
    return holder if isinstance(holder, dict) else {}


def lock_holder(folder: str | Path) -> dict | None:
    """Who holds folder/.lock (a live process: the kernel drops a dead holder's lock), or None."""
    import fcntl

    try:
        fd = os.open(Path(folder) / ".lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
