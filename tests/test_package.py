"""The package is what the tests test: the wheel holds every tracked module under its llmhist.*
name, a new subpackage lands in it without an edit, and no code imports a top-level folder by its
bare name (that gives a second copy of a module, so `except SpecError` could silently miss).

The checkout's root is the llmhist package (setup.py), so package code imports relatively and
static tools resolve every such import from a plain checkout: the absolute `llmhist.*` spelling is
refused inside the package, and jedi, given a copy of the tree that is not installed, must resolve
each project import to a file of that copy. Tests keep `llmhist.*`: they are not in the package."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NS = "llmhist"
# the top-level folders: importing one by its bare name (`import archs`) gives a second copy
BARE = {d.name for d in ROOT.iterdir() if (d / "__init__.py").exists()} | {"tests"}


def tracked() -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked file list is unknown")
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if (ROOT / p).exists()]


def _build_wheel(src: Path, dest: Path) -> set[str]:
    """The modules of the wheel built from `src` with the installed setuptools (no download, no
    isolation). A setuptools older than 70.1 without the `wheel` package has no bdist_wheel: then
    the modules its build_py step collects, which is what a wheel packs (the test extra pins
    setuptools>=70.1, so CI builds the wheel itself)."""
    code = ("import sys; from setuptools import build_meta; "
            f"print(build_meta.build_wheel({str(dest)!r}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True)
    if r.returncode != 0 and "invalid command 'bdist_wheel'" in r.stderr:
        lib = dest / "lib"
        r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)], cwd=src,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        return {p.relative_to(lib).as_posix() for p in lib.rglob("*.py")}
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = dest.glob("*.whl")
    with zipfile.ZipFile(whl) as z:
        return {n for n in z.namelist() if n.endswith(".py")}


def copy_tracked(dest: Path) -> None:
    for p in tracked():
        (dest / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / p, dest / p)


def is_package_file(rel: str, root: Path = ROOT) -> bool:
    """A module of llmhist: a root-level .py but setup.py, or a .py whose every folder up to the root
    holds an __init__.py (the rule setup.py derives the package list by)."""
    parts = Path(rel).parts
    if not rel.endswith(".py") or rel == "setup.py":
        return False
    return all((root.joinpath(*parts[:i]) / "__init__.py").exists() for i in range(1, len(parts)))


def _expected(files) -> set[str]:
    return {f"{NS}/{p}" for p in files if is_package_file(p)}


def test_wheel_holds_exactly_the_tracked_modules(tmp_path):
    src = tmp_path / "src"
    copy_tracked(src)
    got = _build_wheel(src, tmp_path / "dist")
    assert got == _expected(tracked())


def test_a_new_subpackage_reaches_the_wheel_without_an_edit(tmp_path):
    src = tmp_path / "src"
    copy_tracked(src)
    planted = src / "train" / "planted"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    (planted / "mod.py").write_text("X = 1\n")
    got = _build_wheel(src, tmp_path / "dist")
    assert {"llmhist/train/planted/__init__.py", "llmhist/train/planted/mod.py"} <= got


def _bare_imports(path: Path, root: Path = ROOT) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        bad += [f"{path.relative_to(root)}:{node.lineno}: import {n}" for n in names if n.split(".")[0] in BARE]
    return bad


def test_no_bare_imports_of_the_top_level_folders():
    files = [ROOT / p for p in tracked() if p.endswith(".py")]
    assert files
    bad = [b for f in files for b in _bare_imports(f)]
    assert not bad, "import these as llmhist.<folder> instead:\n" + "\n".join(bad)


def test_the_bare_import_check_finds_one(tmp_path):
    f = tmp_path / "planted.py"
    f.write_text("from archs.spec import Arch\nimport llmhist.archs\nimport cli\n")
    assert _bare_imports(f, tmp_path) == ["planted.py:1: import archs.spec", "planted.py:3: import cli"]


def _absolute_imports(path: Path, root: Path = ROOT) -> list[str]:
    """`import llmhist...` / `from llmhist... import` statements, also inside functions."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        bad += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == NS]
    return bad


