"""Every aggregate both adapters share, as one base: each mixin's SQL is written once for both
databases (`store.statements`, `store.dialect`); an adapter adds only its connection, its
statement runner and the position paths of its own database (docs/architecture.md)."""

from __future__ import annotations

from store.alert_records import AlertRecords
from store.api_keys import ApiKeyRecords
from store.backtest_jobs import BacktestJobRecords
from store.commands import CommandRecords
from store.detector_partitions import DetectorPartitionRecords
from store.devices import DeviceRecords
from store.fences import FenceRecords
from store.idempotency import IdempotencyRecords
from store.loan_borrowers import LoanBorrowerRecords
from store.loan_records import LoanRecords
from store.orgs import OrgRecords
from store.platform_secrets import PlatformSecretRecords
from store.presence import SessionPresenceRecords
from store.spot_library import SpotLibraryRecords


class SharedRecords(
    AlertRecords,
    ApiKeyRecords,
    LoanRecords,
    DeviceRecords,
    CommandRecords,
    FenceRecords,
    IdempotencyRecords,
    PlatformSecretRecords,
    SessionPresenceRecords,
    OrgRecords,
    DetectorPartitionRecords,
    SpotLibraryRecords,
    BacktestJobRecords,
    LoanBorrowerRecords,
):
    """The aggregates of `store.interface.Store` written once; mixed into both adapters."""
