"""Persistence: one small interface, SQLite (embedded default) and PostgreSQL/TimescaleDB."""
