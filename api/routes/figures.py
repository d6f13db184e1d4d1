"""Portfolio figures for risk officers, one route each: cars by risk level, cars by state,
alerts per type per day, and overdue buckets crossed with open alerts.

Counted from the store's own paged reads on a store thread (`api.portfolio_reads`), with the
same state and risk rules the map shows (`api.fleet`, `alerts.risk`).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from alerts.model import DEFAULT_UTC_OFFSET, AlertType
from alerts.risk import score_vehicles
from api import params
from api.auth import Identity
from api.context import ApiContext
from api.fleet import OFFLINE_AFTER_MS, RISK_LEVELS, STATES, risk_level, state_counts
from api.loan_views import local_date
from api.openapi import KEYED, errors
from api.portfolio_reads import alert_pages, all_loans, snapshot, unresolved_alerts
from api.views import iso
from loans import Bucket
from store.scoped import ScopedStore

DAY_MS = 86_400_000
MAX_DAYS = 366
LAST_MS = 4_102_444_799_999  # 2099-12-31T23:59:59.999Z: after any time a tracker can send


def _clamp(time_ms: int) -> int:
    """A query time within the years trackers can report in (1970-2099)."""
    return min(max(time_ms, 0), LAST_MS)


def _day_start_ms(day: date) -> int:
    """The first ms of a local day (GMT+8)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=DEFAULT_UTC_OFFSET)
    return int(midnight.timestamp() * 1000)


class RiskFigures(BaseModel):
    as_of: str
    days: int
    cars: int
    levels: dict[str, int]


class StateFigures(BaseModel):
    as_of: str
    offline_after_s: int
    cars: int
    states: dict[str, int]


class DayCounts(BaseModel):
    day: str
    total: int
    counts: dict[str, int]
    units: dict[str, dict[str, int]] = Field(
        description="organization unit id -> the day's non-zero counts by type"
    )


class AlertFigures(BaseModel):
    from_: str = Field(alias="from")
    to: str
    days: list[DayCounts]
    totals: dict[str, int]


class BucketRow(BaseModel):
    bucket: str
    loans: int
    with_open_alerts: int
    open_alerts: int
    by_type: dict[str, int]


class OverdueFigures(BaseModel):
    as_of: str
    buckets: list[BucketRow]


