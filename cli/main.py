"""The `llmhist` command: thin wrappers over library functions.

Heavy imports (torch, matplotlib, scipy) happen inside the commands that need them, so
`llmhist --help`, `archs`, `show` and `compare` start fast.
"""

from __future__ import annotations

import typer

from . import ablate_cmd, archs_cmd, scaling_cmd, study_cmd, sweep_cmd, train_cmd

app = typer.Typer(
    help="The history of LLM architectures, built for real, and the scaling laws that explain them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
archs_cmd.register(app)
scaling_cmd.register(app)
train_cmd.register(app)
sweep_cmd.register(app)
study_cmd.register(app)
ablate_cmd.register(app)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
