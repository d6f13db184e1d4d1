"""The location report body (0x0200), shared by 0x0201, 0x0704 and 0x0801.

Fields are kept raw (integers and bytes as sent) so encode(decode(x)) == x; properties give the
derived values (signed degrees, km/h, epoch ms). Extra items stay raw bytes by id.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.fields import bcd_time_iso, bcd_time_to_ms, ms_to_bcd_time
from ingest.jt808.ids import ErrorCode, Status

BLOCK = struct.Struct(">IIIIHHH6s")  # 28 bytes
BLOCK_SIZE = BLOCK.size

# id -> allowed lengths of the standard items: a chain that breaks after one of these is a
# corrupt body, while a tail that never looked like items is a vendor structure (kept raw).
STANDARD_ITEMS: dict[int, tuple[int, ...]] = {
    0x01: (4,),
    0x02: (2,),
    0x03: (2,),
    0x04: (2,),
    0x05: (30,),
    0x06: (2,),
    0x11: (1, 5),
    0x12: (6,),
    0x13: (7,),
    0x25: (4,),
    0x2A: (2,),
    0x2B: (4,),
    0x30: (1,),
    0x31: (1,),
}

Items = tuple[tuple[int, bytes], ...]


def parse_items(body: bytes, start: int) -> tuple[Items, bytes]:
    """Additional items from `start` to the end of `body` → (items, vendor tail).

    A tail that does not parse as items and shows no standard item is a vendor variant: it is
    returned whole as the tail and the location still decodes. A chain of standard items that
    runs past the body is corrupt: FrameError(bad_body).
    """
    items: list[tuple[int, bytes]] = []
    p = start
    n = len(body)
    while p < n:
        if p + 2 > n:
            return _broken(body, start, items, f"item 0x{body[p]:02x} at offset {p} has no length")
        item_id = body[p]
        length = body[p + 1]
        end = p + 2 + length
        if end > n:
            return _broken(
                body,
                start,
                items,
                f"item 0x{item_id:02x} at offset {p} declares {length} bytes, {n - p - 2} follow",
            )
        items.append((item_id, body[p + 2 : end]))
        p = end
    return tuple(items), b""


def _broken(
    body: bytes, start: int, items: list[tuple[int, bytes]], detail: str
) -> tuple[Items, bytes]:
    if any(len(value) in STANDARD_ITEMS.get(item_id, ()) for item_id, value in items):
        raise FrameError(ErrorCode.BAD_BODY, detail)
    return (), body[start:]


def encode_items(items: Items) -> bytes:
    out = bytearray()
    for item_id, value in items:
        if not 0 <= item_id <= 0xFF or len(value) > 0xFF:
            raise Jt808UsageError(f"item 0x{item_id:02x} of {len(value)} bytes does not fit")
        out += bytes((item_id, len(value)))
        out += value
    return bytes(out)


class LocationReport(NamedTuple):
    """0x0200 location report: the 28-byte basic block plus additional items.

    A NamedTuple: immutable and cheap to build, since one is made for every position.
    """

    alarm: int
    status: int
    lat_e6: int  # degrees x 10^6, unsigned: the sign is status bit 2
    lon_e6: int  # degrees x 10^6, unsigned: the sign is status bit 3
    altitude_m: int
    speed_dkmh: int  # 0.1 km/h
    course: int
    time_bcd: bytes  # YYMMDDhhmmss in GMT+8, as sent
    extras: Items = ()
    raw_tail: bytes = b""  # vendor bytes after the block that are not items

    @property
    def MSG_ID(self) -> int:  # noqa: N802  (the attribute every message has)
        return 0x0200

    @classmethod
    def at(
        cls,
        *,
        lon: float,
        lat: float,
        time_ms: int,
        speed_kmh: float = 0.0,
        course: int = 0,
        altitude_m: int = 0,
        alarm: int = 0,
        status: int = Status.POSITIONED,
        extras: Items = (),
    ) -> LocationReport:
        """Builds a report from signed degrees and epoch ms; sets the south/west bits."""
        status = int(status) & ~int(Status.SOUTH | Status.WEST)
        if lat < 0:
            status |= Status.SOUTH
        if lon < 0:
            status |= Status.WEST
        return cls(
            alarm=alarm,
            status=int(status),
            lat_e6=round(abs(lat) * 1e6),
            lon_e6=round(abs(lon) * 1e6),
            altitude_m=altitude_m,
            speed_dkmh=round(speed_kmh * 10),
            course=course,
            time_bcd=ms_to_bcd_time(time_ms),
            extras=extras,
        )

    @property
    def lat(self) -> float:
        value = self.lat_e6 / 1e6
        return -value if self.status & Status.SOUTH else value

    @property
    def lon(self) -> float:
        value = self.lon_e6 / 1e6
        return -value if self.status & Status.WEST else value

    @property
    def speed_kmh(self) -> float:
        return self.speed_dkmh / 10

    @property
    def time_ms(self) -> int | None:
        """Fix time, epoch ms UTC; None when the device's time field is not a valid time."""
        return bcd_time_to_ms(self.time_bcd)

    @property
    def time_iso(self) -> str | None:
        return bcd_time_iso(self.time_bcd)

    @property
    def positioned(self) -> bool:
        return bool(self.status & Status.POSITIONED)

    def item(self, item_id: int) -> bytes | None:
        for found, value in self.extras:
            if found == item_id:
                return value
        return None

    @classmethod
    def decode_from(cls, body: bytes, offset: int = 0) -> LocationReport:
        if len(body) - offset < BLOCK_SIZE:
            raise FrameError(
                ErrorCode.BAD_BODY,
                f"location block needs {BLOCK_SIZE} bytes, {len(body) - offset} present",
            )
        alarm, status, lat, lon, alt, speed, course, time_bcd = BLOCK.unpack_from(body, offset)
        if len(body) == offset + BLOCK_SIZE:
            return cls(alarm, status, lat, lon, alt, speed, course, time_bcd)
        extras, tail = parse_items(body, offset + BLOCK_SIZE)
        return cls(alarm, status, lat, lon, alt, speed, course, time_bcd, extras, tail)

    @classmethod
    def decode(cls, body: bytes, edition: object = None) -> LocationReport:
        """The decoder for 0x0200 (the layout is the same in every edition)."""
        return cls.decode_from(body)

    def encode_body(self) -> bytes:
        try:
            block = BLOCK.pack(
                self.alarm,
                self.status,
                self.lat_e6,
                self.lon_e6,
                self.altitude_m,
                self.speed_dkmh,
                self.course,
                self.time_bcd,
            )
        except struct.error as exc:
            raise Jt808UsageError(f"location field out of range: {exc}") from exc
        if len(self.time_bcd) != 6:
            raise Jt808UsageError("time_bcd must be 6 bytes")
        return block + encode_items(self.extras) + self.raw_tail


def typed_extra(item_id: int, value: bytes) -> float | int | str:
    """The contract's view of one item: mileage/fuel/recorder speed scaled, counts as ints."""
    n = len(value)
    if item_id in (0x01,) and n == 4:
        return int.from_bytes(value, "big") / 10
    if item_id in (0x02, 0x03) and n == 2:
        return int.from_bytes(value, "big") / 10
    if item_id in (0x30, 0x31) and n == 1:
        return value[0]
    return value.hex()
