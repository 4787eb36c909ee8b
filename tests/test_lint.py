"""ruff and mypy are part of the suite, so the code stays clean and type-checked from now on.

mypy cannot resolve llmhist.* through the package-dir mapping (the editable install is an import
hook), so the check lays the mapped folders out as a standard `llmhist/` tree of symlinks in a
temporary folder and type-checks that tree with the repository's configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"cli": "cli", "archs": "archs", "scaling": "scaling", "train": "train"}


def _run(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)


def standard_tree(dest: Path) -> Path:
    """dest/llmhist: pkg/'s modules at the top, each mapped folder as a subpackage (symlinks)."""
    top = dest / "llmhist"
    top.mkdir(parents=True)
    for f in (ROOT / "pkg").glob("*.py"):
        (top / f.name).symlink_to(f)
    for name, folder in MAPPED.items():
        (top / name).symlink_to(ROOT / folder, target_is_directory=True)
    return top


def test_ruff_is_clean():
    r = _run(["ruff", "check", "--no-cache", "."], ROOT)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_mypy_is_clean(tmp_path):
    standard_tree(tmp_path)
    cache = tmp_path / ".mypy_cache"
    r = _run(["mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache), "-p", "llmhist"],
             tmp_path)
    shutil.rmtree(cache, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-2000:]
    assert "Success" in r.stdout
