"""One module per `lienwatch` command; each exposes `register(app)`."""

from __future__ import annotations

import sys
from typing import NoReturn

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


def fail(reason: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Exits with a one-line reason on stderr (contracts section 1: exit 2 for bad input).

    SystemExit rather than typer.Exit, so a command can run without typer imported (click and
    typer's test runner treat both the same)."""
    print(f"lienwatch: {reason}", file=sys.stderr)
    raise SystemExit(code)
