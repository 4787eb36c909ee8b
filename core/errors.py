"""The one base class for errors a user can cause and fix (bad option, bad file, bad shape).

The CLI turns a `UserError` into its message and exit code 2 (or the error's own `exit_code`);
anything else that escapes is a bug and keeps its traceback. Library modules raise subclasses
(SpecError, RunError, DataError, FitError, ...) so a Python caller can catch them by kind.
No heavy imports.
"""

from __future__ import annotations


class UserError(Exception):
    """Input that cannot work; the message says what was wrong, where, and how to fix it."""

    exit_code = 2
