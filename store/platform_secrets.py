"""Secrets every process of a deployment shares, created once in the database: the first
process to ask stores a random value, every later one (any gateway, after any restart) reads
that same value. SQL written once for both databases (`store.statements`)."""

from __future__ import annotations

import secrets

from store.statements import StatementRunner


class PlatformSecretRecords:
    """Mixin of both adapters."""

    def platform_secret(self: StatementRunner, name: str) -> str:
        """The secret `name` (64 hex digits), created at the first call anywhere."""
        self._run(
            "create platform secret",
            "INSERT INTO platform_secrets (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, secrets.token_hex(32)),
        )
        rows = self._run(
            "read platform secret", "SELECT value FROM platform_secrets WHERE name = ?", (name,)
        ).rows
        return str(rows[0][0])
