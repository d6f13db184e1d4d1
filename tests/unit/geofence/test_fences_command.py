"""`lienwatch fences import`: spots into the library, exit 2 naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from geofence import SpotLibrary
from lienwatch.cli import app


def test_importing_a_csv_into_a_tenant_layer_writes_it_and_reports_counts(tmp_path: Path) -> None:
    spots = tmp_path / "spots.csv"
    spots.write_text("id,name,category,lon,lat\np1,A,pawn_shop,116.4,39.9\n", encoding="utf-8")
    library = tmp_path / "lib"
    args = ["fences", "import", str(spots), "--tenant", "acme", "--library", str(library)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 1
    assert [f.id for f in SpotLibrary.load(library).fences_for("acme")] == ["p1"]
    again = CliRunner().invoke(app, args)
    assert json.loads(again.stdout)["replaced"] == 1


def test_a_bad_row_exits_2_with_file_line_and_field(tmp_path: Path) -> None:
    spots = tmp_path / "spots.csv"
    spots.write_text("name,category,lon,lat\nA,pawn_shop,east,39.9\n", encoding="utf-8")
    args = ["fences", "import", str(spots), "--library", str(tmp_path / "lib")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"{spots}: line 2: lon: not a number" in result.stderr
    assert not (tmp_path / "lib").exists()
