"""Alerts to MQTT: the alert JSON on `lienwatch/alerts/{type}`, QoS 1 (contracts section 5).

paho-mqtt runs its network loop in its own thread and reconnects by itself (1 s doubling to
30 s); a QoS 1 message it has taken is resent after a reconnect until the broker acknowledges
it. While the client is not connected, `send` refuses, so the fan-out keeps the alerts, logs
the outage once and retries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from alerts.delivery.sink import alert_json
from alerts.lifecycle import StoredAlert

TOPIC_PREFIX = "lienwatch/alerts/"


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    """mqtt://[user[:password]@]host[:port] → (host, port, user, password)."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"{url!r} is not mqtt://HOST:PORT")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or 1883, user, password


TENANT_TOPIC = "lienwatch/tenants/{tenant}/alerts/{type}"


def alert_topic(alert: StoredAlert) -> str:
    return TOPIC_PREFIX + alert.alert.type.value


def alert_topics(alert: StoredAlert) -> list[str]:
    """The contract topic, and the alert's tenant's own (`lienwatch/tenants/{id}/alerts/
    {type}`), which a broker's ACL can open to that tenant alone."""
    topics = [alert_topic(alert)]
    if alert.tenant is not None:
        topics.append(TENANT_TOPIC.format(tenant=alert.tenant, type=alert.alert.type.value))
    return topics


class MqttBrokerDownError(ConnectionError):
    """The MQTT client is not connected to the broker now."""


class MqttPublisher:
    """An `AlertSink` publishing each alert with QoS 1 through one paho client."""

    def __init__(self, url: str, *, qos: int = 1, client_id: str | None = None) -> None:
        host, port, user, password = parse_mqtt_url(url)
        self.qos = qos
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"lienwatch-{uuid.uuid4().hex[:12]}"
        )
        if user is not None:
            self._client.username_pw_set(user, password)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._connected = False
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    @property
    def name(self) -> str:
        return "mqtt"

    @property
    def connected(self) -> bool:
        return self._connected

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected = not reason.is_failure

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected = False

    async def send(self, alerts: Sequence[StoredAlert]) -> None:
        if not self._connected:
            raise MqttBrokerDownError("not connected to the MQTT broker")
        for alert in alerts:
            for topic in alert_topics(alert):
                info = self._client.publish(topic, alert_json(alert), qos=self.qos)
                if info.rc != paho.MQTT_ERR_SUCCESS:
                    raise MqttBrokerDownError(f"publish refused: {paho.error_string(info.rc)}")

    async def aclose(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
