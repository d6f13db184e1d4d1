"""The scenario files of contracts sections 3 and 4: writers, and strict readers for the scorer.

Readers raise `InputError` with file, line and field, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulators.fences import Fence, FenceFormatError, fence_from_feature
from simulators.timefmt import iso_local, iso_local_ms, iso_one, parse_time_ms
from simulators.truth import ALERT_TYPES, FleetMap, Incident, Stream

CSV_COLUMNS = ("device_id", "time", "lat", "lon", "speed_kmh", "course", "alarm", "status")


class InputError(ValueError):
    """A bad input file: the message names the file, line and field."""


def positions_csv(
    stream: Stream,
    course: np.ndarray[Any, Any],
    device_time_ms: np.ndarray[Any, Any] | None = None,
) -> str:
    """The contract's columns, rows in arrival order (each device in time order but for resends).

    With `device_time_ms` (a scenario with device clock faults), `time` holds what the devices
    sent and a `received` column the stream's receive times."""
    ids = np.array(stream.device_ids)[stream.device]
    times = iso_local(stream.time_ms if device_time_ms is None else device_time_ms)
    lat = np.char.mod("%.6f", stream.lat)
    lon = np.char.mod("%.6f", stream.lon)
    speed = np.char.mod("%.1f", stream.speed_kmh)
    rows = zip(
        ids.tolist(),
        times.tolist(),
        lat.tolist(),
        lon.tolist(),
        speed.tolist(),
        course.astype(np.int64).tolist(),
        stream.alarm.astype(np.int64).tolist(),
        stream.status.astype(np.int64).tolist(),
        strict=True,
    )
    if device_time_ms is None or stream.recv_ms is None:
        lines = [",".join(CSV_COLUMNS)]
        lines.extend(f"{d},{t},{a},{o},{s},{c},{al},{st}" for d, t, a, o, s, c, al, st in rows)
        return "\n".join(lines) + "\n"
    received = iso_local_ms(stream.recv_ms).tolist()
    lines = [",".join((*CSV_COLUMNS, "received"))]
    lines.extend(
        f"{d},{t},{a},{o},{s},{c},{al},{st},{r}"
        for (d, t, a, o, s, c, al, st), r in zip(rows, received, strict=True)
    )
    return "\n".join(lines) + "\n"


def fences_geojson(fences: tuple[Fence, ...] | list[Fence]) -> str:
    doc = {"type": "FeatureCollection", "features": [f.feature() for f in fences]}
    return json.dumps(doc, indent=1) + "\n"


def fleet_json(fleet: FleetMap) -> str:
    vehicles = [
        {"vehicle_id": vid, "devices": list(devs), "allowed_area": fleet.allowed_area.get(vid)}
        for vid, devs in fleet.vehicles.items()
    ]
    return json.dumps({"vehicles": vehicles}, indent=1) + "\n"


def incident_line(incident: Incident, cause: str) -> str:
    return json.dumps(
        {
            "type": incident.type,
            "device_id": incident.device_id,
            "vehicle_id": incident.vehicle_id,
            "fence_id": incident.fence_id,
            "time": iso_one(incident.time_ms),
            "cause": cause,
        }
    )


@dataclass(frozen=True, slots=True)
class Record:
    """One truth incident or alert as the scorer sees it."""

    type: str
    device_id: str | None
    vehicle_id: str | None
    fence_id: str | None
    time_ms: int
    line: int


def _opt_str(obj: dict[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: field {name}: expected a string or null")
    return value


def read_records(path: Path, *, strict_types: bool) -> list[Record]:
    """truth.jsonl or ALERTS.jsonl; unknown alert types are kept unless `strict_types`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    out: list[Record] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object")
        kind = obj.get("type")
        if not isinstance(kind, str) or (strict_types and kind not in ALERT_TYPES):
            raise InputError(f"{where}: field type: expected one of {', '.join(ALERT_TYPES)}")
        time_text = obj.get("time")
        if not isinstance(time_text, str):
            raise InputError(f"{where}: field time: expected an ISO 8601 string")
        try:
            time_ms = parse_time_ms(time_text)
        except ValueError as exc:
            raise InputError(f"{where}: field time: {exc}") from exc
        device = _opt_str(obj, "device_id", where)
        vehicle = _opt_str(obj, "vehicle_id", where)
        if device is None and vehicle is None:
            raise InputError(f"{where}: field device_id: needs device_id or vehicle_id")
        out.append(Record(kind, device, vehicle, _opt_str(obj, "fence_id", where), time_ms, number))
    return out


def read_fleet(path: Path) -> FleetMap:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    items = doc.get("vehicles") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{path}: field vehicles: expected a list")
    vehicles: dict[str, tuple[str, ...]] = {}
    areas: dict[str, str | None] = {}
    for k, item in enumerate(items):
        where = f"{path}: vehicles[{k}]"
        if not isinstance(item, dict) or not isinstance(item.get("vehicle_id"), str):
            raise InputError(f"{where}: field vehicle_id: expected a string")
        devices = item.get("devices")
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise InputError(f"{where}: field devices: expected a list of strings")
        area = item.get("allowed_area")
        if area is not None and not isinstance(area, str):
            raise InputError(f"{where}: field allowed_area: expected a string or null")
        vehicles[item["vehicle_id"]] = tuple(devices)
        areas[item["vehicle_id"]] = area
    return FleetMap(vehicles, areas)


def read_fences(path: Path) -> list[Fence]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InputError(f"{path}: field type: expected a FeatureCollection")
    try:
        return [
            fence_from_feature(f, f"{path}: features[{k}]")
            for k, f in enumerate(doc.get("features", []))
        ]
    except FenceFormatError as exc:
        raise InputError(str(exc)) from exc


def read_positions(path: Path) -> Stream:
    """positions.csv back into a stream (file order); for round-trip checks of the truth."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(io.StringIO(fh.read()))
    missing = [c for c in ("device_id", "time", "lat", "lon") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}:1: field {missing[0]}: missing column")
    ids: dict[str, int] = {}
    dev, t, lat, lon, speed, alarm, status = [], [], [], [], [], [], []
    for number, row in enumerate(reader, start=2):
        field = "device_id"
        try:
            dev.append(ids.setdefault(row["device_id"], len(ids)))
            field = "time"
            t.append(parse_time_ms(row["time"]))
            field = "lat"
            lat.append(float(row["lat"]))
            field = "lon"
            lon.append(float(row["lon"]))
            field = "speed_kmh"
            speed.append(float(row.get("speed_kmh") or 0))
            field = "alarm"
            alarm.append(int(row.get("alarm") or 0))
            field = "status"
            status.append(int(row.get("status") or 0))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}:{number}: field {field}: {exc}") from exc
    return Stream(
        tuple(ids),
        np.array(dev, dtype=np.int32),
        np.array(t, dtype=np.int64),
        np.array(lon, dtype=np.float64),
        np.array(lat, dtype=np.float64),
        np.array(speed, dtype=np.float64),
        np.array(alarm, dtype=np.uint32),
        np.array(status, dtype=np.uint32),
    )
