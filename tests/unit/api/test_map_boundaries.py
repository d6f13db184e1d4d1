"""The basemap's outlines: units merged per level, slivers between simplified neighbours gone,
real enclaves kept."""

from __future__ import annotations

import shapely
from shapely.geometry import box, shape

from api.map_boundaries import outlines
from geofence.admin import AdminRegions, AdminUnit


def unit(code: str, city: str, province: str) -> AdminUnit:
    return AdminUnit(code, f"county {code}", f"city {city}", city, f"prov {province}", province)


def test_counties_merge_into_cities_and_provinces_without_slivers() -> None:
    # Province 110000: two counties side by side with a hairline gap (0.0001 deg) between them
    # and a county of another province, 120000, enclosed by a ring of the first.
    ring = box(0, 0, 3, 3).difference(box(1, 1, 2, 2))
    regions = AdminRegions(
        [box(-1, 0, -0.0001, 3), ring, box(1, 1, 2, 2)],
        [
            unit("110101", "110100", "110000"),
            unit("110102", "110100", "110000"),
            unit("120101", "120100", "120000"),
        ],
    )
    provinces = outlines(regions, "province")
    assert [f["properties"] for f in provinces["features"]] == [
        {"adcode": "110000", "name": "prov 110000", "level": "province"},
        {"adcode": "120000", "name": "prov 120000", "level": "province"},
    ]
    merged = shape(provinces["features"][0]["geometry"])
    assert merged.geom_type == "Polygon"  # the hairline gap closed: one outline
    assert len(merged.interiors) == 1  # the enclave of 120000 stays a hole
    assert shapely.contains_xy(merged, -0.5, 1.5) and not shapely.contains_xy(merged, 1.5, 1.5)
    assert len(outlines(regions, "city")["features"]) == 2
    counties = outlines(regions, "county")["features"]
    assert [f["properties"]["adcode"] for f in counties] == ["110101", "110102", "120101"]
