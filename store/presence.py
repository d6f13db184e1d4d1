"""What the processes of a split deployment share through the store: which gateway process holds
each terminal's session, and how far a detector process has read the positions stream.

Gateways write what they hold (batched) and a heartbeat; a session of a gateway whose heartbeat
is older than the caller's `alive_since_ms` counts as not held, so a gateway killed without a
goodbye stops holding its terminals after a few seconds. A tracker that reconnects to another
gateway is held by it from its login: a hold replaces an older one (by `since_ms`), and a gateway
releases only what it still holds. SQL written once for both databases (`store.statements`).
"""

from __future__ import annotations

from collections.abc import Sequence

from store.statements import StatementRunner

_HOLD = (
    "INSERT INTO gateway_sessions (terminal, gateway, since_ms) VALUES (?, ?, ?)"
    " ON CONFLICT (terminal) DO UPDATE SET gateway = excluded.gateway,"
    " since_ms = excluded.since_ms WHERE gateway_sessions.since_ms <= excluded.since_ms"
)
_RELEASE = "DELETE FROM gateway_sessions WHERE terminal = ? AND gateway = ?"
_IN_CHUNK = 500  # terminals per lookup statement


class SessionPresenceRecords:
    """Mixin of both adapters."""

    def gateway_alive(
        self: StatementRunner, gateway: str, address: str, now_ms: int, dead_before_ms: int
    ) -> None:
        """The gateway's heartbeat; forgets gateways not seen since `dead_before_ms` (and the
        sessions they held)."""
        self._run_many(
            "gateway heartbeat",
            [
                (
                    "INSERT INTO gateways (id, address, started_ms, seen_ms) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms",
                    [(gateway, address, now_ms, now_ms)],
                ),
                (
                    "DELETE FROM gateway_sessions WHERE gateway IN"
                    " (SELECT id FROM gateways WHERE seen_ms < ?)",
                    [(dead_before_ms,)],
                ),
                ("DELETE FROM gateways WHERE seen_ms < ?", [(dead_before_ms,)]),
            ],
        )

    def update_sessions(
        self: StatementRunner,
        gateway: str,
        held: Sequence[tuple[str, int]],
        released: Sequence[str],
    ) -> None:
        """Records sessions the gateway now holds (terminal, since_ms) and ones it let go."""
        self._run_many(
            "update sessions",
            [
                (_HOLD, [(terminal, gateway, since) for terminal, since in held]),
                (_RELEASE, [(terminal, gateway) for terminal in released]),
            ],
        )

    def drop_gateway(self: StatementRunner, gateway: str) -> None:
        """A gateway stopping: it holds nothing any more."""
        self._run_many(
            "drop gateway",
            [
                ("DELETE FROM gateway_sessions WHERE gateway = ?", [(gateway,)]),
                ("DELETE FROM gateways WHERE id = ?", [(gateway,)]),
            ],
        )

    def session_gateways(
        self: StatementRunner, terminals: Sequence[str], alive_since_ms: int
    ) -> dict[str, str]:
        """terminal -> the gateway holding its session, for those of `terminals` held by a
        gateway seen at or after `alive_since_ms`."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(terminals))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._run(
                "session gateways",
                "SELECT s.terminal, s.gateway FROM gateway_sessions s JOIN gateways g"
                f" ON g.id = s.gateway WHERE g.seen_ms >= ? AND s.terminal IN ({marks})",
                (alive_since_ms, *chunk),
            ).rows
            found.update((str(t), str(g)) for t, g in rows)
        return found

    def last_alert_id(self: StatementRunner) -> int:
        """The highest alert id stored (0 for none): where a process that did not raise the
        alerts starts following them (`list_alerts(after_id=...)`)."""
        rows = self._run("last alert id", "SELECT coalesce(max(id), 0) FROM alerts").rows
        return int(rows[0][0])

    def terminals_with_queued_commands(self: StatementRunner, held_by: str) -> set[str]:
        """Terminals held by the gateway `held_by` with a command waiting in the queue (it
        delivers them, should it have missed the notice of one)."""
        rows = self._run(
            "terminals with queued commands",
            "SELECT DISTINCT d.terminal FROM command_queue c JOIN devices d ON d.id = c.device_id"
            " JOIN gateway_sessions s ON s.terminal = d.terminal"
            " WHERE c.state = 'queued' AND s.gateway = ?",
            (held_by,),
        ).rows
        return {str(row[0]) for row in rows}

    def detector_cursor(self: StatementRunner, name: str) -> int | None:
        """Where the detector `name` saved it had processed the positions stream up to."""
        rows = self._run(
            "detector cursor", "SELECT seq FROM detector_cursors WHERE name = ?", (name,)
        ).rows
        return int(rows[0][0]) if rows else None

    def save_detector_cursor(self: StatementRunner, name: str, seq: int, now_ms: int) -> None:
        self._run(
            "save detector cursor",
            "INSERT INTO detector_cursors (name, seq, saved_ms) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, saved_ms = excluded.saved_ms",
            (name, seq, now_ms),
        )
