"""`lienwatch decode`: JT808 frames as hex lines in, one JSON object per line out (contracts §2)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ingest.jt808.jsonview import decode_hex_line


def decode(
    frames: Annotated[
        list[str] | None,
        typer.Argument(help="frames as hex; read one per line from stdin when none are given"),
    ] = None,
) -> None:
    """Decode JT808 frames (hex, one per line or argument) to JSON lines; exit 0 even when bad."""
    lines = frames if frames else sys.stdin
    out = sys.stdout
    for line in lines:
        if not line.strip():
            continue
        out.write(json.dumps(decode_hex_line(line), ensure_ascii=False) + "\n")
    out.flush()


def register(app: typer.Typer) -> None:
    app.command("decode")(decode)
