"""Fence collections as served, kept per fence-set version.

Every map tab polls the fences; converting each fence to GCJ-02 or BD-09 and serializing
thousands of polygons per request would cost the API a core. The answer for one (crs, kind)
is the same until the fence set changes, and every change bumps the store's version: so the
serialized body is kept under the version it was built from, and a new version drops the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from api.views import json_bytes
from geofence import Crs, FenceKind


class FenceViews:
    """Serialized FeatureCollections by (scope, crs, kind) for the newest fence-set version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: int | None = None
        self._bodies: dict[tuple[str, Crs, FenceKind | None], bytes] = {}

    def get(self, scope: str, version: int, crs: Crs, kind: FenceKind | None) -> bytes | None:
        """`scope`: the caller's unit path (each subtree sees its own fences)."""
        with self._lock:
            return self._bodies.get((scope, crs, kind)) if version == self._version else None

    def build(
        self,
        scope: str,
        version: int,
        crs: Crs,
        kind: FenceKind | None,
        features: Callable[[], list[dict[str, object]]],
    ) -> bytes:
        """The body for `version`, built from `features()` (read at or after that version) and
        kept unless a newer version was seen meanwhile."""
        body = json_bytes({"type": "FeatureCollection", "version": version, "features": features()})
        with self._lock:
            if self._version is None or version > self._version:
                self._version, self._bodies = version, {}
            if version == self._version:
                self._bodies[(scope, crs, kind)] = body
        return body
