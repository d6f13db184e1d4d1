"""Fences the API manages, and the fence set's version (bumped by every change, so detector
processes reload when it moves). SQL written once for both databases (`store.statements`,
`store.dialect`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from organizations import Scope
from store.interface import FenceFeature, SchemaError, StoredFence
from store.orgs import scope_condition
from store.statements import StatementRunner


def bump_fence_version(runner: StatementRunner, now_ms: int) -> int:
    """The fence set's next version; call inside the change's `_atomic`."""
    d = runner._dialect
    rows = runner._run(
        "bump fence version",
        f"UPDATE fence_set SET version = version + 1, {d.col('updated_ms')} = {d.at()}"
        " RETURNING version",
        (now_ms,),
    ).rows
    if not rows:
        raise SchemaError("fence_set has no row: run `lienwatch migrate`")
    return int(rows[0][0])


def insert_fence_sql(runner: StatementRunner, *, upsert: bool) -> str:
    """INSERT of (id, kind, feature, updated ms, version, org) parameters; `upsert` replaces a
    fence of the same id."""
    d = runner._dialect
    updated = d.col("updated_ms")
    sql = (
        f"INSERT INTO fences (id, kind, feature, {updated}, version, org_id)"
        f" VALUES (?, ?, ?, {d.at()}, ?, ?)"
    )
    if upsert:
        sql += (
            " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, feature = excluded.feature,"
            f" {updated} = excluded.{updated}, version = excluded.version,"
            " org_id = excluded.org_id"
        )
    return sql


def _fences(runner: StatementRunner, where: str, params: Sequence[Any]) -> list[StoredFence]:
    d = runner._dialect
    rows = runner._run(
        "read fences",
        f"SELECT id, kind, feature, {d.ms('updated_ms')}, version, org_id FROM fences {where}"
        " ORDER BY id",
        params,
    ).rows
    return [StoredFence(i, k, f, int(u or 0), int(v), int(o)) for i, k, f, u, v, o in rows]


class FenceRecords:
    """Mixin of both adapters."""

    def put_fences(self: StatementRunner, fences: Sequence[FenceFeature], now_ms: int) -> int:
        with self._atomic("put fences"):
            version = bump_fence_version(self, now_ms)
            self._run_many(
                "put fences",
                [
                    (
                        insert_fence_sql(self, upsert=True),
                        [(f.id, f.kind, f.feature, now_ms, version, f.org) for f in fences],
                    )
                ],
            )
        return version

    def list_fences(self: StatementRunner, scope: Scope | None = None) -> list[StoredFence]:
        within, params = scope_condition(scope)
        return _fences(self, "" if within is None else f"WHERE {within}", params)

    def get_fence(self: StatementRunner, fence_id: str) -> StoredFence | None:
        found = _fences(self, "WHERE id = ?", (fence_id,))
        return found[0] if found else None

    def delete_fence(self: StatementRunner, fence_id: str, now_ms: int) -> int | None:
        """The new fence set version; None (nothing changed) when there is no such fence."""
        with self._atomic("delete fence"):
            if (
                self._run("delete fence", "DELETE FROM fences WHERE id = ?", (fence_id,)).rowcount
                != 1
            ):
                return None
            return bump_fence_version(self, now_ms)

    def fences_version(self: StatementRunner) -> int:
        rows = self._run("fence version", "SELECT version FROM fence_set").rows
        if not rows:
            raise SchemaError("fence_set has no row: run `lienwatch migrate`")
        return int(rows[0][0])
