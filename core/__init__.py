"""The modules every part of llmhist shares: errors (UserError), files (atomic writes, locks),
numbers (as people read them), report (the rows of `archs`, `show`, `compare`); and the version.

`__version__` is defined here, not in the root __init__.py (which hands it out as
llmhist.__version__), so that package code imports it as `from ..core import __version__`, a
spelling static tools resolve from a plain checkout."""

__version__ = "0.1.0"
