"""`lienwatch bench mqtt`: trackers through the MQTT broker, the gateway's bridge and its client.

Three parts, in one run on the same machine:
- `broker_c_clients`: Mosquitto's own C clients (`mosquitto_pub -l` into `mosquitto_sub`, QoS 1,
  MQTT 3.1.1) on one topic: the messages per second the broker hands one subscriber. A report
  over MQTT costs two such messages (up, and its 0x8001 down), so half of it is the reports/s
  ceiling of one gateway behind this broker.
- `echo_paho` (the baseline) and `echo_own`: a bridge-shaped client alone
  (benchmarks/mqtt_echo.py): every message on PREFIX/up/+ answered with one QoS 1 publish on
  PREFIX/down/{terminal}, so each message costs what the gateway's client pays per report
  (parse a PUBLISH, send its PUBACK, send the answer, take the broker's PUBACK). paho is the
  bridge as it was (its network thread, MQTT 3.1.1); own is ingest.mqtt. Figures: the echo
  process's CPU per message from the kernel's accounting, and the messages echoed per second
  with this process driving it through ingest.mqtt as fast as the windows allow.
- `gateway_at[RATE]`: `lienwatch serve` on a fresh PostgreSQL database with
  LIENWATCH_MQTT_URL, and the MQTT load generator (simulators/mqtt.py) offering RATE reports/s
  from DEVICES trackers: gateway CPU per acknowledged report (all threads, from the first
  scheduled report to the last acknowledgement), acknowledgement latency percentiles, exact
  counts, the generator's own CPU, the broker's CPU (the process on the broker's port, as `ss`
  names it: every client's traffic, other users' too) and how busy the whole machine was.
  Baseline: echo_paho, the client library alone, per CPU-second.

Environment: LIENWATCH_BENCH_MQTT_URL (default mqtt://127.0.0.1:1883), LIENWATCH_BENCH_MQTT_S
(seconds per rate, 10), LIENWATCH_BENCH_MQTT_DEVICES (2000), LIENWATCH_BENCH_MQTT_ECHO (messages
per echo run, 50000), LIENWATCH_BENCH_PG_ADMIN_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from alerts.delivery.mqtt_sink import parse_mqtt_url
from benchmarks.bench_ingest import (
    CORES,
    Meter,
    _fresh_database,
    _start,
    _stop,
    _us,
    _wait_stored,
)
from ingest.mqtt.client import MqttClient
from ingest.mqtt.session import ClientSession
from simulators.load import LoadConfig, LoadReport, machine_busy_s, process_cpu_s, run
from simulators.mqtt import MqttTransport

URL = os.environ.get("LIENWATCH_BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
HOST, PORT, _, _ = parse_mqtt_url(URL)
SECONDS = float(os.environ.get("LIENWATCH_BENCH_MQTT_S", "10"))
DEVICES = int(os.environ.get("LIENWATCH_BENCH_MQTT_DEVICES", "2000"))
ECHO_MESSAGES = int(os.environ.get("LIENWATCH_BENCH_MQTT_ECHO", "50000"))
RATES = (2000.0, 5000.0, 10000.0)
ECHO_WINDOW = 500
BIN = os.path.join(os.path.dirname(sys.executable), "lienwatch")
FIGURES: dict[str, float] = {}


def _broker_pid() -> int | None:
    """The process listening on the broker's port, when it is on this machine and `ss` says."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{PORT}"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def _busy(before: tuple[float, float]) -> float:
    return (machine_busy_s() - before[0]) / (time.monotonic() - before[1])


