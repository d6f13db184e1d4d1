"""The fence model: what a risk officer draws, validated and in WGS-84."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shapely.geometry.base import BaseGeometry

MIN_RADIUS_M = 1.0
MAX_RADIUS_M = 500_000.0  # a circle larger than a province is a drawing mistake
MIN_BUFFER_M = 1.0
MAX_BUFFER_M = 100_000.0


class FenceKind(enum.StrEnum):
    """Contract kinds (contracts section 3)."""

    HOTSPOT = "hotspot"  # a risk place: pawn shop, used-car market, registration office
    ALLOWED_AREA = "allowed_area"  # where a vehicle may be: its city or province
    ZONE = "zone"  # any other fence; alerts per its `notify`


class Shape(enum.StrEnum):
    POLYGON = "polygon"  # Polygon or MultiPolygon, holes allowed; planar in lon/lat
    CIRCLE = "circle"  # centre Point and radius_m on the ground
    CORRIDOR = "corridor"  # LineString and buffer_m on the ground either side


NOTIFY_WORDS = frozenset({"enter", "exit"})


@dataclass(frozen=True, slots=True)
class Fence:
    """One fence, immutable. `geometry` is WGS-84 lon/lat.

    `vehicles` None means the fence applies to every vehicle. `properties` keeps the feature's
    other properties (a risk spot's category, for instance) for the layers above. `adcode` is
    set on an administrative fence: its geometry is that unit's outline (`geofence.admin`),
    and its GeoJSON names the unit instead of repeating the outline.
    """

    id: str
    kind: FenceKind
    geometry: BaseGeometry
    name: str = ""
    notify: frozenset[str] = NOTIFY_WORDS
    vehicles: frozenset[str] | None = None
    radius_m: float | None = None
    buffer_m: float | None = None
    adcode: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        shape = self.shape  # raises on an unsupported geometry
        if shape is Shape.CIRCLE and self.radius_m is None:
            raise ValueError(f"fence {self.id!r}: a circle needs radius_m")
        if shape is Shape.CORRIDOR and self.buffer_m is None:
            raise ValueError(f"fence {self.id!r}: a corridor needs buffer_m")
        if not isinstance(self.properties, MappingProxyType):
            object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))

    @property
    def shape(self) -> Shape:
        kind = self.geometry.geom_type
        if kind in ("Polygon", "MultiPolygon"):
            return Shape.POLYGON
        if kind == "Point":
            return Shape.CIRCLE
        if kind == "LineString":
            return Shape.CORRIDOR
        raise ValueError(f"fence {self.id!r}: unsupported geometry {kind}")

    def applies_to(self, vehicle_id: str) -> bool:
        return self.vehicles is None or vehicle_id in self.vehicles
