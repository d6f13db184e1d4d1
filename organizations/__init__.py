"""Organization units and the scope they give: pure meaning, no I/O.

A finance company is a tree of units: the platform operator at the root, tenants (companies)
under it, their branches (any depth) and dealers. A unit's `path` lists the ids from the root
down to it (`/1/7/12/`): the subtree of a unit is every unit whose path starts with its own,
so one prefix comparison tells whether a resource is in a caller's scope. Units never move, so
a path never changes once written.
"""

from organizations.model import (
    EVERYWHERE,
    ROOT_ID,
    ROOT_PATH,
    OrgError,
    OrgForbiddenError,
    Scope,
    Unit,
    UnitKind,
    check_new_unit,
    child_path,
    fence_reaches,
    tenant_of,
)

__all__ = [
    "EVERYWHERE",
    "ROOT_ID",
    "ROOT_PATH",
    "OrgError",
    "OrgForbiddenError",
    "Scope",
    "Unit",
    "UnitKind",
    "check_new_unit",
    "child_path",
    "fence_reaches",
    "tenant_of",
]
