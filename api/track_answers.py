"""Track answers kept by content, so a track many map tabs ask for is written once.

Every request still reads its rows through the caller's scope (a late fix, a deleted day and
the caller's rights all show there); what is kept is the written answer, under the request
(the caller's unit path, terminal, range and thinning) together with a digest of the rows
read. A request whose rows have the same digest is answered from the pieces kept, sent at the
pace they were first written (api.long_answers); any other rows are written afresh and replace
the entry. The digest is also the answer's ETag: a client that sends it back in
`If-None-Match` is answered 304 without a body.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable

from api.long_answers import Piece
from positions import COLUMNS, PositionBatch

MAX_BYTES = 256 * 1024 * 1024  # about seven 100,000-point answers


def digest(batch: PositionBatch) -> str:
    """A digest of every column of every row (BLAKE2b, 128 bits), as an ETag's text."""
    h = hashlib.blake2b(digest_size=16)
    h.update(len(batch).to_bytes(8, "little"))
    for name in COLUMNS:
        if name != "device":  # a dense index of the read, not the row's content
            h.update(getattr(batch, name).tobytes())
    return h.hexdigest()


class TrackAnswers:
    """Written answers by request key, each with the digest of the rows it was written from;
    the least recently used go first beyond `max_bytes`."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[str, list[Piece], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, tag: str) -> list[Piece] | None:
        """The pieces kept for `key` when they were written from rows of digest `tag`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != tag:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, tag: str, pieces: list[Piece]) -> None:
        size = sum(len(p[0]) for p in pieces)
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (tag, pieces, size)
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, (_, _, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
