"""Alert fan-out: the in-process hub (WebSocket clients), Redis, MQTT and webhooks.

The store is written first (`AlertRecorder`); sinks then get each new alert, every sink on its
own task with its own backlog, so one service down never holds the others back.
"""

from alerts.delivery.fanout import Fanout, SinkStatus
from alerts.delivery.hub import AlertHub, Subscription, SubscriptionClosed
from alerts.delivery.sink import AlertSink, alert_json

__all__ = [
    "AlertHub",
    "AlertSink",
    "Fanout",
    "SinkStatus",
    "Subscription",
    "SubscriptionClosed",
    "alert_json",
]
