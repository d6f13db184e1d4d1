"""Writes a scenario directory: positions.csv, fences.geojson, fleet.json, truth.jsonl and a
scenario.json manifest (settings and the injected episodes, for whoever debugs a miss), and
spots.json (planted gatherings, the ground truth of `gathering`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from simulators.files import fences_geojson, fleet_json, incident_line, positions_csv
from simulators.scenario import Scenario
from simulators.timefmt import HOUR_MS, iso_one
from simulators.truth import Incident

FILES = (
    "positions.csv",
    "fences.geojson",
    "fleet.json",
    "truth.jsonl",
    "scenario.json",
    "spots.json",
)


def cause_of(scenario: Scenario, incident: Incident) -> str:
    """The injected episode an incident comes from, or "background"."""
    for ep in scenario.episodes:
        same = ep.vehicle_id == incident.vehicle_id
        if same and ep.t0_ms - HOUR_MS <= incident.time_ms <= ep.t1_ms + 3 * HOUR_MS:
            return ep.kind
    return "background"


def spots_json(scenario: Scenario) -> str:
    """Ground truth for `gathering`: each planted place and its visits (empty: none)."""
    spots = [
        {
            "lon": round(spot.lon, 6),
            "lat": round(spot.lat, 6),
            "visits": [
                {
                    "vehicle_id": v.vehicle_id,
                    "around": iso_one(v.arrive_ms),
                    "minutes": round(v.stay_min),
                }
                for v in spot.visits
            ],
        }
        for spot in scenario.spots
    ]
    return json.dumps({"spots": spots}, indent=1) + "\n"


def write_scenario(scenario: Scenario, out_dir: Path) -> dict[str, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "positions.csv").write_text(
        positions_csv(scenario.stream, scenario.course, scenario.device_time_ms), encoding="utf-8"
    )
    if scenario.config.faults:
        (out_dir / "faults.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "device_id": f.device_id,
                        "fault": f.fault,
                        "from": iso_one(f.from_ms),
                        "to": iso_one(f.to_ms),
                    }
                )
                + "\n"
                for f in scenario.faults
            ),
            encoding="utf-8",
        )
    (out_dir / "fences.geojson").write_text(fences_geojson(scenario.fences), encoding="utf-8")
    (out_dir / "fleet.json").write_text(fleet_json(scenario.fleet_map()), encoding="utf-8")
    truth = [incident_line(i, cause_of(scenario, i)) for i in scenario.evaluation.incidents]
    (out_dir / "truth.jsonl").write_text("".join(line + "\n" for line in truth), encoding="utf-8")
    (out_dir / "spots.json").write_text(spots_json(scenario), encoding="utf-8")
    cfg = dataclasses.asdict(scenario.config)
    cfg["start"] = scenario.config.start.isoformat()
    cfg["faults"] = list(scenario.config.faults)
    manifest = {
        "config": cfg,
        "episodes": [
            {
                "kind": e.kind,
                "vehicle_id": e.vehicle_id,
                "device_id": e.device_id,
                "fence_id": e.fence_id,
                "start": iso_one(e.t0_ms),
                "end": iso_one(e.t1_ms),
            }
            for e in scenario.episodes
        ],
        "positions": len(scenario.stream.time_ms),
        "out_of_order_rows": scenario.evaluation.dropped_out_of_order,
        "duplicate_rows": scenario.evaluation.duplicates,
        "doubts": scenario.evaluation.doubts,
    }
    (out_dir / "scenario.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return {"positions": len(scenario.stream.time_ms), "incidents": len(truth)}
