"""`lienwatch bench ingest`: the gateway under load, durable into PostgreSQL.

`lienwatch serve` runs as its own process on a fresh PostgreSQL database; the load generator
(simulators/load.py) offers RATE reports/s from DEVICES connections for SECONDS. An offered rate
that is met says little about capacity, so the figures are:
- CPU per acknowledged report: the gateway process's user+system time (all threads and any
  children, from the kernel's accounting) from the first scheduled report to the last
  acknowledgement, over the reports acknowledged; next to it the same figure for the trivial
  acknowledging sink (no decoding, no durability) under the same load in the same run, whose
  result is the baseline. `cpu_ratio` is the gateway's reports per CPU-second over the sink's.
  Also the gateway's CPU until every row is stored, the bench database's PostgreSQL backends
  (the server's shared processes, such as the WAL writer, cannot be attributed), the load
  generator's own CPU (it runs in this process and competes for the same cores) and how busy
  the whole machine was (other users' load shows there);
- the acknowledged rate over the sending window, acknowledgement latency percentiles, and exact
  counts (sent = acknowledged = stored rows);
- capacity (`gateway_capacity`): the highest offered rate at which p99 acknowledgement stays
  under 1 s with exact counts, searched on a fresh gateway and database by short steps
  (doubling from a start rate, then bisection to within 10 %), each with new devices, until
  the time budget is spent. A step with an overrun answer fails too (its latencies would be
  understated). Each step shows how busy the whole machine was: on a shared machine latency
  is mostly other users' load, where the CPU figures above still hold.

Environment: LIENWATCH_BENCH_INGEST_S (default 60), LIENWATCH_BENCH_INGEST_RATE (50000),
LIENWATCH_BENCH_INGEST_DEVICES (2000), LIENWATCH_BENCH_PG_ADMIN_URL; for the capacity search
LIENWATCH_BENCH_INGEST_SEARCH_S (time budget, default 180; 0 skips it),
LIENWATCH_BENCH_INGEST_STEP_S (each step's sending time, 10), LIENWATCH_BENCH_INGEST_SEARCH_FROM
(first rate, 25000) and LIENWATCH_BENCH_INGEST_SEARCH_TO (highest rate tried, 400000).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from benchmarks.serve_process import role_lines
from simulators.load import LoadConfig, LoadReport, machine_busy_s, process_cpu_s, run

SECONDS = float(os.environ.get("LIENWATCH_BENCH_INGEST_S", "60"))
RATE = float(os.environ.get("LIENWATCH_BENCH_INGEST_RATE", "50000"))
DEVICES = int(os.environ.get("LIENWATCH_BENCH_INGEST_DEVICES", "2000"))
PG_ADMIN = os.environ.get(
    "LIENWATCH_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SEARCH_S = float(os.environ.get("LIENWATCH_BENCH_INGEST_SEARCH_S", "180"))
STEP_S = float(os.environ.get("LIENWATCH_BENCH_INGEST_STEP_S", "10"))
SEARCH_FROM = float(os.environ.get("LIENWATCH_BENCH_INGEST_SEARCH_FROM", "25000"))
SEARCH_TO = float(os.environ.get("LIENWATCH_BENCH_INGEST_SEARCH_TO", "400000"))
P99_LIMIT_MS = 1000.0
BIN = Path(sys.executable).with_name("lienwatch")
CORES = os.cpu_count() or 1
STORE_WAIT_S = 120.0


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


def _fresh_database() -> Iterator[str]:
    name = f"lienwatch_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    yield from _fresh_database()


@pytest.fixture
def search_database() -> Iterator[str]:
    yield from _fresh_database()


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
            "overrun": report.overrun,
            "achieved_rate": round(report.achieved_rate, 1),
            "acked_per_s": round(report.acknowledged / report.duration_s, 1),
            **{f"ack_{k}_ms": round(v, 2) for k, v in report.ack_latency_ms.items()},
        }
    )


def _wait_stored(url: str, want: int, wait_s: float = STORE_WAIT_S) -> int:
    deadline = time.monotonic() + wait_s
    stored = _stored(url)
    while stored < want and time.monotonic() < deadline:
        time.sleep(0.5)
        stored = _stored(url)
    return stored


@dataclass
class Meter:
    """CPU seconds of the server process (and of the database's backends) between the load's
    window marks, read from outside through the kernel's accounting."""

    server: int  # pid
    database: str | None = None  # also charge this database's PostgreSQL backends
    others: tuple[int, ...] = ()  # more server processes charged with it (gateways side by side)
    at: dict[str, dict[str, Any]] = field(default_factory=dict)
    _monitor: psycopg.Connection[Any] | None = None

    def __enter__(self) -> Meter:
        if self.database is not None:
            self._monitor = psycopg.connect(self.database, autocommit=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._monitor is not None:
            self._monitor.close()

    def __call__(self, mark: str) -> None:
        self.at[mark] = {
            "server": sum(process_cpu_s(pid) for pid in (self.server, *self.others)),
            "machine": machine_busy_s(),
            "wall": time.monotonic(),
            "backends": self._backends(),
        }

    def _backends(self) -> dict[int, float]:
        if self._monitor is None:
            return {}
        rows = self._monitor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        cpu: dict[int, float] = {}
        for (pid,) in rows:
            try:
                cpu[int(pid)] = process_cpu_s(int(pid))
            except ProcessLookupError:
                continue
        return cpu

    def delta(self, key: str) -> float:
        return float(self.at["end"][key] - self.at["start"][key])

    def backends_cpu_s(self) -> tuple[float, int, int]:
        """CPU of the backends over the window, how many, how many left before the end (their
        CPU is lost; a backend that came during the window counts from its start)."""
        start, end = self.at["start"]["backends"], self.at["end"]["backends"]
        total = sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())
        return total, len(end), len(set(start) - set(end))


def _us(cpu_s: float, reports: int) -> float:
    return round(cpu_s * 1e6 / reports, 2) if reports else float("nan")


def _cpu_figures(benchmark: Any, report: LoadReport, meter: Meter, role: str) -> float:
    """Puts the window's CPU figures into extra_info; returns the server's CPU seconds."""
    acked = report.acknowledged
    server_s = meter.delta("server")
    window = report.window_s
    busy = meter.delta("machine") / meter.delta("wall")  # cores, between the marks
    benchmark.extra_info.update(
        {
            "cpu_s": server_s,
            "cpu_of": f"{role}: its process, all threads and children, from the first "
            "scheduled report to the last acknowledgement",
            f"{role}_cpu_us_per_report": _us(server_s, acked),
            "window_s": round(window, 3),
            "generator_cpu_s": round(report.window_cpu_s, 3),
            "generator_cpu_us_per_report": _us(report.window_cpu_s, acked),
            "machine_busy_cores": round(busy, 2),
            "cores": CORES,
        }
    )
    benchmark.extra_info["notes"] = [
        f"{role} CPU: {_us(server_s, acked):,.1f} µs per acknowledged report "
        f"({server_s:.2f} s over {window:.1f} s, {server_s / window:.2f} cores)",
        f"load generator CPU (this process, not the {role}): "
        f"{_us(report.window_cpu_s, acked):,.1f} µs per report "
        f"({report.window_cpu_s / window:.2f} cores); it competes for the same {CORES} cores",
        f"machine: {busy:.2f} of {CORES} cores busy over the window, every process "
        "counted (other users' load too)",
    ]
    return server_s


SINK: dict[str, float] = {}  # the sink's CPU per report, for the gateway's line of the same run


def test_sink_baseline(benchmark: Any) -> None:
    proc, port = _start(
        [sys.executable, "-m", "simulators.sink", "127.0.0.1:0"], {}, r"listening on [^:]+:(\d+)"
    )
    seconds = min(SECONDS, 20.0)
    try:
        with Meter(proc.pid) as meter:
            report: LoadReport = benchmark.pedantic(
                lambda: run(LoadConfig("127.0.0.1", port, DEVICES, RATE, seconds), mark=meter),
                rounds=1,
            )
    finally:
        _stop(proc)
    _figures(benchmark, report)
    benchmark.extra_info["items"] = report.acknowledged
    sink_s = _cpu_figures(benchmark, report, meter, "sink")
    SINK["cpu_us_per_report"] = _us(sink_s, report.acknowledged)


def _serve(database: str, data: str) -> tuple[subprocess.Popen[str], int]:
    env = {
        "LIENWATCH_DATABASE_URL": database,
        "LIENWATCH_DATA_DIR": data,
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_API_LISTEN": "127.0.0.1:0",  # any free port: another gateway may hold 8000
        "LIENWATCH_AUTO_REGISTER": "true",
    }
    return _start([str(BIN), "serve"], env, r"JT808 gateway listening on [^:]+:(\d+)")


def test_gateway_into_postgres(benchmark: Any, database: str) -> None:
    with tempfile.TemporaryDirectory() as data:
        proc, port = _serve(database, data)
        try:
            with Meter(proc.pid, database) as meter:
                report: LoadReport = benchmark.pedantic(
                    lambda: run(LoadConfig("127.0.0.1", port, DEVICES, RATE, SECONDS), mark=meter),
                    rounds=1,
                )
            stored = _wait_stored(database, report.acknowledged)
            to_stored_s = process_cpu_s(proc.pid) - meter.at["start"]["server"]
        finally:
            _stop(proc)
    _figures(benchmark, report)
    benchmark.extra_info["stored"] = stored
    benchmark.extra_info["items"] = report.acknowledged
    benchmark.extra_info["baseline"] = "test_sink_baseline"
    acked = report.acknowledged
    gateway_s = _cpu_figures(benchmark, report, meter, "gateway")
    pg_s, backends, gone = meter.backends_cpu_s()
    benchmark.extra_info.update(
        {
            "gateway_cpu_us_per_report_until_stored": _us(to_stored_s, acked),
            "sink_cpu_us_per_report": SINK.get("cpu_us_per_report"),
            "postgres_cpu_s": round(pg_s, 3),
            "postgres_cpu_us_per_report": _us(pg_s, acked),
            "postgres_backends": backends,
        }
    )
    between: list[str] = []
    if "cpu_us_per_report" in SINK:
        sink_us = SINK["cpu_us_per_report"]
        between.append(
            f"sink CPU in this run: {sink_us:,.1f} µs per acknowledged report; the gateway "
            f"costs {_us(gateway_s, acked) / sink_us:.1f}x the sink's CPU per report"
        )
    between += [
        f"gateway CPU until every row was stored: {_us(to_stored_s, acked):,.1f} µs per report",
        f"PostgreSQL backends of the bench database ({backends}"
        + (f", {gone} gone before the end and not counted" if gone else "")
        + f"): {_us(pg_s, acked):,.1f} µs per report; the server's shared processes "
        "(WAL writer, checkpointer) are not counted",
    ]
    benchmark.extra_info["notes"][1:1] = between
    print("\n".join(benchmark.extra_info["notes"]))  # pytest shows it when the counts fail
    assert report.sent == report.acknowledged == stored, (report.sent, report.acknowledged, stored)


@dataclass(frozen=True)
class Step:
    rate: float
    report: LoadReport
    stored: int
    gateway_cpu_s: float
    machine_busy_cores: float  # everyone's load over the step: contention shows as latency

    @property
    def ok(self) -> bool:
        r = self.report
        return (
            r.connected == r.devices
            and r.errors == 0
            and r.overrun == 0
            and r.sent == r.acknowledged == self.stored > 0
            and r.ack_latency_ms.get("p99", float("inf")) < P99_LIMIT_MS
        )

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "offered_rate": self.rate,
            "ok": self.ok,
            "sent": r.sent,
            "acknowledged": r.acknowledged,
            "stored": self.stored,
            "errors": r.errors,
            "achieved_rate": round(r.achieved_rate, 1),
            "ack_p99_ms": round(r.ack_latency_ms.get("p99", float("nan")), 1),
            "send_lag_p99_ms": round(r.send_lag_ms.get("p99", float("nan")), 1),
            "gateway_cpu_us_per_report": _us(self.gateway_cpu_s, r.acknowledged),
            "generator_cpu_us_per_report": _us(r.window_cpu_s, r.acknowledged),
            "machine_busy_cores": round(self.machine_busy_cores, 2),
        }

    def line(self) -> str:
        j = self.to_json()
        return (
            f"{self.rate:>9,.0f}/s {'ok  ' if self.ok else 'FAIL'} p99 {j['ack_p99_ms']:,.0f} ms "
            f"(send lag p99 {j['send_lag_p99_ms']:,.0f} ms), sent {j['sent']:,} "
            f"acked {j['acknowledged']:,} stored {j['stored']:,}, gateway "
            f"{j['gateway_cpu_us_per_report']:,.1f} µs/report, generator "
            f"{j['generator_cpu_us_per_report']:,.1f} µs/report, machine "
            f"{j['machine_busy_cores']:.2f} of {CORES} cores busy"
        )


