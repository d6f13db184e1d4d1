"""Fence collections are built once per (version, crs, kind) and dropped when the set changes."""

from __future__ import annotations

import json

from api.fence_views import FenceViews
from geofence import Crs, FenceKind


def test_a_body_is_built_once_per_version_and_a_new_version_drops_the_old_ones() -> None:
    views = FenceViews()
    builds: list[int] = []

    def features(n: int) -> list[dict[str, object]]:
        builds.append(n)
        return [{"id": n}]

    assert views.get("/1/", 1, Crs.GCJ02, None) is None
    body = views.build("/1/", 1, Crs.GCJ02, None, lambda: features(1))
    assert json.loads(body) == {"type": "FeatureCollection", "version": 1, "features": [{"id": 1}]}
    assert views.get("/1/", 1, Crs.GCJ02, None) == body
    assert views.get("/1/", 1, Crs.WGS84, None) is None  # another crs is another body
    assert views.get("/1/", 1, Crs.GCJ02, FenceKind.HOTSPOT) is None
    views.build("/1/", 2, Crs.WGS84, None, lambda: features(2))
    assert views.get("/1/", 1, Crs.GCJ02, None) is None  # the set changed
    assert views.get("/1/", 2, Crs.WGS84, None) is not None
    # A build that read an older version (a slow request) does not replace the newer entries.
    views.build("/1/", 1, Crs.GCJ02, None, lambda: features(1))
    assert views.get("/1/", 1, Crs.GCJ02, None) is None
    assert views.get("/1/", 2, Crs.WGS84, None) is not None
    assert builds == [1, 2, 1]
