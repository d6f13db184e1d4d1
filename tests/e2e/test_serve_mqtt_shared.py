"""Two gateway processes in one MQTT shared-subscription group on PostgreSQL (contracts section
9): Mosquitto deals a terminal's frames to both in turn, so each gateway takes over the
sessions the other authenticated (`ingest.mqtt_adoption`); every tracker logs in, every report
is acknowledged once and stored, and both gateways did part of the work."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from simulators.load import LoadConfig, run_load
from simulators.mqtt import MqttTransport
from store import Device, migrate, open_store
from tests.integration.test_mqtt_broker_faults import MOSQUITTO, Broker
from tests.support.processes import start_roles, stop

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def _stored(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    return int(row[0]) if row else 0


def _sessions_held(pg_url: str) -> dict[str, int]:
    """How many sessions each gateway process holds, as it told the store."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT gateway, count(*) FROM gateway_sessions GROUP BY gateway"
        ).fetchall()
    return {str(g): int(n) for g, n in rows}


@pytest.mark.parametrize("provisioned", [True, False], ids=["provisioned", "auto_registered"])
async def test_two_gateways_sharing_the_up_topics_serve_every_tracker(
    pg_url: str, tmp_path: Path, provisioned: bool
) -> None:
    """Provisioned: both gateways know each tracker's code from the start. Auto-registered:
    new terminals whose 0x0100 retries the group deals to both gateways at once; both issue
    the same code (derived from the claim under the deployment's key), so every one logs in."""
    if not Path(MOSQUITTO).exists():
        pytest.fail(f"{MOSQUITTO} is missing: scripts/services installs Mosquitto")
    broker = Broker(tmp_path)
    broker.start()
    group = f"g{uuid.uuid4().hex[:6]}"
    env = {
        "LIENWATCH_DATABASE_URL": pg_url,
        "LIENWATCH_ROLES": "gateway",
        "LIENWATCH_AUTO_REGISTER": "false" if provisioned else "true",
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_MQTT_URL": broker.url,
        "LIENWATCH_MQTT_SHARE_GROUP": group,
    }
    migrate(pg_url, tmp_path)
    store = open_store(pg_url, tmp_path)
    try:
        for i in range(20 if provisioned else 0):
            terminal = str(13_900_000_000 + i).rjust(12, "0")
            store.upsert_device(Device(terminal, auth_code=f"code{i}"))
    finally:
        store.close()
    gateways = [
        start_roles({**env, "LIENWATCH_DATA_DIR": str(tmp_path / f"gw{i}")}) for i in range(2)
    ]
    try:
        cfg = LoadConfig("127.0.0.1", broker.port, devices=20, rate=100.0, duration_s=4.0)
        report = await run_load(cfg, transport=MqttTransport)
        assert report.connected == 20  # every tracker logged in
        assert report.sent > 0 and report.acknowledged == report.sent, report
        deadline = time.monotonic() + 20
        while _stored(pg_url) < report.acknowledged and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _stored(pg_url) >= report.acknowledged
        # The two held sessions between them: a terminal's frames went to both.
        assert len(_sessions_held(pg_url)) == 2
    finally:
        for started in gateways:
            stop(started.proc, signal.SIGTERM)
        broker.stop()
