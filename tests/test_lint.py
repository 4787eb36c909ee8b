"""ruff and mypy are part of the suite, so the code stays clean and type-checked from now on.

Both run from the repository's own configuration (pyproject.toml), in the checkout itself: the
root is the llmhist package and its imports are relative, so mypy resolves them without an install
or a path set-up. mypy names the modules after the checkout's folder, which must then be a Python
identifier; a checkout in another folder (llmhist-main/) is type-checked as a copy named llmhist/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from test_package import copy_tracked, is_package_file, tracked

ROOT = Path(__file__).resolve().parents[1]


def _run(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)


def test_ruff_is_clean():
    r = _run(["ruff", "check", "--no-cache", "."], ROOT)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_mypy_is_clean(tmp_path):
    where = ROOT
    if not ROOT.name.isidentifier():
        where = tmp_path / "llmhist"
        copy_tracked(where)
    cache = tmp_path / ".mypy_cache"
    r = _run(["mypy", "--cache-dir", str(cache)], where)
    shutil.rmtree(cache, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-2000:]
    assert "Success" in r.stdout
    checked = re.search(r"in (\d+) source files?", r.stdout)
    assert checked and int(checked[1]) == sum(map(is_package_file, tracked())), r.stdout  # the package, whole
