"""`lienwatch bench gateways`: what a second gateway process on the same host adds.

The capacity search of `lienwatch bench ingest` (the highest offered rate whose p99
acknowledgement stays under 1 s with sent = acknowledged = stored; doubling, then bisection)
runs twice on fresh PostgreSQL databases: against one `serve` process with
`LIENWATCH_ROLES=gateway`, the baseline, then against two such processes sharing one port
(`LIENWATCH_JT808_REUSE_PORT=true`; the kernel spreads the load generator's connections between
them), each with its own journal. The figure is the ratio of the two highest rates, with each
step's CPU per report (all gateway processes together), the generator's, and how many of the
machine's cores everyone kept busy: on a host whose cores are already full, a second process
has nothing to run on, and the steps say so.

Environment: as `bench ingest` (LIENWATCH_BENCH_INGEST_SEARCH_S is each search's budget,
LIENWATCH_BENCH_INGEST_STEP_S, _SEARCH_FROM, _SEARCH_TO, _DEVICES, LIENWATCH_BENCH_PG_ADMIN_URL).
"""

from __future__ import annotations

import socket
import subprocess
from functools import partial
from typing import Any

from benchmarks.bench_ingest import (
    BIN,
    CORES,
    DEVICES,
    P99_LIMIT_MS,
    SEARCH_S,
    STEP_S,
    Step,
    _fresh_database,
    _start,
    capacity_search,
)

HIGHEST: dict[int, float | None] = {}  # gateways -> highest passing rate, this run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _gateways(database: str, count: int, data: str) -> tuple[list[subprocess.Popen[str]], int]:
    """`count` gateway processes on one port, each with its own data directory (journal)."""
    port = _free_port()
    procs: list[subprocess.Popen[str]] = []
    for i in range(count):
        env = {
            "LIENWATCH_ROLES": "gateway",
            "LIENWATCH_DATABASE_URL": database,
            "LIENWATCH_DATA_DIR": f"{data}/gateway{i}",
            "LIENWATCH_JT808_LISTEN": f"127.0.0.1:{port}",
            "LIENWATCH_JT808_REUSE_PORT": "true",
            "LIENWATCH_API_LISTEN": "127.0.0.1:0",
            "LIENWATCH_AUTO_REGISTER": "true",
        }
        procs.append(_start([str(BIN), "serve"], env, r"JT808 gateway listening on [^:]+:(\d+)")[0])
    return procs, port


def _search(benchmark: Any, count: int) -> list[Step]:
    steps: list[Step] = []

    def search() -> None:
        for database in _fresh_database():
            steps.extend(capacity_search(database, partial(_gateways, database, count)))

    benchmark.pedantic(search, rounds=1)
    passed = [s.rate for s in steps if s.ok]
    highest = max(passed) if passed else None
    HIGHEST[count] = highest
    benchmark.extra_info.update(
        {
            "gateways": count,
            "highest_rate": highest,
            "lowest_failed_rate": min((s.rate for s in steps if not s.ok), default=None),
            "criterion": f"p99 acknowledgement < {P99_LIMIT_MS:.0f} ms, "
            "sent = acknowledged = stored, no errors",
            "devices": DEVICES,
            "step_s": STEP_S,
            "budget_s": SEARCH_S,
            "steps": [s.to_json() for s in steps],
        }
    )
    found = f"{highest:,.0f}/s" if highest is not None else "none of the rates tried"
    benchmark.extra_info["notes"] = [
        f"{count} gateway process{'es' if count > 1 else ''}: highest rate with p99 < 1 s and "
        f"exact counts {found}; {DEVICES} devices, the generator on the same {CORES} cores",
        *[s.line() for s in steps],
    ]
    return steps


def test_one_gateway(benchmark: Any) -> None:
    assert _search(benchmark, 1)


def test_two_gateways(benchmark: Any) -> None:
    assert _search(benchmark, 2)
    one, two = HIGHEST.get(1), HIGHEST.get(2)
    if one and two:
        benchmark.extra_info["capacity_ratio"] = round(two / one, 3)
        benchmark.extra_info["notes"].insert(
            0, f"two gateways acknowledge {two / one:.2f}x what one does at p99 < 1 s"
        )
    print("\n".join(benchmark.extra_info["notes"]))
