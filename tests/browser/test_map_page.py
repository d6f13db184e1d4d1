"""The map page in chromium against a real `lienwatch serve`: it loads with the cars coloured by
state, a live alert arrives and is acknowledged and assigned from the list, a car's track plays
back, and a fence drawn on the map reaches the engine (a car entering it raises an alert)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import Page

from tests.browser.conftest import Served, pixel, until
from tests.support.device import TestDevice

POWER_CUT = 1 << 8
# Three cars east of Hangzhou; the first has a loan and a track of ten fixes, the third waits
# west of where a fence will be drawn.
CARS = {
    "VIN-B1": ("013900000201", 120.30, 30.25),
    "VIN-B2": ("013900000202", 120.32, 30.27),
    "VIN-B3": ("013900000203", 120.385, 30.40),
}


async def _drive(
    served: Served, terminal: str, fixes: list[tuple[float, float, int, dict[str, Any]]]
) -> None:
    device = TestDevice(terminal)
    await device.connect("127.0.0.1", served.gateway_port)
    try:
        assert await device.login()
        serials = [await device.report(lon, lat, t, **kw) for lon, lat, t, kw in fixes]
        await device.wait_acks(serials)
    finally:
        await device.close()


def drive(
    served: Served, terminal: str, fixes: list[tuple[float, float, int, dict[str, Any]]]
) -> None:
    asyncio.run(_drive(served, terminal, fixes))


@pytest.fixture(scope="module")
def fleet(served: Served) -> int:
    """The three cars provisioned, a loan on VIN-B1, each with fixes ending a minute ago."""
    now = int(time.time() * 1000)
    with served.http() as http:
        for vehicle, (terminal, _, _) in CARS.items():
            assert (
                http.put(f"/api/v1/devices/{terminal}", json={"vehicle_id": vehicle}).status_code
                == 201
            )
        loan = {
            "loan_no": "L-B1",
            "borrower_name": "张三丰",
            "vehicle_id": "VIN-B1",
            "principal": "150000.00",
            "start_date": "2026-01-10",
            "due_day": 15,
        }
        assert http.post("/api/v1/loans", json=loan).status_code == 201
    for vehicle, (terminal, lon, lat) in CARS.items():
        steps = 10 if vehicle == "VIN-B1" else 2
        fixes = [
            (
                lon - 0.002 * (steps - 1 - i),
                lat,
                now - 120_000 - 30_000 * (steps - 1 - i),
                {"speed_kmh": 30.0},
            )
            for i in range(steps)
        ]
        drive(served, terminal, fixes)
    return now


async def settled_at(page: Page, lon: float, lat: float, zoom: float) -> None:
    """The map loaded, centred on (lon, lat) at `zoom`, and still: clicks land where meant."""
    await until(page, "() => window.lienwatch.ready && window.lienwatch.map.loaded()")
    await page.evaluate(
        "([lon, lat, zoom]) => window.lienwatch.map.jumpTo({center: [lon, lat], zoom})",
        [lon, lat, zoom],
    )
    await until(page, "() => !window.lienwatch.map.isMoving()")


async def drawn(page: Page, fence_id: str, lon: float, lat: float) -> None:
    """Waits until the map has drawn the fence at (lon, lat), so a click there finds it."""
    await until(
        page,
        "([id, lon, lat]) => { const m = window.lienwatch.map;"
        " return m.queryRenderedFeatures(m.project([lon, lat]), {layers: ['fences-fill']})"
        ".some(f => f.properties.id === id); }",
        [fence_id, lon, lat],
    )


async def test_the_page_loads_with_cars_coloured_by_state(fleet: int, page: Page) -> None:
    cars = await until(
        page, "() => window.lienwatch.cars.features.length >= 3 && window.lienwatch.cars"
    )
    keys = {f["properties"]["key"] for f in cars["features"]}
    assert set(CARS) <= keys
    assert sum(cars["counts"].values()) == len(keys)
    assert all(
        f["properties"]["state"] in ("moving", "parked", "offline", "alarm")
        for f in cars["features"]
    )
    # MapLibre drew the cars: the rendered layer holds them (clustered or not).
    rendered = await until(
        page,
        "() => window.lienwatch.map.queryRenderedFeatures({layers: ['cars', 'clusters']}).length",
    )
    assert rendered >= 1
    assert await page.locator("#legend b[data-state=moving]").inner_text() == str(
        cars["counts"]["moving"]
    )
    # The offline basemap: the packaged province outlines, Zhejiang under these cars.
    names = await until(
        page,
        "() => window.lienwatch.map.getSource('boundaries') &&"
        " window.lienwatch.map.querySourceFeatures('boundaries').map(f => f.properties.name)",
    )
    assert "浙江省" in names
    # Zoomed out for the kept screenshot: the provinces around the cars' cluster.
    await page.evaluate("() => window.lienwatch.map.jumpTo({center: [119.5, 30.5], zoom: 5})")
    await until(page, "() => window.lienwatch.map.loaded() && !window.lienwatch.map.isMoving()")


async def test_a_live_alert_arrives_and_is_acknowledged_and_assigned(
    served: Served, fleet: int, page: Page
) -> None:
    terminal, lon, lat = CARS["VIN-B2"]
    now = int(time.time() * 1000)
    await _drive(
        served,
        terminal,
        [(lon, lat, now - 50_000, {}), (lon, lat, now - 40_000, {"alarm": POWER_CUT})],
    )
    item = page.locator("#alerts li", has_text="power_cut").filter(has_text="VIN-B2")
    await item.wait_for(timeout=15_000)
    alert_id = int(await item.get_attribute("data-id") or 0)
    assert await item.get_attribute("data-state") == "open"

    await item.locator("button[data-action=ack]").click()
    acked = page.locator(f"#alerts li[data-id='{alert_id}'][data-state=acknowledged]")
    await acked.wait_for(timeout=5_000)
    await acked.locator("input").fill("collector-7")
    await acked.locator("button[data-action=assign]").click()
    await page.locator(
        f"#alerts li[data-id='{alert_id}']", has_text="assigned to collector-7"
    ).wait_for(timeout=5_000)

    with served.http() as http:
        stored = http.get(f"/api/v1/alerts/{alert_id}").json()
    assert stored["state"] == "acknowledged" and stored["acknowledged_by"] == "admin"
    assert stored["assignee"] == "collector-7" and stored["assigned_by"] == "admin"
    # The car turned red on the map: a critical alert is open on it.
    await until(
        page,
        "() => window.lienwatch.cars.features.some("
        "f => f.properties.key === 'VIN-B2' && f.properties.state === 'alarm')",
    )


async def test_a_car_panel_and_its_track_play_back(fleet: int, page: Page) -> None:
    _, lon, lat = CARS["VIN-B1"]
    await page.evaluate("() => window.lienwatch.map.jumpTo({center: [120.30, 30.25], zoom: 15})")
    await until(page, "() => window.lienwatch.map.queryRenderedFeatures({layers: ['cars']}).length")
    x, y = await pixel(page, lon, lat)
    await page.mouse.click(x, y)
    panel = page.locator("#panel")
    await panel.locator("h3", has_text="VIN-B1").wait_for(timeout=5_000)
    text = await panel.inner_text()
    assert "L-B1" in text and "张**" in text and "张三丰" not in text  # the borrower is masked
    assert "013900000201" in text
    # Its learned places come in after (ten fixes of driving: none learned yet).
    places = page.locator("#panel-places")
    await places.filter(has_text="none learned yet").wait_for(timeout=5_000)

    await page.locator("#track-load").click()
    await until(page, "() => window.lienwatch.track && window.lienwatch.track.points.length === 10")
    assert await page.locator("#slider").get_attribute("max") == "9"
    await page.locator("#slider").fill("9")
    assert "10/10" in await page.locator("#play-time").inner_text()
    head = await page.evaluate("() => window.lienwatch.head")
    assert head == pytest.approx([lon, lat], abs=1e-5)
    # Play from the start: the head moves along by itself.
    await page.locator("#slider").fill("0")
    await page.locator("#play").click()
    await until(page, "() => Number(document.getElementById('slider').value) >= 3")


async def test_a_drawn_polygon_reaches_the_engine(served: Served, fleet: int, page: Page) -> None:
    terminal, _, _ = CARS["VIN-B3"]
    await settled_at(page, 120.40, 30.40, 13)
    await page.locator("#draw-polygon").click()
    for lon, lat in ((120.39, 30.39), (120.41, 30.39), (120.41, 30.41), (120.39, 30.41)):
        await page.mouse.click(*await pixel(page, lon, lat))
    await page.locator("#draw-finish").click()
    await page.locator("#fence-id").fill("drawn-depot")
    await page.locator("#fence-name").fill("Drawn depot")
    await page.locator("#fence-kind").select_option("zone")
    await page.locator("#fence-save").click()
    await until(
        page, "() => window.lienwatch.fences.features.some(f => f.properties.id === 'drawn-depot')"
    )

    with served.http() as http:
        fence = http.get("/api/v1/fences/drawn-depot").json()
        ring = fence["geometry"]["coordinates"][0]
        assert len(ring) == 5 and ring[0] == ring[-1]
        assert all(120.389 < x < 120.411 and 30.389 < y < 30.411 for x, y in ring)
        time.sleep(1.5)  # the engine looks for fence changes every 0.2 s
        now = int(time.time() * 1000)
        await _drive(
            served,
            terminal,
            [
                (120.388, 30.40, now - 60_000, {}),
                (120.392, 30.40, now - 40_000, {}),
                (120.395, 30.40, now - 20_000, {}),
            ],
        )
        deadline = time.monotonic() + 10
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            found = http.get("/api/v1/alerts?type=geofence_enter&vehicle_id=VIN-B3").json()
            time.sleep(0.1)
    assert [a["fence_id"] for a in found] == ["drawn-depot"]
    await (
        page.locator("#alerts li", has_text="geofence_enter")
        .filter(has_text="drawn-depot")
        .wait_for(timeout=5_000)
    )


async def test_a_drawn_circle_is_saved_then_edited(served: Served, fleet: int, page: Page) -> None:
    await settled_at(page, 120.50, 30.50, 14)
    await page.locator("#draw-circle").click()
    await page.mouse.click(*await pixel(page, 120.50, 30.50))
    await page.mouse.click(*await pixel(page, 120.505, 30.50))  # ~480 m east
    await page.locator("#fence-id").fill("drawn-circle")
    await page.locator("#fence-kind").select_option("hotspot")
    await page.locator("#fence-save").click()
    await until(
        page, "() => window.lienwatch.fences.features.some(f => f.properties.id === 'drawn-circle')"
    )
    with served.http() as http:
        saved = http.get("/api/v1/fences/drawn-circle").json()
    assert saved["geometry"]["type"] == "Point" and saved["properties"]["kind"] == "hotspot"
    assert 430 <= saved["properties"]["radius_m"] <= 530

    # Edit: click the circle, change its radius, save: the same id is replaced.
    await drawn(page, "drawn-circle", 120.501, 30.501)
    await page.mouse.click(*await pixel(page, 120.501, 30.501))
    await page.locator("#fence-radius").fill("800")
    await page.locator("#fence-save").click()
    await until(
        page,
        "() => window.lienwatch.fences.features.some("
        "f => f.properties.id === 'drawn-circle' && f.properties.radius_m === 800)",
    )
    with served.http() as http:
        assert http.get("/api/v1/fences/drawn-circle").json()["properties"]["radius_m"] == 800


async def test_a_polygon_s_corner_is_dragged_and_saved(
    served: Served, fleet: int, page: Page
) -> None:
    await settled_at(page, 120.60, 30.60, 14)
    await page.locator("#draw-polygon").click()
    corners = ((120.595, 30.595), (120.605, 30.595), (120.600, 30.605))
    for placed, (lon, lat) in enumerate(corners, start=1):
        await page.mouse.click(*await pixel(page, lon, lat))
        await until(page, f"() => window.lienwatch.draw.points.length === {placed}")
    await page.locator("#draw-finish").click()
    await page.locator("#fence-id").fill("drawn-triangle")
    await page.locator("#fence-save").click()
    await until(
        page,
        "() => window.lienwatch.fences.features.some(f => f.properties.id === 'drawn-triangle')",
    )

    # Edit: click inside, drag the top corner north, save: the fence is replaced.
    await drawn(page, "drawn-triangle", 120.600, 30.598)
    await page.mouse.click(*await pixel(page, 120.600, 30.598))
    await page.locator("#panel h3", has_text="drawn-triangle").wait_for(timeout=5_000)
    # The corners' handles must be on screen before one can be grabbed (sources render async).
    await until(
        page,
        "() => window.lienwatch.map.queryRenderedFeatures({layers: ['draw-points']}).length >= 3",
    )
    x, y = await pixel(page, 120.600, 30.605)
    await page.mouse.move(x, y)
    await page.mouse.down()
    tx, ty = await pixel(page, 120.600, 30.608)
    await page.mouse.move(tx, ty, steps=5)
    await page.mouse.up()
    await page.locator("#fence-save").click()
    await until(page, "() => !window.lienwatch.edit")
    with served.http() as http:
        ring = http.get("/api/v1/fences/drawn-triangle").json()["geometry"]["coordinates"][0]
    top = max(ring, key=lambda p: p[1])
    assert top == pytest.approx([120.600, 30.608], abs=2e-4)
    assert len(ring) == 4
