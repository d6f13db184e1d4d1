"""Persistence: one small interface, SQLite (embedded default) and PostgreSQL/TimescaleDB."""

from alerts.outbox import AlertsAdded, WebhookDelivery, WebhookState
from store.factory import migrate, open_store, sqlite_path
from store.interface import (
    AlertNotFoundError,
    CommandState,
    Device,
    DeviceClock,
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
    "AlertNotFoundError",
    "AlertsAdded",
    "CommandState",
    "Device",
    "DeviceClock",
    "PositionPage",
    "QueuedCommand",
    "SchemaError",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "WebhookDelivery",
    "WebhookState",
    "WriteResult",
    "migrate",
    "open_store",
    "sqlite_path",
]
