"""Units, scoped reads and the audit log at the store, on both databases: the audit row
commits with its change or neither does, and the log refuses UPDATE and DELETE."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from alerts.delivery.recorder import AlertRecorder
from alerts.model import Alert, AlertType
from lienwatch.alerting import car_unit_rules, fence_scope
from loans import new_loan
from organizations import EVERYWHERE, Scope, UnitKind
from pipeline.live import fleet_from_devices
from pipeline.thresholds import RuleBook
from store import Device, Store, StoreError, migrate, open_store
from store.interface import FenceFeature
from store.migrate import migrate_postgres
from store.scoped import NotInScopeError, ScopedStore

NOW = 1_709_280_000_000


@pytest.fixture
def store(store_url: str | None, tmp_path: Path) -> Iterator[Store]:
    migrate(store_url, tmp_path)
    opened = open_store(store_url, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def scoped(store: Store, scope: Scope = EVERYWHERE, actor: str = "admin") -> ScopedStore:
    return ScopedStore(store, scope, actor, lambda: NOW)


def audit_count(store: Store) -> int:
    return int(store._run("count", "SELECT count(*) FROM audit_log").rows[0][0])


def test_a_change_and_its_audit_row_commit_together_or_not_at_all(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = scoped(store)
    tenant = root.create_unit("Acme", UnitKind.TENANT, None)
    acme = scoped(store, Scope(tenant.id, tenant.path), "acme-admin")
    created, device = acme.provision(
        Device("013900000001", auth_code="c", vehicle_id="V1"),
        org=None,
        unbind=False,
        check=lambda known: None,
    )
    assert created and device.org == tenant.id
    entries = acme.audit()
    assert [(e.action, e.actor, e.org, e.before) for e in entries] == [
        ("org.create", "admin", tenant.id, None),
        ("device.create", "acme-admin", tenant.id, None),
    ]
    assert entries[1].after["terminal"] == "013900000001"
    assert "auth_code" not in entries[1].after  # secrets stay out of the log
    before = audit_count(store)

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("audit write failed")

    monkeypatch.setattr("store.scoped.base.write_entry", broken)
    with pytest.raises(StoreError):
        acme.put_fences([FenceFeature("F1", "hotspot", "{}")], {})
    with pytest.raises(StoreError):
        acme.provision(
            Device("013900000002", auth_code="c"), org=None, unbind=False, check=lambda k: None
        )
    loan = new_loan(
        loan_no="L1",
        borrower_name="B",
        vehicle_id="V2",
        principal=Decimal("10"),
        currency="CNY",
        start_date=date(2024, 1, 15),
        due_day=15,
        grace_days=0,
        branch=None,
        paid_through=None,
        now_ms=NOW,
    )
    with pytest.raises(StoreError):
        acme.create_loan(loan, None)
    with pytest.raises(StoreError):
        acme.move_vehicle("V1", tenant.id)
    # Nothing of the failed changes stayed: no fence, no device, no loan, no car moved.
    assert store.get_fence("F1") is None
    assert store.get_device("013900000002") is None
    assert store.get_loan("L1") is None
    assert audit_count(store) == before
    monkeypatch.undo()
    assert acme.create_loan(loan, None).org == tenant.id
    assert audit_count(store) == before + 1


def test_the_audit_log_refuses_updates_and_deletes(store: Store) -> None:
    root = scoped(store)
    root.create_unit("Acme", UnitKind.TENANT, None)
    assert audit_count(store) == 1
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(StoreError, match="append-only"):
            store._run("tamper", statement)
    assert audit_count(store) == 1
    assert root.audit()[0].actor == "admin"


def test_lists_and_lookups_keep_to_the_subtree(store: Store) -> None:
    root = scoped(store)
    a = root.create_unit("A", UnitKind.TENANT, None)
    b = root.create_unit("B", UnitKind.TENANT, None)
    branch = scoped(store, Scope(a.id, a.path)).create_unit("A1", UnitKind.BRANCH, a.id)
    for terminal, unit in (("1", a), ("2", b), ("3", branch)):
        root.provision(Device(terminal, auth_code="c"), org=unit.id, unbind=False,
                       check=lambda k: None)  # fmt: skip
    in_a = scoped(store, Scope(a.id, a.path))
    in_branch = scoped(store, Scope(branch.id, branch.path))
    assert [d.terminal for d in in_a.devices()] == ["1", "3"]
    assert [d.terminal for d in in_branch.devices()] == ["3"]
    assert in_branch.device("1") is None and in_a.device("2") is None
    assert [u.id for u in in_a.units()] == [a.id, branch.id]
    with pytest.raises(NotInScopeError):
        in_a.provision(Device("2"), org=None, unbind=False, check=lambda k: None)
    with pytest.raises(NotInScopeError):
        in_branch.target_org(a.id)
    assert store.get_device("2") is not None and store.get_device("2").org == b.id


@pytest.mark.db
def test_rows_stored_before_units_existed_belong_to_the_root(pg_url: str) -> None:
    migrate_postgres(pg_url, target=11)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO devices (terminal, vehicle_id) VALUES ('013900000001', 'V1')")
        conn.execute(
            "INSERT INTO fences (id, kind, feature, updated_at, version)"
            " VALUES ('F1', 'zone', '{}', now(), 1)"
        )
        conn.execute(
            "INSERT INTO api_keys (name, role, key_hash, prefix, created_at)"
            " VALUES ('old', 'admin', 'h', 'p', now())"
        )
    migrate_postgres(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("devices", "fences", "api_keys", "vehicles"):
            rows = conn.execute(f"SELECT DISTINCT org_id FROM {table}").fetchall()
            assert rows == [(1,)], table
        paths = conn.execute("SELECT id, kind, path FROM orgs").fetchall()
        assert paths == [(1, "platform", "/1/")]


def test_a_units_fence_speaks_only_of_its_subtrees_cars(store: Store) -> None:
    root = scoped(store)
    a = root.create_unit("A", UnitKind.TENANT, None)
    b = root.create_unit("B", UnitKind.TENANT, None)
    assert fence_scope(store) is None  # no fence below the platform: nothing to check
    for terminal, vehicle, unit in (("1", "VA", a), ("2", "VB", b), ("3", None, a)):
        root.provision(Device(terminal, vehicle_id=vehicle), org=unit.id, unbind=False,
                       check=lambda k: None)  # fmt: skip
    root.put_fences(
        [FenceFeature("shared", "hotspot", "{}"), FenceFeature("a-only", "hotspot", "{}")],
        {"shared": None, "a-only": a.id},
    )
    keeps = fence_scope(store)
    assert keeps is not None

    def alert(fence: str | None, terminal: str, vehicle: str) -> Alert:
        return Alert(AlertType.HOTSPOT_DWELL, terminal, vehicle, NOW, fence)

    assert keeps(alert("a-only", "1", "VA"))
    assert not keeps(alert("a-only", "2", "VB"))  # another tenant's car
    assert keeps(alert("a-only", "3", ""))  # a device of A on no car
    assert keeps(alert("shared", "2", "VB"))  # the platform's fence: every car
    assert keeps(alert(None, "2", "VB"))
    recorder = AlertRecorder(lambda: store, lambda new: None)
    recorder.keeps = keeps
    stored = recorder.record([alert("a-only", "1", "VA"), alert("a-only", "2", "VB")], NOW)
    assert [(s.alert.vehicle_id, s.org) for s in stored] == [("VA", a.id)]


def test_units_threshold_overrides_reach_their_subtrees_cars_deeper_units_winning(
    store: Store,
) -> None:
    root = scoped(store)
    acme = root.create_unit("Acme", UnitKind.TENANT, None)
    north = root.create_unit("North", UnitKind.BRANCH, acme.id)
    other = root.create_unit("Other", UnitKind.TENANT, None)
    assert car_unit_rules(store, store.unit_rules()) == {}
    for terminal, vehicle, unit in (("1", "VA", acme), ("2", "VN", north), ("3", "VO", other)):
        root.provision(Device(terminal, vehicle_id=vehicle), org=unit.id, unbind=False,
                       check=lambda k: None)  # fmt: skip
    root.set_rules(acme.id, {"overspeed": {"speed_kmh": 110, "duration_s": 30}})
    root.set_rules(north.id, {"overspeed": {"speed_kmh": 100}})
    merged = car_unit_rules(store, store.unit_rules())
    assert merged == {
        "VA": (("overspeed.duration_s", 30.0), ("overspeed.speed_kmh", 110.0)),
        "VN": (("overspeed.duration_s", 30.0), ("overspeed.speed_kmh", 100.0)),
    }
    fleet = fleet_from_devices(store.list_devices(), {"VN": "overdue"}, merged)
    book = RuleBook(loan_states=(("overdue", {"overspeed.speed_kmh": 90.0}),))
    by_id = {v.vehicle_id: book.for_spec(v) for v in fleet.vehicles}
    assert by_id["VA"].overspeed_speed_kmh == 110.0
    assert by_id["VN"].overspeed_speed_kmh == 90.0  # the loan state wins over the units
    assert by_id["VN"].overspeed_duration_s == 30.0  # the tenant's, under the branch
    assert by_id["VO"] == RuleBook().defaults
    root.set_rules(north.id, {})
    assert list(store.unit_rules()) == [acme.path]
    assert [e.action for e in root.audit()][-3:] == ["org.rules", "org.rules", "org.rules"]
