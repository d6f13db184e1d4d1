"""What the map page is configured with: an optional raster tile layer and its datum, and an
optional administrative boundary set for the offline basemap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from geofence.crs import Crs

# level ("province", "city", "county") -> a WGS-84 GeoJSON FeatureCollection of outlines.
BoundarySource = Callable[[str], dict[str, Any]]
BOUNDARY_LEVELS = ("province", "city", "county")


@dataclass(frozen=True, slots=True)
class MapOptions:
    """`tiles_url` is an XYZ template (`{z}`, `{x}`, `{y}`) of Web-Mercator raster tiles whose
    coordinates are in `tiles_crs`: for a GCJ-02 or BD-09 service the page is served every
    position, track and fence in that datum so they sit on the tiles' roads. Unset, the map
    draws in WGS-84 on a plain background. `boundaries` gives the outlines of the offline
    basemap (None: the background alone)."""

    tiles_url: str | None = None
    tiles_crs: Crs = Crs.WGS84
    tiles_attribution: str = ""
    boundaries: BoundarySource | None = None

    @property
    def crs(self) -> Crs:
        """The datum the page draws in."""
        return self.tiles_crs if self.tiles_url else Crs.WGS84

    @property
    def tiles_origin(self) -> str | None:
        """`scheme://host[:port]` of the tiles, for the page's Content-Security-Policy."""
        if not self.tiles_url:
            return None
        parts = urlsplit(self.tiles_url.replace("{", "").replace("}", ""))
        return f"{parts.scheme}://{parts.netloc}"


def check_tiles_url(url: str) -> str:
    """An http(s) URL template with `{z}`, `{x}` and `{y}`; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http or https URL")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in url]
    if missing:
        raise ValueError(f"{url!r} lacks {', '.join(missing)}")
    if any(c in url for c in " \"'<>;\n"):
        raise ValueError(f"{url!r} holds a character a URL template may not")
    return url