@dataclass(slots=True)
class _BucketCount:
    loans: int = 0
    with_open_alerts: int = 0
    open_alerts: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1/figures", tags=["figures"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]

    @api.get(
        "/risk", response_model=None, responses={200: {"model": RiskFigures}, **errors(*KEYED)}
    )
    async def risk(
        who: viewer,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="alerts looked back on")] = 60,
    ) -> dict[str, Any]:
        """Cars by risk level: each car's 0-100 score from its alerts of the last `days` days
        (`alerts.risk`), banded low < 30 <= medium < 60 <= high < 80 <= critical. A car with
        no alert is low."""
        now = ctx.clock_ms()

        def count(store: ScopedStore) -> tuple[int, Counter[str]]:
            cars = {c.key for c in snapshot(store, now, OFFLINE_AFTER_MS)}
            alerts = [
                a.alert for page in alert_pages(store, since_ms=now - days * DAY_MS) for a in page
            ]
            levels: Counter[str] = Counter()
            scored = set()
            for scored_car in score_vehicles(alerts, now):
                if scored_car.vehicle_id in cars:
                    scored.add(scored_car.vehicle_id)
                    levels[risk_level(scored_car.score)] += 1
            levels["low"] += len(cars - scored)
            return len(cars), levels

        total, levels = await ctx.scoped(who, count)
        return {
            "as_of": iso(now),
            "days": days,
            "cars": total,
            "levels": {level: levels[level] for level in RISK_LEVELS},
        }

    @api.get(
        "/states", response_model=None, responses={200: {"model": StateFigures}, **errors(*KEYED)}
    )
    async def states(
        who: viewer,
        offline_after_s: Annotated[int, Query(ge=1, le=86_400 * 30)] = OFFLINE_AFTER_MS // 1000,
    ) -> dict[str, Any]:
        """Cars by state, as the map colours them: `alarm` (an unresolved high or critical
        alert, or an emergency, power-cut or antenna-cut bit in its newest fix), else
        `offline` (nothing heard for `offline_after_s`), else `moving` (at least 5 km/h),
        else `parked`."""
        now = ctx.clock_ms()
        cars = await ctx.scoped(who, lambda s: snapshot(s, now, offline_after_s * 1000))
        counts = state_counts(cars)
        return {
            "as_of": iso(now),
            "offline_after_s": offline_after_s,
            "cars": len(cars),
            "states": {s: counts[s] for s in STATES},
        }

    @api.get(
        "/alerts", response_model=None, responses={200: {"model": AlertFigures}, **errors(*KEYED)}
    )
    async def alerts_per_day(
        who: viewer,
        from_: Annotated[params.QueryTime | None, Query(alias="from")] = None,
        to: Annotated[params.QueryTime | None, Query(description="default now")] = None,
    ) -> dict[str, Any]:
        """Alerts per type per local day (GMT+8), in all and per organization unit (`units`),
        with alert time in [from, to]; `to` defaults
        to now and `from` to 30 days before it. A range over 366 days keeps its last 366; one
        ending before it starts is empty (the answer's `from` and `to` say what was counted).
        Every day of the range is listed, every type in each day's counts (zero included)."""
        end = _clamp(to if to is not None else ctx.clock_ms())
        start = _clamp(from_ if from_ is not None else end - 30 * DAY_MS)
        if end >= start and (local_date(end) - local_date(start)).days >= MAX_DAYS:
            last_day = local_date(end)
            start = _day_start_ms(last_day - timedelta(days=MAX_DAYS - 1))
        first, last = local_date(start), local_date(end)

        def count(store: ScopedStore) -> dict[date, Counter[tuple[int | None, str]]]:
            per_day: dict[date, Counter[tuple[int | None, str]]] = defaultdict(Counter)
            for page in alert_pages(store, since_ms=start):
                for a in page:
                    if a.alert.time_ms <= end:
                        per_day[local_date(a.alert.time_ms)][(a.org, a.alert.type.value)] += 1
            return per_day

        per_unit_day = await ctx.scoped(who, count)
        types = [t.value for t in AlertType]
        days = []
        totals: Counter[str] = Counter()
        day = first
        while end >= start and day <= last:
            by_unit = per_unit_day.get(day, Counter())
            found: Counter[str] = Counter()
            units: dict[str, dict[str, int]] = defaultdict(dict)
            for (org, kind), n in sorted(by_unit.items(), key=lambda i: (i[0][0] or 0, i[0][1])):
                found[kind] += n
                units[str(org)][kind] = n
            totals.update(found)
            days.append(
                {
                    "day": day.isoformat(),
                    "total": sum(found.values()),
                    "counts": {t: found[t] for t in types},
                    "units": dict(units),
                }
            )
            day += timedelta(days=1)
        return {
            "from": iso(start),
            "to": iso(end),
            "days": days,
            "totals": {t: totals[t] for t in types},
        }

    @api.get(
        "/overdue",
        response_model=None,
        responses={200: {"model": OverdueFigures}, **errors(*KEYED)},
    )
    async def overdue(who: viewer) -> dict[str, Any]:
        """Loans by delinquency bucket (M0 to M4+, today in GMT+8; settled and written-off
        loans have none and are left out), each with how many of their cars have unresolved
        (open or acknowledged) alerts, how many such alerts, and those alerts by type."""
        now = ctx.clock_ms()
        today = local_date(now)

        def count(store: ScopedStore) -> list[dict[str, Any]]:
            by_vehicle: dict[str, Counter[str]] = defaultdict(Counter)
            for a in unresolved_alerts(store):
                by_vehicle[a.alert.vehicle_id][a.alert.type.value] += 1
            rows = {b: _BucketCount() for b in Bucket}
            for loan in all_loans(store):
                bucket = loan.bucket(today)
                if bucket is None:
                    continue
                row = rows[bucket]
                row.loans += 1
                found = by_vehicle.get(loan.vehicle_id)
                if found:
                    row.with_open_alerts += 1
                    row.open_alerts += sum(found.values())
                    row.by_type.update(found)
            return [
                {
                    "bucket": b.value,
                    "loans": r.loans,
                    "with_open_alerts": r.with_open_alerts,
                    "open_alerts": r.open_alerts,
                    "by_type": dict(sorted(r.by_type.items())),
                }
                for b, r in rows.items()
            ]

        return {"as_of": today.isoformat(), "buckets": await ctx.scoped(who, count)}

    return api
