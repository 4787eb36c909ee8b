"""The package list, derived: each top-level folder of the design card is mapped into the one
`llmhist` namespace, and every folder below it that holds an __init__.py is a subpackage.

pyproject.toml cannot derive a list across remapped folders (setuptools' find: searches one
tree), and a hand-kept list let a new subpackage pass every test through the editable install
while missing from the wheel; tests/test_package.py builds the wheel and checks it.
"""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
# namespace -> folder. pkg/ holds the namespace's own modules (errors, files, __main__).
ROOTS = {"llmhist": "pkg", "llmhist.cli": "cli", "llmhist.archs": "archs", "llmhist.scaling": "scaling",
         "llmhist.train": "train"}


def packages() -> tuple[list[str], dict[str, str]]:
    names, dirs = [], {}
    for ns, folder in ROOTS.items():
        for init in sorted((HERE / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(HERE / folder)
            if any(p.startswith((".", "__")) for p in rel.parts):
                continue
            name = ".".join((ns, *rel.parts))
            names.append(name)
            dirs[name] = str(Path(folder, *rel.parts))
    return names, dirs


PACKAGES, PACKAGE_DIR = packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