def _next_rate(passed: float | None, failed: float | None, rate: float) -> float | None:
    """Doubling until a step fails (halving until one passes), then bisection to 10 %."""
    if failed is None:
        return min(rate * 2, SEARCH_TO) if rate < SEARCH_TO else None
    if passed is None:
        return rate / 2 if rate / 2 >= SEARCH_FROM / 16 else None
    if failed / passed <= 1.1:
        return None
    middle = (passed + failed) / 2
    rounded = float(round(middle / 500) * 500)
    return rounded if passed < rounded < failed else middle


def capacity_search(
    database: str, start: Callable[[str], tuple[list[subprocess.Popen[str]], int]]
) -> list[Step]:
    """The capacity search's steps against the servers `start(data_dir)` starts (their
    processes and the port they listen on), charged together, on `database`."""
    steps: list[Step] = []
    passed: float | None = None
    failed: float | None = None
    rate: float | None = SEARCH_FROM
    stored_before = 0
    longest = 0.0
    with tempfile.TemporaryDirectory() as data:
        procs, port = start(data)
        began = time.monotonic()  # the budget is for steps, the servers' start aside
        try:
            while rate is not None and (
                not steps or time.monotonic() - began + longest <= SEARCH_S
            ):
                step_began = time.monotonic()
                cfg = LoadConfig(
                    "127.0.0.1",
                    port,
                    DEVICES,
                    rate,
                    STEP_S,
                    first_terminal=13_800_000_000 + len(steps) * DEVICES,
                )
                pids = tuple(p.pid for p in procs)
                with Meter(pids[0], others=pids[1:]) as meter:
                    report = run(cfg, mark=meter)
                total = _wait_stored(
                    database, stored_before + report.acknowledged, STORE_WAIT_S / 2
                )
                busy = meter.delta("machine") / meter.delta("wall")
                steps.append(Step(rate, report, total - stored_before, meter.delta("server"), busy))
                stored_before = total
                if steps[-1].ok:
                    passed = rate if passed is None else max(passed, rate)
                else:
                    failed = rate if failed is None else min(failed, rate)
                longest = max(longest, time.monotonic() - step_began)
                rate = _next_rate(passed, failed, rate)
        finally:
            for proc in procs:
                _stop(proc)
    return steps


