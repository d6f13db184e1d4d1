"""JSON shapes of stored things. A position carries the fields of `lienwatch decode`'s location
body (contracts section 2), produced by the decoder's own JSON view so both always agree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.model import format_time
from api.geocode import Place
from api.geocode import place as place_of
from api.geocode import places as places_of
from ingest.jt808.errors import Jt808UsageError
from ingest.jt808.ids import Status
from ingest.jt808.jsonview import location_json
from ingest.jt808.location import LocationReport
from positions import Flag, PositionBatch
from store import Device, DeviceClock

_FLAG_NAMES = [(flag, (flag.name or "").lower()) for flag in Flag if flag is not Flag.NONE]


def json_bytes(document: Any) -> bytes:
    """A JSON body as the API's JSON responses encode it, for answers built off the event loop."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


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
    out["place"] = place_of(fields["lon"], fields["lat"]) if out["valid"] else None
    return out


_LOCAL_MS = 8 * 3_600_000  # the trackers' GMT+8, as `iso` and the decoder show times
_BCD_FIRST_MS = 946_656_000_000  # 2000-01-01T00:00:00+08:00: the first time a BCD[6] holds
_BCD_END_MS = 4_102_415_999_999 + 1  # after 2099-12-31T23:59:59.999+08:00


def _local_iso(time_ms: npt.NDArray[np.int64], unit: str) -> npt.NDArray[np.str_]:
    """ISO 8601 texts in GMT+8 with the offset, in whole seconds (`unit` "s") or with
    milliseconds where there are any (`unit` "ms", as `iso` shows them)."""
    local = time_ms + _LOCAL_MS
    if unit == "s":
        texts = np.datetime_as_string((local // 1000).astype("datetime64[s]"), unit="s")
    else:
        texts = np.datetime_as_string(local.astype("datetime64[ms]"), unit="ms")
        texts = np.where(local % 1000 == 0, texts.astype("U19"), texts)
    return np.strings.add(texts, "+08:00")


@dataclass(frozen=True, slots=True)
class TrackArrays:
    """A track's answer a column at a time: each row's values as `position_json` gives them,
    except the rows `fits` marks false (times a tracker could not send, before 2000 or after
    2099), which take `position_json` itself."""

    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    status: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]
    fits: npt.NDArray[np.bool_]
    place: list[Place]


def track_places(batch: PositionBatch) -> list[Place]:
    """The `place` of every row (None where the row is not valid), in one batch."""
    return places_of(batch.lon.astype(np.float64), batch.lat.astype(np.float64), batch.valid())


def track_arrays(batch: PositionBatch, place: list[Place] | None = None) -> TrackArrays:
    """The columns of `positions_json` that need computing (the others are the batch's own);
    `place`: the rows' places when already resolved (`track_places`)."""
    lat64, lon64 = batch.lat.astype(np.float64), batch.lon.astype(np.float64)
    south, west = lat64 < 0, lon64 < 0
    lat = np.rint(np.abs(lat64) * 1e6) / 1e6
    lon = np.rint(np.abs(lon64) * 1e6) / 1e6
    status = (
        (batch.status.astype(np.int64) & ~int(Status.SOUTH | Status.WEST))
        | np.where(south, int(Status.SOUTH), 0)
        | np.where(west, int(Status.WEST), 0)
    )
    time_ms, recv_ms = batch.time_ms, batch.recv_ms
    sendable = (time_ms >= _BCD_FIRST_MS) & (time_ms < _BCD_END_MS) & (recv_ms >= 0)
    sendable &= batch.device_time_ms >= 0
    valid = batch.valid()
    return TrackArrays(
        lat=np.where(south, -lat, lat),
        lon=np.where(west, -lon, lon),
        speed_kmh=np.rint(batch.speed_kmh.astype(np.float64) * 10) / 10,
        status=status,
        valid=valid,
        fits=sendable,
        place=places_of(lon64, lat64, valid) if place is None else place,
    )


def positions_json(batch: PositionBatch) -> list[dict[str, Any]]:
    """`position_json` of every row, computed a column at a time: a long track's answer costs
    one small dict per row, not a decoded report each. Rows whose times a tracker could not
    send (before 2000 or after 2099) take `position_json` itself. (`api.track_json` writes
    the same answer's JSON text without the dicts.)"""
    if not len(batch):
        return []
    c = track_arrays(batch)
    fix_time = _local_iso(np.where(c.fits, batch.time_ms, _BCD_FIRST_MS), "s")
    received = _local_iso(np.where(c.fits, batch.recv_ms, 0), "ms")
    device_time = _local_iso(np.where(c.fits, batch.device_time_ms, 0), "ms")
    names = {int(f): flag_names(int(f)) for f in np.unique(batch.flags).tolist()}
    columns = zip(
        c.lat.tolist(),
        c.lon.tolist(),
        batch.altitude_m.tolist(),
        c.speed_kmh.tolist(),
        batch.course.tolist(),
        fix_time.tolist(),
        batch.alarm.tolist(),
        c.status.tolist(),
        device_time.tolist(),
        received.tolist(),
        batch.flags.tolist(),
        c.valid.tolist(),
        c.fits.tolist(),
        c.place,
        strict=True,
    )
    out: list[dict[str, Any]] = []
    for row, (la, lo, alt, spd, crs, fix, alarm, st, dev, rcv, flags, ok, fits, where) in enumerate(
        columns
    ):
        if not fits:
            out.append(position_json(batch, row, ok))
            out[-1]["place"] = where
            continue
        out.append(
            {
                "lat": la,
                "lon": lo,
                "altitude_m": alt,
                "speed_kmh": spd,
                "course": crs,
                "time": fix,
                "alarm": alarm,
                "status": st,
                "device_time": dev,
                "received": rcv,
                "flags": list(names[flags]),
                "valid": ok,
                "place": where,
            }
        )
    return out


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
        "org": device.org,
        "vehicle_id": device.vehicle_id,
        "edition": device.edition,
        "registered": iso(device.registered_ms),
        "last_seen": iso(device.last_seen_ms),
    }
    if online is not None:
        out["online"] = online
    if show_auth_code:  # an admin: the code and the identity that obtains it again
        out["auth_code"] = device.auth_code
        out["identity"] = identity_json(device)
    if with_latest:
        out["latest"] = latest
    out["clock"] = clock_json(clock)
    return out


def identity_json(device: Device) -> dict[str, str | None] | None:
    """The recorded identity (contracts section 8); None when nothing is recorded yet."""
    fields = {
        "maker_id": device.maker_id,
        "model": device.model,
        "terminal_id": device.terminal_id,
        "imei": device.imei,
    }
    return None if all(v is None for v in fields.values()) else fields


def clock_json(clock: DeviceClock | None) -> dict[str, Any] | None:
    if clock is None:
        return None
    return {
        "state": clock.state,
        "offset_s": clock.offset_ms / 1000,
        "since": iso(clock.since_ms),
    }
