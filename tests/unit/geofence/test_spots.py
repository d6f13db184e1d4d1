"""The risk-spot library: CSV and GeoJSON layers, tenants on top of the shared layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely

from geofence import Fence, FenceError, FenceKind, SpotLibrary, load_spots


def write_csv(path: Path, rows: str) -> Path:
    path.write_text("name,category,lon,lat,radius_m\n" + rows, encoding="utf-8")
    return path


def test_csv_spots_are_hotspot_circles_with_category_radii(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "s.csv", "典当行,pawn_shop,116.4,39.9,\nMarket,used_car_market,116.5,39.8,450\n"
    )
    shop, market = load_spots(path)
    assert (shop.kind, shop.radius_m, shop.name) == (FenceKind.HOTSPOT, 50.0, "典当行")
    assert shop.properties["category"] == "pawn_shop"
    assert market.radius_m == 450.0


def test_a_bad_csv_value_names_file_line_and_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", "A,pawn_shop,116.4,39.9,\nB,pawn_shop,116.4,91.5,\n")
    with pytest.raises(FenceError, match=r"s\.csv: line 3: lat: 91.5 out of range"):
        load_spots(path)


def test_a_csv_without_a_required_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("name,lon,lat\nA,1,2\n")
    with pytest.raises(FenceError, match="line 1: header: missing column 'category'"):
        load_spots(path)


def test_geojson_spots_default_to_hotspots(tmp_path: Path) -> None:
    path = tmp_path / "s.geojson"
    point = {"type": "Point", "coordinates": [116.4, 39.9]}
    feature = {"type": "Feature", "properties": {"id": "x", "radius_m": 80}, "geometry": point}
    path.write_text(json.dumps(feature))
    (spot,) = load_spots(path)
    assert spot.kind is FenceKind.HOTSPOT


def spot(spot_id: str, radius_m: float) -> Fence:
    return Fence(spot_id, FenceKind.HOTSPOT, shapely.Point(116.4, 39.9), radius_m=radius_m)


def test_a_tenant_sees_shared_spots_with_its_own_replacing_same_ids() -> None:
    library = SpotLibrary().with_spots([spot("a", 50), spot("b", 50)])
    library = library.with_spots([spot("b", 300), spot("c", 60)], tenant="t1")
    mine = {f.id: f.radius_m for f in library.fences_for("t1")}
    assert mine == {"a": 50, "b": 300, "c": 60}
    assert {f.id: f.radius_m for f in library.fences_for("t2")} == {"a": 50, "b": 50}


def test_a_library_saved_and_loaded_keeps_every_layer(tmp_path: Path) -> None:
    library = SpotLibrary().with_spots([spot("a", 50)]).with_spots([spot("c", 60)], tenant="t1")
    library.save_layer(tmp_path, None)
    library.save_layer(tmp_path, "t1")
    loaded = SpotLibrary.load(tmp_path)
    assert loaded.fences_for("t1") == library.fences_for("t1")


def test_a_tenant_name_that_could_escape_the_directory_is_refused() -> None:
    with pytest.raises(FenceError, match="tenant"):
        SpotLibrary().with_spots([spot("a", 50)], tenant="../x")