def test_gateway_capacity(benchmark: Any, search_database: str) -> None:
    if SEARCH_S <= 0:
        pytest.skip("LIENWATCH_BENCH_INGEST_SEARCH_S=0")
    steps: list[Step] = []

    def one(data: str) -> tuple[list[subprocess.Popen[str]], int]:
        proc, port = _serve(search_database, data)
        return [proc], port

    def search() -> None:
        steps.extend(capacity_search(search_database, one))

    benchmark.pedantic(search, rounds=1)
    passed_rates = [s.rate for s in steps if s.ok]
    highest = max(passed_rates) if passed_rates else None
    lowest_failed = min((s.rate for s in steps if not s.ok), default=None)
    benchmark.extra_info.update(
        {
            "highest_rate": highest,
            "lowest_failed_rate": lowest_failed,
            "criterion": f"p99 acknowledgement < {P99_LIMIT_MS:.0f} ms, "
            "sent = acknowledged = stored, no errors",
            "devices": DEVICES,
            "step_s": STEP_S,
            "steps": [s.to_json() for s in steps],
        }
    )
    found = f"{highest:,.0f}/s" if highest is not None else "none of the rates tried"
    above = (
        f", {lowest_failed:,.0f}/s failed"
        if lowest_failed is not None
        else f" (no step failed up to {max(s.rate for s in steps):,.0f}/s, the cap or budget)"
    )
    benchmark.extra_info["notes"] = [
        f"highest offered rate with p99 acknowledgement < 1 s and exact counts: {found}{above}; "
        f"{DEVICES} devices, {STEP_S:.0f} s steps, the generator on the same {CORES} cores",
        *[s.line() for s in steps],
    ]
    assert steps


