"""API keys: roles, hashing, the bootstrap admin key and the FastAPI dependency that checks them.

A key is `lw_` and 43 random URL-safe characters (256 bits); the store keeps only its SHA-256
(enough for a high-entropy secret: no slow hash needed) and its first characters as a
non-secret prefix, so it is shown once, at creation. Roles nest: a viewer reads; an officer
also acts on alerts and sends commands; an admin also manages keys, devices and fences.
HTTP requests carry `Authorization: Bearer KEY`; a WebSocket, which a browser cannot give
headers, may carry `?key=KEY` instead.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Security, WebSocketException, status
from starlette.requests import HTTPConnection

from api.errors import ApiError
from api.openapi import BEARER
from api.stores import StoreAccess
from organizations import ROOT_ID, Scope
from store import Store
from store.interface import ApiKey

KEY_PREFIX = "lw_"
_SHOWN_PREFIX_CHARS = 10
BOOTSTRAP_NAME = "admin"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.OFFICER: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the key's name, role and organization unit (with its path)."""

    name: str
    role: Role
    org: int = ROOT_ID
    path: str = f"/{ROOT_ID}/"
    units: tuple[int, ...] = ()  # the subtree's unit ids, as read with the key

    @property
    def scope(self) -> Scope:
        """The subtree of the key's unit: all it may see and change."""
        return Scope(self.org, self.path, self.units)

    def can(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_record(name: str, role: Role, key: str, now_ms: int, org: int = ROOT_ID) -> ApiKey:
    """What the store keeps of a key: never the key itself."""
    return ApiKey(name, role.value, hash_key(key), key[:_SHOWN_PREFIX_CHARS], now_ms, org)


def ensure_admin_key(store: Store, configured_key: str | None) -> str | None:
    """The bootstrap: called once at start-up with `LIENWATCH_ADMIN_API_KEY`; the key
    belongs to the root unit (the platform operator).

    A configured key is stored as the admin key named `admin` (replacing an older one of that
    name) unless the store already knows it; returns None. Without one, an admin key is created
    only when the platform unit has none; it is returned so the caller prints it once (None
    otherwise).
    """
    now_ms = time.time_ns() // 1_000_000
    if configured_key is not None and configured_key.strip():
        key = configured_key.strip()
        if store.api_key_by_hash(hash_key(key)) is None:
            store.create_api_key(key_record(BOOTSTRAP_NAME, Role.ADMIN, key, now_ms), replace=True)
        return None
    if any(k.role == Role.ADMIN and k.org == ROOT_ID for k in store.list_api_keys()):
        return None
    key = new_key()
    name = BOOTSTRAP_NAME
    taken = {k.name for k in store.list_api_keys()}
    suffix = 1
    while name in taken:  # a non-admin key already uses the name
        suffix += 1
        name = f"{BOOTSTRAP_NAME}-{suffix}"
    store.create_api_key(key_record(name, Role.ADMIN, key, now_ms))
    return key


class Authenticator:
    """Builds the FastAPI dependencies that check keys against the store.

    `Depends(auth.require(Role.OFFICER))` (or `auth.officer`) gives the caller's `Identity`,
    or answers 401 (no or unknown key) / 403 (role too low); on a WebSocket it closes with
    policy violation (1008) instead.
    """

    def __init__(self, stores: StoreAccess) -> None:
        self._stores = stores
        self.viewer = self.require(Role.VIEWER)
        self.officer = self.require(Role.OFFICER)
        self.admin = self.require(Role.ADMIN)

    async def identify(self, token: str) -> Identity | None:
        digest = hash_key(token)
        found = await self._stores.run(lambda s: s.caller_by_key(digest))
        if found is None:
            return None
        return Identity(found.name, Role(found.role), found.org, found.path, found.units)

    def require(self, role: Role) -> Callable[..., Awaitable[Identity]]:
        async def dependency(
            conn: HTTPConnection, token: Annotated[str | None, Security(BEARER)]
        ) -> Identity:
            websocket = conn.scope["type"] == "websocket"
            identity = await self.identify(token) if token else None
            if identity is None:
                if websocket:
                    raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "unauthorized")
                raise ApiError(
                    401,
                    "unauthorized",
                    "missing or unknown API key: send Authorization: Bearer KEY",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not identity.can(role):
                if websocket:
                    raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "forbidden")
                raise ApiError(
                    403, "forbidden", f"key {identity.name!r} is {identity.role}; needs {role}"
                )
            return identity

        dependency.__name__ = f"require_{role.value}"
        return dependency
