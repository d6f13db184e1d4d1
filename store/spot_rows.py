"""Candidate risk spots (`gathering`): their SQL and rows, for both databases.

A candidate is written with its gathering alert, in the alert's transaction
(`store.alert_records`), so a proposal is never lost nor stored twice (the alert's incident key
guards both), and given its unit: the tenant whose subtree holds every car of the evidence, else
the platform (`evidence_owner`). The alert keeps only the visits its own unit's keys may see
(`redacted`). Accepting one turns it into a hotspot fence of that unit in the same transaction
as the decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from alerts.lifecycle import StoredAlert
from alerts.model import AlertType
from organizations import ROOT_ID, ROOT_PATH, tenant_of
from store.interface import SpotCandidate, SpotCandidateError

_COLUMNS = (
    "id, alert_id, lon, lat, radius_m, borrowers, evidence, proposed_ms, created_ms, status,"
    " fence_id, decided_ms, decided_by, note, org_id"
)
COLUMNS = _COLUMNS


def candidate_rows(
    new: Sequence[StoredAlert],
    now_ms: int,
    owner: Callable[[StoredAlert, list[Any]], int] | None = None,
) -> list[tuple[Any, ...]]:
    """Insert parameters for the gathering alerts among `new` (stored alerts); `owner` gives
    the unit of a candidate from its visits (default: the platform)."""
    rows = []
    for stored in new:
        alert = stored.alert
        if alert.type is not AlertType.GATHERING:
            continue
        d = alert.details
        visits = list(d.get("visits", []))
        rows.append(
            (
                stored.id, float(d["lon"]), float(d["lat"]), float(d["radius_m"]),
                int(d["borrowers"]), json.dumps(visits, ensure_ascii=False),
                alert.time_ms, now_ms, ROOT_ID if owner is None else owner(stored, visits),
            )
        )  # fmt: skip
    return rows


INSERT_CANDIDATE = (
    "INSERT INTO spot_candidates (alert_id, lon, lat, radius_m, borrowers, evidence,"
    " proposed_ms, created_ms, org_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A visit's car's unit path: its vehicle's unit, else its device's (as an alert's).
VISIT_PATH = (
    "SELECT o.path FROM orgs o WHERE o.id = coalesce("
    "(SELECT org_id FROM vehicles WHERE vehicle_id = ?),"
    " (SELECT org_id FROM devices WHERE terminal = ?))"
)


def visit_keys(visits: Sequence[Any]) -> list[tuple[str, str]]:
    """`VISIT_PATH` parameters of each visit of a gathering alert's evidence."""
    return [(str(v.get("vehicle_id", "")), str(v.get("device_id", ""))) for v in visits]


def evidence_owner(paths: Iterable[str | None]) -> int:
    """The unit a candidate belongs to, given the unit path of each car of its evidence: the
    tenant holding them all, else the platform (a car of no known unit is the platform's)."""
    tenants = {None if p is None else tenant_of(p) for p in paths}
    if len(tenants) == 1:
        (tenant,) = tenants
        if tenant is not None:
            return tenant
    return ROOT_ID


def redacted(stored: StoredAlert, paths: Sequence[str | None] | None) -> StoredAlert:
    """The gathering alert with the visits of cars outside its unit's subtree left out
    (`paths`: each visit's car's unit path) and counted in `details.other_visits`; the same
    object when none is."""
    if paths is None:
        return stored
    unit = stored.org_path or ROOT_PATH
    visits = list(stored.alert.details.get("visits", []))
    kept = [v for v, p in zip(visits, paths, strict=True) if (p or ROOT_PATH).startswith(unit)]
    if len(kept) == len(visits):
        return stored
    details = {**stored.alert.details, "visits": kept, "other_visits": len(visits) - len(kept)}
    return replace(stored, alert=replace(stored.alert, details=details))


def candidate(row: Sequence[Any]) -> SpotCandidate:
    evidence = row[6] if isinstance(row[6], list) else json.loads(row[6])
    return SpotCandidate(
        id=int(row[0]),
        alert_id=None if row[1] is None else int(row[1]),
        lon=float(row[2]),
        lat=float(row[3]),
        radius_m=float(row[4]),
        borrowers=int(row[5]),
        evidence=evidence,
        proposed_ms=int(row[7]),
        created_ms=int(row[8]),
        status=str(row[9]),
        fence_id=row[10],
        decided_ms=None if row[11] is None else int(row[11]),
        decided_by=row[12],
        note=row[13],
        org=int(row[14]),
    )


def undecidable(candidate_id: int, found: SpotCandidate | None) -> SpotCandidateError:
    """Why a candidate could not be decided: missing, or decided already."""
    if found is None:
        return SpotCandidateError("missing", f"no spot candidate {candidate_id}")
    return SpotCandidateError("decided", f"spot candidate {candidate_id} is already {found.status}")
