"""Runs the FastAPI app on a thread of its own, with its own event loop.

The gateway's event loop acknowledges every tracker's reports; an API request that parses a
large fence body or encodes a 100,000-point track must not hold it. On its own loop, the API's
work only shares the interpreter, which hands the gateway's thread control back every
millisecond (`sys.setswitchinterval` in `lienwatch.runtime`). What the routes call on the
gateway's side goes through thread-safe bridges (`lienwatch.services` builds them).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self._server = _EmbeddedServer(config)
        self._where = f"{host}:{port}"
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> tuple[str, int]:
        """Starts serving on the API's thread; returns the bound address once it listens."""
        self._thread = threading.Thread(target=self._run, name="api", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                if isinstance(self._failure, Exception):
                    raise self._failure
                raise OSError(f"the API server could not listen on {self._where}")
            await asyncio.sleep(0.01)
        socket = self._server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        return str(host), int(port)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()  # the process's policy: uvloop when installed
        self.loop = loop
        try:
            loop.run_until_complete(self._server.serve())
        except BaseException as exc:  # uvicorn ends a failed bind with SystemExit
            self._failure = exc
        finally:
            loop.close()

    async def stop(self) -> None:
        """Lets running requests finish (uvicorn's graceful shutdown), then joins the thread."""
        self._server.should_exit = True
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 15)
