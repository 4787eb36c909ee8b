"""The `llmhist` command: thin wrappers over library functions.

One registration style: each cli/*_cmd.py module defines `app = typer.Typer()` holding its
commands (a command group such as `sweep` is a Typer with a name); this module composes them.
Heavy imports (torch, matplotlib, scipy) happen inside the commands that need them, so
`llmhist --help`, `archs`, `show` and `compare` start fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import ablate_cmd, archs_cmd, scaling_cmd, study_cmd, sweep_cmd, train_cmd

app = typer.Typer(
    help="The history of LLM architectures, built for real, and the scaling laws that explain them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from llmhist import __version__

        typer.echo(f"llmhist {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="print the version and exit")] = None,
) -> None:
    """The history of LLM architectures, built for real, and the scaling laws that explain them."""


for _mod in (archs_cmd, scaling_cmd, train_cmd, sweep_cmd, study_cmd, ablate_cmd):
    if hasattr(_mod, "app"):
        app.add_typer(_mod.app)  # the module's commands (and named groups) join the top level
    else:  # transitional: a module not yet converted to `app = typer.Typer()`
        _mod.register(app)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
