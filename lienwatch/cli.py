"""The `lienwatch` console script: one typer app, one module per command in lienwatch/commands/.

Start-up is part of every command's cost (a replay of a few seconds paid a second of imports),
so `main` imports only the module of the command named on the command line: the typer app it
builds registers that one command. `lienwatch --help`, an unknown name or no name get the whole
app, and `app` (the whole app, for tests) is built on first access. A plain `lienwatch replay`
with its options does not even import typer (see `lienwatch.commands.replay.fast_main`).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# Command name -> module in lienwatch.commands, in the order `--help` lists them.
COMMANDS = {
    "bench": "bench",
    "simulate": "simulate",
    "fences": "fences",
    "decode": "decode",
    "replay": "replay",
    "migrate": "migrate",
    "serve": "serve",
    "demo": "demo",
}


def build_app(only: str | None = None) -> typer.Typer:
    """The typer app with every command, or with the one command `only`."""
    import typer

    app = typer.Typer(
        name="lienwatch",
        help="Collateral telematics for car finance: JT/T 808 ingest, geofences, risk rules, "
        "alerts.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def root() -> None:
        """Lienwatch: collateral telematics for car finance."""

    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(f"lienwatch.commands.{module}").register(app)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    argv = sys.argv[1:]
    command = argv[0] if argv and argv[0] in COMMANDS else None
    if command == "replay":
        from lienwatch.commands.replay import fast_main

        fast_main(argv[1:])  # returns only when the arguments need typer's parsing
    build_app(command)()