def test_broker_c_clients(benchmark: Any) -> None:
    pub, sub = shutil.which("mosquitto_pub"), shutil.which("mosquitto_sub")
    if pub is None or sub is None:
        pytest.fail("mosquitto_pub/mosquitto_sub missing: apt-get install mosquitto-clients")
    topic = f"lwbench/{uuid.uuid4().hex[:8]}/ceiling"
    lines = "".join(f"~{'x' * 40}{i:08d}\n" for i in range(100_000)).encode()
    stamps: list[float] = []
    before = (machine_busy_s(), time.monotonic())

    def measure() -> None:
        with tempfile.TemporaryFile() as out:
            listener = subprocess.Popen(
                [sub, "-h", HOST, "-p", str(PORT), "-q", "1", "-F", "%U", "-t", topic],
                stdout=out,
            )
            time.sleep(0.5)
            subprocess.run(
                [pub, "-h", HOST, "-p", str(PORT), "-q", "1", "-l", "-t", topic],
                input=lines,
                check=True,
                timeout=120,
            )
            time.sleep(1.0)
            listener.terminate()
            listener.wait(10)
            out.seek(0)
            stamps.extend(float(s) for s in out.read().split())

    benchmark.pedantic(measure, rounds=1)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    per_s = len(stamps) / span
    FIGURES["ceiling_reports_per_s"] = per_s / 2
    benchmark.extra_info.update(
        {
            "items": len(stamps) // 2,
            "messages_received": len(stamps),
            "messages_sent": 100_000,
            "messages_per_s": round(per_s),
            "reports_per_s_ceiling": round(per_s / 2),
            "machine_busy_cores": round(_busy(before), 2),
        }
    )
    benchmark.extra_info["notes"] = [
        f"Mosquitto to one QoS 1 subscriber (C clients): {per_s:,.0f} messages/s, "
        f"{per_s / 2:,.0f} reports/s at two messages each; the subscriber took "
        f"{len(stamps):,} of 100,000 (the broker drops past its queue bound when the publisher "
        f"is faster); machine {_busy(before):.2f} of {CORES} cores busy"
    ]


async def _drive_echo(prefix: str, n: int, meter: Meter) -> tuple[int, float]:
    """Publishes n messages to PREFIX/up/{terminal} and waits for their answers, with at most
    ECHO_WINDOW unanswered at any time: the broker holds only so many for a subscriber (20 in
    flight and 1000 queued for a 3.1.1 one) and drops the rest."""
    got = 0
    moved = asyncio.Event()

    def on_messages(topics: list[bytes], payloads: list[bytes]) -> None:
        nonlocal got
        got += len(topics)
        moved.set()

    session = ClientSession(
        f"drive-{uuid.uuid4().hex[:8]}",
        clean_session=True,
        keepalive_s=30,
        subscriptions=[(prefix + "/down/+", 1)],
        max_inflight=5000,
    )
    client = MqttClient(HOST, PORT, session, on_messages)
    await client.start()
    topics = [f"{prefix}/up/{i:012d}".encode() for i in range(DEVICES)]
    payload = b"~" + b"x" * 40 + b"~"
    meter("start")
    began = time.monotonic()
    sent = 0
    deadline = began + 120
    while got < n and time.monotonic() < deadline:
        room = min(ECHO_WINDOW - (sent - got), n - sent)
        for i in range(sent, sent + max(0, room)):
            client.publish(topics[i % DEVICES], payload)
        sent += max(0, room)
        moved.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), 5)
    elapsed = time.monotonic() - began
    meter("end")
    await client.close(graceful=False)
    return got, elapsed


def _echo(benchmark: Any, impl: str) -> None:
    prefix = f"lwbench/{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.mqtt_echo", impl, HOST, str(PORT), prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    result: list[tuple[int, float]] = []
    try:
        with Meter(proc.pid) as meter:
            benchmark.pedantic(
                lambda: result.append(asyncio.run(_drive_echo(prefix, ECHO_MESSAGES, meter))),
                rounds=1,
            )
    finally:
        _stop(proc)
    got, elapsed = result[0]
    cpu = meter.delta("server")
    busy = meter.delta("machine") / meter.delta("wall")
    FIGURES[f"echo_{impl}_us"] = _us(cpu, got)
    benchmark.extra_info.update(
        {
            "items": got,
            "cpu_s": cpu,
            "messages_sent": ECHO_MESSAGES,
            "messages_echoed": got,
            "echoed_per_s": round(got / elapsed),
            "echo_cpu_us_per_message": _us(cpu, got),
            "machine_busy_cores": round(busy, 2),
        }
    )
    benchmark.extra_info["notes"] = [
        f"{impl}: {_us(cpu, got):,.1f} µs of the echo process's CPU per message "
        f"({got:,} of {ECHO_MESSAGES:,} echoed, {got / elapsed:,.0f}/s); machine {busy:.2f} "
        f"of {CORES} cores busy"
    ]
    assert got == ECHO_MESSAGES


def test_echo_paho(benchmark: Any) -> None:
    _echo(benchmark, "paho")


