"""Alerts raised while the database is down, kept on local disk until it is back.

The live detector keeps unsaved alerts in memory and retries them every cycle; a restart
during a database outage would lose them. The spool is an append-only file of JSON lines in
the data directory, each line fsynced before the cycle ends: `add` what the store refused,
`load` at start (a torn last line, from a crash mid-write, is skipped and logged), `clear`
once everything in it is stored. Storing twice is harmless: the store keeps one alert per
incident key, so a spool replayed after a crash between store and `clear` changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from alerts.model import Alert, AlertType

log = logging.getLogger("lienwatch.alert_spool")


def _line(alert: Alert) -> bytes:
    return (
        json.dumps(
            {
                "type": alert.type.value,
                "device_id": alert.device_id,
                "vehicle_id": alert.vehicle_id,
                "time_ms": alert.time_ms,
                "fence_id": alert.fence_id,
                "severity": alert.severity,
                "details": alert.details,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )


def _alert(record: dict[str, object]) -> Alert:
    details = record.get("details")
    fence = record.get("fence_id")
    return Alert(
        AlertType(str(record["type"])),
        str(record["device_id"]),
        str(record["vehicle_id"]),
        int(str(record["time_ms"])),
        None if fence is None else str(fence),
        str(record.get("severity") or ""),
        details if isinstance(details, dict) else {},
    )


class AlertSpool:
    """The spool file at `path`; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cut_torn_tail()
        self.count = sum(1 for _ in self._records()) if path.exists() else 0

    def _cut_torn_tail(self) -> None:
        """A line a crash cut short would glue itself to the next one added: cut it off."""
        try:
            with self.path.open("r+b") as spool:
                data = spool.read()
                end = data.rfind(b"\n") + 1
                if end < len(data):
                    log.error("%s: torn last alert (%d bytes) cut off", self.path, len(data) - end)
                    spool.truncate(end)
        except FileNotFoundError:
            return

    def add(self, alerts: Sequence[Alert]) -> None:
        """Appends `alerts` durably; raises OSError when the disk refuses (then they stay in
        memory only, as before the spool)."""
        if not alerts:
            return
        data = b"".join(_line(a) for a in alerts)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)  # no torn line left behind
                raise
        finally:
            os.close(fd)
        self.count += len(alerts)

    def load(self) -> Iterator[Alert]:
        """Every alert spooled, in the order added."""
        return self._records()

    def clear(self) -> None:
        """Everything spooled is stored."""
        if self.count or self.path.exists():
            self.path.unlink(missing_ok=True)
        self.count = 0

    def _records(self) -> Iterator[Alert]:
        try:
            with self.path.open("rb") as spool:
                for number, raw in enumerate(spool, 1):
                    try:
                        yield _alert(json.loads(raw))
                    except (ValueError, KeyError, TypeError) as exc:
                        log.error(
                            "%s line %d: unreadable alert skipped (%s)", self.path, number, exc
                        )
        except FileNotFoundError:
            return
