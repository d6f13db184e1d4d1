"""`lienwatch serve`: the production process, set up by LIENWATCH_* and an optional TOML file."""

from __future__ import annotations

import asyncio

import typer

from ingest.journal import JournalError
from lienwatch.commands import EXIT_RUNTIME, fail
from lienwatch.settings import SettingsError, load_settings
from store import StoreError


def serve() -> None:
    """Run the JT808 gateway with its journal and store until Ctrl-C or SIGTERM."""
    from lienwatch import runtime

    try:
        settings = load_settings()
    except SettingsError as exc:
        fail(str(exc))
    problem = settings.split_problem()
    if problem is not None:
        fail(problem)
    runtime.configure_logging(settings)
    runtime.install_event_loop_policy()
    try:
        asyncio.run(runtime.serve(settings))
    except StoreError as exc:
        fail(f"store: {' '.join(str(exc).split())}", EXIT_RUNTIME)
    except JournalError as exc:  # an fsync failed: restarting recovers from the journal
        fail(f"journal: {exc}", EXIT_RUNTIME)
    except OSError as exc:
        fail(f"cannot listen: {exc}", EXIT_RUNTIME)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
