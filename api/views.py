"""JSON shapes of stored things. A position carries the fields of `lienwatch decode`'s location
body (contracts section 2), produced by the decoder's own JSON view so both always agree."""

from __future__ import annotations

from typing import Any

from alerts.model import format_time
from ingest.jt808.errors import Jt808UsageError
from ingest.jt808.jsonview import location_json
from ingest.jt808.location import LocationReport
from positions import Flag, PositionBatch
from store import Device, DeviceClock

_FLAG_NAMES = [(flag, (flag.name or "").lower()) for flag in Flag if flag is not Flag.NONE]


def iso(time_ms: int | None) -> str | None:
    """ISO 8601 in the trackers' local time (GMT+8), as alerts and decoded frames show it."""
    return None if time_ms is None else format_time(time_ms)


def flag_names(flags: int) -> list[str]:
    return [name for flag, name in _FLAG_NAMES if flags & flag]


def position_json(batch: PositionBatch, row: int, valid: bool | None = None) -> dict[str, Any]:
    """Row `row` as section 2's location body, plus its receive time, flags and validity
    (`PositionBatch.valid`, computed here unless given)."""
    time_ms = int(batch.time_ms[row])
    fields: dict[str, Any] = {
        "lon": float(batch.lon[row]),
        "lat": float(batch.lat[row]),
        "speed_kmh": float(batch.speed_kmh[row]),
        "course": int(batch.course[row]),
        "altitude_m": int(batch.altitude_m[row]),
        "alarm": int(batch.alarm[row]),
        "status": int(batch.status[row]),
    }
    try:
        out = location_json(LocationReport.at(time_ms=time_ms, **fields))
    except Jt808UsageError:  # a time a device cannot send (a flagged bad time)
        out = location_json(LocationReport.at(time_ms=946_656_000_000, **fields))
        out["time"] = iso(time_ms)
        out.pop("time_raw", None)
    flags = int(batch.flags[row])
    out["device_time"] = iso(int(batch.device_time_ms[row]))
    out["received"] = iso(int(batch.recv_ms[row]))
    out["flags"] = flag_names(flags)
    out["valid"] = bool(batch.valid()[row]) if valid is None else valid
    return out


def positions_json(batch: PositionBatch) -> list[dict[str, Any]]:
    valid = batch.valid().tolist()
    return [position_json(batch, i, valid[i]) for i in range(len(batch))]


def device_json(
    device: Device,
    *,
    online: bool | None = None,
    latest: dict[str, Any] | None = None,
    with_latest: bool = False,
    show_auth_code: bool = False,
    clock: DeviceClock | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "terminal": device.terminal,
        "vehicle_id": device.vehicle_id,
        "edition": device.edition,
        "registered": iso(device.registered_ms),
        "last_seen": iso(device.last_seen_ms),
    }
    if online is not None:
        out["online"] = online
    if show_auth_code:
        out["auth_code"] = device.auth_code
    if with_latest:
        out["latest"] = latest
    out["clock"] = clock_json(clock)
    return out


def clock_json(clock: DeviceClock | None) -> dict[str, Any] | None:
    if clock is None:
        return None
    return {
        "state": clock.state,
        "offset_s": clock.offset_ms / 1000,
        "since": iso(clock.since_ms),
    }
