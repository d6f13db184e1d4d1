"""Monitoring tightens while a car's loan is overdue, end to end with a real gateway and a
simulated tracker on 127.0.0.1 (SQLite and real PostgreSQL): the API's transition, a curing
payment and the overdue sweep each set the tracker's default reporting interval (0x8103,
parameter 0x0029), queued while the tracker is offline; and the live engine's fleet follows
the cars' loan states."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from api.loan_views import local_date
from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808 import ParamId
from ingest.jt808.messages import SetParameters
from lienwatch.alerting import start_alerting
from lienwatch.loan_sweep import LoanSweeper, Moved
from lienwatch.loan_watch import ReportIntervals, touches_overdue
from lienwatch.settings import Settings
from loans import ActionKind, CaseAction, LoanState, new_loan, transition
from simulators.device import Device as SimulatedDevice
from simulators.device import Shuttle
from simulators.wire import Clock, run_tcp
from store import CommandState, Device, migrate, open_store
from tests.support.api import ApiUnderTest, async_api_under_test

T0_MS = 1_735_689_600_000
TERMINAL = "013900000040"


async def _until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _action(kind: ActionKind, details: dict[str, Any]) -> CaseAction:
    return CaseAction(1, "L-1", kind, "bob", T0_MS, details=details)


def test_only_moves_into_or_out_of_overdue_touch_the_trackers() -> None:
    transition = ActionKind.TRANSITION
    assert touches_overdue(_action(transition, {"from": "active", "to": "overdue"}))
    assert touches_overdue(_action(transition, {"from": "overdue", "to": "restructured"}))
    assert not touches_overdue(_action(transition, {"from": "active", "to": "restructured"}))
    cured = {"paid_through": "2024-02-15", "state": {"from": "overdue", "to": "active"}}
    assert touches_overdue(_action(ActionKind.PAYMENT, cured))
    assert not touches_overdue(_action(ActionKind.PAYMENT, {"paid_through": "2024-02-15"}))
    assert not touches_overdue(_action(ActionKind.COLLECTION, {}))


async def test_overdue_tightens_the_trackers_interval_and_curing_restores_it(
    store_url: str | None, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal", max_bytes=1 << 26)
    async with async_api_under_test(store_url, tmp_path) as api:
        gateway = Gateway(
            GatewayConfig(port=0, auto_register=True, command_timeout_s=5),
            journal=journal,
            store_factory=lambda: open_store(store_url, tmp_path),
        )
        refreshed: list[int] = []
        intervals = ReportIntervals(
            lambda: open_store(store_url, tmp_path),
            gateway.send_command,
            overdue_interval_s=10,
            normal_interval_s=30,
            on_change=lambda: refreshed.append(1),
        )
        api.context.send_command = gateway.send_command
        api.context.loan_changed = intervals.loan_changed
        host, port = await gateway.start()
        stop = asyncio.Event()
        tracker = SimulatedDevice("13900000040", Shuttle(121.5, 31.3), start_ms=T0_MS)
        tracker.params[ParamId.DEFAULT_INTERVAL_S] = 60
        task = asyncio.create_task(run_tcp(tracker, host, port, Clock.start(1.0, T0_MS), stop))
        try:
            await _until(lambda: TERMINAL in gateway.sessions)
            store = api.store()
            try:
                deadline = time.monotonic() + 15
                while (device := store.get_device(TERMINAL)) is None:
                    assert time.monotonic() < deadline, "the registered device was never stored"
                    await asyncio.sleep(0.05)
                store.upsert_device(replace(device, vehicle_id="CAR-1"))
                store.upsert_device(Device("013900000041", auth_code="x", vehicle_id="CAR-2"))
            finally:
                store.close()
            officer = await _officer(api)
            today = local_date(api.context.clock_ms())
            loan = {
                "loan_no": "L-1",
                "borrower_name": "赵六",
                "vehicle_id": "CAR-1",
                "principal": "80000.00",
                "start_date": today.isoformat(),
                "due_day": 15,
            }
            created = await api.client.post("/api/v1/loans", json=loan, headers=api.admin)
            assert created.status_code == 201, created.text

            # A collection step moves no state: nothing is sent.
            step = {"stage": "reminder", "channel": "sms", "outcome": "contacted"}
            answer = await api.client.post("/api/v1/loans/L-1/actions", json=step, headers=officer)
            assert answer.status_code == 201, answer.text
            await intervals.wait_idle()
            assert tracker.params[ParamId.DEFAULT_INTERVAL_S] == 60 and refreshed == []

            moved = await api.client.post(
                "/api/v1/loans/L-1/transition", json={"to": "overdue"}, headers=officer
            )
            assert moved.status_code == 200, moved.text
            await intervals.wait_idle()
            assert tracker.params[ParamId.DEFAULT_INTERVAL_S] == 10
            assert refreshed == [1]

            paid = await api.client.post(
                "/api/v1/loans/L-1/payments", json={"installments": 1}, headers=officer
            )
            assert paid.json()["loan"]["state"] == "active", paid.text
            await intervals.wait_idle()
            assert tracker.params[ParamId.DEFAULT_INTERVAL_S] == 30

            # Offline: the sweep's move is queued for the tracker, then delivered at login.
            stop.set()
            await task
            await _until(lambda: TERMINAL not in gateway.sessions)
            told: list[Moved] = []

            def on_moved(moved: list[Moved]) -> None:
                told.extend(moved)
                for item in moved:
                    intervals.loan_changed(*item)

            sweeper = LoanSweeper(
                lambda: open_store(store_url, tmp_path),
                interval_s=3600,
                today=lambda: today + timedelta(days=400),
                clock_ms=api.context.clock_ms,
                on_moved=on_moved,
            )
            await sweeper.run_once()
            assert [(loan.loan_no, loan.state) for loan, _ in told] == [("L-1", LoanState.OVERDUE)]
            await intervals.wait_idle()
            store = api.store()
            try:
                queued = store.list_commands(TERMINAL, 10)
            finally:
                store.close()
            assert queued[0].state is CommandState.QUEUED and queued[0].msg_id == 0x8103
            body = SetParameters.decode(queued[0].body, tracker.edition)
            assert body.values() == {int(ParamId.DEFAULT_INTERVAL_S): 10}
            stop = asyncio.Event()
            task = asyncio.create_task(run_tcp(tracker, host, port, Clock.start(1.0, T0_MS), stop))
            await _until(lambda: tracker.params[ParamId.DEFAULT_INTERVAL_S] == 10)
        finally:
            stop.set()
            await task
            await intervals.close()
            await gateway.stop()
            journal.close()


async def _officer(api: ApiUnderTest) -> dict[str, str]:
    created = await api.client.post(
        "/api/v1/keys", json={"name": "bob", "role": "officer"}, headers=api.admin
    )
    return api.auth(created.json()["key"])


async def test_the_live_fleet_follows_the_cars_loan_states(
    store_url: str | None, tmp_path: Path
) -> None:
    migrate(store_url, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=store_url, reload_interval_s=60)
    store = open_store(store_url, tmp_path)
    try:
        store.upsert_device(Device("A1", auth_code="a", vehicle_id="CAR-1"))
        store.upsert_device(Device("B1", auth_code="b", vehicle_id="CAR-2"))
        for no, car in (("L-1", "CAR-1"), ("L-2", "CAR-2")):
            store.create_loan(
                new_loan(
                    loan_no=no,
                    borrower_name="x",
                    vehicle_id=car,
                    principal=Decimal("1.00"),
                    currency="CNY",
                    start_date=date(2024, 1, 10),
                    due_day=15,
                    grace_days=0,
                    branch=None,
                    paid_through=None,
                    now_ms=T0_MS,
                )
            )
    finally:
        store.close()
    alerting = start_alerting(settings, lambda: open_store(store_url, tmp_path))
    try:
        detector = alerting.detector
        assert detector is not None
        assert alerting.loan_states == {"CAR-1": "active", "CAR-2": "active"}
        store = open_store(store_url, tmp_path)
        try:
            store.update_loan(
                "L-1", lambda x: transition(x, LoanState.OVERDUE, "system", None, T0_MS)
            )
        finally:
            store.close()
        await asyncio.to_thread(alerting._reload, detector, False)
        assert alerting.loan_states == {"CAR-1": "overdue", "CAR-2": "active"}
        await _until(
            lambda: (
                {v.vehicle_id: v.loan_state for v in detector.engine.fleet.vehicles}
                == {"CAR-1": "overdue", "CAR-2": "active"}
            )
        )
    finally:
        await alerting.close()
