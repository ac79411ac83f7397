"""What every command does the same way: how it fails, and how a data command reports."""
from __future__ import annotations

import sys
import typing as tp

from .atomic import DiskFullError


def fail(message: str, code: int = 2) -> int:
    """Print `error: <message>` to stderr; the exit status to return."""
    print(f"error: {message}", file=sys.stderr)
    return code


def report_or_fail(build: tp.Callable[[], tp.Any]) -> int:
    """Run `build` (ingest, a manifest, an import) and print its report's summary; a missing input,
    a refused value or a full disk is printed as the error it is (status 2)."""
    try:
        report = build()
    except (FileNotFoundError, ValueError, DiskFullError) as exc:
        return fail(str(exc))
    print(report.summary())
    return 0
