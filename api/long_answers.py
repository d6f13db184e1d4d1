"""Long answers (a 100,000-point track) written by one thread of the process, in pieces.

The API shares its process with the gateway in the default `serve`: every millisecond the
API's Python code runs is one the gateway's acknowledgements may wait for the interpreter.
So the work of long answers is bounded rather than spread: reading the rows goes one request
at a time, and the pieces of every long answer in flight are written by one encoding thread,
one piece (a few milliseconds) at a time, so ten map tabs asking at once cost the process what
one costs, and each piece is sent as soon as it is written (a 33 MB answer never exists at
once). An answer's first piece is written before its status is sent, so an answer that cannot
be encoded still fails as a whole (500), not half-sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

from fastapi.responses import StreamingResponse


class LongAnswers:
    """Bounds the CPU of long answers: `reading` admits one read at a time; `stream` writes
    pieces on the one encoding thread."""

    def __init__(self) -> None:
        self.reading = asyncio.Semaphore(1)
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="api-encode")

    async def _next(self, pieces: Iterator[bytes]) -> bytes | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encoder, next, pieces, None)

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
