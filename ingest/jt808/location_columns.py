"""`LocationColumns`: many decoded 0x0200 reports as numpy columns, one row per input frame
(what `batch.decode_location_frames` returns), with the few per-row questions asked of them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ingest.jt808.fields import binary_imei
from ingest.jt808.ids import ErrorCode

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

# kind column
LOCATION = 0  # a decoded 0x0200 row
OTHER = 1  # a sound frame that is not a plain 0x0200: decode it with decode_frame
REJECTED = 2  # a bad frame: see error

# error column: 0 = none, then the contract's codes in this order.
ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode.BAD_CHECKSUM,
    ErrorCode.BAD_ESCAPE,
    ErrorCode.TRUNCATED,
    ErrorCode.BAD_LENGTH,
    ErrorCode.UNKNOWN_MESSAGE,
    ErrorCode.BAD_BODY,
)


@dataclass(frozen=True, slots=True)
class LocationColumns:
    """One row per input frame. Fields of non-LOCATION rows are zero."""

    kind: U8
    error: U8  # index into ERROR_CODES + 1; 0 = none
    msg_id: npt.NDArray[np.uint16]
    serial: npt.NDArray[np.uint16]
    edition: npt.NDArray[np.uint16]  # 2013 or 2019
    terminal_hi: npt.NDArray[np.uint16]  # 2019 ids: the first 2 of 10 bytes
    terminal_lo: npt.NDArray[np.uint64]  # the last 8 (2019) or all 6 (2013) bytes
    alarm: npt.NDArray[np.uint32]
    status: npt.NDArray[np.uint32]
    lat_e6: npt.NDArray[np.uint32]
    lon_e6: npt.NDArray[np.uint32]
    altitude_m: npt.NDArray[np.uint16]
    speed_dkmh: npt.NDArray[np.uint16]
    course: npt.NDArray[np.uint16]
    time_ms: I64  # epoch ms UTC; valid only where time_valid
    time_valid: npt.NDArray[np.bool_]
    # Extra items, a side table: the item's row, id, and its value's place in `item_data`.
    item_row: npt.NDArray[np.int32]
    item_id: U8
    item_offset: I64
    item_length: U8
    item_data: U8
    raw_tail: dict[int, bytes] = field(default_factory=dict)  # vendor tails, by row

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def lat(self) -> npt.NDArray[np.float64]:
        value = self.lat_e6 / 1e6
        return np.where(self.status & 4, -value, value)

    @property
    def lon(self) -> npt.NDArray[np.float64]:
        value = self.lon_e6 / 1e6
        return np.where(self.status & 8, -value, value)

    @property
    def speed_kmh(self) -> npt.NDArray[np.float64]:
        return self.speed_dkmh / 10

    def error_code(self, row: int) -> ErrorCode | None:
        index = int(self.error[row])
        return ERROR_CODES[index - 1] if index else None

    def terminal(self, row: int) -> str:
        return terminal_text(
            int(self.edition[row]), int(self.terminal_hi[row]), int(self.terminal_lo[row])
        )

    def terminals(self) -> tuple[npt.NDArray[np.int32], list[str]]:
        """(per-row index into the list, the distinct terminal ids): one string per terminal."""
        wide = self.edition == 2019
        key = self.terminal_lo.astype(np.uint64)
        hi = self.terminal_hi.astype(np.uint64) | (wide.astype(np.uint64) << np.uint64(16))
        both = np.stack([hi, key], axis=1)
        unique, inverse = np.unique(both, axis=0, return_inverse=True)
        names = [
            terminal_text(2019 if int(h) >> 16 else 2013, int(h) & 0xFFFF, int(lo))
            for h, lo in unique
        ]
        return inverse.astype(np.int32).reshape(-1), names

    def items_of(self, row: int) -> tuple[tuple[int, bytes], ...]:
        rows = np.flatnonzero(self.item_row == row)
        data = self.item_data
        return tuple(
            (
                int(self.item_id[i]),
                data[
                    int(self.item_offset[i]) : int(self.item_offset[i]) + int(self.item_length[i])
                ].tobytes(),
            )
            for i in rows
        )

    def item_values(self, item_id: int, length: int) -> tuple[npt.NDArray[np.int32], I64]:
        """Rows carrying item `item_id` of `length` bytes and its big-endian unsigned values."""
        pick = (self.item_id == item_id) & (self.item_length == length)
        offsets = self.item_offset[pick]
        value = np.zeros(len(offsets), dtype=np.int64)
        for k in range(length):
            value = (value << 8) | self.item_data[offsets + k].astype(np.int64)
        return self.item_row[pick], value


def terminal_text(edition: int, hi: int, lo: int) -> str:
    if edition == 2019:
        digits = f"{hi:04x}{lo:016x}"
        raw = bytes.fromhex(digits)
    else:
        digits = f"{lo:012x}"
        raw = bytes.fromhex(digits)
    return digits if digits.isdigit() else binary_imei(raw)
