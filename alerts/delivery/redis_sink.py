"""Alerts to Redis: `PUBLISH lienwatch:alerts <alert JSON>` with the asyncio client, and the
same on `lienwatch:alerts:{tenant}` for an alert of a tenant.

The client's own retries are off: the fan-out retries with backoff and logs the outage once.
A connection lost while Redis is down is re-made by the client on the next attempt.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from alerts.delivery.sink import alert_json
from alerts.lifecycle import StoredAlert

CHANNEL = "lienwatch:alerts"


class RedisPublisher:
    """An `AlertSink` publishing each alert on one channel, pipelined per batch."""

    def __init__(self, url: str, *, channel: str = CHANNEL, timeout_s: float = 2.0) -> None:
        self.channel = channel
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    @property
    def name(self) -> str:
        return "redis"

    async def send(self, alerts: Sequence[StoredAlert]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for alert in alerts:
                text = alert_json(alert)
                pipe.publish(self.channel, text)
                if alert.tenant is not None:  # the tenant's own channel
                    pipe.publish(f"{self.channel}:{alert.tenant}", text)
            await pipe.execute()

    async def aclose(self) -> None:
        await self._client.aclose()