API_S = float(os.environ.get("LIENWATCH_BENCH_INGEST_API_S", "20"))
API_RATE = float(os.environ.get("LIENWATCH_BENCH_INGEST_API_RATE", "20000"))
API_CLIENTS = 10
# The API process's LIENWATCH_NICE (0: the same priority as the gateway's process), or "idle":
# SCHED_IDLE (it runs only on CPU time nothing else wants, as `chrt --idle 0`).
API_NICE = os.environ.get("LIENWATCH_BENCH_INGEST_API_NICE", "0")
# "true": the API clients (browsers elsewhere, in a deployment) run in SCHED_IDLE, so their own
# CPU does not compete with the gateway and the load generator on the bench machine's cores.
CLIENTS_IDLE = os.environ.get("LIENWATCH_BENCH_INGEST_CLIENTS_IDLE", "false").lower() == "true"
# "false": the API in the gateway's process (all roles in one), as before roles could split.
API_APART = os.environ.get("LIENWATCH_BENCH_INGEST_API_APART", "true").lower() != "false"
TRACK_POINTS = 100_000
TRACK_TERMINAL = "013999999999"
FENCES = 2_000


def _load_average() -> float:
    """The machine's 1-minute load average (other users of the cores show there)."""
    return round(os.getloadavg()[0], 2)


