"""Administrative fences: an allowed area or zone that names a province, city or county."""

from __future__ import annotations

from typing import Any

import pytest

from geofence import FenceError, fences_to_geojson, load_fences
from geofence.admin import default_regions
from tests.unit.pipeline.tracks import Fix, fences, fleet, minute_ms, of_type, run

HANGZHOU = (120.1636, 30.2578)  # West Lake, Zhejiang
SHANGHAI = (121.4737, 31.2304)  # People's Square


def admin(fence_id: str, kind: str, adcode: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": fence_id, "kind": kind, "adcode": adcode, **props},
        "geometry": None,
    }


def hangzhou_to_shanghai(device: str) -> list[Fix]:
    """A straight drive at 100 km/h, a fix a minute (~170 km, 100 minutes), then parked."""
    steps = 100
    fixes = []
    for m in range(steps + 1):
        f = m / steps
        lon = HANGZHOU[0] + f * (SHANGHAI[0] - HANGZHOU[0])
        lat = HANGZHOU[1] + f * (SHANGHAI[1] - HANGZHOU[1])
        fixes.append(Fix(device, m, lon, lat, speed_kmh=100.0))
    fixes += [Fix(device, steps + m, *SHANGHAI, status=2) for m in range(1, 30)]
    return fixes


def test_the_car_stays_in_zhejiang_is_one_line_and_names_the_province_it_entered() -> None:
    zhejiang = admin("zj", "allowed_area", "330000", vehicles=["V1"])
    loaded = fences(zhejiang)
    assert loaded[0].name == "浙江省"
    assert loaded[0].adcode == "330000"
    alerts = of_type(run(hangzhou_to_shanghai("W"), loaded, fleet(V1=["W"])), "leave_allowed_area")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.fence_id == "zj"
    assert alert.details["entered"]["province"] == "上海市"
    # The first fix outside Zhejiang: the one after the last fix the boundary still holds.
    regions = default_regions()
    lon = [f.lon for f in hangzhou_to_shanghai("W")[:101]]
    lat = [f.lat for f in hangzhou_to_shanghai("W")[:101]]
    province = [regions.units[i].province_adcode for i in regions.resolve(lon, lat)]
    first_out = province.index("310000")
    assert "330000" not in province[first_out:]
    assert alert.time_ms == minute_ms(first_out)


def test_a_city_zone_alerts_on_enter_and_exit() -> None:
    hangzhou = admin("hz", "zone", 330100, notify=["exit"])
    alerts = run(hangzhou_to_shanghai("W"), fences(hangzhou))
    exits = of_type(alerts, "geofence_exit")
    assert [a.fence_id for a in exits] == ["hz"]
    assert of_type(alerts, "geofence_enter") == []


def test_round_trip_keeps_the_unit_not_its_outline() -> None:
    loaded = fences(admin("sh", "allowed_area", "310000", name="Shanghai", owner="risk"))
    document = fences_to_geojson(loaded)
    feature = document["features"][0]
    assert feature["geometry"] is None
    assert feature["properties"]["adcode"] == "310000"
    assert feature["properties"]["owner"] == "risk"
    assert load_fences(document) == loaded
    assert loaded[0].name == "Shanghai"


@pytest.mark.parametrize(
    ("feature", "reason"),
    [
        (admin("a", "hotspot", "330000", radius_m=50), "only an allowed_area or a zone"),
        (admin("a", "zone", "33000"), "6-digit administrative code"),
        (admin("a", "zone", "990000"), "no administrative unit 990000"),
        (admin("a", "zone", True), "6-digit administrative code"),
        (admin("a", "zone", "３３００００"), "6-digit administrative code"),
        (
            {"type": "Feature", "properties": {"id": "a", "kind": "zone"}, "geometry": None},
            "or null with properties.adcode",
        ),
    ],
)
def test_bad_administrative_fences_name_the_field(feature: dict[str, Any], reason: str) -> None:
    with pytest.raises(FenceError, match=reason):
        fences(feature)
