"""API keys (contracts: the HTTP API's identity): stored by name, found by the hash of the key.

SQL written once for both databases (`store.statements`, `store.dialect`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from organizations import Scope
from store.interface import ApiKey
from store.orgs import scope_condition
from store.statements import StatementRunner


def _fields(runner: StatementRunner) -> str:
    return f"name, role, key_hash, prefix, {runner._dialect.ms('created_ms')}, org_id"


def _keys(runner: StatementRunner, where: str, params: Sequence[Any]) -> list[ApiKey]:
    rows = runner._run(
        "read api keys", f"SELECT {_fields(runner)} FROM api_keys {where} ORDER BY name", params
    ).rows
    return [ApiKey(n, r, h, p, int(c or 0), int(o)) for n, r, h, p, c, o in rows]


class ApiKeyRecords:
    """Mixin of both adapters."""

    def create_api_key(self: StatementRunner, key: ApiKey, *, replace: bool = False) -> bool:
        """False when the name is taken and not `replace`; a failed CHECK (an unknown role) is
        an error either way (ON CONFLICT, not INSERT OR IGNORE, which would skip it)."""
        d = self._dialect
        created = d.col("created_ms")
        on_conflict = (
            "DO UPDATE SET role = excluded.role, key_hash = excluded.key_hash,"
            f" prefix = excluded.prefix, {created} = excluded.{created}, org_id = excluded.org_id"
            if replace
            else "DO NOTHING"
        )
        return (
            self._run(
                "create api key",
                f"INSERT INTO api_keys (name, role, key_hash, prefix, {created}, org_id)"
                f" VALUES (?, ?, ?, ?, {d.at()}, ?) ON CONFLICT (name) {on_conflict}",
                (key.name, key.role, key.key_hash, key.prefix, key.created_ms, key.org),
            ).rowcount
            == 1
        )

    def api_key_by_hash(self: StatementRunner, key_hash: str) -> ApiKey | None:
        found = _keys(self, "WHERE key_hash = ?", (key_hash,))
        return found[0] if found else None

    def list_api_keys(self: StatementRunner, scope: Scope | None = None) -> list[ApiKey]:
        within, params = scope_condition(scope)
        return _keys(self, "" if within is None else f"WHERE {within}", params)

    def delete_api_key(self: StatementRunner, name: str) -> bool:
        return (
            self._run("delete api key", "DELETE FROM api_keys WHERE name = ?", (name,)).rowcount
            == 1
        )
