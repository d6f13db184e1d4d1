"""Scores alerts against truth.jsonl: precision, recall and delay per alert type.

An alert matches a truth incident of the same type and key (vehicle_id for rules about where the
vehicle is, device_id for rules about a device; the fleet file fills a missing vehicle_id), the
same fence where the truth names one, and a time within the tolerance. Matching is one to one,
closest times first, so a second alert for one incident is a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulators.files import Record, read_fleet, read_records
from simulators.truth import ALERT_TYPES, DEVICE_RULES, FleetMap


@dataclass(frozen=True, slots=True)
class TypeScore:
    type: str
    truth: int
    alerts: int
    matched: int
    delays_s: tuple[float, ...]

    @property
    def precision(self) -> float:
        return self.matched / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 1.0

    def as_dict(self) -> dict[str, Any]:
        delays = np.array(self.delays_s) if self.delays_s else np.zeros(0)
        return {
            "truth": self.truth,
            "alerts": self.alerts,
            "matched": self.matched,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "delay_s_median": round(float(np.median(delays)), 1) if len(delays) else None,
            "delay_s_max": round(float(np.max(np.abs(delays))), 1) if len(delays) else None,
        }


def _key(record: Record, kind: str, device_vehicle: dict[str, str]) -> str | None:
    if kind in DEVICE_RULES:
        return record.device_id
    if record.vehicle_id is not None:
        return record.vehicle_id
    if record.device_id is None:
        return None
    return device_vehicle.get(record.device_id, record.device_id)


def score(
    truth: list[Record], alerts: list[Record], fleet: FleetMap | None, tolerance_s: float
) -> list[TypeScore]:
    device_vehicle = {}
    if fleet is not None:
        device_vehicle = {d: v for v, devs in fleet.vehicles.items() for d in devs}
    kinds = list(ALERT_TYPES) + sorted({a.type for a in alerts} - set(ALERT_TYPES))
    out = []
    tol_ms = tolerance_s * 1000.0
    for kind in kinds:
        ts = [t for t in truth if t.type == kind]
        al = [a for a in alerts if a.type == kind]
        pairs = []
        for i, t in enumerate(ts):
            tkey = _key(t, kind, device_vehicle)
            for j, a in enumerate(al):
                if _key(a, kind, device_vehicle) != tkey:
                    continue
                if t.fence_id is not None and a.fence_id != t.fence_id:
                    continue
                gap = abs(a.time_ms - t.time_ms)
                if gap <= tol_ms:
                    pairs.append((gap, i, j))
        pairs.sort()
        used_t: set[int] = set()
        used_a: set[int] = set()
        delays = []
        for _gap, i, j in pairs:
            if i in used_t or j in used_a:
                continue
            used_t.add(i)
            used_a.add(j)
            delays.append((al[j].time_ms - ts[i].time_ms) / 1000.0)
        out.append(TypeScore(kind, len(ts), len(al), len(used_t), tuple(delays)))
    return out


def score_dir(scenario_dir: Path, alerts_path: Path, tolerance_s: float) -> list[TypeScore]:
    truth = read_records(scenario_dir / "truth.jsonl", strict_types=True)
    alerts = read_records(alerts_path, strict_types=False)
    fleet_path = scenario_dir / "fleet.json"
    fleet = read_fleet(fleet_path) if fleet_path.exists() else None
    return score(truth, alerts, fleet, tolerance_s)


def table(scores: list[TypeScore]) -> list[str]:
    head = ("type", "truth", "alerts", "match", "prec", "recall", "delay_med_s")
    lines = [f"{head[0]:<20} " + " ".join(f"{h:>6}" for h in head[1:])]
    for s in scores:
        d = s.as_dict()
        med = "-" if d["delay_s_median"] is None else f"{d['delay_s_median']:.1f}"
        cells = (s.truth, s.alerts, s.matched, f"{s.precision:.3f}", f"{s.recall:.3f}", med)
        lines.append(f"{s.type:<20} " + " ".join(f"{c:>6}" for c in cells))
    return lines


def summary(scores: list[TypeScore], tolerance_s: float) -> dict[str, Any]:
    return {"tolerance_s": tolerance_s, "types": {s.type: s.as_dict() for s in scores}}
