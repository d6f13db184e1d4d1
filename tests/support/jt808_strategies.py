"""Hypothesis strategies for JT/T 808: terminal ids, every message body, whole byte streams.

Values are drawn so that encode → decode is the identity: text fields carry no trailing padding
(the decoder strips it by design), a 2011 register keeps its body under the 37 bytes that mark
2013, and edition-dependent bodies follow the frame's edition.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from typing import Any

from hypothesis import strategies as st

from ingest.jt808.codec import encode_frames
from ingest.jt808.ids import Edition
from ingest.jt808.location import LocationReport
from ingest.jt808.messages import (
    Authenticate,
    BatchLocationReport,
    Deregister,
    Heartbeat,
    LocationQuery,
    LocationQueryReply,
    Message,
    MultimediaEvent,
    ParametersReply,
    PassThrough,
    PlatformGeneralResponse,
    QueryParameters,
    RawMessage,
    Register,
    RegisterResponse,
    ResendRequest,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    TerminalGeneralResponse,
    TextMessage,
    VehicleControl,
    VehicleControlReply,
)

# Ids of the message classes with a strategy below; an unknown id is any id outside this set.
DECODED_IDS = frozenset(
    {
        0x0001, 0x0002, 0x0003, 0x0100, 0x0102, 0x0104, 0x0200, 0x0201, 0x0704, 0x0800,
        0x0900, 0x8001, 0x8003, 0x8100, 0x8103, 0x8104, 0x8105, 0x8201, 0x8202, 0x8300,
        0x0500, 0x8500,
    }
)  # fmt: skip

FRAME_EDITIONS = (Edition.V2013, Edition.V2019)
TERMINAL_DIGITS = {Edition.V2011: 12, Edition.V2013: 12, Edition.V2019: 20}

# 2000-01-01T00:00:00+08:00 and 2099-12-31T23:59:59+08:00 as epoch seconds (UTC).
FIRST_BCD_S = 946_656_000
LAST_BCD_S = 4_102_415_999

# Standard additional items and their lengths (jt808.md section 8), written out independently.
STANDARD_ITEM_LENGTHS: dict[int, tuple[int, ...]] = {
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
GMT8 = dt.timezone(dt.timedelta(hours=8))

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)

# ASCII plus a few GBK ideographs seen on plates and in device names; no NUL (padding byte).
_CHINESE = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼测试终端"
_ALPHABET = "".join(chr(c) for c in range(0x20, 0x7F)) + _CHINESE


def editions() -> st.SearchStrategy[Edition]:
    return st.sampled_from(FRAME_EDITIONS)


def terminals(edition: Edition) -> st.SearchStrategy[str]:
    """Full-width digit strings, often with leading zeros (kept by the contract)."""
    width = TERMINAL_DIGITS[edition]
    digits = st.text(alphabet="0123456789", min_size=width, max_size=width)
    return st.tuples(st.integers(0, width), digits).map(lambda z: ("0" * z[0] + z[1])[:width])


def text(max_bytes: int, *, padded_field: bool = False) -> st.SearchStrategy[str]:
    """GBK text of at most `max_bytes`; a fixed-width field also loses trailing spaces."""
    raw = st.text(alphabet=_ALPHABET, max_size=max_bytes).map(_fit(max_bytes))
    if padded_field:
        return raw.map(lambda s: s.rstrip(" "))
    return raw


def _fit(max_bytes: int) -> Any:
    def cut(s: str) -> str:
        while len(s.encode("gbk")) > max_bytes:
            s = s[:-1]
        return s

    return cut


# ---------------------------------------------------------------- location bodies


def bcd_of_epoch_s(epoch_s: int) -> bytes:
    """BCD[6] device time (GMT+8) of an epoch second, through datetime as an oracle."""
    local = dt.datetime.fromtimestamp(epoch_s, tz=GMT8)
    return bytes.fromhex(local.strftime("%y%m%d%H%M%S"))


def bcd_times() -> st.SearchStrategy[bytes]:
    """Mostly valid device times, sometimes arbitrary bytes (kept raw, decoded as no time)."""
    valid = st.integers(FIRST_BCD_S, LAST_BCD_S).map(bcd_of_epoch_s)
    return st.one_of(valid, valid, st.binary(min_size=6, max_size=6))


def extra_items(max_items: int = 6, max_len: int = 40) -> st.SearchStrategy[Any]:
    item = st.one_of(
        st.sampled_from(sorted(STANDARD_ITEM_LENGTHS)).flatmap(
            lambda i: st.tuples(
                st.just(i),
                st.sampled_from(STANDARD_ITEM_LENGTHS[i]).flatmap(
                    lambda n: st.binary(min_size=n, max_size=n)
                ),
            )
        ),
        st.tuples(u8, st.binary(max_size=max_len)),
    )
    return st.lists(item, max_size=max_items).map(tuple)


def vendor_tails() -> st.SearchStrategy[bytes]:
    """Bytes after the basic block that never form a whole item chain and show no standard item:
    a few vendor items, then an item that runs past the end (or a lone id byte)."""
    vendor_ids = st.integers(0x32, 0xFF)
    vendor_items = st.lists(
        st.tuples(vendor_ids, st.binary(max_size=12)).map(
            lambda t: bytes((t[0], len(t[1]))) + t[1]
        ),
        max_size=3,
    ).map(b"".join)
    lone_id = u8.map(lambda b: bytes((b,)))
    overrun = st.tuples(u8, st.integers(1, 0xFF), st.binary(max_size=40)).map(
        lambda t: bytes((t[0], t[1])) + t[2][: t[1] - 1]
    )
    return st.tuples(vendor_items, st.one_of(lone_id, overrun)).map(lambda t: t[0] + t[1])


def location_reports(*, tail: bool | None = None) -> st.SearchStrategy[LocationReport]:
    """Reports with additional items (tail=False), with a vendor tail (True), or either."""

    def report(
        extras: st.SearchStrategy[Any], raw_tail: st.SearchStrategy[bytes]
    ) -> st.SearchStrategy[LocationReport]:
        return st.builds(
            LocationReport,
            alarm=u32,
            status=u32,
            lat_e6=u32,
            lon_e6=u32,
            altitude_m=u16,
            speed_dkmh=u16,
            course=u16,
            time_bcd=bcd_times(),
            extras=extras,
            raw_tail=raw_tail,
        )

    with_items = report(extra_items(), st.just(b""))
    with_tail = report(st.just(()), vendor_tails())
    if tail is None:
        return st.one_of(with_items, with_tail)
    return with_tail if tail else with_items


# ---------------------------------------------------------------- message bodies


def registers(edition: Edition) -> st.SearchStrategy[Register]:
    """Registers in the layout of a frame edition: 2019 widths, or 2013 widths in 2013 frames."""
    widths = (11, 30, 30) if edition is Edition.V2019 else (5, 20, 7)
    return st.builds(
        Register,
        province_id=u16,
        city_id=u16,
        maker_id=text(widths[0], padded_field=True),
        model=text(widths[1], padded_field=True),
        terminal_id=text(widths[2], padded_field=True),
        plate_color=u8,
        plate=text(40),
        edition=st.just(Edition.V2019 if edition is Edition.V2019 else Edition.V2013),
    )


def registers_2011() -> st.SearchStrategy[Register]:
    """2011 widths (25 fixed bytes) with a plate short enough that the body stays under the
    37 bytes that mark a 2013 register (a 2011 body that long cannot be told apart)."""
    return st.builds(
        Register,
        province_id=u16,
        city_id=u16,
        maker_id=text(5, padded_field=True),
        model=text(8, padded_field=True),
        terminal_id=text(7, padded_field=True),
        plate_color=u8,
        plate=text(11),
        edition=st.just(Edition.V2011),
    )


def authentications(edition: Edition) -> st.SearchStrategy[Authenticate]:
    if edition is Edition.V2019:
        return st.builds(
            Authenticate,
            auth_code=text(60),
            imei=st.text(alphabet="0123456789", max_size=15),
            software_version=text(20, padded_field=True),
            edition=st.just(Edition.V2019),
        )
    return st.builds(
        Authenticate,
        auth_code=text(60),
        imei=st.just(""),
        software_version=st.just(""),
        edition=st.just(Edition.V2013),
    )


def params(max_count: int = 8, max_len: int = 40) -> st.SearchStrategy[Any]:
    return st.lists(st.tuples(u32, st.binary(max_size=max_len)), max_size=max_count).map(tuple)


def resend_requests(edition: Edition) -> st.SearchStrategy[ResendRequest]:
    wide = edition is Edition.V2019
    return st.builds(
        ResendRequest,
        original_serial=u16,
        packet_indexes=st.lists(u16, max_size=300 if wide else 255).map(tuple),
        edition=st.just(Edition.V2019 if wide else Edition.V2013),
    )


def temporary_tracking() -> st.SearchStrategy[TemporaryTracking]:
    stop = st.just(TemporaryTracking(0, 0))
    return st.one_of(stop, st.builds(TemporaryTracking, st.integers(1, 0xFFFF), u32))


def vehicle_controls(edition: Edition) -> st.SearchStrategy[VehicleControl]:
    """2013: the flag byte; 2019: one or more (control type, parameter BYTE) pairs, any type
    (the door, reserved and maker ids alike)."""
    if edition is not Edition.V2019:
        return st.builds(VehicleControl, u8)
    pairs = st.lists(st.tuples(u16, u8), min_size=1, max_size=40).map(tuple)
    return st.builds(VehicleControl, st.just(0), pairs, st.just(Edition.V2019))


def raw_messages() -> st.SearchStrategy[RawMessage]:
    unknown = u16.filter(lambda i: i not in DECODED_IDS)
    return st.builds(RawMessage, unknown, st.binary(max_size=60))


def message_strategies(edition: Edition) -> dict[str, st.SearchStrategy[Any]]:
    """One strategy per message kind (every class of messages.py, both location variants,
    2011 registers in 2013 frames, unknown ids), for bodies that fit one frame."""
    kinds: dict[str, st.SearchStrategy[Any]] = {
        "terminal_general_response": st.builds(TerminalGeneralResponse, u16, u16, u8),
        "platform_general_response": st.builds(PlatformGeneralResponse, u16, u16, u8),
        "heartbeat": st.builds(Heartbeat, st.binary(max_size=8)),
        "deregister": st.just(Deregister()),
        "register": registers(edition),
        "register_response": st.one_of(
            st.builds(RegisterResponse, u16, st.just(0), text(40)),
            st.builds(RegisterResponse, u16, st.integers(1, 0xFF), st.just("")),
        ),
        "authenticate": authentications(edition),
        "set_parameters": st.builds(SetParameters, params()),
        "query_parameters": st.just(QueryParameters()),
        "parameters_reply": st.builds(ParametersReply, u16, params()),
        "location_report_with_extras": location_reports(tail=False),
        "location_report_with_vendor_tail": location_reports(tail=True),
        "location_query_reply": st.builds(LocationQueryReply, u16, location_reports()),
        "batch_location_report": st.builds(
            BatchLocationReport, u8, st.lists(location_reports(), max_size=4).map(tuple)
        ),
        "location_query": st.just(LocationQuery()),
        "temporary_tracking": temporary_tracking(),
        "terminal_control": st.builds(TerminalControl, u8, text(60)),
        "vehicle_control": vehicle_controls(edition),
        "vehicle_control_reply": st.builds(VehicleControlReply, u16, location_reports()),
        "text_message": st.builds(TextMessage, u8, text(200)),
        "resend_request": resend_requests(edition),
        "pass_through": st.builds(PassThrough, u8, st.binary(max_size=60)),
        "multimedia_event": st.builds(MultimediaEvent, u32, u8, u8, u8, u8),
        "unknown_message": raw_messages(),
    }
    if edition is not Edition.V2019:
        kinds["register_2011"] = registers_2011()
    return kinds


MESSAGE_KINDS = tuple(message_strategies(Edition.V2013))


def messages(edition: Edition) -> st.SearchStrategy[Message]:
    """Any message body that fits one frame, in the layout of `edition`."""
    return st.one_of(*message_strategies(edition).values())


def large_messages(edition: Edition) -> st.SearchStrategy[Message]:
    """Bodies over 1023 bytes, which travel sub-packaged."""
    return st.one_of(
        st.builds(PassThrough, u8, st.binary(min_size=1024, max_size=3500)),
        st.builds(Heartbeat, st.binary(min_size=1024, max_size=2100)),
        st.builds(
            BatchLocationReport,
            u8,
            st.lists(location_reports(tail=False), min_size=40, max_size=60).map(tuple),
        ),
        st.builds(
            ParametersReply,
            u16,
            st.lists(
                st.tuples(u32, st.binary(min_size=200, max_size=255)), min_size=5, max_size=10
            ).map(tuple),
        ),
        st.builds(
            LocationReport,
            u32,
            u32,
            u32,
            u32,
            u16,
            u16,
            u16,
            bcd_times(),
            st.lists(
                st.tuples(u8, st.binary(min_size=250, max_size=255)), min_size=5, max_size=8
            ).map(tuple),
            st.just(b""),
        ),
    )


# ---------------------------------------------------------------- raw frames and streams


def xor_of(data: bytes) -> int:
    return functools.reduce(operator.xor, data, 0)


def escape_by_hand(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b == 0x7E:
            out += b"\x7d\x02"
        elif b == 0x7D:
            out += b"\x7d\x01"
        else:
            out.append(b)
    return bytes(out)


def seal_by_hand(content: bytes) -> bytes:
    """Check code, escapes and flags around header+body, written without the codec."""
    return b"\x7e" + escape_by_hand(content + bytes((xor_of(content),))) + b"\x7e"


def header_2013(msg_id: int, body_len: int, terminal: str, serial: int, props: int = 0) -> bytes:
    return (
        msg_id.to_bytes(2, "big")
        + (body_len | props).to_bytes(2, "big")
        + bytes.fromhex(terminal)
        + serial.to_bytes(2, "big")
    )


def header_2019(
    msg_id: int, body_len: int, terminal: str, serial: int, props: int = 1 << 14, version: int = 1
) -> bytes:
    return (
        msg_id.to_bytes(2, "big")
        + (body_len | props).to_bytes(2, "big")
        + bytes((version,))
        + bytes.fromhex(terminal)
        + serial.to_bytes(2, "big")
    )


# ---------------------------------------------------------------- a fixed corpus for fuzzing


def sample_messages(edition: Edition) -> list[Message]:
    """One concrete message of every kind, cheap to reuse where drawing bodies would be slow."""
    where = LocationReport(
        alarm=0x100,
        status=0x0C0003,
        lat_e6=31_234_567,
        lon_e6=121_512_345,
        altitude_m=12,
        speed_dkmh=605,
        course=90,
        time_bcd=bytes.fromhex("240101120000"),
        extras=((0x01, b"\x00\x00\x30\x39"), (0x30, b"\x19"), (0x31, b"\x09"), (0xE1, b"\x7e\x7d")),
    )
    vendor = where._replace(extras=(), raw_tail=bytes(range(18)))
    v2019 = edition is Edition.V2019
    layout = Edition.V2019 if v2019 else Edition.V2013
    out: list[Message] = [
        TerminalGeneralResponse(7, 0x8103, 0),
        PlatformGeneralResponse(0x7E7D, 0x0200, 4),
        Heartbeat(),
        Deregister(),
        Register(44, 300, "M1", "TK-100", "ID7E7D", 1, "粤B12345", layout),
        RegisterResponse(3, 0, "auth-code"),
        RegisterResponse(3, 4, ""),
        Authenticate(
            "auth-code", "86012345678901" if v2019 else "", "1.0" if v2019 else "", layout
        ),
        SetParameters(((0x0029, b"\x00\x00\x00\x1e"), (0x0013, b"10.0.0.1:6808"))),
        QueryParameters(),
        ParametersReply(9, ((0x0001, b"\x00\x00\x00\x3c"),)),
        where,
        vendor,
        LocationQueryReply(11, where),
        BatchLocationReport(1, (where, vendor)),
        LocationQuery(),
        TemporaryTracking(30, 3600),
        TemporaryTracking(0, 0),
        TerminalControl(4, ""),
        VehicleControl(0, ((0x0001, 1), (0xF001, 1)), layout) if v2019 else VehicleControl(1),
        VehicleControlReply(12, where),
        TextMessage(0x08, "#0;1"),
        ResendRequest(5, (2, 3), layout),
        PassThrough(0x41, b"\x7e\x7d\x00"),
        MultimediaEvent(123, 0, 0, 7, 1),
        RawMessage(0x0F01, b"\x01\x02\x7e"),
    ]
    if not v2019:
        out.append(Register(44, 300, "M1", "TK-100", "ID7", 1, "B1", Edition.V2011))
    return out


def corpus_frames() -> list[bytes]:
    """Every sample message as a frame in both editions, plus the packets of a large body."""
    frames: list[bytes] = []
    for edition, terminal in ((Edition.V2013, "013912345678"), (Edition.V2019, "0" * 8 + "1" * 12)):
        for serial, message in enumerate(sample_messages(edition)):
            frames += encode_frames(message, terminal=terminal, serial=serial, edition=edition)
        big = PassThrough(0x41, bytes(range(256)) * 5)
        frames += encode_frames(big, terminal=terminal, serial=100, edition=edition)
    return frames
