"""Start-up of the grading processes (the parallel command, its workers): what to skip because it is slow."""
from __future__ import annotations

import sys

__all__ = ["skip_iri_grammar"]


def skip_iri_grammar() -> None:
    """Make ``import rfc3987_syntax`` fail in this process, before anything imports ``jsonschema``.

    jsonschema imports it, if installed, for its optional "iri" format check, and that import builds
    a Lark grammar: 2.8 s of CPU in every process that imports nbformat. nbformat and nbgrader never
    check formats, so nothing here uses it; jsonschema skips the check when the import fails.
    """
    sys.modules.setdefault("rfc3987_syntax", None)
