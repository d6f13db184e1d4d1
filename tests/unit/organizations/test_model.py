"""Units, paths and scopes: who may create what, and what a subtree contains."""

from __future__ import annotations

import pytest

from organizations import (
    EVERYWHERE,
    ROOT_ID,
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

ROOT = Unit(ROOT_ID, "platform", UnitKind.PLATFORM, None, "/1/", 0)
ACME = Unit(7, "Acme", UnitKind.TENANT, ROOT_ID, "/1/7/", 0)
NORTH = Unit(12, "North", UnitKind.BRANCH, 7, "/1/7/12/", 0)
OTHER = Unit(8, "Other", UnitKind.TENANT, ROOT_ID, "/1/8/", 0)


def test_a_subtree_is_a_path_prefix_of_whole_ids() -> None:
    acme = Scope(7, "/1/7/")
    assert acme.contains("/1/7/") and acme.contains("/1/7/12/")
    assert not acme.contains("/1/70/")  # 70 is not under 7: paths end each id with '/'
    assert not acme.contains("/1/")
    assert EVERYWHERE.contains("/1/70/") and EVERYWHERE.is_root
    assert child_path("/1/7/", 12) == "/1/7/12/"
    assert acme.like == "/1/7/%"


def test_tenants_hang_under_the_root_and_only_root_keys_make_them() -> None:
    check_new_unit(UnitKind.TENANT, ROOT, EVERYWHERE)
    with pytest.raises(OrgForbiddenError):
        check_new_unit(UnitKind.TENANT, ROOT, Scope(7, "/1/7/"))
    with pytest.raises(OrgError, match="parent"):
        check_new_unit(UnitKind.TENANT, ACME, EVERYWHERE)
    with pytest.raises(OrgError, match="kind"):
        check_new_unit(UnitKind.PLATFORM, ROOT, EVERYWHERE)


def test_branches_and_dealers_hang_under_a_unit_of_the_callers_subtree() -> None:
    acme = Scope(7, "/1/7/")
    check_new_unit(UnitKind.BRANCH, ACME, acme)
    check_new_unit(UnitKind.DEALER, NORTH, acme)
    with pytest.raises(OrgError, match="parent"):
        check_new_unit(UnitKind.BRANCH, ROOT, EVERYWHERE)  # a branch needs a tenant above
    with pytest.raises(OrgError, match="parent"):
        check_new_unit(UnitKind.BRANCH, OTHER, acme)
    with pytest.raises(OrgError, match="parent"):
        check_new_unit(UnitKind.DEALER, ACME, Scope(12, "/1/7/12/"))  # above the caller


def test_tenants_and_fence_reach_follow_the_path() -> None:
    assert tenant_of("/1/") is None
    assert tenant_of("/1/7/") == 7 and tenant_of("/1/7/12/30/") == 7
    assert fence_reaches("/1/", "/1/8/") and fence_reaches(None, None)
    assert fence_reaches("/1/7/", "/1/7/12/")
    assert not fence_reaches("/1/7/", "/1/8/")
    assert not fence_reaches("/1/7/12/", "/1/7/")  # a branch's fence is not its tenant's
    assert not fence_reaches("/1/7/", None)  # a device of the platform's own
    assert ACME.shown_parent is None and NORTH.shown_parent == 7
