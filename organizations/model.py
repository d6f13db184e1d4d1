"""Units, kinds, paths and scopes (see the package docstring)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

ROOT_ID = 1
ROOT_PATH = f"/{ROOT_ID}/"


class UnitKind(enum.StrEnum):
    PLATFORM = "platform"  # the root: the operator hosting every tenant; exactly one
    TENANT = "tenant"
    BRANCH = "branch"
    DEALER = "dealer"


class OrgError(ValueError):
    """A unit that may not be created there; `field` names the request field at fault."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class OrgForbiddenError(OrgError):
    """The caller may not create that unit (a tenant, by a key below the root)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a caller may see and change: the subtree of its unit `org` (whose path is `path`).
    `units` lists the subtree's unit ids when the caller knows them (empty: not read), which
    lets a query name them instead of matching paths."""

    org: int
    path: str
    units: tuple[int, ...] = ()

    def contains(self, path: str) -> bool:
        """Whether the unit with that path is in this subtree (the unit itself included)."""
        return path.startswith(self.path)

    @property
    def is_root(self) -> bool:
        return self.path == ROOT_PATH

    @property
    def like(self) -> str:
        """The SQL LIKE pattern of the subtree's paths (paths hold digits and `/` only)."""
        return self.path + "%"


EVERYWHERE = Scope(ROOT_ID, ROOT_PATH)


@dataclass(frozen=True, slots=True)
class Unit:
    """A stored unit; `parent` is None for the root only."""

    id: int
    name: str
    kind: UnitKind
    parent: int | None
    path: str
    created_ms: int

    @property
    def shown_parent(self) -> int | None:
        """The parent as the API shows it: a tenant's is null (the root is the platform)."""
        return None if self.parent == ROOT_ID else self.parent


def fence_reaches(fence_path: str | None, owner_path: str | None) -> bool:
    """Whether a fence of the unit at `fence_path` applies to a car (or device) of the unit at
    `owner_path`: the platform's fences apply to every car, a unit's only to its subtree's
    (None: the platform's)."""
    fence = ROOT_PATH if fence_path is None else fence_path
    return (ROOT_PATH if owner_path is None else owner_path).startswith(fence)


def tenant_of(path: str) -> int | None:
    """The tenant a unit of that path is under (itself for a tenant); None for the root."""
    ids = path.strip("/").split("/")
    return int(ids[1]) if len(ids) > 1 else None


def child_path(parent_path: str, unit_id: int) -> str:
    return f"{parent_path}{unit_id}/"


def check_new_unit(kind: UnitKind, parent: Unit, caller: Scope) -> None:
    """Raises OrgError when a caller of scope `caller` may not create a `kind` unit under
    `parent`: a tenant hangs under the root and only root keys create it; a branch or dealer
    hangs under a tenant, branch or dealer in the caller's subtree. The caller must be an
    admin (the route checks the role)."""
    if kind is UnitKind.PLATFORM:
        raise OrgError("kind", "there is one platform unit, created with the database")
    if kind is UnitKind.TENANT:
        if parent.kind is not UnitKind.PLATFORM:
            raise OrgError("parent", "a tenant has no parent (null)")
        if not caller.is_root:
            raise OrgForbiddenError("kind", "only keys of the platform unit create tenants")
        return
    if parent.kind is UnitKind.PLATFORM:
        raise OrgError("parent", f"a {kind} needs a parent unit (a tenant, branch or dealer)")
    if not caller.contains(parent.path):
        raise OrgError("parent", "not found")
