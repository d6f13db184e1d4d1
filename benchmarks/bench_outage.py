"""`lienwatch bench outage`: a database outage long enough to fill the journal's disk.

`lienwatch serve` keeps its journal on a 24 MiB tmpfs (most of it taken by a filler file, so
the journal meets the full disk in seconds instead of minutes), on a fresh PostgreSQL
database; a fleet of DEVICES trackers offers RATE reports/s for SECONDS. A few seconds in, the
database goes away for real (connections refused and existing ones terminated:
`ALTER DATABASE ... ALLOW_CONNECTIONS false`): the gateway acknowledges from its journal until
the disk is full, then holds acknowledgements and pauses reading. Once the outage has lasted
HOLD_S past the full disk, the database comes back; nothing is restarted. Figures: sent,
acknowledged and stored (every acknowledged report must be stored, exactly once), when the
disk filled and when acknowledging resumed, the longest acknowledgement, and /healthz while it
waited (200 "degraded", never 503).

Environment: LIENWATCH_BENCH_OUTAGE_S (sending time, default 60), _RATE (3000),
_DEVICES (300), _HOLD_S (10), _FREE_MB (journal room on the tmpfs, 4); needs root (tmpfs).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from benchmarks.serve_process import serve_lines
from simulators.load import LoadConfig, LoadReport, run

SECONDS = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_S", "60"))
RATE = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_RATE", "3000"))
DEVICES = int(os.environ.get("LIENWATCH_BENCH_OUTAGE_DEVICES", "300"))
HOLD_S = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_HOLD_S", "10"))
FREE_MB = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_FREE_MB", "4"))
TMPFS_BYTES = 24 << 20
PG_ADMIN = os.environ.get(
    "LIENWATCH_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BIN = Path(sys.executable).with_name("lienwatch")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="lienwatch-outage-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


@pytest.fixture
def database() -> Iterator[str]:
    name = f"lienwatch_bench_outage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _outage(name: str, on: bool) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if on else "true"}')
        if on:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def _fill(disk: Path, leave_bytes: int) -> None:
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with (disk / "filler").open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave_bytes))


def _env(url: str, data_dir: str) -> dict[str, str]:
    return {
        "LIENWATCH_DATABASE_URL": url,
        "LIENWATCH_DATA_DIR": data_dir,
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_API_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
    }


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], int, str]:
    """`serve` on a fresh database: its process, gateway port and API address."""
    proc = subprocess.Popen(
        [str(BIN), "serve"], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True
    )
    port, api, _ = serve_lines(proc)
    return proc, port, api


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def test_disk_full_during_database_outage(benchmark: Any, tmpfs: Path, database: str) -> None:
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    _fill(tmpfs, int(FREE_MB * (1 << 20)))
    env = _env(url, str(tmpfs / "data"))
    proc, port, api = _serve(env)
    events: dict[str, Any] = {"health": set()}
    result: dict[str, LoadReport] = {}

    def load() -> None:
        cfg = LoadConfig(
            "127.0.0.1", port, DEVICES, RATE, SECONDS, drain_timeout_s=120.0, ring_window_s=120.0
        )
        result["report"] = run(cfg)

    def measure() -> None:
        sender = threading.Thread(target=load)
        began = time.monotonic()
        sender.start()
        time.sleep(5)
        _outage(database, True)
        events["outage_at_s"] = time.monotonic() - began
        with httpx.Client(base_url=api, timeout=5) as http:
            full_at = None
            while sender.is_alive():
                answer = http.get("/healthz")
                events["health"].add((answer.status_code, answer.json()["status"]))
                text = http.get("/metrics").text
                paused = _metric(text, "lienwatch_reading_paused") == 1
                if full_at is None and paused:
                    full_at = time.monotonic()
                    events["full_at_s"] = full_at - began
                if "back_at_s" not in events and full_at and time.monotonic() > full_at + HOLD_S:
                    _outage(database, False)
                    events["back_at_s"] = time.monotonic() - began
                if "back_at_s" in events and "resumed_at_s" not in events and not paused:
                    events["resumed_at_s"] = time.monotonic() - began
                time.sleep(0.25)
            if "back_at_s" not in events:
                _outage(database, False)
                events["back_at_s"] = time.monotonic() - began
        sender.join()
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM positions").fetchone()
            stored = int(row[0]) if row else 0
            if stored >= result["report"].acknowledged:
                break
            time.sleep(0.5)
        events["stored"] = stored

    try:
        benchmark.pedantic(measure, rounds=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        events["exit"] = proc.wait(30)
        proc.stdout.close()
    report = result["report"]
    benchmark.extra_info.update(
        {
            "rate": RATE,
            "devices": DEVICES,
            "seconds": SECONDS,
            "tmpfs_mb": TMPFS_BYTES >> 20,
            "journal_room_mb": FREE_MB,
            "sent": report.sent,
            "acknowledged": report.acknowledged,
            "stored": events["stored"],
            "unanswered": report.unanswered,
            "errors": report.errors,
            "overrun": report.overrun,
            "outage_at_s": round(events["outage_at_s"], 1),
            "disk_full_at_s": round(events.get("full_at_s", float("nan")), 1),
            "database_back_at_s": round(events["back_at_s"], 1),
            "acks_resumed_at_s": round(events.get("resumed_at_s", float("nan")), 1),
            "ack_p99_ms": round(report.ack_latency_ms.get("p99", float("nan")), 1),
            "ack_max_ms": round(report.ack_latency_ms.get("max", float("nan")), 1),
            "healthz_seen": sorted(f"{code} {status}" for code, status in events["health"]),
            "exit": events["exit"],
        }
    )
    benchmark.extra_info["notes"] = [
        f"{RATE:,.0f}/s from {DEVICES} trackers for {SECONDS:.0f} s; database away at "
        f"{events['outage_at_s']:.0f} s, journal disk full at {events.get('full_at_s', 0):.0f} s, "
        f"database back at {events['back_at_s']:.0f} s, acknowledging again at "
        f"{events.get('resumed_at_s', float('nan')):.0f} s (no restart)",
        f"sent {report.sent:,}, acknowledged {report.acknowledged:,}, stored "
        f"{events['stored']:,}; /healthz answered {sorted(events['health'])}",
    ]
    print("\n".join(benchmark.extra_info["notes"]))
    assert events["stored"] == report.acknowledged
    assert report.sent == report.acknowledged
    assert "full_at_s" in events  # the outage did fill the disk
    assert all(code == 200 for code, _ in events["health"])


DETECT_S = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_DETECT_S", "90"))
DETECT_RATE = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_DETECT_RATE", "5000"))
DETECT_DEVICES = int(os.environ.get("LIENWATCH_BENCH_OUTAGE_DETECT_DEVICES", "1000"))
DOWN_S = float(os.environ.get("LIENWATCH_BENCH_OUTAGE_DOWN_S", "60"))


def _raised(text: str) -> int:
    return int(
        sum(
            float(v)
            for v in re.findall(r"^lienwatch_alerts_raised_total\{[^}]*\} (\S+)$", text, re.M)
        )
    )


def test_database_outage_with_the_detector_on(
    benchmark: Any, database: str, tmp_path: Path
) -> None:
    """The database away for DOWN_S under a DETECT_RATE fleet: trackers that keep sending are
    never offline, and every alert the detector raised meanwhile is stored once afterwards."""
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    env = _env(url, str(tmp_path / "data"))
    proc, port, api = _serve(env)
    result: dict[str, Any] = {}

    def measure() -> None:
        cfg = LoadConfig(
            "127.0.0.1", port, DETECT_DEVICES, DETECT_RATE, DETECT_S, ring_window_s=60.0
        )
        sender = threading.Thread(target=lambda: result.update(report=run(cfg)))
        sender.start()
        time.sleep(10)
        _outage(database, True)
        time.sleep(DOWN_S)
        _outage(database, False)
        sender.join()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = httpx.get(f"{api}/metrics", timeout=5).text
            with psycopg.connect(url) as conn:
                rows = dict(conn.execute("SELECT type, count(*) FROM alerts GROUP BY type"))
                stored = conn.execute("SELECT count(*) FROM positions").fetchone()
            result.update(raised=_raised(text), alerts=rows, stored=int(stored[0] if stored else 0))
            if (
                sum(rows.values()) >= result["raised"]
                and result["stored"] >= result["report"].acknowledged
            ):
                break
            time.sleep(1)

    try:
        benchmark.pedantic(measure, rounds=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        result["exit"] = proc.wait(30)
        proc.stdout.close()
    report: LoadReport = result["report"]
    alerts: dict[str, int] = result["alerts"]
    benchmark.extra_info.update(
        {
            "rate": DETECT_RATE,
            "devices": DETECT_DEVICES,
            "seconds": DETECT_S,
            "database_down_s": DOWN_S,
            "sent": report.sent,
            "acknowledged": report.acknowledged,
            "stored": result["stored"],
            "alerts_raised": result["raised"],
            "alerts_stored": alerts,
            "offline_alerts": alerts.get("offline", 0) + alerts.get("all_devices_offline", 0),
            "exit": result["exit"],
        }
    )
    benchmark.extra_info["notes"] = [
        f"database down {DOWN_S:.0f} s under {DETECT_RATE:,.0f}/s from {DETECT_DEVICES} trackers: "
        f"sent {report.sent:,}, acknowledged {report.acknowledged:,}, stored {result['stored']:,}; "
        f"alerts raised {result['raised']}, stored {sum(alerts.values())} {alerts}",
    ]
    print("\n".join(benchmark.extra_info["notes"]))
    assert report.sent == report.acknowledged == result["stored"]
    assert alerts.get("offline", 0) == 0
    assert alerts.get("all_devices_offline", 0) == 0
    assert sum(alerts.values()) == result["raised"]


BACKLOG = int(os.environ.get("LIENWATCH_BENCH_OUTAGE_BACKLOG", "42000"))


def test_backlog_drained_into_a_fresh_database(
    benchmark: Any, database: str, tmp_path: Path
) -> None:
    """BACKLOG reports journaled while a fresh database refuses connections, their fix times in
    days it has no partition (or chunk) for yet; then it comes back: how long until every row is
    stored, and how long SIGTERM takes right after."""
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    env = _env(url, str(tmp_path / "data"))
    proc, port, _ = _serve(env)
    result: dict[str, Any] = {}

    def measure() -> None:
        _outage(database, True)
        devices = 200
        report = run(LoadConfig("127.0.0.1", port, devices, BACKLOG / 10, 10.0))
        result["report"] = report
        began = time.monotonic()
        _outage(database, False)
        stored = 0
        while time.monotonic() - began < 120:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM positions").fetchone()
            stored = int(row[0]) if row else 0
            if stored >= report.acknowledged:
                break
            time.sleep(0.1)
        result["stored"], result["drain_s"] = stored, time.monotonic() - began

    try:
        benchmark.pedantic(measure, rounds=1)
    finally:
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        result["exit"] = proc.wait(30)
        result["stop_s"] = time.monotonic() - began
        proc.stdout.close()
    report = result["report"]
    benchmark.extra_info.update(
        {
            "backlog": report.acknowledged,
            "stored": result["stored"],
            "drain_s": round(result["drain_s"], 2),
            "sigterm_to_exit_s": round(result["stop_s"], 2),
            "exit": result["exit"],
        }
    )
    benchmark.extra_info["notes"] = [
        f"{report.acknowledged:,} reports journaled while a fresh database was away: all "
        f"{result['stored']:,} stored {result['drain_s']:.1f} s after it came back; SIGTERM "
        f"then stopped serve in {result['stop_s']:.1f} s (exit {result['exit']})",
    ]
    print("\n".join(benchmark.extra_info["notes"]))
    assert report.sent == report.acknowledged == result["stored"]
    assert result["exit"] == 0
