"""`lienwatch bench ingest`: the gateway under load, durable into PostgreSQL.

`lienwatch serve` runs as its own process on a fresh PostgreSQL database; the load generator
(simulators/load.py) offers RATE reports/s from DEVICES connections for SECONDS. Figures: the
acknowledged rate over the sending window, acknowledgement latency percentiles, and exact counts
(sent = acknowledged = stored rows). The baseline is the same load against the trivial
acknowledging sink (no decoding, no durability) in the same run.

Environment: LIENWATCH_BENCH_INGEST_S (default 60), LIENWATCH_BENCH_INGEST_RATE (50000),
LIENWATCH_BENCH_INGEST_DEVICES (2000), LIENWATCH_BENCH_PG_ADMIN_URL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simulators.load import LoadConfig, LoadReport, run

SECONDS = float(os.environ.get("LIENWATCH_BENCH_INGEST_S", "60"))
RATE = float(os.environ.get("LIENWATCH_BENCH_INGEST_RATE", "50000"))
DEVICES = int(os.environ.get("LIENWATCH_BENCH_INGEST_DEVICES", "2000"))
PG_ADMIN = os.environ.get(
    "LIENWATCH_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BIN = Path(sys.executable).with_name("lienwatch")


def _start(args: list[str], env: dict[str, str], pattern: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(pattern, line)
        if found:
            return proc, int(found.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{args} did not start")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"lienwatch_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    return int(row[0]) if row else 0


def _figures(benchmark: Any, report: LoadReport) -> None:
    benchmark.extra_info.update(
        {
            "devices": report.connected,
            "offered_rate": report.offered_rate,
            "sent": report.sent,
            "acknowledged": report.acknowledged,
            "errors": report.errors,
            "achieved_rate": round(report.achieved_rate, 1),
            "acked_per_s": round(report.acknowledged / report.duration_s, 1),
            **{f"ack_{k}_ms": round(v, 2) for k, v in report.ack_latency_ms.items()},
        }
    )


def test_sink_baseline(benchmark: Any) -> None:
    proc, port = _start(
        [sys.executable, "-m", "simulators.sink", "127.0.0.1:0"], {}, r"listening on [^:]+:(\d+)"
    )
    seconds = min(SECONDS, 20.0)
    try:
        report: LoadReport = benchmark.pedantic(
            lambda: run(LoadConfig("127.0.0.1", port, DEVICES, RATE, seconds)), rounds=1
        )
    finally:
        _stop(proc)
    _figures(benchmark, report)
    benchmark.extra_info["items"] = report.acknowledged


def test_gateway_into_postgres(benchmark: Any, database: str) -> None:
    with tempfile.TemporaryDirectory() as data:
        env = {
            "LIENWATCH_DATABASE_URL": database,
            "LIENWATCH_DATA_DIR": data,
            "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
            "LIENWATCH_AUTO_REGISTER": "true",
        }
        proc, port = _start([str(BIN), "serve"], env, r"JT808 gateway listening on [^:]+:(\d+)")
        try:
            report: LoadReport = benchmark.pedantic(
                lambda: run(LoadConfig("127.0.0.1", port, DEVICES, RATE, SECONDS)), rounds=1
            )
            deadline = time.monotonic() + 120
            stored = _stored(database)
            while stored < report.acknowledged and time.monotonic() < deadline:
                time.sleep(0.5)
                stored = _stored(database)
        finally:
            _stop(proc)
    _figures(benchmark, report)
    benchmark.extra_info["stored"] = stored
    benchmark.extra_info["items"] = report.acknowledged
    benchmark.extra_info["baseline"] = "test_sink_baseline"
    assert report.sent == report.acknowledged == stored, (report.sent, report.acknowledged, stored)
