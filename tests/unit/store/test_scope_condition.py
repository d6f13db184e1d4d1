"""The one SQL condition of a scope: nothing for the platform, the subtree's unit ids when
known, else a path match."""

from __future__ import annotations

from organizations import EVERYWHERE, Scope
from store.orgs import MAX_LISTED_UNITS, scope_condition


def test_the_platform_needs_no_condition() -> None:
    assert scope_condition(None) == (None, [])
    assert scope_condition(EVERYWHERE) == (None, [])


def test_known_units_are_listed_else_the_path_is_matched() -> None:
    assert scope_condition(Scope(7, "/1/7/", (7, 12)), "%s", "a.org_id") == (
        "a.org_id IN (%s, %s)",
        [7, 12],
    )
    assert scope_condition(Scope(7, "/1/7/")) == (
        "org_id IN (SELECT id FROM orgs WHERE path LIKE ?)",
        ["/1/7/%"],
    )
    many = Scope(7, "/1/7/", tuple(range(MAX_LISTED_UNITS + 1)))
    assert scope_condition(many)[1] == ["/1/7/%"]