def _seed_track_and_fences(database: str, api: str, key: str) -> tuple[str, str]:
    """A 100,000-point track (one fix a second) and 2,000 fences; the track's from and to."""
    import numpy as np

    from positions import PositionBatch
    from store.postgres import PostgresStore

    t0 = 1_735_689_600_000
    n = TRACK_POINTS
    store = PostgresStore(database)
    try:
        store.write_positions(
            PositionBatch.from_columns(
                {
                    "device": np.zeros(n),
                    "time_ms": t0 + np.arange(n) * 1000,
                    "recv_ms": t0 + np.arange(n) * 1000,
                    "lon": 121.0 + np.arange(n) * 1e-5,
                    "lat": np.full(n, 31.0),
                    "status": np.full(n, 2),
                }
            ),
            [TRACK_TERMINAL],
        )
    finally:
        store.close()
    rng = np.random.default_rng(7)
    features = [
        {
            "type": "Feature",
            "properties": {"id": f"f{i}", "kind": "hotspot"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lon, lat],
                        [lon + 0.01, lat],
                        [lon + 0.01, lat + 0.01],
                        [lon, lat + 0.01],
                        [lon, lat],
                    ]
                ],
            },
        }
        for i, (lon, lat) in enumerate(
            zip(rng.uniform(110, 122, FENCES), rng.uniform(22, 40, FENCES), strict=True)
        )
    ]
    import httpx

    answer = httpx.post(
        f"{api}/api/v1/fences",
        json={"type": "FeatureCollection", "features": features},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    answer.raise_for_status()
    return "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z"


def _warm_up(api: str, key: str, start: str, end: str) -> None:
    """One track and one fence collection before either run: the API process's first answer
    that names places loads the boundaries and builds their grid (seconds of CPU, once per
    process), which is start-up, not the steady load the comparison is about."""
    import httpx

    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=300) as h:
        h.get(f"/api/v1/devices/{TRACK_TERMINAL}/track?from={start}&to={end}").raise_for_status()
        h.get("/api/v1/fences?crs=gcj02").raise_for_status()


