"""Long answers (a 100,000-point track) read one at a time and written by one thread, in
pieces, within a share of one core.

The API shares its process with the gateway in the default `serve`: every millisecond the
API's Python code runs is one the gateway's acknowledgements may wait for the interpreter. So
the work of long answers is bounded rather than spread: reading the rows goes one request at a
time, and the pieces of every long answer in flight are written by one encoding thread, one
piece (a few milliseconds) at a time, so ten map tabs asking at once cost the process what one
costs, and each piece is sent as soon as it is written (a 33 MB answer never exists at once).
An answer's first piece is written before its status is sent, so an answer that cannot be
written still fails as a whole (500), not half-sent.

Reads and pieces also keep to a `share` of one core together (a quarter beside a gateway,
`LIENWATCH_API_LONG_ANSWER_SHARE`): each one's CPU time (share 0.25: three times as much)
must pass before the next read or piece starts. However many clients ask, long answers take
about that share from the gateway, and their bytes leave at the pace they are written (the
clients' work of reading them follows).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi.responses import StreamingResponse

T = TypeVar("T")
# A piece of an answer: its bytes, and the CPU seconds it took when first written (None: now).
Piece = tuple[bytes, float | None]


class LongAnswers:
    """`read` admits one read at a time; `stream` writes pieces on the one encoding thread;
    both wait for the pause their share asks after the last read or piece (none at 1)."""

    def __init__(
        self,
        share: float = 1.0,
        *,
        cpu_time: Callable[[], float] = time.thread_time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._cpu_time, self._clock, self._sleep = cpu_time, clock, sleep
        self._pause = 1 / share - 1
        self._free_at = 0.0  # on `clock`: when the next read or piece may start
        self._lock = threading.Lock()
        self._reading = asyncio.Semaphore(1)
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="api-encode")

    def _wait_s(self) -> float:
        with self._lock:
            return max(0.0, self._free_at - self._clock())

    def charge(self, cpu_s: float) -> None:
        """Counts CPU spent on a long answer (its read, a piece) against the share."""
        if self._pause:
            with self._lock:
                self._free_at = max(self._free_at, self._clock()) + cpu_s * self._pause

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """`await call()` once no other read runs and the pause is over; `call` charges its
        own CPU (it runs on a store thread: `charge`)."""
        async with self._reading:
            while (wait := self._wait_s()) > 0:
                await asyncio.sleep(wait)
            return await call()

    def _write(self, pieces: Iterator[Piece]) -> Piece | None:
        """The next piece and its cost, on the encoding thread, once the pause is over."""
        while (wait := self._wait_s()) > 0:
            self._sleep(wait)
        began = self._cpu_time()
        piece = next(pieces, None)
        spent = self._cpu_time() - began
        if piece is not None and piece[1] is not None:
            spent = piece[1]  # written before: sent at the pace it was written then
        self.charge(spent)
        return None if piece is None else (piece[0], spent)

    async def _next(self, pieces: Iterator[Piece]) -> Piece | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encoder, self._write, pieces)

    async def stream(
        self,
        pieces: Iterator[Piece],
        *,
        headers: dict[str, str] | None = None,
        written: Callable[[list[Piece]], None] | None = None,
        media_type: str = "application/json",
    ) -> StreamingResponse:
        """A response sending `pieces` as the encoding thread writes them. A piece is its bytes
        and None, or bytes and the CPU seconds they took to write when they were first written
        (kept by `written`, told every piece with its cost once the last one is written)."""
        first = await self._next(pieces)
        kept: list[Piece] = []

        async def body() -> AsyncIterator[bytes]:
            piece = first
            while piece is not None:
                if written is not None:
                    kept.append(piece)
                yield piece[0]
                piece = await self._next(pieces)
            if written is not None:
                written(kept)

        return StreamingResponse(body(), media_type=media_type, headers=headers)


def fresh(pieces: Iterator[bytes]) -> Iterator[Piece]:
    """Pieces written now: their cost is measured as they are written."""
    return ((piece, None) for piece in pieces)
