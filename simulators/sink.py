"""A trivial acknowledging JT808 server: the peer for measuring the load generator alone.

It registers anyone, accepts any auth code and answers every terminal message with a success
0x8001, doing no other work, so the generator's own ceiling shows. To stay out of the way at
100k reports/s it works in batches: the protocol callbacks only queue what they read, and once
per event-loop pass every queued 0x0200 is answered by one vectorized step (headers read as
rows of one array, answers built as rows, one write per connection). Other messages, and
frames with an escape in the header, take the scalar path.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import numpy as np
import numpy.typing as npt

from ingest.jt808.errors import FrameError
from ingest.jt808.framing import FLAG_BYTE, checksum, escape, unescape

U8 = npt.NDArray[np.uint8]


class _SinkLink(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.serial = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        if not self.rest:
            first = buf.find(FLAG_BYTE)
            if first < 0:
                return
            buf = buf[first:]
        cut = buf.rfind(FLAG_BYTE)
        self.rest = buf[cut:]
        if cut:
            self.sink.queue(self, buf[:cut])


class Sink:
    """The server state: the queue of received chunks and the answer counter."""

    def __init__(self) -> None:
        self.links: list[_SinkLink] = []
        self.chunks: list[bytes] = []
        self.scheduled = False
        self.received = 0
        self.serial = 0

    def queue(self, link: _SinkLink, chunk: bytes) -> None:
        self.links.append(link)
        self.chunks.append(chunk)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        links, chunks = self.links, self.chunks
        self.links, self.chunks = [], []
        if not chunks:
            return
        answers = self.answer(chunks)
        for link, out in zip(links, answers, strict=True):
            if out and link.transport is not None:
                link.transport.write(out)

    def answer(self, chunks: list[bytes]) -> list[bytes]:
        """The answers to every frame in `chunks` (each starting at a flag), one per chunk."""
        blob = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
        chunk_start = np.cumsum(lengths) - lengths
        flags = np.flatnonzero(blob == 0x7E)
        begin = flags + 1
        end = np.r_[flags[1:], len(blob)]
        keep = end - begin >= 13
        begin, end = begin[keep], end[keep]
        self.received += len(begin)
        piece_chunk = np.searchsorted(chunk_start, begin, side="right") - 1
        escapes = np.r_[0, np.cumsum(blob == 0x7D)]
        head_end = np.minimum(begin + 17, end)
        clean_head = escapes[head_end] == escapes[begin]
        first = blob[begin]
        second = blob[begin + 1]
        report = clean_head & (first == 0x02) & (second == 0x00)
        v2019 = (blob[begin + 2] & 0x40) != 0
        extra: list[list[bytes]] = [[] for _ in chunks]
        for i in np.flatnonzero(~report).tolist():
            frame = self._answer_one(blob[begin[i] : end[i]].tobytes())
            if frame:
                extra[int(piece_chunk[i])].append(frame)
        parts: list[list[bytes]] = [[] for _ in chunks]
        for wide in (False, True):
            rows = np.flatnonzero(report & (v2019 == wide))
            if len(rows):
                self._answer_reports(blob, begin[rows], piece_chunk[rows], wide, parts)
        return [b"".join(p + e) for p, e in zip(parts, extra, strict=True)]

    def _answer_reports(
        self,
        blob: U8,
        begin: npt.NDArray[np.int64],
        chunk: npt.NDArray[np.int64],
        wide: bool,
        parts: list[list[bytes]],
    ) -> None:
        """0x8001 rows for the 0x0200 frames starting at `begin` (one edition)."""
        id_w = 11 if wide else 6  # 2019: version byte + 10-byte id
        head = 4 + id_w + 2
        m = len(begin)
        rows = np.zeros((m, head + 5 + 1), dtype=np.uint8)
        rows[:, 0], rows[:, 1] = 0x80, 0x01
        rows[:, 2] = 0x40 if wide else 0x00
        rows[:, 3] = 5
        rows[:, 4 : 4 + id_w] = blob[begin[:, None] + np.arange(4, 4 + id_w)]
        serial = (self.serial + np.arange(m)) & 0xFFFF
        self.serial = (self.serial + m) & 0xFFFF
        rows[:, head - 2] = serial >> 8
        rows[:, head - 1] = serial & 0xFF
        rows[:, head : head + 2] = blob[begin[:, None] + np.arange(head - 2, head)]
        rows[:, head + 2], rows[:, head + 3] = 0x02, 0x00
        rows[:, -1] = np.bitwise_xor.reduce(rows[:, :-1], axis=1)
        width = rows.shape[1] + 2
        framed = np.empty((m, width), dtype=np.uint8)
        framed[:, 0] = framed[:, -1] = 0x7E
        framed[:, 1:-1] = rows
        needs = ((rows == 0x7D) | (rows == 0x7E)).any(axis=1)
        data = framed.tobytes()
        bounds = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1], True])
        for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            target = parts[int(chunk[s])]
            if not needs[s:e].any():
                target.append(data[s * width : e * width])
                continue
            for r in range(s, e):
                if needs[r]:
                    target.append(b"\x7e" + escape(rows[r].tobytes()) + b"\x7e")
                else:
                    target.append(data[r * width : (r + 1) * width])

    def _answer_one(self, piece: bytes) -> bytes | None:
        """The scalar path: 0x8100 to a registration, 0x8001 to anything else."""
        try:
            content = unescape(piece)
        except FrameError:
            return None
        if len(content) < 13:
            return None
        v2019 = content[2] & 0x40
        head = 17 if v2019 else 12
        terminal = content[4:15] if v2019 else content[4:10]  # version byte + id for 2019
        serial = content[head - 2 : head]
        msg_id = content[0:2]
        if msg_id == b"\x01\x00":
            body = serial + b"\x00sink"
            answer_id = b"\x81\x00"
        else:
            body = serial + msg_id + b"\x00"
            answer_id = b"\x80\x01"
        props = (len(body) | (0x4000 if v2019 else 0)).to_bytes(2, "big")
        frame = answer_id + props + terminal + self.serial.to_bytes(2, "big") + body
        self.serial = (self.serial + 1) & 0xFFFF
        return b"\x7e" + escape(frame + bytes((checksum(frame),))) + b"\x7e"


async def serve_sink(host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(
        lambda: _SinkLink(sink), host, port, backlog=8192
    )
    if ready is not None:
        ready.set_result(int(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """`python -m simulators.sink [HOST:]PORT`: prints the port, serves until killed."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    host, _, port = (args[0] if args else "127.0.0.1:0").rpartition(":")

    async def run() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve_sink(host or "127.0.0.1", int(port), ready))
        print(f"sink listening on {host or '127.0.0.1'}:{await ready}", flush=True)
        await task

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
