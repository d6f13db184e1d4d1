"""One module per `lienwatch` command; each exposes `register(app)`."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


def fail(reason: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Exits with a one-line reason on stderr (contracts section 1: exit 2 for bad input)."""
    print(f"lienwatch: {reason}", file=sys.stderr)
    raise typer.Exit(code)
