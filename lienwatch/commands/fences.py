"""`lienwatch fences import FILE`: adds risk spots (GeoJSON or CSV) to the spot library.

The library is a directory (default: the data dir's `fences/`): `shared.geojson` for every
tenant, `tenants/<tenant>.geojson` for one tenant's own spots. Imported spots are validated,
converted to WGS-84 and merged by id (an imported spot replaces one with the same id). Bad input
exits 2 with the file, line or feature, and field on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geofence import Crs, FenceError, SpotLibrary, check_tenant, load_spots
from lienwatch.commands import fail
from lienwatch.settings import SettingsError, load_settings

fences_app = typer.Typer(help="Fences and the risk-spot library.", no_args_is_help=True)


@fences_app.command("import")
def import_spots(
    path: Annotated[Path, typer.Argument(help="spots as GeoJSON (.geojson/.json) or CSV")],
    tenant: Annotated[
        str | None, typer.Option(help="the tenant's own layer; default: shared")
    ] = None,
    crs: Annotated[str, typer.Option(help="coordinates of the file: wgs84, gcj02, bd09")] = "wgs84",
    library: Annotated[
        Path | None, typer.Option(help="library directory; default DATA_DIR/fences")
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="validate only, write nothing")] = False,
) -> None:
    """Validate risk spots and merge them into the shared or a tenant's layer."""
    try:
        source_crs = Crs.parse(crs)
        if tenant is not None:
            check_tenant(tenant)
        spots = load_spots(path, crs=source_crs)
    except (FenceError, ValueError) as exc:
        fail(str(exc))
    if library is not None:
        directory = library
    else:
        try:
            directory = load_settings().data_dir / "fences"
        except SettingsError as exc:
            fail(str(exc))
    try:
        current = SpotLibrary.load(directory)
    except FenceError as exc:
        fail(f"library: {exc}")
    layer = current.shared if tenant is None else current.tenants.get(tenant, ())
    known = {f.id for f in layer}
    replaced = sum(1 for spot in spots if spot.id in known)
    updated = current.with_spots(spots, tenant)
    written = None if check else updated.save_layer(directory, tenant)
    summary = {
        "imported": len(spots),
        "replaced": replaced,
        "layer": tenant or "shared",
        "total": len(updated.fences_for(tenant)),
        "path": str(written) if written else None,
    }
    print(json.dumps(summary, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(fences_app, name="fences")
