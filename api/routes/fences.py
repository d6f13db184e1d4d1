"""Fences: `/api/v1/fences` (contracts sections 3 and 6).

A posted Feature or FeatureCollection is validated by the geofence package's own loader (errors
name the feature and field), converted to WGS-84 when `crs` says it was drawn on a Chinese map
(GCJ-02, BD-09), and stored by id: a fence with a known id replaces it. Every change bumps the
store's fence-set version, which a running engine polls to reload.
"""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Identity
from api.context import ApiContext
from api.errors import ApiError, bad_request, not_found
from api.fence_views import FenceViews
from api.models import Feature, FenceCollection, FenceDeleted, FencesPut
from api.openapi import KEYED, MAX_ORG_ID, NO_NUL, ROLE, errors
from geofence import Crs, FenceError, FenceKind, fences_to_geojson, load_fences
from geofence.model import MAX_BUFFER_M, MAX_RADIUS_M, MIN_BUFFER_M, MIN_RADIUS_M
from store.fencerows import feature_collection
from store.interface import FenceFeature, StoredFence
from store.scoped import ScopedStore

MAX_BODY_BYTES = 64 * 1024 * 1024
FenceId = Annotated[str, Path(pattern=NO_NUL)]


_POSITION = {
    "type": "array",
    "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180},
        {"type": "number", "minimum": -90, "maximum": 90},
    ],
    "minItems": 2,
    "description": "lon, lat in degrees; later elements (altitude) are ignored",
}
_RING = {"type": "array", "items": _POSITION, "minItems": 4}
_POLYGON = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"const": "Polygon"},
        "coordinates": {"type": "array", "items": _RING, "minItems": 1},
    },
}
_MULTIPOLYGON = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"const": "MultiPolygon"},
        "coordinates": {
            "type": "array",
            "items": {"type": "array", "items": _RING, "minItems": 1},
            "minItems": 1,
        },
    },
}
_POINT = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {"type": {"const": "Point"}, "coordinates": _POSITION},
}
_LINE = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"const": "LineString"},
        "coordinates": {"type": "array", "items": _POSITION, "minItems": 2},
    },
}
_COMMON = {
    "id": {"type": ["string", "integer"], "minLength": 1},
    "name": {"type": ["string", "null"]},
    "kind": {"enum": [k.value for k in FenceKind]},
    "notify": {
        "type": ["array", "null"],
        "items": {"enum": ["enter", "exit"]},
        "description": "for a zone only (any other kind takes both or none)",
    },
    "vehicles": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}},
    "crs": {"type": "string", "description": "this feature's coordinates, as the query's crs"},
    "org": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_ORG_ID,
        "description": "the owning unit (default: the body's `org`, a replaced fence's own,"
        " else the caller's; in its subtree)",
    },
}
_NONE = {"type": "null", "description": "not for this geometry"}


def _feature(geometry: dict[str, Any], sizes: dict[str, Any], what: str) -> dict[str, Any]:
    """A Feature of one geometry type with the size properties it takes: a circle needs
    `radius_m`, a corridor `buffer_m`; other properties are kept."""
    required = ["id", "kind", *(k for k, v in sizes.items() if v is not _NONE)]
    return {
        "type": "object",
        "required": ["type", "properties", "geometry"],
        "properties": {
            "type": {"const": "Feature"},
            "properties": {
                "type": "object",
                "required": required,
                "properties": {**_COMMON, **sizes},
            },
            "geometry": geometry,
        },
        "description": what,
    }


_AREA = {"radius_m": _NONE, "buffer_m": _NONE}
_RADIUS = {"type": "number", "minimum": MIN_RADIUS_M, "maximum": MAX_RADIUS_M}
_BUFFER = {"type": "number", "minimum": MIN_BUFFER_M, "maximum": MAX_BUFFER_M}
_FEATURE = {
    "oneOf": [
        _feature(_POLYGON, _AREA, "an area"),
        _feature(_MULTIPOLYGON, _AREA, "areas"),
        _feature(_POINT, {"radius_m": _RADIUS}, "a circle"),
        _feature(_LINE, {"buffer_m": _BUFFER}, "a corridor"),
        _feature(
            {"type": "null"},
            {"adcode": {"type": "string", "pattern": "^[0-9]{6}$"}, **_AREA},
            "an administrative unit (an allowed_area or zone): a province, city or county"
            " of China by its adcode, e.g. 330000 for Zhejiang",
        ),
    ]
}
# The request body as JSON Schema: the route reads the raw body (the geofence loader validates
# it, naming feature and field), so FastAPI cannot derive it. Shapes only: ring closure,
# self-intersection and the like are the loader's to check (a 400 `bad_fence`).
FENCE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _FEATURE,
                    {
                        "type": "object",
                        "required": ["type", "features"],
                        "properties": {
                            "type": {"const": "FeatureCollection"},
                            "features": {"type": "array", "items": _FEATURE, "minItems": 1},
                        },
                    },
                ]
            },
            "examples": {
                "hotspot": {
                    "value": {
                        "type": "Feature",
                        "properties": {"id": "pawn-17", "kind": "hotspot", "radius_m": 150},
                        "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]},
                    }
                }
            },
        }
    },
}


