"""`lienwatch demo` provisioning: the fleet's units bound to their cars and the demo fences,
written through the Store interface on both adapters, and idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geofence import load_fences
from lienwatch.commands.demo import provision
from lienwatch.settings import Settings
from pipeline.live import fleet_from_devices
from simulators.demo import build_demo, demo_fences
from store import open_store
from store.fencerows import feature_collection


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Settings(data_dir=tmp_path, database_url=url)


def test_units_are_bound_to_their_cars_and_fences_stored_once(settings: Settings) -> None:
    script = build_demo(seed=5, cars=20)
    provision(settings, script)
    provision(settings, script)  # a second run over the same data dir changes nothing
    store = open_store(settings.database_url, settings.data_dir)
    try:
        devices = store.list_devices()
        stored = store.list_fences()
    finally:
        store.close()
    assert {d.terminal: d.vehicle_id for d in devices} == script.bindings()
    fleet = fleet_from_devices(devices)
    assert {v.vehicle_id: set(v.devices) for v in fleet.vehicles} == {
        c.vehicle_id: {t.terminal for t in c.trackers} for c in script.cars
    }
    expected = {f.id: f for f in load_fences(demo_fences(script))}
    loaded = {f.id: f for f in load_fences(feature_collection(stored))}
    assert set(loaded) == set(expected)
    for fence_id, fence in expected.items():
        assert loaded[fence_id].kind == fence.kind
        assert loaded[fence_id].vehicles == fence.vehicles
    assert all(json.loads(f.feature)["type"] == "Feature" for f in stored)
