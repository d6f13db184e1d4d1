"""A detector partition's engine state as bytes, and back (docs/deploy.md "Detectors side by
side").

The engine's state is numpy arrays and plain Python objects spread over its rules; pickling
the `Engine` keeps every piece of it without a second description that could drift from the
code. Fences are not copied into it: each is written as a reference to its id and resolved from
the fence set the caller has now (the detectors read the same stored fences), so a checkpoint
stays small however large the fences are. The bytes are `LWEC`, a format version (2 bytes),
then the pickle compressed with zlib.

A checkpoint of another format version, one that no longer unpickles (a release changed the
engine's classes), or one naming a fence that is gone, is refused with `CheckpointError`: the
caller starts that partition with a fresh engine from the checkpoint's cursor rather than run
on a state it cannot trust. The caller hands the restored engine its current fences
(`Engine.set_fences`), which brings state kept by fence id up to any change of their shapes.

The bytes come from the project's own database, written by its own detectors: unpickling them
is as safe as the database itself (never decode checkpoints from anywhere else).
"""

from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Mapping
from typing import Any

from geofence import Fence
from pipeline.engine import Engine

MAGIC = b"LWEC"
VERSION = 1
_HEADER = len(MAGIC) + 2


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this release can read."""


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> tuple[str, str] | None:
        return ("fence", obj.id) if isinstance(obj, Fence) else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, fences: Mapping[str, Fence]) -> None:
        super().__init__(io.BytesIO(data))
        self.fences = fences

    def persistent_load(self, pid: Any) -> Fence:
        kind, fence_id = pid
        fence = self.fences.get(fence_id) if kind == "fence" else None
        if fence is None:
            raise CheckpointError(f"engine checkpoint names fence {fence_id!r}, which is gone")
        return fence


def encode_engine(engine: Engine) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(engine)
    return MAGIC + VERSION.to_bytes(2, "big") + zlib.compress(out.getvalue(), 1)


def decode_engine(data: bytes, fences: Mapping[str, Fence] | None = None) -> Engine:
    """The engine of a checkpoint; `fences` (id -> fence) resolves the fences it names."""
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise CheckpointError("not an engine checkpoint")
    version = int.from_bytes(data[len(MAGIC) : _HEADER], "big")
    if version != VERSION:
        raise CheckpointError(f"engine checkpoint format {version}, this release reads {VERSION}")
    try:
        engine = _Unpickler(zlib.decompress(data[_HEADER:]), fences or {}).load()
    except CheckpointError:
        raise
    except Exception as exc:  # any failure of an old pickle under new code
        raise CheckpointError(f"engine checkpoint unreadable: {exc}") from exc
    if not isinstance(engine, Engine):
        raise CheckpointError(f"engine checkpoint holds a {type(engine).__name__}")
    return engine
