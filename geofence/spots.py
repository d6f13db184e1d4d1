"""The risk-spot library: a shared layer of known risk places plus each tenant's own.

Spots are hotspot circles (pawn shops, used-car markets, registration offices). The shared layer
is curated once for every tenant; a tenant's spot with the same id replaces the shared one for
that tenant only (a bigger radius for a market it knows, say).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import shapely

from geofence.crs import Crs, to_wgs84
from geofence.errors import FenceError
from geofence.geojson import fences_to_geojson, load_fences
from geofence.model import MAX_RADIUS_M, MIN_RADIUS_M, Fence, FenceKind

# Usual radii when a file gives none: a shop is a doorway, a market a lot.
DEFAULT_RADIUS_M: Mapping[str, float] = MappingProxyType(
    {"pawn_shop": 50.0, "used_car_market": 300.0, "registration_office": 100.0}
)
FALLBACK_RADIUS_M = 100.0
SHARED_FILE = "shared.geojson"
TENANT_DIR = "tenants"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def load_spots(path: str | Path, crs: Crs | str | None = None) -> list[Fence]:
    """Spots from a GeoJSON file (kind defaults to hotspot) or a CSV file (by its suffix).

    CSV: a header row with `name`, `category`, `lon`, `lat` and optionally `id`, `radius_m`
    (or `radius`); errors name the file, line and column.
    """
    if Path(path).suffix.lower() == ".csv":
        return _load_csv(Path(path), Crs.parse(crs) if isinstance(crs, str) else crs)
    return load_fences(path, crs=crs, default_kind=FenceKind.HOTSPOT)


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise FenceError(f"tenant {tenant!r}: letters, digits, '_', '-', '.' only (max 64)")
    return tenant


@dataclass(frozen=True, slots=True)
class SpotLibrary:
    shared: tuple[Fence, ...] = ()
    tenants: Mapping[str, tuple[Fence, ...]] = field(default_factory=dict)

    def fences_for(self, tenant: str | None) -> list[Fence]:
        """The shared spots with the tenant's own on top (same id: the tenant's wins)."""
        own = self.tenants.get(tenant, ()) if tenant is not None else ()
        replaced = {f.id for f in own}
        return [f for f in self.shared if f.id not in replaced] + list(own)

    def with_spots(self, fences: Iterable[Fence], tenant: str | None = None) -> SpotLibrary:
        """A new library with `fences` added to a layer, replacing spots of the same id."""
        incoming = list(fences)
        current = self.shared if tenant is None else self.tenants.get(tenant, ())
        merged = tuple(_upsert(current, incoming))
        if tenant is None:
            return SpotLibrary(merged, self.tenants)
        return SpotLibrary(self.shared, {**self.tenants, check_tenant(tenant): merged})

    @classmethod
    def load(cls, directory: str | Path) -> SpotLibrary:
        """Reads `shared.geojson` and `tenants/<tenant>.geojson`; a missing file: an empty layer."""
        root = Path(directory)
        shared_path = root / SHARED_FILE
        shared = tuple(load_spots(shared_path)) if shared_path.exists() else ()
        tenants = {
            path.stem: tuple(load_spots(path))
            for path in sorted((root / TENANT_DIR).glob("*.geojson"))
        }
        return cls(shared, tenants)

    def layer_path(self, directory: str | Path, tenant: str | None) -> Path:
        root = Path(directory)
        return root / SHARED_FILE if tenant is None else root / TENANT_DIR / f"{tenant}.geojson"

    def save_layer(self, directory: str | Path, tenant: str | None) -> Path:
        """Writes one layer atomically (write, then rename), as canonical WGS-84 GeoJSON."""
        path = self.layer_path(directory, tenant)
        fences: Sequence[Fence] = self.shared if tenant is None else self.tenants.get(tenant, ())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".geojson.tmp")
        tmp.write_text(json.dumps(fences_to_geojson(fences), ensure_ascii=False, indent=1) + "\n")
        tmp.replace(path)
        return path


def _upsert(current: Sequence[Fence], incoming: Sequence[Fence]) -> list[Fence]:
    by_id = {f.id: f for f in incoming}
    kept = [by_id.pop(f.id, f) for f in current]
    return kept + list(by_id.values())


def _load_csv(path: Path, crs: Crs | None) -> list[Fence]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise FenceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in ("name", "category", "lon", "lat") if c not in header]
        if missing:
            raise FenceError(f"{path}: line 1: header: missing column {missing[0]!r}")
        radius_column = "radius_m" if "radius_m" in header else "radius"
        spots: list[Fence] = []
        seen: dict[str, int] = {}
        for record in reader:
            line = reader.line_num
            where = f"{path}: line {line}"
            lon = _number(record.get("lon"), f"{where}: lon", -180.0, 180.0)
            lat = _number(record.get("lat"), f"{where}: lat", -90.0, 90.0)
            category = (record.get("category") or "").strip()
            if not category:
                raise FenceError(f"{where}: category: required")
            radius_text = (record.get(radius_column) or "").strip()
            radius_m = (
                _number(radius_text, f"{where}: {radius_column}", MIN_RADIUS_M, MAX_RADIUS_M)
                if radius_text
                else DEFAULT_RADIUS_M.get(category, FALLBACK_RADIUS_M)
            )
            if crs is not None and crs is not Crs.WGS84:
                lon_w, lat_w = to_wgs84(lon, lat, crs)
                lon, lat = float(lon_w), float(lat_w)
            spot_id = (record.get("id") or "").strip() or f"{category}@{lon:.6f},{lat:.6f}"
            if spot_id in seen:
                raise FenceError(f"{where}: id: duplicate of line {seen[spot_id]}")
            seen[spot_id] = line
            spots.append(
                Fence(
                    id=spot_id,
                    kind=FenceKind.HOTSPOT,
                    geometry=shapely.Point(lon, lat),
                    name=(record.get("name") or "").strip(),
                    radius_m=radius_m,
                    properties={"category": category},
                )
            )
    return spots


def _number(text: str | None, where: str, low: float, high: float) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise FenceError(f"{where}: not a number: {text!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise FenceError(f"{where}: {value:g} out of range [{low:g}, {high:g}]")
    return value
