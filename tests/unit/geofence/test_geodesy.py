"""The corridor projection: the PROJ pipeline written out gives what the CRS lookup gives."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from geofence.geodesy import local_projection, project, unproject


@pytest.mark.parametrize(("lon0", "lat0"), [(121.473701, 31.230416), (-70.5, -33.4), (12.0, 78.2)])
def test_the_pipeline_is_the_crs_transformer_to_the_bit(lon0: float, lat0: float) -> None:
    crs = pyproj.CRS.from_proj4(
        f"+proj=aeqd +lat_0={lat0:.9f} +lon_0={lon0:.9f} +datum=WGS84 +units=m"
    )
    reference = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    ours = local_projection(lon0, lat0)
    rng = np.random.default_rng(7)
    for spread in (0.001, 0.5, 20.0):
        lon = lon0 + rng.uniform(-spread, spread, 5_000)
        lat = np.clip(lat0 + rng.uniform(-spread, spread, 5_000), -89.0, 89.0)
        x, y = project(ours, lon, lat)
        rx, ry = reference.transform(lon, lat)
        assert np.array_equal(x, rx)
        assert np.array_equal(y, ry)
        back = unproject(ours, x, y)
        expected = reference.transform(rx, ry, direction="INVERSE")
        assert np.array_equal(back[0], expected[0])
        assert np.array_equal(back[1], expected[1])