def _crs(value: Crs | None) -> Crs:
    return Crs.WGS84 if value is None else value


async def _json_body(request: Request) -> Any:
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"body: more than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request("body", f"not valid JSON: {exc}") from None


def _orgs(document: Any) -> dict[str, int | None]:
    """fence id -> the unit given for it: `properties.org` of the feature, else `org` of the
    whole body (a Feature or FeatureCollection), else None (the default)."""
    if not isinstance(document, dict):
        return {}
    default = _org_value(document.get("org"), "org")
    features = (
        document.get("features") if document.get("type") == "FeatureCollection" else [document]
    )
    found: dict[str, int | None] = {}
    for index, feature in enumerate(features if isinstance(features, list) else []):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or not isinstance(props.get("id"), str | int):
            continue
        given = _org_value(props.pop("org", None), f"features[{index}].properties.org")
        found[str(props["id"])] = default if given is None else given
    return found


def _org_value(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ORG_ID:
        raise bad_request(field, "an organization unit id (a positive integer)")
    return int(value)


def _in_crs(stored: list[StoredFence], crs: Crs) -> list[dict[str, Any]]:
    """Stored features (each with its unit as `properties.org`), or the same fences
    converted to `crs` for a Chinese map."""
    collection = feature_collection(stored)
    for fence, feature in zip(stored, collection["features"], strict=True):
        feature["properties"]["org"] = fence.org
    if crs is Crs.WGS84:
        features: list[dict[str, Any]] = collection["features"]
        return features
    converted: list[dict[str, Any]] = fences_to_geojson(load_fences(collection, name="store"), crs)[
        "features"
    ]
    return converted


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["fences"])
    viewer = Annotated[Identity, Depends(ctx.auth.viewer)]
    admin = Annotated[Identity, Depends(ctx.auth.admin)]
    crs_query = Query(description="coordinates of the body or answer (default wgs84)")
    views = FenceViews()

    @api.post(
        "/fences",
        status_code=201,
        responses={201: {"model": FencesPut}, **errors(*ROLE, 404, 413)},
        openapi_extra={"requestBody": FENCE_BODY},
    )
    async def post_fences(
        request: Request, who: admin, crs: Annotated[Crs | None, crs_query] = None
    ) -> JSONResponse:
        """Creates or replaces fences by id from a GeoJSON Feature or FeatureCollection."""
        source = _crs(crs)
        document = await _json_body(request)
        orgs = _orgs(document)  # takes `properties.org` out: the unit is not fence geometry
        try:
            fences = load_fences(document, crs=source, name="body")  # FenceError -> 400
        except FenceError:
            raise
        except (ValueError, TypeError) as exc:  # input the loader does not catch itself
            raise ApiError(400, "bad_fence", f"body: unusable geometry ({exc})") from None
        if not fences:
            raise bad_request("features", "no fence in the collection")
        features = fences_to_geojson(fences)["features"]
        rows = [
            FenceFeature(f.id, str(f.kind), json.dumps(feature, ensure_ascii=False))
            for f, feature in zip(fences, features, strict=True)
        ]
        version = await ctx.scoped(who, lambda s: s.put_fences(rows, orgs))
        return JSONResponse({"version": version, "ids": [f.id for f in fences]}, 201)

    @api.get(
        "/fences",
        response_model=None,
        responses={200: {"model": FenceCollection}, **errors(*KEYED)},
    )
    async def list_fences(
        who: viewer,
        kind: FenceKind | None = None,
        crs: Annotated[Crs | None, crs_query] = None,
    ) -> Response:
        """Every fence as a FeatureCollection, with the fence-set `version`."""
        target = _crs(crs)
        scope = who.path
        version = await ctx.scoped(who, lambda s: s.fences_version())
        body = views.get(scope, version, target, kind)
        if body is None:

            def build(store: ScopedStore) -> bytes:
                stored = store.fences()
                if kind is not None:
                    stored = [f for f in stored if f.kind == kind]
                return views.build(scope, version, target, kind, lambda: _in_crs(stored, target))

            body = await ctx.scoped(who, build)  # off the event loop: conversion costs
        return Response(body, media_type="application/json")

    @api.get(
        "/fences/{fence_id}",
        response_model=None,
        responses={200: {"model": Feature}, **errors(*KEYED, 404)},
    )
    async def get_fence(
        fence_id: FenceId, who: viewer, crs: Annotated[Crs | None, crs_query] = None
    ) -> dict[str, Any]:
        target = _crs(crs)
        stored = await ctx.scoped(who, lambda s: s.fence(fence_id))
        if stored is None:
            raise not_found(f"no fence {fence_id!r}")
        return _in_crs([stored], target)[0]

    @api.delete(
        "/fences/{fence_id}",
        response_model=None,
        responses={200: {"model": FenceDeleted}, **errors(*ROLE, 404)},
    )
    async def delete_fence(fence_id: FenceId, who: admin) -> dict[str, Any]:
        version = await ctx.scoped(who, lambda s: s.delete_fence(fence_id))
        if version is None:
            raise not_found(f"no fence {fence_id!r}")
        return {"deleted": fence_id, "version": version}

    return api
