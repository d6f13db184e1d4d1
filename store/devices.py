"""Devices (terminals) outside the position write path: registration and login upserts,
re-provisioning, car binding, pages of the fleet, last-seen touches and the clock each device's
reports gave.
SQL written once for both databases (`store.statements`, `store.dialect`); the write path's own
device keys and last-seen updates stay in the adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from organizations import Scope
from store.interface import Device, DeviceClock
from store.orgs import scope_condition
from store.statements import StatementRunner
from trajectory.clock import ClockState


def _fields(runner: StatementRunner) -> str:
    d = runner._dialect
    return (
        f"terminal, edition, auth_code, {d.ms('registered_ms')}, {d.ms('last_seen_ms')},"
        " vehicle_id, maker_id, model, terminal_id, imei, org_id"
    )


def _device(row: Sequence[Any]) -> Device:
    terminal, edition, auth, registered, seen, vehicle, maker, model, terminal_id, imei, org = row
    return Device(
        terminal,
        edition,
        auth,
        None if registered is None else int(registered),
        None if seen is None else int(seen),
        vehicle,
        maker,
        model,
        terminal_id,
        imei,
        int(org),
    )


def _devices(runner: StatementRunner, where: str, params: Sequence[Any]) -> list[Device]:
    rows = runner._run(
        "read devices", f"SELECT {_fields(runner)} FROM devices {where}", params
    ).rows
    return [_device(row) for row in rows]


class DeviceRecords:
    """Mixin of both adapters."""

    def upsert_device(self: StatementRunner, device: Device) -> None:
        """Creates the device or fills in what it did not have; a recorded identity is kept
        (only `reprovision_device` replaces it) and last seen only moves forward."""
        d = self._dialect
        registered, seen = d.col("registered_ms"), d.col("last_seen_ms")
        self._run(
            "upsert device",
            f"INSERT INTO devices (terminal, edition, auth_code, {registered}, {seen},"
            " vehicle_id, maker_id, model, terminal_id, imei)"
            f" VALUES (?, ?, ?, {d.at()}, {d.at()}, ?, ?, ?, ?, ?)"
            " ON CONFLICT (terminal) DO UPDATE SET"
            " edition = coalesce(excluded.edition, devices.edition),"
            " auth_code = coalesce(excluded.auth_code, devices.auth_code),"
            f" {registered} = coalesce(excluded.{registered}, devices.{registered}),"
            f" {seen} = {d.greatest(f'excluded.{seen}', f'devices.{seen}')},"
            " vehicle_id = coalesce(excluded.vehicle_id, devices.vehicle_id),"
            " maker_id = coalesce(devices.maker_id, excluded.maker_id),"
            " model = coalesce(devices.model, excluded.model),"
            " terminal_id = coalesce(devices.terminal_id, excluded.terminal_id),"
            " imei = coalesce(devices.imei, excluded.imei)",
            (
                device.terminal,
                device.edition,
                device.auth_code,
                device.registered_ms,
                device.last_seen_ms,
                device.vehicle_id,
                device.maker_id,
                device.model,
                device.terminal_id,
                device.imei,
            ),
        )

    def reprovision_device(self: StatementRunner, device: Device) -> Device | None:
        """Re-provisioning replaced hardware (contracts section 8): identity and auth code
        become exactly those of `device` (None clears them); None when the terminal is not
        known. `upsert_device` never replaces a recorded identity, this alone does."""
        changed = self._run(
            "reprovision device",
            "UPDATE devices SET maker_id = ?, model = ?, terminal_id = ?, imei = ?,"
            " auth_code = ? WHERE terminal = ?",
            (
                device.maker_id,
                device.model,
                device.terminal_id,
                device.imei,
                device.auth_code,
                device.terminal,
            ),
        )
        if changed.rowcount != 1:
            return None
        found = _devices(self, "WHERE terminal = ?", (device.terminal,))
        return found[0] if found else None

    def unbind_device(self: StatementRunner, terminal: str) -> bool:
        return (
            self._run(
                "unbind device",
                "UPDATE devices SET vehicle_id = NULL WHERE terminal = ?",
                (terminal,),
            ).rowcount
            == 1
        )

    def get_device(self: StatementRunner, terminal: str) -> Device | None:
        found = _devices(self, "WHERE terminal = ?", (terminal,))
        return found[0] if found else None

    def list_devices(self: StatementRunner) -> list[Device]:
        return _devices(self, "ORDER BY terminal", ())

    def find_devices(
        self: StatementRunner,
        *,
        vehicle_id: str | None = None,
        after: str = "",
        limit: int = 100,
        scope: Scope | None = None,
    ) -> list[Device]:
        where, params = "terminal > ?", [after]
        if vehicle_id is not None:  # its own condition so the vehicle index serves it
            where, params = "vehicle_id = ? AND terminal > ?", [vehicle_id, after]
        within, scope_params = scope_condition(scope)
        if within is not None:
            where, params = f"{where} AND {within}", [*params, *scope_params]
        return _devices(self, f"WHERE {where} ORDER BY terminal LIMIT ?", [*params, limit])

    def touch_devices(self: StatementRunner, terminals: Sequence[str], seen_ms: int) -> None:
        if not terminals:
            return
        d = self._dialect
        seen = d.col("last_seen_ms")
        self._run(
            "touch devices",
            f"UPDATE devices SET {seen} = {d.at()} WHERE {d.in_list('terminal')}"
            f" AND ({seen} IS NULL OR {seen} < {d.at()})",
            (seen_ms, d.listed(terminals), seen_ms),
        )

    def device_clocks(self: StatementRunner, terminals: Sequence[str]) -> dict[str, DeviceClock]:
        if not terminals:
            return {}
        d = self._dialect
        rows = self._run(
            "device clocks",
            f"SELECT d.terminal, c.state, c.offset_ms, {d.ms('c.since_ms')}, {d.ms('c.seen_ms')}"
            " FROM device_clocks c JOIN devices d ON d.id = c.device_id"
            f" WHERE {d.in_list('d.terminal')}",
            (d.listed(terminals),),
        ).rows
        return {
            terminal: DeviceClock(ClockState(state).label, int(offset), int(since), int(seen))
            for terminal, state, offset, since, seen in rows
        }
