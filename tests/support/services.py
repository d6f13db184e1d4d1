"""Fixtures for the real local services: PostgreSQL, Redis and Mosquitto on 127.0.0.1.

Each test session gets its own PostgreSQL database, dropped at the end. URLs can be pointed
elsewhere with LIENWATCH_TEST_PG_ADMIN_URL, LIENWATCH_TEST_REDIS_URL, LIENWATCH_TEST_MQTT_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get(
    "LIENWATCH_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("LIENWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MQTT_URL = os.environ.get("LIENWATCH_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def _with_dbname(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session."""
    name = f"lienwatch_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(PG_ADMIN_URL, name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database_url: str) -> str:
    """The session database, emptied of every table before the test."""
    with psycopg.connect(pg_database_url, autocommit=True) as conn:
        # Connections a previous test left open would hold locks the drop waits on (or, with
        # an extension living in the schema, deadlock with): they go first.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return pg_database_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Runs the test on each store: None (the embedded SQLite), then the PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def mqtt_url() -> str:
    return MQTT_URL
