"""Stream framing: 0x7e flags, 0x7d escaping, the XOR check code, and a stream splitter.

Pure functions over bytes; `FrameSplitter` keeps the partial frame between reads.
"""

from __future__ import annotations

from ingest.jt808.errors import FrameError, Jt808ProtocolError
from ingest.jt808.ids import ErrorCode

FLAG = 0x7E
ESCAPE = 0x7D
FLAG_BYTE = b"\x7e"
ESCAPE_BYTE = b"\x7d"

# Largest unescaped frame: 17-byte 2019 header + 4 packet bytes + 1023 body + 1 check code.
MAX_UNESCAPED_FRAME = 17 + 4 + 1023 + 1


def checksum(data: bytes) -> int:
    """XOR of every byte, folded in halves over one integer (no per-byte Python loop)."""
    x = int.from_bytes(data, "little")
    shift = 8 << max(0, (len(data) - 1).bit_length() - 1)
    while shift >= 8:
        x ^= x >> shift
        shift >>= 1
    return x & 0xFF


def escape(data: bytes) -> bytes:
    """0x7d → 0x7d 0x01, then 0x7e → 0x7d 0x02 (order matters)."""
    if ESCAPE_BYTE in data:
        data = data.replace(b"\x7d", b"\x7d\x01")
    if FLAG_BYTE in data:
        data = data.replace(b"\x7e", b"\x7d\x02")
    return data


def unescape(data: bytes) -> bytes:
    """Inverse of `escape`; a 0x7d followed by anything but 0x01/0x02 is a bad escape."""
    if ESCAPE_BYTE not in data:
        return data
    n_escape = data.count(ESCAPE_BYTE)
    n_02 = data.count(b"\x7d\x02")
    n_01 = data.count(b"\x7d\x01")
    if n_escape != n_01 + n_02:
        at = _first_bad_escape(data)
        raise FrameError(ErrorCode.BAD_ESCAPE, f"0x7d at offset {at} not followed by 0x01 or 0x02")
    # 0x7d 0x02 first: a 0x7d produced by the second replace is never followed by 0x02.
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def _first_bad_escape(data: bytes) -> int:
    i = data.find(ESCAPE_BYTE)
    while i >= 0:
        if i + 1 >= len(data) or data[i + 1] not in (0x01, 0x02):
            return i
        i = data.find(ESCAPE_BYTE, i + 2)
    return -1


def seal(content: bytes) -> bytes:
    """Header+body → a complete frame on the wire: check code appended, escaped, flagged."""
    return FLAG_BYTE + escape(content + bytes((checksum(content),))) + FLAG_BYTE


def open_frame(frame: bytes) -> bytes:
    """A frame (with or without its flags) → header+body, check code verified and removed."""
    if frame[:1] == FLAG_BYTE:
        if len(frame) < 2 or frame[-1:] != FLAG_BYTE:
            raise FrameError(ErrorCode.TRUNCATED, "no closing 0x7e flag")
        frame = frame[1:-1]
    if FLAG_BYTE in frame:
        raise FrameError(ErrorCode.BAD_ESCAPE, f"unescaped 0x7e at offset {frame.find(FLAG_BYTE)}")
    content = unescape(frame)
    if len(content) < 13:
        raise FrameError(
            ErrorCode.TRUNCATED, f"{len(content)} bytes between flags, a header needs 12 + 1"
        )
    if checksum(content):  # the XOR over the body and its check code is 0 when they agree
        expected = checksum(content[:-1])
        raise FrameError(
            ErrorCode.BAD_CHECKSUM, f"check code 0x{content[-1]:02x}, computed 0x{expected:02x}"
        )
    return content[:-1]


def plain_location(payload: bytes) -> bool:
    """A single-frame 0x0200 payload the vectorized decoder takes as it is (`batch`): 0x02 0x00
    never needs escaping; bit 13 (packets) and 0x7d in the props byte are left to the full
    decode, so the batch decoder only sees frames it fully understands."""
    return (
        payload[:2] == b"\x02\x00"
        and len(payload) > 2
        and not payload[2] & 0x20
        and payload[2] != 0x7D
    )


def whole_plain_location(data: bytes) -> bool:
    """`data` is exactly one flagged frame whose payload is `plain_location`: the shape of
    almost every read from a tracker, which a shell may hand on without splitting it."""
    return (
        len(data) > 4
        and data[0] == 0x7E
        and data[-1] == 0x7E
        and data[1] == 0x02
        and data[2] == 0x00
        and not data[3] & 0x20
        and data[3] != 0x7D
        and data.count(b"\x7e") == 2
    )


class FrameSplitter:
    """Cuts a byte stream into escaped frame payloads (the bytes between two 0x7e flags).

    Bytes before the first flag are dropped; back-to-back flags delimit nothing. A payload longer
    than `max_frame_bytes` (complete or still open) is a stream fault: the payloads before it are
    returned and `error` is set, after which the splitter takes nothing more. Any split of the
    same stream into reads yields the same payloads and the same fault.
    """

    def __init__(self, max_frame_bytes: int = 2 * MAX_UNESCAPED_FRAME + 2) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.error: Jt808ProtocolError | None = None
        self.discarded_bytes = 0
        self._pending = b""
        self._in_frame = False  # a flag has been seen: _pending is inside a frame

    @property
    def idle(self) -> bool:
        """Between two frames: a read that is one whole frame leaves it in the same state."""
        return self._in_frame and not self._pending and self.error is None

    def feed(self, data: bytes) -> list[bytes]:
        """Returns the complete payloads found so far (without flags, still escaped)."""
        if self.error is not None or not data:
            return []
        buf = self._pending + data if self._pending else data
        pieces = buf.split(FLAG_BYTE)
        if len(pieces) == 1:
            if self._in_frame:
                self._pending = buf
                self._check(buf)
            else:
                self.discarded_bytes += len(buf)
            return []
        out: list[bytes] = []
        head = pieces[0]
        if not self._in_frame:
            self.discarded_bytes += len(head)
            head = b""
        self._in_frame = True
        for piece in (head, *pieces[1:-1]):
            if piece:
                if self._check(piece):
                    return out
                out.append(piece)
        self._pending = pieces[-1]
        self._check(self._pending)
        return out

    def _check(self, piece: bytes) -> bool:
        if len(piece) <= self.max_frame_bytes:
            return False
        self.error = Jt808ProtocolError(
            f"a frame runs past the limit of {self.max_frame_bytes} bytes without a closing flag"
        )
        self._pending = b""
        return True

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)
