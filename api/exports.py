"""Rows of the alert and track exports, and their CSV and XLSX writers.

CSV is streamed a page at a time (the caller reads a page, writes it, forgets it), so an export
of any length holds one page in memory. XLSX is a zip and cannot be streamed as it is written:
it is written to a temporary file with xlsxwriter's constant-memory mode (one row in memory),
then sent from the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

from alerts.lifecycle import StoredAlert
from api.views import positions_json
from positions import PositionBatch

ALERT_COLUMNS = (
    "id",
    "type",
    "severity",
    "state",
    "time",
    "vehicle_id",
    "device_id",
    "fence_id",
    "opened_at",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "assignee",
    "note",
    "details",
)
TRACK_COLUMNS = (
    "vehicle_id",
    "terminal",
    "time",
    "lat",
    "lon",
    "speed_kmh",
    "course",
    "altitude_m",
    "alarm",
    "status",
    "received",
    "valid",
    "flags",
)
XLSX_MAX_ROWS = 1_048_575  # a sheet's 1,048,576 rows, less the header
BOM = "\ufeff"  # so spreadsheet programs read the UTF-8 (Chinese names, places) as UTF-8


class TooManyRows(ValueError):
    """An XLSX export would not fit one sheet."""


def alert_rows(page: Iterable[StoredAlert]) -> list[list[Any]]:
    rows = []
    for stored in page:
        out = stored.to_json()
        out["details"] = json.dumps(out["details"], ensure_ascii=False, sort_keys=True)
        rows.append([out.get(c) for c in ALERT_COLUMNS])
    return rows


def track_rows(vehicle_id: str, terminal: str, batch: PositionBatch) -> list[list[Any]]:
    rows = []
    for p in positions_json(batch):
        p["vehicle_id"], p["terminal"] = vehicle_id, terminal
        p["flags"] = " ".join(p["flags"])
        rows.append([p[c] for c in TRACK_COLUMNS])
    return rows


def csv_text(rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


class XlsxSheet:
    """One sheet written row by row to `path` in constant memory; `close()` finishes the file."""

    def __init__(self, path: Path, name: str, columns: Sequence[str]) -> None:
        self._book = xlsxwriter.Workbook(
            str(path), {"constant_memory": True, "strings_to_numbers": False}
        )
        self._sheet = self._book.add_worksheet(name)
        bold = self._book.add_format({"bold": True})
        for col, title in enumerate(columns):
            self._sheet.write_string(0, col, title, bold)
        self._sheet.freeze_panes(1, 0)
        self.rows = 0

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            if self.rows >= XLSX_MAX_ROWS:
                raise TooManyRows(f"more than {XLSX_MAX_ROWS} rows")
            self.rows += 1
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    self._sheet.write_boolean(self.rows, col, value)
                elif isinstance(value, int | float):
                    self._sheet.write_number(self.rows, col, value)
                else:
                    self._sheet.write_string(self.rows, col, str(value))

    def close(self) -> None:
        self._book.close()
