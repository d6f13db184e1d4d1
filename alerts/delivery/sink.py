"""What every alert destination implements, and the one JSON encoding they all send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerts.lifecycle import StoredAlert, alert_text


class AlertSink(Protocol):
    """A destination for new alerts. `send` raises when the alerts did not get through (the
    fan-out keeps them and retries with backoff); it must not retry on its own."""

    @property
    def name(self) -> str: ...

    async def send(self, alerts: Sequence[StoredAlert]) -> None: ...

    async def aclose(self) -> None: ...


def alert_json(alert: StoredAlert) -> str:
    """The alert as every channel carries it: contracts section 3 plus id, state, lifecycle."""
    return alert_text(alert)
