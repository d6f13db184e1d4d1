"""Long answers (a 100,000-point track) written by one thread of the process, in pieces.

The API shares its process with the gateway in the default `serve`: every millisecond the
API's Python code runs is one the gateway's acknowledgements may wait for the interpreter.
So the work of long answers is bounded rather than spread: reading the rows goes one request
at a time, and the pieces of every long answer in flight are written by one encoding thread,
one piece (a few milliseconds) at a time, so ten map tabs asking at once cost the process what
one costs, and each piece is sent as soon as it is written (a 33 MB answer never exists at
once). An answer's first piece is written before its status is sent, so an answer that cannot
be encoded still fails as a whole (500), not half-sent.

The encoding thread also keeps long answers to a `share` of one core (a quarter beside a
gateway, `LIENWATCH_API_LONG_ANSWER_SHARE`): after each piece it sleeps in proportion to the
CPU time the piece took and the reads charged since (share 0.25: three times as long), so
however many clients ask, long answers take about that share of a core from the gateway, and
their bytes leave at the pace they are written (the clients' work of reading them follows).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from fastapi.responses import StreamingResponse


class LongAnswers:
    """Bounds the CPU of long answers: `reading` admits one read at a time; `stream` writes
    pieces on the one encoding thread, which keeps to `share` of a core (1: no pause)."""

    def __init__(
        self,
        share: float = 1.0,
        *,
        cpu_time: Callable[[], float] = time.thread_time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._cpu_time, self._sleep = cpu_time, sleep
        self.reading = asyncio.Semaphore(1)
        self._pause = 1 / share - 1
        self._owed = 0.0  # seconds of pause owed for reads (`charge`)
        self._lock = threading.Lock()
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="api-encode")

    def charge(self, cpu_s: float) -> None:
        """Counts CPU spent for a long answer elsewhere (its read) against the share."""
        with self._lock:
            self._owed += cpu_s * self._pause

    def _write(self, pieces: Iterator[bytes]) -> bytes | None:
        """The next piece, on the encoding thread, then the pause that keeps to the share."""
        began = self._cpu_time()
        piece = next(pieces, None)
        spent = self._cpu_time() - began
        with self._lock:
            pause, self._owed = self._owed + spent * self._pause, 0.0
        if pause > 0:
            self._sleep(pause)
        return piece

    async def _next(self, pieces: Iterator[bytes]) -> bytes | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encoder, self._write, pieces)

    async def stream(
        self, pieces: Iterator[bytes], media_type: str = "application/json"
    ) -> StreamingResponse:
        """A response sending `pieces` as the encoding thread writes them."""
        first = await self._next(pieces)

        async def body() -> AsyncIterator[bytes]:
            piece = first
            while piece is not None:
                yield piece
                piece = await self._next(pieces)

        return StreamingResponse(body(), media_type=media_type)
