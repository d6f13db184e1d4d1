"""`lienwatch bench backtest`: a backtest reads a month of stored history from PostgreSQL.

The data: 1,000 cars x 30 days of simulator positions (the scenario of 250 cars x 6 days, seed
11, tiled 4 times over cars and 5 times over time: about 11 million rows) written into a scratch
database (daily partitions) created for the run and dropped after, with each device bound to
its car. Both sides run the same engine (`pipeline.backtest.run_history`: every rule, the end of
input, the alerts) over the same rows; only the reading differs.
- `backtest_pg` (the main figure): `pipeline.history.backtest`, what `lienwatch replay
  --from-store` and `POST /api/v1/backtests` run: windows of fix time sized to ~131k rows, each
  read with one binary COPY decoded into numpy columns (store.history), grouped by device as
  the engine wants them; then the comparison with the alerts that fired (none stored here).
- `psycopg_stream` (the baseline): what a competent engineer writes with psycopg 3 to feed an
  engine from history: one query over the whole range in time order (`ORDER BY fix_time`) on a
  server-side cursor, `fetchmany(65536)` rows at a time turned into numpy columns, terminals
  mapped to engine indexes with a dict.
Throughput is positions per second of wall time including the read; `cpu_s` is this process's
CPU (the database server's is not in it). Both must give the same alerts.
LIENWATCH_BENCH_TILES_CARS and LIENWATCH_BENCH_TILES_DAYS change the tiling (default 4 and 5),
LIENWATCH_BENCH_ROUNDS the rounds (default 1: a round reads the whole month).
The admin URL is LIENWATCH_BENCH_PG_ADMIN_URL (default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from alerts.model import Alert
from pipeline.backtest import run_history
from pipeline.history import backtest, engine_from_store
from pipeline.thresholds import RuleBook
from positions import PositionBatch
from simulators.config import ScenarioConfig
from simulators.scenario import build_scenario
from store import Device
from store.migrate import migrate_postgres
from store.postgres import PostgresStore

ADMIN_URL = os.environ.get(
    "LIENWATCH_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TILE_CARS = int(os.environ.get("LIENWATCH_BENCH_TILES_CARS", "4"))
TILE_DAYS = int(os.environ.get("LIENWATCH_BENCH_TILES_DAYS", "5"))
ROUNDS = int(os.environ.get("LIENWATCH_BENCH_ROUNDS", "1"))
BASE = ScenarioConfig(vehicles=250, days=6, seed=11)
DAY_MS = 86_400_000
FETCH = 65_536


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[str, int, int, int]]:
    """(database URL, since ms, until ms, rows) of the tiled month."""
    name = f"lienwatch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        migrate_postgres(url)
        yield (url, *_write(url))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _write(url: str) -> tuple[int, int, int]:
    scenario = build_scenario(BASE)
    batch, devices = scenario.batch()
    vehicle_of = {d: v for v, ds in scenario.fleet_map().vehicles.items() for d in ds}
    terminals = [devices.terminal(i) for i in range(len(devices))]
    store = PostgresStore(url)
    try:
        for c in range(TILE_CARS):
            names = [f"{c}{t[1:]}" for t in terminals]
            for s in range(TILE_DAYS):
                shift = s * BASE.days * DAY_MS
                moved = {k: batch.columns()[k] for k in batch.columns()}
                for k in ("time_ms", "recv_ms", "device_time_ms"):
                    moved[k] = moved[k] + shift
                for start in range(0, len(batch), 250_000):
                    part = {k: v[start : start + 250_000] for k, v in moved.items()}
                    store.write_positions(PositionBatch(**part), names)
            for t, n in zip(terminals, names, strict=True):
                store.upsert_device(Device(n, vehicle_id=f"C{c}-{vehicle_of.get(t, t)}"))
    finally:
        store.close()
    since = int(batch.time_ms.min()) // DAY_MS * DAY_MS
    until = since + (TILE_DAYS * BASE.days + 1) * DAY_MS
    with psycopg.connect(url) as conn:  # stored rows: a resent duplicate is stored once
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    assert row is not None
    return since, until, int(row[0])


def _stream(url: str, since: int, until: int) -> Iterator[tuple[PositionBatch, list[str]]]:
    """The baseline's reading: one time-ordered query, streamed, rows to numpy columns."""
    with psycopg.connect(url) as conn, conn.cursor(name="history") as cur:
        cur.execute(
            "SELECT d.terminal, (extract(epoch FROM p.fix_time) * 1000)::bigint,"
            " (extract(epoch FROM p.recv_time) * 1000)::bigint, p.lon, p.lat, p.speed_kmh,"
            " p.course, p.altitude_m, p.alarm, p.status, p.flags"
            " FROM positions p JOIN devices d ON d.id = p.device_id"
            " WHERE p.fix_time >= to_timestamp(%s / 1000.0)"
            " AND p.fix_time < to_timestamp(%s / 1000.0) ORDER BY p.fix_time",
            (since, until),
        )
        index: dict[str, int] = {}
        while rows := cur.fetchmany(FETCH):
            terminal, t, recv, lon, lat, speed, course, alt, alarm, status, flags = zip(
                *rows, strict=True
            )
            device = np.fromiter((index.setdefault(x, len(index)) for x in terminal), np.int32)
            yield (
                PositionBatch(
                    device=device,
                    time_ms=np.array(t, np.int64),
                    recv_ms=np.array(recv, np.int64),
                    device_time_ms=np.array(t, np.int64),
                    lon=np.array(lon, np.float64),
                    lat=np.array(lat, np.float64),
                    speed_kmh=np.array(speed, np.float32),
                    course=np.array(course, np.int16),
                    altitude_m=np.array(alt, np.int32),
                    alarm=np.array(alarm, np.uint32),
                    status=np.array(status, np.uint32),
                    flags=np.array(flags, np.uint16),
                ),
                list(index),
            )


ALERTS: dict[str, list[Alert]] = {}


def test_backtest_pg(benchmark: Any, history: tuple[str, int, int, int]) -> None:
    url, since, until, rows = history
    cpu: list[float] = []

    def once() -> None:
        store = PostgresStore(url)
        started = time.process_time()
        try:
            found = backtest(store, since, until, RuleBook())
        finally:
            store.close()
        cpu.append(time.process_time() - started)
        assert found.run.positions == rows
        ALERTS["backtest_pg"] = found.run.alerts

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(
        items=rows, cpu_s=min(cpu), main=True, baseline="test_psycopg_stream",
        alerts=len(ALERTS["backtest_pg"]),
        notes=["CPU: this process only (the database server's is not counted)"],
    )  # fmt: skip


def test_psycopg_stream(benchmark: Any, history: tuple[str, int, int, int]) -> None:
    url, since, until, rows = history
    cpu: list[float] = []

    def once() -> None:
        store = PostgresStore(url)
        try:
            engine = engine_from_store(store, RuleBook())
        finally:
            store.close()
        started = time.process_time()
        run = run_history(engine, _stream(url, since, until))
        cpu.append(time.process_time() - started)
        assert run.positions == rows
        ALERTS["psycopg_stream"] = [a for a in run.alerts if since <= a.time_ms < until]

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(items=rows, cpu_s=min(cpu), alerts=len(ALERTS["psycopg_stream"]))
    if "backtest_pg" in ALERTS:
        assert _lines(ALERTS["psycopg_stream"]) == _lines(ALERTS["backtest_pg"])


def _lines(alerts: list[Alert]) -> list[str]:
    return sorted(json.dumps(a.to_json(), sort_keys=True) for a in alerts)
