"""A minimal terminal for gateway tests: asyncio streams around the codec's TERMINAL role."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ingest.jt808 import (
    Edition,
    Jt808Connection,
    LocationReport,
    MessageReceived,
    Role,
)
from ingest.jt808.messages import (
    Authenticate,
    Message,
    PlatformGeneralResponse,
    Register,
    RegisterResponse,
)


class TestDevice:
    """Registers, authenticates and reports; `acked` holds the serials the platform answered."""

    __test__ = False  # not a test class

    def __init__(
        self,
        terminal: str,
        edition: Edition = Edition.V2013,
        *,
        identity: tuple[str, str, str] = ("LW", "T1", "ID1"),  # maker id, model, terminal id
        imei: str = "860000000000001",
    ) -> None:
        self.conn = Jt808Connection(Role.TERMINAL, terminal=terminal, edition=edition)
        self.terminal = terminal
        self.edition = edition
        self.identity = identity
        self.imei = imei
        self.register_result: int | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.received: list[Message] = []
        self.acked: dict[int, int] = {}  # serial -> result
        self.auth_code = ""

    async def connect(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    async def send(self, message: Message) -> int:
        assert self.writer is not None
        serial = self.conn.send(message)
        self.writer.write(self.conn.data_to_send())
        await self.writer.drain()
        return serial

    async def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def pump(self, until: float = 2.0) -> None:
        """Reads whatever arrives within `until` seconds of silence."""
        assert self.reader is not None
        while True:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), until)
            except TimeoutError:
                return
            if not data:
                return
            self.conn.receive_data(data, time.monotonic())
            for event in self.conn.events():
                if isinstance(event, MessageReceived):
                    self.received.append(event.message)
                    if isinstance(event.message, PlatformGeneralResponse):
                        self.acked[event.message.answer_serial] = event.message.result
                    if isinstance(event.message, RegisterResponse):
                        self.auth_code = event.message.auth_code
                        self.register_result = event.message.result
            until = min(until, 0.3)

    async def wait_acks(self, serials: list[int], timeout_s: float = 10.0) -> None:
        assert self.reader is not None
        deadline = time.monotonic() + timeout_s
        while not all(s in self.acked for s in serials):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [s for s in serials if s not in self.acked]
                raise AssertionError(f"no answer to serials {missing[:10]}")
            await self.pump(min(left, 0.5))

    async def login(self) -> bool:
        maker, model, terminal_id = self.identity
        register = Register(31, 115, maker, model, terminal_id, 1, "沪A12345", self.edition)
        self.register_result = None
        await self.send(register)
        deadline = time.monotonic() + 10.0
        while self.register_result is None and time.monotonic() < deadline:
            await self.pump(1.0)
            if self.reader is not None and self.reader.at_eof():
                break
        if not self.auth_code:
            return False
        return await self.authenticate(self.auth_code)

    async def authenticate(self, code: str) -> bool:
        serial = await self.send(Authenticate(code, self.imei, "1.0", self.edition))
        await self.wait_acks([serial])
        return self.acked[serial] == 0

    @property
    def address(self) -> str:
        """This end's `host:port`, as the platform sees it."""
        assert self.writer is not None
        host, port = self.writer.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    async def report(self, lon: float, lat: float, time_ms: int, **kw: object) -> int:
        return await self.send(LocationReport.at(lon=lon, lat=lat, time_ms=time_ms, **kw))  # type: ignore[arg-type]
