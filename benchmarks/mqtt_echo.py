"""A bridge-shaped MQTT client for the MQTT benchmark: subscribes to PREFIX/up/+ and answers
every message with one QoS 1 publish on PREFIX/down/{terminal}, the per-message work of the
gateway's bridge without the gateway. `paho` is the bridge as it was (paho-mqtt's network thread,
MQTT 3.1.1, one publish per message from its callback); `own` is ingest.mqtt (the event loop, a
read parsed in one pass, PUBACKs and answers of the pass in one write, MQTT 5).

python -m benchmarks.mqtt_echo {paho,own} HOST PORT PREFIX  (prints "ready", runs until SIGTERM)
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import uuid


def run_paho(host: str, port: int, prefix: str) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    up = prefix + "/up/"
    down = prefix + "/down/"
    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"echo-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)

    def on_connect(c: paho.Client, *args: object) -> None:
        c.subscribe(up + "+", qos=1)

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        c.publish(down + msg.topic[len(up) :], msg.payload, qos=1)

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = lambda *args: ready.set()
    client.connect(host, port)
    client.loop_start()
    ready.wait(10)
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    client.loop_stop()


async def run_own(host: str, port: int, prefix: str) -> None:
    from ingest.mqtt.client import MqttClient
    from ingest.mqtt.session import ClientSession

    up = len(prefix) + 4
    down = (prefix + "/down/").encode()
    client: MqttClient

    def on_messages(topics: list[bytes], payloads: list[bytes]) -> None:
        publish = client.publish
        for topic, payload in zip(topics, payloads, strict=True):
            publish(down + topic[up:], payload)

    session = ClientSession(
        f"echo-{uuid.uuid4().hex[:8]}",
        clean_session=True,
        keepalive_s=30,
        subscriptions=[(prefix + "/up/+", 1)],
        max_inflight=5000,
    )
    client = MqttClient(host, port, session, on_messages)
    await client.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await client.close(graceful=False)


def main() -> None:
    impl, host, port, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if impl == "paho":
        run_paho(host, port, prefix)
    elif impl == "own":
        asyncio.run(run_own(host, port, prefix))
    else:
        raise SystemExit(f"unknown client {impl!r}: paho or own")


if __name__ == "__main__":
    main()
