"""Reverse geocoding against the packaged boundary set: known cities, the sea, a border, and
agreement with shapely's own test of the same outlines."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geofence.admin import AdminRegions, default_regions
from geofence.admin_data import pack_units, unpack_units
from geofence.crs import wgs84_to_gcj02


@pytest.fixture(scope="module")
def regions() -> AdminRegions:
    return default_regions()


def place(regions: AdminRegions, lon: float, lat: float) -> dict[str, str] | None:
    return regions.places([lon], [lat])[0]


def test_known_cities(regions: AdminRegions) -> None:
    # West Lake's east shore, Hangzhou (WGS-84).
    assert place(regions, 120.1636, 30.2578) == {
        "province": "浙江省",
        "city": "杭州市",
        "district": "上城区",
        "adcode": "330102",
    }
    # Shanghai: the Peace Hotel on the Bund (west of the Huangpu river) is Huangpu district,
    # the Oriental Pearl Tower across the river is Pudong.
    assert place(regions, 121.48556, 31.24056)["district"] == "黄浦区"  # type: ignore[index]
    assert place(regions, 121.4953, 31.2417)["district"] == "浦东新区"  # type: ignore[index]
    beijing = place(regions, 116.3975, 39.9087)  # Tian'anmen
    assert beijing is not None
    assert (beijing["province"], beijing["district"]) == ("北京市", "东城区")
    dongguan = place(regions, 113.7518, 23.0205)  # a city without counties is its own unit
    assert dongguan is not None
    assert (dongguan["city"], dongguan["district"], dongguan["adcode"]) == (
        "东莞市",
        "东莞市",
        "441900",
    )


def test_sea_abroad_and_nonsense_resolve_to_nothing(regions: AdminRegions) -> None:
    lon = [123.5, 139.69, 0.0, float("nan"), 500.0]  # East China Sea, Tokyo, null island
    lat = [29.5, 35.69, 0.0, 30.0, 30.0]
    assert regions.resolve(lon, lat).tolist() == [-1] * 5


def test_border_between_zhejiang_and_shanghai(regions: AdminRegions) -> None:
    """Points 30 m either side of a vertex of the shared border fall in their own province."""
    zhejiang = regions.geometry_of("330000")
    shanghai = regions.geometry_of("310000")
    assert zhejiang is not None and shanghai is not None
    border = shapely.intersection(zhejiang.boundary, shanghai.boundary)
    assert border.length > 0.5  # degrees: they share a land border of some 100 km
    longest = max(shapely.get_parts(shapely.line_merge(border)), key=lambda g: g.length)
    xy = shapely.get_coordinates(longest)
    a, b = xy[len(xy) // 2], xy[len(xy) // 2 + 1]
    mid = (a + b) / 2
    normal = np.array([-(b - a)[1], (b - a)[0]])
    normal *= 0.0003 / np.linalg.norm(normal)
    sides = [mid + normal, mid - normal]
    got = {regions.units[i].province for i in regions.resolve(*np.array(sides).T)}
    assert got == {"浙江省", "上海市"}
    for point in sides:
        index = regions.resolve([point[0]], [point[1]])[0]
        expected = "310000" if shapely.contains_xy(shanghai, *point) else "330000"
        assert regions.units[index].province_adcode == expected


def test_agrees_with_shapely_on_sampled_points(regions: AdminRegions) -> None:
    rng = np.random.default_rng(15)
    # Half spread over China, half around cities, where borders are dense.
    lon = np.concatenate([rng.uniform(73, 135, 5000), rng.normal(120.5, 0.6, 5000)])
    lat = np.concatenate([rng.uniform(18, 54, 5000), rng.normal(30.8, 0.6, 5000)])
    got = regions.resolve(lon, lat)
    geometries = regions.outlines
    tree = shapely.STRtree(geometries)
    point, unit = tree.query(shapely.points(lon, lat), predicate="within")
    expected = np.full(len(lon), -1)
    order = np.lexsort((unit, point))
    point, unit = point[order], unit[order]
    first = np.ones(len(point), bool)
    first[1:] = point[1:] != point[:-1]
    expected[point[first]] = unit[first]
    assert (got == expected).all()
    assert (got >= 0).sum() > 5000
    # A small batch takes GEOS over the outlines' tree instead of the grid: the same answers.
    small = slice(4800, 5200)
    assert (regions.resolve(lon[small], lat[small]) == expected[small]).all()


def test_outlines_are_wgs84_not_gcj02(regions: AdminRegions) -> None:
    """The Huangpu/Pudong border crosses latitude 31.24 in the river (banks at about 121.4875
    and 121.4925 in WGS-84). AMap's GCJ-02 outline puts it at 121.4935, on the Pudong shore:
    the packaged set must be the converted one."""
    lon = np.arange(121.480, 121.500, 0.0001)
    district = regions.resolve(lon, np.full(len(lon), 31.24))
    huangpu = regions.members("310101")[0]
    crossing = lon[np.flatnonzero(district != huangpu)[0]]
    assert 121.4875 < crossing < 121.4925
    glon, _ = wgs84_to_gcj02(crossing, 31.24)
    assert abs(float(glon) - 121.4935) < 0.001  # converting back gives AMap's own line


def test_geometry_of_levels(regions: AdminRegions) -> None:
    province = regions.geometry_of("330000")
    city = regions.geometry_of("330100")
    county = regions.geometry_of("330106")
    assert province is not None and city is not None and county is not None
    assert province.area > city.area > county.area
    assert province.contains(city.representative_point())
    assert regions.geometry_of("990000") is None
    assert regions.name_of("330000") == "浙江省"
    assert regions.name_of("330100") == "杭州市"
    assert len(regions.members("310000")) == 16


def test_pack_round_trip() -> None:
    square = shapely.Polygon(
        [(120, 30), (121, 30), (121, 31), (120, 31)],
        [[(120.2, 30.2), (120.3, 30.2), (120.3, 30.3)]],
    )
    far = shapely.Polygon([(80, 40), (80.5, 40), (80.5, 40.00001)])
    arrays = pack_units(
        [shapely.MultiPolygon([square]), shapely.MultiPolygon([far, square])],
        [{"adcode": 1}, {"adcode": 2}],
    )
    geometries, units = unpack_units(arrays)
    assert units == [{"adcode": 1}, {"adcode": 2}]
    assert geometries[0].equals(shapely.MultiPolygon([square]))
    assert geometries[1].equals(shapely.MultiPolygon([far, square]))
