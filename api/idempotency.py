"""`Idempotency-Key` on state-changing requests, and the request body bound.

Both are ASGI middleware, so they act on raw bytes before any route parses a body:

- `BodyLimit`: a body above the bound is refused with 413 `too_large` before it is read whole
  (a declared `Content-Length` at once, a streamed body as soon as it passes the bound), so an
  unauthenticated peer cannot make the server buffer or parse megabytes.
- `Idempotency`: a POST under `/api/v1/` with an `Idempotency-Key` header is run once per
  (caller, key). The first request reserves the key in the store, runs, and its answer is kept
  (any status below 500); a retry with the same key and the same request (method, path, query
  and body) gets that answer again, marked `Idempotent-Replayed: true`, and changes nothing.
  The same key with another request is a 409 `idempotency_key_reused`; a retry while the first
  still runs is a 409 `idempotency_in_progress`. A 5xx answer or a crash releases the key, so a
  retry runs again; so does one whose first request's process died (`STALE_MS`). The caller
  is the digest of its `Authorization` header: keys never collide across API keys. Keys are
  kept for `KEEP_MS` (24 hours).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.stores import StoreAccess
from store import StoreError, StoreUnavailableError

KEEP_MS = 24 * 3600 * 1000
# A reservation without an answer this old belongs to a request whose process died.
STALE_MS = 5 * 60 * 1000
HEADER = "idempotency-key"
# 1 to 255 visible ASCII characters: a UUID, a ULID or any client's own token.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
_EXPIRE_EVERY = 1000  # requests between two sweeps of expired keys

log = logging.getLogger("lienwatch.api")


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class BodyLimit:
    """Refuses request bodies above `max_bytes` (413) before a route reads them; `limits` gives
    other bounds to paths starting with a prefix (a fence import may be larger)."""

    def __init__(self, app: ASGIApp, max_bytes: int, limits: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.limits = limits or {}

    def _bound(self, path: str) -> int:
        for prefix, bound in self.limits.items():
            if path.startswith(prefix):
                return bound
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bound = self._bound(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > bound:
            await _answer(send, 413, "too_large", f"body: more than {bound} bytes")
            return
        # Read here, never more than the bound, then hand the route the bytes: a route's own
        # parser would turn an error raised mid-read into a 400.
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was whole
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > bound:
                await _answer(send, 413, "too_large", f"body: more than {bound} bytes")
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replaying(b"".join(parts), receive), send)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` whole once, then what the client sends next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Idempotency:
    """See the module docstring; `stores` runs the store calls, `clock_ms` gives the time."""

    def __init__(self, app: ASGIApp, stores: StoreAccess, clock_ms: Callable[[], int]):
        self.app = app
        self.stores = stores
        self.clock_ms = clock_ms
        self._requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key_bytes = _header(scope, HEADER.encode()) if scope["type"] == "http" else None
        credential = _header(scope, b"authorization") if key_bytes is not None else None
        if (
            key_bytes is None
            or credential is None  # no caller to keep an answer for: a 401 follows anyway
            or scope["method"] != "POST"
            or not scope["path"].startswith("/api/v1/")
        ):
            await self.app(scope, receive, send)
            return
        key = key_bytes.decode("latin-1")
        if not _KEY.match(key):
            await _answer(
                send, 400, "bad_request", "header.Idempotency-Key: 1 to 255 visible ASCII chars"
            )
            return
        body, more = await _read_body(receive)
        caller = hashlib.sha256(credential).hexdigest()
        fingerprint = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        now = self.clock_ms()
        try:
            kept = await self.stores.run(lambda s: s.reserve_request(caller, key, fingerprint, now))
            if kept is not None and kept.status is None and now - kept.created_ms > STALE_MS:
                # The first request's process died before it kept an answer: run it again.
                await self.stores.run(lambda s: s.release_request(caller, key))
                kept = await self.stores.run(
                    lambda s: s.reserve_request(caller, key, fingerprint, now)
                )
            self._requests += 1
            if self._requests % _EXPIRE_EVERY == 0:
                await self.stores.run(lambda s: s.expire_requests(now - KEEP_MS))
        except StoreError as exc:
            code = "store_unavailable" if isinstance(exc, StoreUnavailableError) else "schema"
            await _answer(send, 503, code, str(exc))
            return
        if kept is not None:
            await self._replay(send, kept.fingerprint == fingerprint, kept)
            return
        await self._first(scope, body, more, send, caller, key)

    async def _replay(self, send: Send, same: bool, kept: Any) -> None:
        if not same:
            await _answer(
                send,
                409,
                "idempotency_key_reused",
                "header.Idempotency-Key: already used for another request",
            )
        elif kept.status is None:
            await _answer(
                send,
                409,
                "idempotency_in_progress",
                "header.Idempotency-Key: the first request with this key is still running",
            )
        else:
            body = kept.body or b""
            await send(
                {
                    "type": "http.response.start",
                    "status": kept.status,
                    "headers": [
                        (b"content-type", (kept.content_type or "application/json").encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def _first(
        self, scope: Scope, body: bytes, more: Receive, send: Send, caller: str, key: str
    ) -> None:
        status = 500
        content_type = "application/json"
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = bytes(value).decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, _replaying(body, more), capture)
        finally:
            answer = b"".join(chunks)
            try:
                if status < 500:
                    await self.stores.run(
                        lambda s: s.keep_response(caller, key, status, content_type, answer)
                    )
                else:
                    await self.stores.run(lambda s: s.release_request(caller, key))
            except StoreError as exc:  # the key stays reserved until STALE_MS, then reruns
                log.warning("idempotency key %r: answer not kept: %s", key, exc)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body (already bounded by `BodyLimit`), and `receive` for what follows
    it (a disconnect)."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts), receive
