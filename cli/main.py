"""The `llmhist` command: thin wrappers over library functions.

One registration style: each cli/*_cmd.py module defines `app = typer.Typer()` holding its
commands (a command group such as `sweep` is a Typer with a name); this module composes them.
Heavy imports (torch, matplotlib, scipy) happen inside the commands that need them, so
`llmhist --help`, `archs`, `show` and `compare` start fast. Help is click's plain text for every
command (see _plain_help), with the command list's sentences whole (see _Commands).
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from . import ablate_cmd, archs_cmd, scaling_cmd, study_cmd, sweep_cmd, train_cmd
from .common import JSON_HELP


class _Commands(TyperGroup):
    """The command list with each command's whole first sentence, wrapped on words (click cuts it to
    fit one line: `export  Write a folder transformers'...`); a `--json` declared without help text
    (in any command or sub-command) gets the one shared sentence."""

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        todo = [cmd]
        while todo:
            c = todo.pop()
            todo += list(getattr(c, "commands", {}).values())
            for p in getattr(c, "params", ()):
                if "--json" in getattr(p, "opts", ()) and not getattr(p, "help", None):
                    p.help = JSON_HELP
        return cmd

    def format_commands(self, ctx, formatter) -> None:  # click's Context and HelpFormatter
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=_Commands,
    help="The history of LLM architectures, built for real, and the scaling laws that explain them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from ..core import __version__

        typer.echo(f"llmhist {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="print the version and exit")] = None,
) -> None:
    """The history of LLM architectures, built for real, and the scaling laws that explain them."""


for _mod in (archs_cmd, scaling_cmd, train_cmd, sweep_cmd, study_cmd, ablate_cmd):
    app.add_typer(_mod.app)  # the module's commands (and named groups) join the top level


def _plain_help(t: typer.Typer) -> None:
    """Every command's --help in click's plain format, the same on a terminal and in a pipe: a flag
    shows no value (typer's rich panels print `--json <bool>`, though `--json true` is refused), help
    text is printed literally (rich markup ate `[[run]]` and `[defaults]`) and wrapped on words."""
    t.rich_markup_mode = None
    for group in t.registered_groups:
        if group.typer_instance is not None:
            _plain_help(group.typer_instance)


_plain_help(app)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
