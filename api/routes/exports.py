"""Exports for a collector's file: alerts, and a car's track, as CSV (streamed) or XLSX.

- `GET /api/v1/exports/alerts.csv|.xlsx?type=&since=&until=&state=&vehicle_id=`
- `GET /api/v1/exports/vehicles/{vehicle_id}/track.csv|.xlsx?from=&to=`

A CSV answer is streamed a page of `PAGE` rows at a time: one page is read on a store thread,
written, and dropped before the next is read, so 100,000 rows (or ten million) cost one page of
memory. An XLSX answer is built in a temporary file first (constant memory) and refused with a
400 when it would not fit one sheet.
"""

import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import Request

from alerts.lifecycle import AlertState
from api import params
from api.auth import Identity
from api.context import ApiContext
from api.errors import bad_request, not_found
from api.exports import (
    ALERT_COLUMNS,
    BOM,
    TRACK_COLUMNS,
    TooManyRows,
    XlsxSheet,
    alert_rows,
    csv_text,
    track_rows,
)
from api.openapi import KEYED, NO_NUL, errors
from api.portfolio_reads import alert_pages
from api.routes.alerts import TYPE_PARAMETER, alert_types
from store import Store

PAGE = 5000
Format = Literal["csv", "xlsx"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file (CSV: UTF-8 with a byte-order mark, a header row)",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
# A page reader: given the store, the rows of the next page, or None when there are no more.
PageReader = Callable[[Store], list[list[Any]] | None]


def _track_pages(
    vehicle_id: str, terminals: list[str], start: int, end: int, page: int = PAGE
) -> PageReader:
    """Each tracker's fixes with start <= time <= end, tracker by tracker in time order, a page
    at a time. A page ends before its last fix time, which starts the next page, so fixes
    sharing a time are never split and none is read twice."""
    state = {"terminal": 0, "from": start}

    def read(store: Store) -> list[list[Any]] | None:
        while state["terminal"] < len(terminals):
            term = terminals[state["terminal"]]
            batch = store.track(term, state["from"], end + 1, limit=page)
            if len(batch) <= page:
                state["terminal"] += 1
                state["from"] = start
                if len(batch):
                    return track_rows(vehicle_id, term, batch)
                continue
            last = int(batch.time_ms[page - 1])
            keep = batch.time_ms[:page] < last
            if not keep.any():  # a full page of one fix time: take it, go past that time
                keep[:] = True
                last += 1
            state["from"] = last
            return track_rows(vehicle_id, term, batch.take(keep.nonzero()[0]))
        return None

    return read


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1/exports", tags=["exports"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]

    async def stream_csv(read: PageReader, columns: tuple[str, ...]) -> AsyncIterator[bytes]:
        yield (BOM + csv_text([columns])).encode()
        while True:
            rows = await ctx.stores.run(read)
            if rows is None:
                return
            yield csv_text(rows).encode()

    def answer(
        fmt: Format, read: PageReader, columns: tuple[str, ...], name: str
    ) -> StreamingResponse:
        headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
        return StreamingResponse(
            stream_csv(read, columns), media_type="text/csv; charset=utf-8", headers=headers
        )

    async def xlsx(read: PageReader, columns: tuple[str, ...], name: str) -> FileResponse:
        fd, raw = tempfile.mkstemp(prefix="lienwatch-export-", suffix=".xlsx")
        os.close(fd)
        path = Path(raw)

        def write(store: Store) -> None:
            sheet = XlsxSheet(path, name[:31], columns)
            try:
                for rows in iter(lambda: read(store), None):
                    sheet.write(rows)
            finally:
                sheet.close()

        try:
            await ctx.stores.run(write)
        except TooManyRows as exc:
            path.unlink(missing_ok=True)
            raise bad_request("query", f"{exc}: narrow the range, or export CSV") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return FileResponse(
            path,
            media_type=XLSX_TYPE,
            filename=f"{name}.xlsx",
            background=BackgroundTask(lambda: path.unlink(missing_ok=True)),
        )

    @api.get(
        "/alerts.{fmt}",
        response_model=None,
        responses={**_FILE_ANSWERS, **errors(*KEYED)},
        openapi_extra={"parameters": [TYPE_PARAMETER]},
    )
    async def export_alerts(
        request: Request,
        fmt: Format,
        who: viewer,
        since: Annotated[params.QueryTime | None, Query(description="alert time from")] = None,
        until: Annotated[params.QueryTime | None, Query(description="alert time to")] = None,
        state: AlertState | None = None,
        vehicle_id: Annotated[
            str | None, Query(min_length=1, max_length=64, pattern=NO_NUL)
        ] = None,
    ) -> Any:
        """Alerts matching every filter given, by id, one row each (details as JSON text)."""
        given = request.query_params.getlist("type")
        types = alert_types(",".join(given) if given else None, "query.type")
        wanted = sorted(types) if types else [None]
        cursor = {"type": 0, "after": 0}

        def read(store: Store) -> list[list[Any]] | None:
            while cursor["type"] < len(wanted):
                pages = alert_pages(
                    store,
                    since_ms=since,
                    state=state,
                    alert_type=wanted[cursor["type"]],
                    vehicle_id=vehicle_id,
                    after_id=cursor["after"],
                )
                page = next(pages, None)
                if page is None:
                    cursor["type"] += 1
                    cursor["after"] = 0
                    continue
                cursor["after"] = page[-1].id
                kept = [a for a in page if until is None or a.alert.time_ms <= until]
                if kept:
                    return alert_rows(kept)
            return None

        if fmt == "xlsx":
            return await xlsx(read, ALERT_COLUMNS, "alerts")
        return answer(fmt, read, ALERT_COLUMNS, "alerts")

    @api.get(
        "/vehicles/{vehicle_id}/track.{fmt}",
        response_model=None,
        responses={**_FILE_ANSWERS, **errors(*KEYED, 404)},
    )
    async def export_track(
        vehicle_id: Annotated[str, PathParam(min_length=1, max_length=64, pattern=NO_NUL)],
        fmt: Format,
        who: viewer,
        from_: Annotated[params.QueryTime, Query(alias="from")],
        to: Annotated[params.QueryTime | None, Query(description="default now")] = None,
    ) -> Any:
        """The car's fixes with from <= fix time <= to, tracker by tracker, each in time
        order: every stored fix, valid or not (the `valid` and `flags` columns say which)."""
        end = to if to is not None else ctx.clock_ms()
        terminals = await ctx.stores.run(lambda s: _bound_terminals(s, vehicle_id))
        if not terminals:
            raise not_found(f"no device is bound to vehicle {vehicle_id!r}")
        read = _track_pages(vehicle_id, terminals, from_, end)
        name = "track-" + re.sub(r"[^A-Za-z0-9._-]", "_", vehicle_id)
        if fmt == "xlsx":
            return await xlsx(read, TRACK_COLUMNS, name)
        return answer(fmt, read, TRACK_COLUMNS, name)

    return api


def _bound_terminals(store: Store, vehicle_id: str) -> list[str]:
    found: list[str] = []
    while True:
        page = store.find_devices(
            vehicle_id=vehicle_id, after=found[-1] if found else "", limit=1000
        )
        found += [d.terminal for d in page]
        if len(page) < 1000:
            return found