def _idle() -> None:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _serve_roles(
    roles: str, url: str, data: str, nice: str = "0"
) -> tuple[subprocess.Popen[str], int | None, str | None, str | None]:
    env = {
        "LIENWATCH_ROLES": roles,
        "LIENWATCH_DATABASE_URL": url,
        "LIENWATCH_DATA_DIR": data,
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_API_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
        "LIENWATCH_NICE": "0" if nice == "idle" else nice,
    }
    proc = subprocess.Popen(
        [str(BIN), "serve"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_idle if nice == "idle" else None,  # as `chrt --idle 0 lienwatch serve`
    )
    return (proc, *role_lines(proc))


def test_ack_latency_under_api_load(benchmark: Any) -> None:
    """Acknowledgement latency of a 20,000/s fleet without, then with, 10 API clients fetching
    100,000-point tracks and the fence collection in a loop (same processes, same run). The
    deployment the figure is about: the API as its own `api` process beside a
    `gateway,detector` process on one PostgreSQL (LIENWATCH_ROLES), both on the same cores
    (LIENWATCH_BENCH_INGEST_API_NICE lowers the API process's priority;
    LIENWATCH_BENCH_INGEST_API_APART=false runs all three roles in one process instead)."""
    if API_S <= 0:
        pytest.skip("LIENWATCH_BENCH_INGEST_API_S=0")
    results: dict[str, Any] = {}

    def measure() -> None:
        for url in _fresh_database():
            with tempfile.TemporaryDirectory() as data:
                if API_APART:
                    api_proc, _, api, key = _serve_roles("api", url, f"{data}/api", API_NICE)
                    engine, port, _, _ = _serve_roles("gateway,detector", url, f"{data}/engine")
                else:
                    engine, port, api, key = _serve_roles("gateway,detector,api", url, data)
                    api_proc = engine
                try:
                    assert port is not None
                    assert api is not None
                    assert key is not None
                    start, end = _seed_track_and_fences(url, api, key)
                    _warm_up(api, key, start, end)
                    time.sleep(5)  # the detector loads the new fences before either run
                    load = _load_average()
                    quiet = run(LoadConfig("127.0.0.1", port, DEVICES, API_RATE, API_S))
                    clients = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.api_clients",
                            api,
                            key,
                            TRACK_TERMINAL,
                            start,
                            end,
                            str(API_S + 5),
                            str(API_CLIENTS),
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                        preexec_fn=_idle if CLIENTS_IDLE else None,
                    )
                    time.sleep(2)  # the clients are under way before the load starts
                    loaded = run(
                        LoadConfig(
                            "127.0.0.1",
                            port,
                            DEVICES,
                            API_RATE,
                            API_S,
                            first_terminal=13_800_000_000,
                        )
                    )
                    out, _ = clients.communicate(timeout=300)
                    results.update(quiet=quiet, loaded=loaded, clients=json.loads(out), load=load)
                finally:
                    _stop(engine)
                    _stop(api_proc)

    benchmark.pedantic(measure, rounds=1)
    quiet, loaded = results["quiet"], results["loaded"]
    p99_quiet = quiet.ack_latency_ms["p99"]
    p99_loaded = loaded.ack_latency_ms["p99"]
    benchmark.extra_info.update(
        {
            "rate": API_RATE,
            "devices": DEVICES,
            "seconds": API_S,
            "api_clients": API_CLIENTS,
            "track_points": TRACK_POINTS,
            "fences": FENCES,
            "p99_ms_without_api": round(p99_quiet, 2),
            "p99_ms_with_api": round(p99_loaded, 2),
            "p50_ms_without_api": round(quiet.ack_latency_ms["p50"], 2),
            "p50_ms_with_api": round(loaded.ack_latency_ms["p50"], 2),
            "p99_rise": round(p99_loaded / p99_quiet - 1, 3),
            "api_requests": results["clients"]["requests"],
            "api_megabytes": round(results["clients"]["bytes"] / 1e6, 1),
            "api_failures": results["clients"]["failures"],
            "exact": quiet.sent == quiet.acknowledged and loaded.sent == loaded.acknowledged,
            "api_apart": API_APART,
            "api_nice": API_NICE,
            "clients_idle": CLIENTS_IDLE,
            "load_average_before": results["load"],
        }
    )
    benchmark.extra_info["notes"] = [
        f"p99 acknowledgement at {API_RATE:,.0f}/s: {p99_quiet:,.1f} ms without API clients, "
        f"{p99_loaded:,.1f} ms with {API_CLIENTS} fetching {TRACK_POINTS:,}-point tracks and "
        f"{FENCES:,} fences ({results['clients']['requests']} requests, "
        f"{results['clients']['bytes'] / 1e6:,.0f} MB): {p99_loaded / p99_quiet - 1:+.0%}; "
        f"{f'api process apart (nice {API_NICE})' if API_APART else 'api in the same process'}"
        f"{', clients idle' if CLIENTS_IDLE else ''}, load average {results['load']} before",
    ]
    print("\n".join(benchmark.extra_info["notes"]))
    assert quiet.sent == quiet.acknowledged
    assert loaded.sent == loaded.acknowledged
    assert results["clients"]["failures"] == 0