def test_package_code_imports_the_package_relatively():
    files = [ROOT / p for p in tracked() if is_package_file(p)]
    assert len(files) > 10
    bad = [b for f in files for b in _absolute_imports(f)]
    assert not bad, ("inside the package, import relatively (`from ..core.errors import UserError`): "
                     "static tools cannot resolve llmhist.* without an install:\n" + "\n".join(bad))


def test_the_absolute_import_check_finds_one(tmp_path):
    f = tmp_path / "planted.py"
    f.write_text("from .spec import Arch\nimport llmhistx\n\n\ndef f():\n    from llmhist.core import files\n"
                 "    import llmhist.archs.spec\n")
    assert _absolute_imports(f, tmp_path) == ["planted.py:6: llmhist.core", "planted.py:7: llmhist.archs.spec"]


def _project_imports(path: Path) -> list[tuple[int, int, str]]:
    """(line, column, name) of each name that a package file imports from the package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == NS):
            out += [(a.lineno, a.col_offset, a.name) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Import):
            out += [(a.lineno, a.col_offset + len(a.name) - 1, a.name) for a in node.names
                    if a.name.split(".")[0] == NS]
    return out


def resolve_statically(checkout: Path) -> tuple[int, list[str]]:
    """Resolve every project import of `checkout` with jedi, as an IDE's go-to-definition does: the
    number of names imported, and those that do not land in a file of the checkout. Call it in a
    Python started without `site` (see _resolve_in_clean_python): jedi consults the interpreter's
    import hooks, and the editable install's hook would find llmhist without the checkout's help."""
    import sysconfig

    import jedi

    project = jedi.Project(checkout, sys_path=[sysconfig.get_paths()["stdlib"]])
    env = jedi.InterpreterEnvironment()
    probe = jedi.Script("import llmhist\n", path=checkout / "probe.py", project=project, environment=env)
    assert not probe.goto(1, 8), "jedi finds an installed llmhist: the check would not prove anything"
    total, bad = 0, []
    for rel in (p.relative_to(checkout).as_posix() for p in sorted(checkout.rglob("*.py"))):
        if not is_package_file(rel, checkout):
            continue
        script = jedi.Script(path=checkout / rel, project=project, environment=env)
        for line, col, name in _project_imports(checkout / rel):
            total += 1
            found = [d.module_path for d in script.goto(line, col, follow_imports=True)]
            if not found or not all(p and checkout in Path(p).parents for p in found):
                bad.append(f"{rel}:{line}: {name} -> {[str(p) for p in found] or 'nothing'}")
    return total, bad


def _resolve_in_clean_python(checkout: Path) -> tuple[int, list[str]]:
    """resolve_statically in `python -S`: no site, so no .pth file installs the editable hook; jedi
    and its dependencies are found through the library folder added by hand."""
    import json
    import sysconfig

    code = ("import json, sys; from pathlib import Path; sys.path[:0] = sys.argv[1:3]; import test_package as T; "
            "print(json.dumps(T.resolve_statically(Path(sys.argv[3]))))")
    r = subprocess.run([sys.executable, "-S", "-c", code, sysconfig.get_paths()["purelib"], str(ROOT / "tests"),
                        str(checkout)], capture_output=True, text=True, cwd=checkout)
    assert r.returncode == 0, r.stderr[-4000:]
    total, bad = json.loads(r.stdout.splitlines()[-1])
    return total, bad


def test_every_project_import_resolves_statically_from_a_plain_checkout(tmp_path):
    src = tmp_path / "checkout"
    copy_tracked(src)
    total, bad = _resolve_in_clean_python(src)
    assert total > 100
    assert not bad, f"{len(bad)} of {total} project imports do not resolve without an install:\n" + "\n".join(bad)


def test_the_root_init_imports_nothing_and_hands_out_the_version():
    """pytest imports the root __init__.py under the checkout folder's name (it sees a package above
    tests/): run there, it must import nothing, or it would fail or load a second copy of a module."""
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('elsewhere', sys.argv[1]); "
            "s.loader.exec_module(importlib.util.module_from_spec(s)); "
            "print(sorted(n for n in sys.modules if n.startswith('llmhist')))")
    r = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT / "__init__.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "[]"
    from importlib.metadata import version

    import llmhist
    import llmhist.core

    assert llmhist.__version__ == llmhist.core.__version__ == version(NS)
