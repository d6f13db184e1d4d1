"""A flipped byte in one committed journal record: `serve` stores every other record, and says
what it lost on /metrics and in its log."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from ingest.journal import Journal
from positions import DeviceIndex, PositionBatch
from tests.support.processes import api_url, start_serve, stop

T0_MS = 1_735_689_600_000
DEVICES = DeviceIndex(["013900000071"])


def one_report(i: int) -> PositionBatch:
    return PositionBatch.from_columns(
        {
            "device": [0],
            "time_ms": [T0_MS + i * 1000],
            "recv_ms": [T0_MS + i * 1000],
            "lon": [121.4],
            "lat": [31.2],
            "status": [2],
        }
    )


async def test_one_damaged_record_costs_that_record_alone_and_is_reported(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    journal = Journal(data / "journal", max_bytes=1 << 24)
    for i in range(10):
        journal.append(one_report(i), DEVICES)
    journal.commit()
    fifth = journal.pending()[4]
    journal.close()
    [segment] = sorted((data / "journal").glob("*.seg"))
    raw = bytearray(segment.read_bytes())
    raw[fifth.end_offset - 3] ^= 0x10  # inside the fifth record's payload
    segment.write_bytes(bytes(raw))
    proc, _ = start_serve(
        {"LIENWATCH_DATA_DIR": str(data), "LIENWATCH_JT808_LISTEN": "127.0.0.1:0"}
    )
    try:
        async with httpx.AsyncClient(base_url=api_url(proc), timeout=5) as http:
            for _ in range(100):
                text = (await http.get("/metrics")).text
                if "lienwatch_positions_stored_total 9.0" in text:
                    break
                await asyncio.sleep(0.1)
            assert "lienwatch_positions_stored_total 9.0" in text
            assert "lienwatch_journal_damaged_records_total 1.0" in text
            assert "lienwatch_journal_damaged_bytes" in text
    finally:
        assert stop(proc, signal.SIGTERM) == 0
