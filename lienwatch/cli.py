"""The `lienwatch` console script: one typer app, one module per command in lienwatch/commands/."""

from __future__ import annotations

import typer

from lienwatch.commands import bench, decode, demo, fences, migrate, replay, serve, simulate

app = typer.Typer(
    name="lienwatch",
    help="Collateral telematics for car finance: JT/T 808 ingest, geofences, risk rules, alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Lienwatch: collateral telematics for car finance."""


bench.register(app)
simulate.register(app)
fences.register(app)
decode.register(app)
replay.register(app)
migrate.register(app)
serve.register(app)
demo.register(app)


def main() -> None:
    app()
