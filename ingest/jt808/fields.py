"""Field codecs shared by the messages: BCD terminal ids, BCD times, fixed-width and GBK text."""

from __future__ import annotations

from ingest.jt808.errors import Jt808UsageError

LOCAL_OFFSET_MS = 8 * 3600 * 1000  # device time is GMT+8
_DAYS_BEFORE_MONTH = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def terminal_from_bytes(raw: bytes) -> str:
    """The terminal id as digits; a non-BCD id (some devices send a binary IMEI) as its IMEI."""
    digits = raw.hex()
    if digits.isdigit():
        return digits
    return binary_imei(raw)


def binary_imei(raw: bytes) -> str:
    """A binary IMEI in the id bytes: WORD high part + DWORD low part, then the Luhn digit."""
    value = int.from_bytes(raw[-6:], "big")
    body = f"{value:014d}"[-14:]
    return body + str(luhn_digit(body))


def luhn_digit(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def terminal_to_bytes(terminal: str | bytes, width: int) -> bytes:
    """Digits → BCD of `width` bytes (left-padded with zeros); raw bytes pass through."""
    if isinstance(terminal, bytes):
        if len(terminal) != width:
            raise Jt808UsageError(f"raw terminal id has {len(terminal)} bytes, expected {width}")
        return terminal
    if not terminal.isdigit() or not terminal.isascii():
        raise Jt808UsageError(f"terminal id {terminal!r} is not digits")
    if len(terminal) > 2 * width:
        raise Jt808UsageError(f"terminal id {terminal!r} is longer than {2 * width} digits")
    return bytes.fromhex(terminal.rjust(2 * width, "0"))


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (no datetime objects: hot path)."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    y = year - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 - 719162
    return days + _DAYS_BEFORE_MONTH[month] + (1 if leap and month > 2 else 0) + day - 1


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def bcd_time_to_ms(raw: bytes) -> int | None:
    """BCD[6] YYMMDDhhmmss in GMT+8 → epoch ms UTC; None when it is not a valid time."""
    digits = raw.hex()
    if len(digits) != 12 or not digits.isdigit():
        return None
    year = 2000 + int(digits[0:2])
    month = int(digits[2:4])
    day = int(digits[4:6])
    hour = int(digits[6:8])
    minute = int(digits[8:10])
    second = int(digits[10:12])
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    local_s = ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    return local_s * 1000 - LOCAL_OFFSET_MS


def ms_to_bcd_time(time_ms: int) -> bytes:
    """Epoch ms UTC → BCD[6] in GMT+8 (whole seconds, years 2000-2099)."""
    local_s = (time_ms + LOCAL_OFFSET_MS) // 1000
    days, rem = divmod(local_s, 86400)
    year, month, day = civil_from_days(days)
    if not 2000 <= year <= 2099:
        raise Jt808UsageError(f"year {year} does not fit a BCD[6] time")
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    text = f"{year % 100:02d}{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}"
    return bytes.fromhex(text)


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of `days_from_civil` (Howard Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def bcd_time_iso(raw: bytes) -> str | None:
    """BCD[6] device time as ISO 8601 with its +08:00 offset; None when invalid."""
    if bcd_time_to_ms(raw) is None:
        return None
    d = raw.hex()
    return f"20{d[0:2]}-{d[2:4]}-{d[4:6]}T{d[6:8]}:{d[8:10]}:{d[10:12]}+08:00"


def decode_text(raw: bytes) -> str:
    """GBK text (ASCII is a subset); undecodable bytes become U+FFFD rather than failing."""
    return raw.decode("gbk", errors="replace")


def encode_text(text: str) -> bytes:
    try:
        return text.encode("gbk")
    except UnicodeEncodeError as exc:
        raise Jt808UsageError(f"text {text!r} is not representable in GBK") from exc


def decode_fixed(raw: bytes) -> str:
    """A fixed-width text field: padding (0x00, and the spaces some devices use) stripped."""
    return decode_text(raw.rstrip(b"\x00 "))


def encode_fixed(text: str, width: int, field: str) -> bytes:
    data = encode_text(text)
    if len(data) > width:
        raise Jt808UsageError(f"{field} {text!r} is longer than {width} bytes")
    return data.ljust(width, b"\x00")
