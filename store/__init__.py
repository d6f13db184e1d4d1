"""Persistence: one small interface, SQLite (embedded default) and PostgreSQL/TimescaleDB."""

from store.factory import migrate, open_store, sqlite_path
from store.interface import (
    CommandState,
    Device,
    PositionPage,
    QueuedCommand,
    SchemaError,
    Store,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
    WriteResult,
)

__all__ = [
    "CommandState",
    "Device",
    "PositionPage",
    "QueuedCommand",
    "SchemaError",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "WriteResult",
    "migrate",
    "open_store",
    "sqlite_path",
]
