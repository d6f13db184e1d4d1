"""Candidate risk spots (`gathering`): their SQL and rows, for both databases (`store.spots`).

A candidate is written with its gathering alert, in the alert's transaction (`INSERT_CANDIDATE`),
so a proposal is never lost nor stored twice (the alert's incident key guards both). Accepting
one turns it into a hotspot fence in the same transaction as the decision (`store.spots`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from alerts.lifecycle import StoredAlert
from alerts.model import AlertType
from store.interface import SpotCandidate, SpotCandidateError

_COLUMNS = (
    "id, alert_id, lon, lat, radius_m, borrowers, evidence, proposed_ms, created_ms, status,"
    " fence_id, decided_ms, decided_by, note"
)


def _sql(text: str, placeholder: str) -> str:
    return text.replace("?", placeholder)


def candidate_rows(new: Sequence[StoredAlert], now_ms: int) -> list[tuple[Any, ...]]:
    """Insert parameters for the gathering alerts among `new` (stored alerts)."""
    rows = []
    for stored in new:
        alert = stored.alert
        if alert.type is not AlertType.GATHERING:
            continue
        d = alert.details
        rows.append(
            (
                stored.id, float(d["lon"]), float(d["lat"]), float(d["radius_m"]),
                int(d["borrowers"]), json.dumps(d.get("visits", []), ensure_ascii=False),
                alert.time_ms, now_ms,
            )
        )  # fmt: skip
    return rows


INSERT_CANDIDATE = (
    "INSERT INTO spot_candidates (alert_id, lon, lat, radius_m, borrowers, evidence,"
    " proposed_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def list_query(
    status: str | None, after_id: int, limit: int, placeholder: str
) -> tuple[str, list[Any]]:
    """The SELECT of a page of candidates (rows for `candidate`) and its parameters."""
    where = "id > ?"
    params: list[Any] = [after_id]
    if status is not None:
        where += " AND status = ?"
        params.append(status)
    sql = f"SELECT {_COLUMNS} FROM spot_candidates WHERE {where} ORDER BY id LIMIT ?"
    return _sql(sql, placeholder), [*params, limit]


def get_query(candidate_id: int, placeholder: str) -> tuple[str, list[Any]]:
    return _sql(f"SELECT {_COLUMNS} FROM spot_candidates WHERE id = ?", placeholder), [candidate_id]


def decide_query(
    candidate_id: int,
    status: str,
    fence_id: str | None,
    by: str,
    note: str | None,
    now_ms: int,
) -> tuple[str, list[Any]]:
    """Marks a proposed candidate accepted or dismissed, returning its row; none when it is not
    proposed (any more): the caller tells a missing one from an already decided one."""
    return (
        "UPDATE spot_candidates SET status = ?, fence_id = ?, decided_ms = ?, decided_by = ?,"
        f" note = ? WHERE id = ? AND status = 'proposed' RETURNING {_COLUMNS}",
        [status, fence_id, now_ms, by, note, candidate_id],
    )


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
    )


def undecidable(candidate_id: int, found: SpotCandidate | None) -> SpotCandidateError:
    """Why a candidate could not be decided: missing, or decided already."""
    if found is None:
        return SpotCandidateError("missing", f"no spot candidate {candidate_id}")
    return SpotCandidateError("decided", f"spot candidate {candidate_id} is already {found.status}")
