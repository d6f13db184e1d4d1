"""The contract's JSON view of frames (contracts section 2), for `lienwatch decode` and the API."""

from __future__ import annotations

import dataclasses
from typing import Any

from ingest.jt808.codec import Frame, decode_frame
from ingest.jt808.errors import FrameError
from ingest.jt808.header import Header
from ingest.jt808.location import LocationReport, typed_extra
from ingest.jt808.messages import (
    BatchLocationReport,
    Message,
    ParametersReply,
    RawMessage,
    SetParameters,
    VehicleControl,
)


def location_json(report: LocationReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "lat": report.lat,
        "lon": report.lon,
        "altitude_m": report.altitude_m,
        "speed_kmh": report.speed_kmh,
        "course": report.course,
        "time": report.time_iso,
        "alarm": report.alarm,
        "status": report.status,
    }
    if out["time"] is None:
        out["time_raw"] = report.time_bcd.hex()
    if report.extras:
        extras: dict[str, Any] = {}
        for item_id, value in report.extras:
            extras[f"0x{item_id:02x}"] = typed_extra(item_id, value)
        out["extras"] = extras
    if report.raw_tail:
        out["raw"] = report.raw_tail.hex()
    return out


def body_json(message: Message) -> dict[str, Any]:
    """Snake_case fields of a message body; bytes as lowercase hex."""
    if isinstance(message, LocationReport):
        return location_json(message)
    if isinstance(message, RawMessage):
        return {"raw": message.body.hex()}
    if isinstance(message, BatchLocationReport):
        return {
            "kind": message.kind,
            "backfill": message.backfill,
            "items": [location_json(item) for item in message.items],
        }
    if isinstance(message, VehicleControl):  # control types as the API takes them
        controls = [{"type": t, "param": v} for t, v in message.controls]
        return {"flags": message.flags, "controls": controls, "edition": message.edition.value}
    if isinstance(message, SetParameters | ParametersReply):
        out: dict[str, Any] = {}
        if isinstance(message, ParametersReply):
            out["answer_serial"] = message.answer_serial
        out["params"] = {f"0x{pid:04x}": value for pid, value in message.values().items()}
        return out
    out = {}
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        if isinstance(value, LocationReport):
            out[field.name] = location_json(value)
        elif isinstance(value, bytes):
            out[field.name] = value.hex()
        elif isinstance(value, tuple):
            out[field.name] = list(value)
        elif hasattr(value, "value") and not isinstance(value, int | str):
            out[field.name] = value.value
        else:
            out[field.name] = int(value) if isinstance(value, int) else value
    return out


def header_json(header: Header) -> dict[str, Any]:
    out: dict[str, Any] = {
        "msg_id": f"0x{header.msg_id:04x}",
        "terminal": header.terminal,
        "serial": header.serial,
        "edition": header.edition.value,
    }
    if header.edition.value == 2019:
        out["protocol_version"] = header.protocol_version
    if header.packet_count is not None:
        out["packet"] = {"count": header.packet_count, "index": header.packet_index}
    if header.encryption:
        out["encryption"] = header.encryption
    return out


def frame_json(frame: Frame) -> dict[str, Any]:
    out = header_json(frame.header)
    out["body"] = body_json(frame.body)
    if frame.error is not None:
        out = {"error": frame.error.value, "detail": _unknown_detail(frame.header), **out}
    return out


def _unknown_detail(header: Header) -> str:
    return f"message id 0x{header.msg_id:04x} has no decoder; body kept raw"


def decode_hex_line(line: str) -> dict[str, Any]:
    """One input line of `lienwatch decode` → its JSON object (never raises on bad input)."""
    text = "".join(line.split())
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return {
            "error": "bad_length",
            "detail": "not hexadecimal (or an odd digit count)",
            "hex": text,
        }
    try:
        frame = decode_frame(data)
    except FrameError as exc:
        return {"error": exc.code.value, "detail": exc.detail, "hex": data.hex()}
    out = frame_json(frame)
    if "error" in out:
        out["hex"] = data.hex()
    return out


__all__ = ["body_json", "decode_hex_line", "frame_json", "location_json"]
