"""Loading contract fences from GeoJSON: shapes, validation errors, conversions, round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely

from geofence import Crs, FenceError, FenceKind, Shape, fences_to_geojson, load_fences
from geofence.crs import wgs84_to_gcj02


def feature(props: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry}


SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def test_polygon_circle_and_corridor_load_with_their_contract_properties() -> None:
    fences = load_fences(
        collection(
            feature({"id": "z", "kind": "zone", "notify": ["enter"], "vehicles": ["V1"]}, SQUARE),
            feature(
                {"id": "p", "kind": "hotspot", "radius_m": 50, "category": "pawn_shop"},
                {"type": "Point", "coordinates": [116.4, 39.9]},
            ),
            feature(
                {"id": "c", "kind": "allowed_area", "buffer_m": 500},
                {"type": "LineString", "coordinates": [[116.0, 39.0], [117.0, 40.0]]},
            ),
        )
    )
    zone, spot, corridor = fences
    assert (zone.shape, zone.notify, zone.vehicles) == (
        Shape.POLYGON,
        frozenset({"enter"}),
        frozenset({"V1"}),
    )
    assert (spot.shape, spot.radius_m, spot.vehicles) == (Shape.CIRCLE, 50.0, None)
    assert spot.properties["category"] == "pawn_shop"
    assert (corridor.shape, corridor.kind, corridor.buffer_m) == (
        Shape.CORRIDOR,
        FenceKind.ALLOWED_AREA,
        500.0,
    )


def test_multipolygon_with_a_hole_keeps_the_hole() -> None:
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]],
            [[[10, 10], [11, 10], [11, 11], [10, 10]]],
        ],
    }
    (fence,) = load_fences(feature({"id": "m", "kind": "zone"}, geometry))
    assert fence.geometry.area == pytest.approx(16 - 4 + 0.5)


def test_a_polygon_with_holes_of_different_lengths_keeps_both_holes() -> None:
    geometry = {
        "type": "Polygon",
        "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]],
            [[5, 5], [8, 5], [6, 8], [5, 5]],
        ],
    }
    (fence,) = load_fences(feature({"id": "h", "kind": "zone"}, geometry))
    assert len(fence.geometry.interiors) == 2
    assert fence.geometry.area == pytest.approx(100 - 4 - 4.5)


def test_errors_name_the_file_the_feature_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "fences.geojson"
    bad = feature(
        {"id": "r1", "kind": "hotspot", "radius_m": 0.1}, {"type": "Point", "coordinates": [1, 2]}
    )
    path.write_text(json.dumps(collection(feature({"id": "ok", "kind": "zone"}, SQUARE), bad)))
    with pytest.raises(FenceError) as caught:
        load_fences(path)
    message = str(caught.value)
    assert str(path) in message
    assert "feature 1 (id 'r1')" in message
    assert "properties.radius_m" in message


@pytest.mark.parametrize(
    ("props", "geometry", "field"),
    [
        ({"id": "x", "kind": "bogus"}, SQUARE, "properties.kind: unknown kind 'bogus'"),
        ({"kind": "zone"}, SQUARE, "properties.id: required"),
        ({"id": "x", "kind": "hotspot"}, {"type": "Point", "coordinates": [1, 2]}, "radius_m"),
        (
            {"id": "x", "kind": "hotspot", "radius_m": 600_000},
            {"type": "Point", "coordinates": [1, 2]},
            "out of range",
        ),
        (
            {"id": "x", "kind": "hotspot", "radius_m": 9},
            {"type": "Point", "coordinates": [200, 2]},
            "longitude 200 out of range",
        ),
        ({"id": "x", "kind": "zone", "notify": ["leave"]}, SQUARE, "unknown word 'leave'"),
        ({"id": "x", "kind": "zone"}, {"type": "MultiPoint", "coordinates": []}, "geometry.type"),
        (
            {"id": "x", "kind": "zone", "buffer_m": 10},
            {"type": "LineString", "coordinates": [[1, 1]]},
            "geometry.coordinates",
        ),
    ],
)
def test_bad_features_are_refused_with_the_field(
    props: dict[str, Any], geometry: dict[str, Any], field: str
) -> None:
    with pytest.raises(FenceError, match=field.replace("(", r"\(")):
        load_fences(feature(props, geometry), name="f.geojson")


def test_duplicate_ids_are_refused() -> None:
    first = feature({"id": "a", "kind": "zone"}, SQUARE)
    with pytest.raises(FenceError, match=r"feature 1 \(id 'a'\): properties.id: duplicate"):
        load_fences(collection(first, first))


def test_invalid_json_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection",\n "features": [}\n')
    with pytest.raises(FenceError, match="line 2 column"):
        load_fences(path)


BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}


def test_a_self_intersecting_polygon_is_repaired_into_its_two_lobes() -> None:
    (fence,) = load_fences(feature({"id": "b", "kind": "zone"}, BOWTIE))
    assert fence.geometry.is_valid
    assert fence.geometry.area == pytest.approx(2.0)


def test_a_self_intersecting_polygon_is_refused_when_repair_is_off() -> None:
    with pytest.raises(FenceError, match="invalid polygon: Self-intersection"):
        load_fences(feature({"id": "b", "kind": "zone"}, BOWTIE), repair=False)


def test_gcj02_input_is_converted_to_wgs84() -> None:
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    point = {"type": "Point", "coordinates": [float(lon), float(lat)]}
    props = {"id": "p", "kind": "hotspot", "radius_m": 50, "crs": "gcj02"}
    (fence,) = load_fences(feature(props, point))
    assert fence.geometry.x == pytest.approx(116.404, abs=1e-8)
    assert fence.geometry.y == pytest.approx(39.915, abs=1e-8)


def test_geojson_out_reads_back_to_equal_fences_in_every_crs() -> None:
    fences = load_fences(
        collection(
            feature({"id": "z", "kind": "zone", "name": "yard", "vehicles": ["V2"]}, SQUARE),
            feature(
                {"id": "p", "kind": "hotspot", "radius_m": 50},
                {"type": "Point", "coordinates": [116.4, 39.9]},
            ),
        )
    )
    assert load_fences(fences_to_geojson(fences)) == fences
    converted = load_fences(fences_to_geojson(fences, Crs.BD09))
    for original, back in zip(fences, converted, strict=True):
        assert shapely.equals_exact(original.geometry, back.geometry, tolerance=1e-8)
