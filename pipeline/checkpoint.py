"""A detector partition's engine state as bytes, and back (docs/deploy.md "Detectors").

The engine's state is numpy arrays and plain Python objects spread over its rules; pickling
the `Engine` keeps every piece of it without a second description that could drift from the
code. The bytes are `LWEC`, a format version (2 bytes), then the pickle compressed with zlib.
A checkpoint of another format version, or one that no longer unpickles (a release changed the
engine's classes), is refused with `CheckpointError`: the caller starts that partition with a
fresh engine from the checkpoint's cursor rather than run on a state it cannot trust.

The bytes come from the project's own database, written by its own detectors: unpickling them
is as safe as the database itself (never decode checkpoints from anywhere else).
"""

from __future__ import annotations

import pickle
import zlib

from pipeline.engine import Engine

MAGIC = b"LWEC"
VERSION = 1
_HEADER = len(MAGIC) + 2


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this release can read."""


def encode_engine(engine: Engine) -> bytes:
    raw = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
    return MAGIC + VERSION.to_bytes(2, "big") + zlib.compress(raw, 1)


def decode_engine(data: bytes) -> Engine:
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise CheckpointError("not an engine checkpoint")
    version = int.from_bytes(data[len(MAGIC) : _HEADER], "big")
    if version != VERSION:
        raise CheckpointError(f"engine checkpoint format {version}, this release reads {VERSION}")
    try:
        engine = pickle.loads(zlib.decompress(data[_HEADER:]))
    except Exception as exc:  # any failure of an old pickle under new code
        raise CheckpointError(f"engine checkpoint unreadable: {exc}") from exc
    if not isinstance(engine, Engine):
        raise CheckpointError(f"engine checkpoint holds a {type(engine).__name__}")
    return engine
