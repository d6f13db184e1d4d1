"""PostgreSQL notices between the processes of a split deployment (LISTEN/NOTIFY).

Channels and payloads (all text):
- `lienwatch_commands`: a terminal a command was queued for (sent by `enqueue_command` in the
  same transaction, so it arrives once the command is committed); the gateway holding the
  terminal's session delivers it.
- `lienwatch_devices`: `{"terminal", "reprovisioned", "origin"}` after the API changed a
  device; gateways reload its record, detectors their fleet.
- `lienwatch_alert_changes`: `{"id", "origin"}` after an API process acknowledged or resolved
  an alert; the other API processes offer it again to their stream's `changes` subscribers.

A notice is a hint, never the only copy: a listener that was disconnected calls `on_connected`
again once it is back, and its owner looks at the store for what it may have missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import psycopg

COMMANDS_CHANNEL = "lienwatch_commands"
DEVICES_CHANNEL = "lienwatch_devices"
ALERT_CHANGES_CHANNEL = "lienwatch_alert_changes"
log = logging.getLogger("lienwatch.notices")


class NoticeListener:
    """LISTENs on `channels` from its own thread and connection; `deliver(channel, payload)`
    and `on_connected()` are called from that thread (hand them to your loop)."""

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        deliver: Callable[[str, str], None],
        on_connected: Callable[[], None] | None = None,
        *,
        retry_s: float = 1.0,
    ) -> None:
        self.url = url
        self.channels = tuple(channels)
        self.deliver = deliver
        self.on_connected = on_connected
        self.retry_s = retry_s
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    for channel in self.channels:
                        conn.execute(f'LISTEN "{channel}"')
                    if failing:
                        log.info("listening for notices again")
                    failing = False
                    self.connected.set()
                    if self.on_connected is not None:
                        self.on_connected()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self.deliver(notice.channel, notice.payload)
            except psycopg.Error as exc:
                self.connected.clear()
                if not failing:
                    log.warning("cannot listen for notices (retrying): %s", exc)
                failing = True
                self._stop.wait(self.retry_s)

    def close(self, wait_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait_s)
