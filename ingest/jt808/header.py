"""Message headers of each edition, with the fallback for terminals that mix the layouts."""

from __future__ import annotations

import struct
from typing import NamedTuple

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.fields import terminal_from_bytes, terminal_to_bytes
from ingest.jt808.ids import Edition, ErrorCode

MAX_BODY = 0x3FF
_SUBPACKAGED = 1 << 13
_VERSION_FLAG = 1 << 14
_ENCRYPTION_MASK = 0x1C00

_H2013 = struct.Struct(">HH6sH")
_H2019 = struct.Struct(">HHB10sH")
_PACKET = struct.Struct(">HH")


class Header(NamedTuple):
    """A decoded header. `edition` is V2013 for both 2011 and 2013 (they share the layout).

    A NamedTuple: immutable and cheap to build, since one is made for every frame.
    """

    msg_id: int
    edition: Edition
    terminal: str
    serial: int
    body_length: int
    protocol_version: int = 0
    encryption: int = 0
    packet_count: int | None = None
    packet_index: int | None = None
    terminal_raw: bytes = b""

    @property
    def subpackaged(self) -> bool:
        return self.packet_count is not None


def _layout_length(props: int, v2019: bool) -> int:
    return (17 if v2019 else 12) + (4 if props & _SUBPACKAGED else 0)


def parse_header(content: bytes) -> tuple[Header, bytes]:
    """Header + body (check code already removed) → (Header, body bytes).

    Bit 14 chooses the layout; when the body length fits only the other layout, a terminal that
    mixes them (a known quirk) is decoded with the layout that fits.
    """
    if len(content) < 12:
        raise FrameError(ErrorCode.TRUNCATED, f"{len(content)} bytes, a header needs 12")
    msg_id, props = struct.unpack_from(">HH", content)
    body_length = props & MAX_BODY
    flagged_2019 = bool(props & _VERSION_FLAG)
    v2019 = flagged_2019
    head_len = _layout_length(props, v2019)
    if len(content) - head_len != body_length:
        other_len = _layout_length(props, not v2019)
        if len(content) - other_len == body_length:
            v2019, head_len = not v2019, other_len
        elif len(content) < head_len:
            raise FrameError(
                ErrorCode.TRUNCATED,
                f"{len(content)} bytes, the {'2019' if v2019 else '2013'} header "
                f"{'with packet fields ' if props & _SUBPACKAGED else ''}needs {head_len}",
            )
        else:
            raise FrameError(
                ErrorCode.BAD_LENGTH,
                f"header says a {body_length}-byte body, {len(content) - head_len} bytes follow",
            )
    if v2019:
        _, _, version, raw_id, serial = _H2019.unpack_from(content)
        edition = Edition.V2019
    else:
        _, _, raw_id, serial = _H2013.unpack_from(content)
        version = 0
        edition = Edition.V2013
    terminal = raw_id.hex()
    if not terminal.isdigit():
        terminal = terminal_from_bytes(raw_id)
    if props & (_SUBPACKAGED | _ENCRYPTION_MASK):
        count = index = None
        if props & _SUBPACKAGED:
            count, index = _PACKET.unpack_from(content, head_len - 4)
        header = Header(
            msg_id,
            edition,
            terminal,
            serial,
            body_length,
            version,
            (props & _ENCRYPTION_MASK) >> 10,
            count,
            index,
            raw_id,
        )
    else:
        header = Header(
            msg_id, edition, terminal, serial, body_length, version, 0, None, None, raw_id
        )
    return header, content[head_len:]


def build_header(
    msg_id: int,
    body_length: int,
    *,
    terminal: str | bytes,
    serial: int,
    edition: Edition,
    protocol_version: int = 1,
    encryption: int = 0,
    packet: tuple[int, int] | None = None,
) -> bytes:
    """Header bytes for a body of `body_length`; `packet` is (count, index) when sub-packaged."""
    if not 0 <= body_length <= MAX_BODY:
        raise Jt808UsageError(f"body of {body_length} bytes does not fit one frame (max 1023)")
    if not 0 <= serial <= 0xFFFF:
        raise Jt808UsageError(f"serial {serial} out of range")
    props = body_length | ((encryption & 0x7) << 10)
    if packet is not None:
        props |= _SUBPACKAGED
    if edition is Edition.V2019:
        props |= _VERSION_FLAG
        out = _H2019.pack(
            msg_id, props, protocol_version & 0xFF, terminal_to_bytes(terminal, 10), serial
        )
    else:
        out = _H2013.pack(msg_id, props, terminal_to_bytes(terminal, 6), serial)
    if packet is not None:
        out += _PACKET.pack(*packet)
    return out
