"""The README and docs/settings.md list every setting with its real default.

A setting added to `lienwatch/settings.py` without a row in both tables (or a default changed
in one place only) fails here, so the documentation cannot fall behind the model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lienwatch.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "settings.md"]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def setting_rows(text: str) -> dict[str, str]:
    """variable -> default cell, from every table with a `variable` and a `default` column."""
    rows: dict[str, str] = {}
    columns: list[str] | None = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            columns = None
            continue
        row = cells(line.replace("\\|", "/"))
        if columns is None:
            columns = [c.lower() for c in row]
            continue
        if "variable" not in columns or "default" not in columns:
            continue
        name = row[columns.index("variable")].strip("`")
        if name.startswith(ENV_PREFIX):
            assert name not in rows, f"{name} is listed twice"
            rows[name] = row[columns.index("default")]
    return rows


def documented_default(cell: str) -> str:
    """The default a cell states: its first `literal`, or `unset`."""
    if cell.startswith("unset"):
        return "unset"
    match = re.match(r"`([^`]*)`", cell)
    assert match, f"default cell {cell!r} starts with neither `value` nor unset"
    return match.group(1)


def rendered(value: Any) -> str:
    """A default as the documents write it (the way it would be set)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return value.as_posix() if value.is_absolute() else f"./{value.as_posix()}"
    if value == "":
        return '""'
    return str(value)


EXPECTED = {
    ENV_PREFIX + name.upper(): rendered(f.default) for name, f in Settings.model_fields.items()
}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_setting_is_documented_with_its_default(document: Path) -> None:
    rows = setting_rows(document.read_text(encoding="utf-8"))
    assert sorted(rows) == sorted(EXPECTED), "documented variables differ from the model"
    stated = {name: documented_default(cell) for name, cell in rows.items()}
    wrong = {n: (stated[n], EXPECTED[n]) for n in EXPECTED if stated[n] != EXPECTED[n]}
    assert wrong == {}, "documented default != model default"


def test_the_check_sees_a_missing_and_a_wrong_row() -> None:
    text = "| variable | default | meaning |\n|---|---|---|\n| `LIENWATCH_DATA_DIR` | `./x` | d |\n"
    rows = setting_rows(text)
    assert sorted(rows) != sorted(EXPECTED)
    assert documented_default(rows["LIENWATCH_DATA_DIR"]) != EXPECTED["LIENWATCH_DATA_DIR"]
