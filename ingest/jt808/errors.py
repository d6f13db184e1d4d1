"""Errors of the protocol core: the peer's bad bytes versus our own misuse of the API."""

from __future__ import annotations

from ingest.jt808.ids import ErrorCode


class Jt808Error(Exception):
    """Base of every error the codec raises."""


class FrameError(Jt808Error):
    """One frame from the peer is unusable; the stream itself is still in sync."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail


class Jt808ProtocolError(Jt808Error):
    """The peer broke the stream itself (an oversized frame): the connection should close."""


class Jt808UsageError(Jt808Error):
    """Local misuse of the API (a value out of range, sending before the peer is known)."""
