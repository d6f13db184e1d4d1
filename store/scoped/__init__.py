"""The store as one API caller sees it: only its unit's subtree, every change audited.

`ScopedStore` wraps an adapter with the caller's `Scope` and name. It is the only way the API
reaches resources (`api.stores.StoreAccess.scoped`): lists are filtered in SQL by
`store.orgs.scope_condition`; a resource named by id outside the subtree reads as missing
(`NotInScopeError` where the route would otherwise act on it, mapped to 404 exactly as an
unknown id); every change runs in one transaction with its audit row (`store.audit`).
Units never move, so each adapter caches the path of a unit id (`store.orgs`).
"""

from store.scoped.backtests import BacktestRecords
from store.scoped.base import ApprovalError, NotInScopeError
from store.scoped.commands import CommandRecords
from store.scoped.fleet import FleetRecords
from store.scoped.lending import LendingRecords
from store.scoped.spots import FenceTakenError, SpotRecords
from store.scoped.units import UnitRecords
from store.scoped.watch import WatchRecords


class ScopedStore(
    UnitRecords,
    FleetRecords,
    WatchRecords,
    LendingRecords,
    CommandRecords,
    SpotRecords,
    BacktestRecords,
):
    """One caller's store: built per call by `api.stores.StoreAccess.scoped`. One part per
    aggregate (`store.scoped.*`), all on `store.scoped.base.ScopeBase`."""


__all__ = ["ApprovalError", "FenceTakenError", "NotInScopeError", "ScopedStore"]
