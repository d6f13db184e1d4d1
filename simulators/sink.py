"""A trivial acknowledging JT808 server: the peer for measuring the load generator alone.

It registers anyone, accepts any auth code and answers every terminal message with a success
0x8001, doing no other work, so the generator's own ceiling shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import cast

from ingest.jt808.errors import FrameError
from ingest.jt808.framing import FLAG_BYTE, checksum, escape, unescape

_ANSWER = struct.Struct(">HHHB")  # our serial, answered serial, answered id, result


class _SinkLink(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.serial = 0
        self.prefix_2013 = b""
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pieces = buf.split(FLAG_BYTE)
        self.buffer = pieces[-1]
        out = []
        for piece in pieces[:-1]:
            if not piece:
                continue
            try:
                content = unescape(piece) if b"\x7d" in piece else piece
            except FrameError:
                continue
            if len(content) < 13:
                continue
            v2019 = content[2] & 0x40
            head = 17 if v2019 else 12
            terminal = content[4:15] if v2019 else content[4:10]  # version byte + id for 2019
            serial = content[head - 2 : head]
            msg_id = content[0:2]
            self.received += 1
            if msg_id == b"\x01\x00":
                body = serial + b"\x00sink"
                answer_id = b"\x81\x00"
            else:
                body = serial + msg_id + b"\x00"
                answer_id = b"\x80\x01"
            props = (len(body) | (0x4000 if v2019 else 0)).to_bytes(2, "big")
            frame = answer_id + props + terminal + self.serial.to_bytes(2, "big") + body
            self.serial = (self.serial + 1) & 0xFFFF
            out.append(b"\x7e" + escape(frame + bytes((checksum(frame),))) + b"\x7e")
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def serve_sink(host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    server = await asyncio.get_running_loop().create_server(_SinkLink, host, port, backlog=8192)
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