def test_echo_own(benchmark: Any) -> None:
    benchmark.extra_info["baseline"] = "test_echo_paho"
    benchmark.extra_info["main"] = True
    _echo(benchmark, "own")


@pytest.fixture(scope="module")
def serve() -> Iterator[tuple[int, str]]:
    """One `lienwatch serve` with MQTT on a fresh PostgreSQL database for every rate."""
    for database in _fresh_database():
        with tempfile.TemporaryDirectory() as data:
            env = {
                "LIENWATCH_DATABASE_URL": database,
                "LIENWATCH_DATA_DIR": data,
                "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
                "LIENWATCH_API_LISTEN": "127.0.0.1:0",
                "LIENWATCH_AUTO_REGISTER": "true",
                "LIENWATCH_MQTT_URL": URL,
                # A group of its own: other gateways on this broker do not take a share.
                "LIENWATCH_MQTT_SHARE_GROUP": f"bench{uuid.uuid4().hex[:6]}",
            }
            proc, _ = _start([BIN, "serve"], env, r"JT808 gateway listening on [^:]+:(\d+)")
            try:
                yield proc.pid, database
            finally:
                _stop(proc)


@pytest.mark.parametrize("rate", RATES, ids=lambda r: f"{r:.0f}")
def test_gateway_at(benchmark: Any, serve: tuple[int, str], rate: float) -> None:
    pid, database = serve
    step = RATES.index(rate)
    cfg = LoadConfig(
        HOST,
        PORT,
        DEVICES,
        rate,
        SECONDS,
        first_terminal=13_700_000_000 + step * DEVICES,
        drain_timeout_s=10.0,
    )
    stored_before = _wait_stored(database, 0, 0)
    broker = _broker_pid()
    broker_at: dict[str, float] = {}

    with Meter(pid) as meter:

        def mark(at: str) -> None:
            meter(at)
            if broker is not None:
                broker_at[at] = process_cpu_s(broker)

        report: LoadReport = benchmark.pedantic(
            lambda: run(cfg, transport=MqttTransport, mark=mark), rounds=1
        )
    broker_s = broker_at["end"] - broker_at["start"] if len(broker_at) == 2 else float("nan")
    stored = _wait_stored(database, stored_before + report.acknowledged) - stored_before
    acked = report.acknowledged
    cpu = meter.delta("server")
    window = report.window_s
    busy = meter.delta("machine") / meter.delta("wall")
    p50 = report.ack_latency_ms.get("p50", float("nan"))
    p99 = report.ack_latency_ms.get("p99", float("nan"))
    benchmark.extra_info.update(
        {
            "items": acked,
            "cpu_s": cpu,
            "baseline": "test_echo_paho",
            "offered_rate": rate,
            "devices": report.connected,
            "sent": report.sent,
            "acknowledged": acked,
            "stored": stored,
            "errors": report.errors,
            "acked_per_s": round(acked / report.duration_s, 1),
            "ack_p50_ms": round(p50, 1),
            "ack_p99_ms": round(p99, 1),
            "gateway_cpu_us_per_report": _us(cpu, acked),
            "generator_cpu_us_per_report": _us(report.window_cpu_s, acked),
            "machine_busy_cores": round(busy, 2),
            "broker_cores": round(broker_s / meter.delta("wall"), 2),
            "ceiling_reports_per_s": FIGURES.get("ceiling_reports_per_s"),
        }
    )
    benchmark.extra_info["notes"] = [
        f"{rate:,.0f}/s offered from {report.connected:,} trackers: {acked:,} of "
        f"{report.sent:,} acknowledged, {stored:,} stored; p50 {p50:,.0f} ms, p99 {p99:,.0f} ms",
        f"gateway CPU {_us(cpu, acked):,.1f} µs per report ({cpu / window:.2f} cores over "
        f"{window:.1f} s, decoding, journal, PostgreSQL drain and live detection included); "
        f"generator {_us(report.window_cpu_s, acked):,.1f} µs per report",
        f"broker (every client's traffic, others' too): {broker_s / meter.delta('wall'):.2f} "
        f"cores; machine: {busy:.2f} of {CORES} cores busy over the window, every process counted",
    ]
    print("\n".join(benchmark.extra_info["notes"]))
    assert report.sent == acked == stored, (report.sent, acked, stored)
