"""MQTT terminals shared between gateways: taking over a session another gateway holds.

A shared subscription (`$share/GROUP/lienwatch/up/+`) deals each gateway of the group some of
a terminal's frames; Mosquitto deals a group's messages to its members in turn whatever the
topic, so a tracker that logged in through gateway A sends its next report to gateway B, which
never saw it log in. B asks the store's session presence (`ingest.presence`) whether another
live gateway holds the terminal, and if one does its session starts authenticated
(`LinkSession.adopt`), as A's is. Over MQTT a session is a topic, not a connection: this trusts
nothing one gateway alone would not (whoever may publish on a terminal's up topic speaks for it
either way; the broker's ACLs guard that).

What an unauthenticated publisher can cost stays bounded: at most `MAX_LOOKUPS` lookups at once,
one per terminal, none again for a terminal within `COOLDOWN_S` of a miss; a terminal's frames
wait in order (at most `MAX_WAITING`, the rest left unacknowledged for the tracker to send
again) while its lookup runs, then go through its session as any frame does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ingest.jt808.link_state import LinkState
from ingest.link import Link
from store import StoreError

log = logging.getLogger("lienwatch.mqtt")

MAX_LOOKUPS = 256
MAX_WAITING = 64
COOLDOWN_S = 5.0
# A login through another gateway reaches the store within its presence flush (0.1 s): a miss is
# asked once more after this.
RETRY_S = 0.3
_HANDSHAKE_IDS = (b"\x01\x00", b"\x01\x02")  # 0x0100 and 0x0102: a login of its own


class Adoption:
    """Lookups of terminals held elsewhere, and the frames waiting for them."""

    def __init__(
        self,
        held_elsewhere: Callable[[str], Awaitable[bool]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._held_elsewhere = held_elsewhere
        self._spawn = spawn
        self._waiting: dict[str, list[tuple[bytes, float]]] = {}
        self._missed: dict[str, float] = {}  # terminal -> when its last lookup missed
        self.adopted = 0

    def offer(self, link: Link, terminal: str, frame: bytes, now: float) -> bool:
        """Keeps `frame` for a lookup of `terminal` (or one already running): True; False
        leaves it to the session as usual (authenticated, a login, or no lookup allowed)."""
        waiting = self._waiting.get(terminal)
        if waiting is not None:
            if len(waiting) < MAX_WAITING:
                waiting.append((frame, now))
            return True
        state = link.session.state
        if state is not LinkState.AWAIT_AUTH and state is not LinkState.REGISTERED:
            return False
        if frame[1:3] in _HANDSHAKE_IDS or len(self._waiting) >= MAX_LOOKUPS:
            return False
        if now - self._missed.get(terminal, -COOLDOWN_S) < COOLDOWN_S:
            return False
        self._waiting[terminal] = [(frame, now)]
        self._spawn(self._look_up(link, terminal))
        return True

    async def _look_up(self, link: Link, terminal: str) -> None:
        held = False
        try:
            held = await self._held_elsewhere(terminal)
            if not held:
                await asyncio.sleep(RETRY_S)
                held = await self._held_elsewhere(terminal)
        except StoreError as exc:
            log.warning("cannot tell where terminal %s is held: %s", terminal, exc)
        finally:
            frames = self._waiting.pop(terminal, [])
        if held and not link.closed and link.session.adopt(terminal, time.monotonic()):
            self.adopted += 1
            link.pump()  # Authenticated: the gateway records the session as it does a login
        else:
            self._miss(terminal)
        for frame, at in frames:
            if not link.closed:
                link.receive_frame(frame, at)

    def _miss(self, terminal: str) -> None:
        now = time.monotonic()
        if len(self._missed) >= 4 * MAX_LOOKUPS:  # only the recent misses matter
            self._missed = {t: at for t, at in self._missed.items() if now - at < COOLDOWN_S}
        self._missed[terminal] = now
