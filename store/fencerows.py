"""Stored fences back to GeoJSON: what `geofence.load_fences` reads to build a fence set.

A running engine polls `Store.fences_version()` and, when it changed, reloads with
`load_fences(feature_collection(store.list_fences()))`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from store.interface import StoredFence


def feature_collection(fences: Sequence[StoredFence]) -> dict[str, Any]:
    """A FeatureCollection of the stored features, in the given order."""
    return {"type": "FeatureCollection", "features": [json.loads(f.feature) for f in fences]}
