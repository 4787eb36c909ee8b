"""The package list, derived: the checkout's root is the `llmhist` package (package_dir maps
llmhist -> "."), and every folder below it whose chain of folders up to the root holds __init__.py
is a subpackage (tests/, runs/, scripts/, build/ hold none, so they are not shipped).

With the root as the package, a file's folder is its package for every tool, installed or not:
imports inside the package are relative and resolve from a plain checkout (jedi, pyright, mypy).
pyproject.toml cannot derive this list (setuptools' find: does not map a root package), and a
hand-kept list let a new subpackage pass every test through the editable install while missing
from the wheel; tests/test_package.py builds the wheel and checks it.
"""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
NS = "llmhist"


def packages() -> list[str]:
    names = []
    for folder, dirs, files in os.walk(HERE):
        if "__init__.py" not in files:
            dirs.clear()  # not a package: nothing below it is one either
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        rel = Path(folder).relative_to(HERE)
        names.append(".".join((NS, *rel.parts)))
    return names


class BuildPy(build_py):
    """This setup.py sits in the root package's folder: it is the build script, not a module."""

    def find_package_modules(self, package, package_dir):
        mods = super().find_package_modules(package, package_dir)
        return [m for m in mods if Path(m[2]).resolve() != Path(__file__).resolve()]


if __name__ == "__main__":  # the build runs it as a script; the editable install could import it as llmhist.setup
    setup(packages=packages(), package_dir={NS: "."}, cmdclass={"build_py": BuildPy})
