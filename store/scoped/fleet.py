"""Devices and the cars they are fitted to, as one caller sees them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from loans import Vehicle
from organizations import UnitKind
from positions import PositionBatch
from store import parties
from store.interface import Device, DeviceClock
from store.scoped.base import NotInScopeError, ScopeBase


class FleetRecords(ScopeBase):
    def device(self, terminal: str) -> Device | None:
        found = self._s.get_device(terminal)
        return found if found is not None and self.visible(found.org) else None

    def devices(
        self, *, vehicle_id: str | None = None, after: str = "", limit: int = 100
    ) -> list[Device]:
        return self._s.find_devices(
            vehicle_id=vehicle_id, after=after, limit=limit, scope=self.scope
        )

    def latest(self, devices: Sequence[Device]) -> PositionBatch:
        """Latest positions of devices read through this scope; device indexes `devices`."""
        return self._s.latest([d.terminal for d in devices if self.visible(d.org)])

    def clocks(self, devices: Sequence[Device]) -> dict[str, DeviceClock]:
        return self._s.device_clocks([d.terminal for d in devices if self.visible(d.org)])

    def track(self, device: Device, from_ms: int, to_ms: int, **options: Any) -> PositionBatch:
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        return self._s.track(device.terminal, from_ms, to_ms, **options)

    def provision(
        self,
        given: Device,
        *,
        org: int | None,
        unbind: bool,
        check: Callable[[Device], None],
    ) -> tuple[bool, Device]:
        """Creates or updates a device of the subtree (`check` vets a known one first);
        returns whether it was created and the device as stored."""
        with self.transaction("provision device"):
            known = self._s.get_device(given.terminal)
            if known is not None and not self.visible(known.org):
                raise NotInScopeError(f"no device {given.terminal}")
            if known is not None:
                check(known)
            vehicle_org = None if given.vehicle_id is None else self._vehicle_org(given.vehicle_id)
            current = None if known is None else known.org
            target = self.target_org(org, vehicle_org if vehicle_org is not None else current)
            if given.vehicle_id is not None:
                self._claim_vehicle(given.vehicle_id, target)
            self._s.upsert_device(given)
            if unbind:
                self._s.unbind_device(given.terminal)
            self._s._run(
                "set device org",
                "UPDATE devices SET org_id = ? WHERE terminal = ?",
                (target, given.terminal),
            )
            stored = self._s.get_device(given.terminal)
            assert stored is not None
            action = "device.create" if known is None else "device.update"
            self._audit(action, f"device:{given.terminal}", target, known, stored)
        return known is None, stored

    def reprovision(self, given: Device) -> Device | None:
        with self.transaction("reprovision device"):
            known = self.device(given.terminal)
            if known is None:
                return None
            stored = self._s.reprovision_device(given)
            self._audit("device.reprovision", f"device:{given.terminal}", known.org, known, stored)
        return stored

    def move_vehicle(self, vehicle_id: str, org_id: int) -> int:
        """Moves a car with its devices, loans and alerts to unit `org_id` (in the subtree);
        returns how many devices, loans and alerts moved. NotInScopeError for a car or unit
        not visible."""
        with self.transaction("move vehicle"):
            known = self._vehicle_org(vehicle_id)
            if known is None or not self.visible(known):
                raise NotInScopeError(f"no vehicle {vehicle_id!r}")
            target = self.target_org(org_id)
            moved = 0
            for table in ("devices", "loans", "alerts"):
                moved += self._s._run(
                    "move vehicle",
                    f"UPDATE {table} SET org_id = ? WHERE vehicle_id = ?",
                    (target, vehicle_id),
                ).rowcount
            self._s._run(
                "move vehicle",
                "UPDATE vehicles SET org_id = ? WHERE vehicle_id = ?",
                (target, vehicle_id),
            )
            self._audit(
                "vehicle.move",
                f"vehicle:{vehicle_id}",
                target,
                {"vehicle_id": vehicle_id, "org": known},
                {"vehicle_id": vehicle_id, "org": target},
            )
        return moved

    def vehicle_org(self, vehicle_id: str) -> int | None:
        """The car's unit when it is in the subtree."""
        known = self._vehicle_org(vehicle_id)
        return known if known is not None and self.visible(known) else None

    def vehicle(self, vehicle_id: str) -> Vehicle | None:
        found = parties.get_vehicle(self._s, vehicle_id)
        return found if found is not None and self.visible(found.org) else None

    def vehicles(self, *, after: str = "", limit: int = 100) -> list[Vehicle]:
        return parties.find_vehicles(self._s, self.scope, after, limit)

    def put_vehicle(self, given: Vehicle, org: int | None) -> tuple[bool, Vehicle]:
        """Creates the car (in unit `org`, default the caller's) or replaces its details;
        `given.dealer` must be a dealer unit of the subtree. Another `org` for a known car
        moves it as `move_vehicle` does, in the same transaction."""
        with self.transaction("write vehicle"):
            known = parties.get_vehicle(self._s, given.vehicle_id)
            if known is not None and not self.visible(known.org):
                raise NotInScopeError(f"no vehicle {given.vehicle_id!r}")
            if given.dealer is not None:
                dealer = self.unit(given.dealer)
                if dealer is None or dealer.kind is not UnitKind.DEALER:
                    raise NotInScopeError(f"dealer: no dealer {given.dealer}")
            if known is not None and org is not None and org != known.org:
                self.move_vehicle(given.vehicle_id, org)  # with its devices, loans and alerts
                known = replace(known, org=org)
            target = known.org if known is not None else self.target_org(org)
            stored = replace(given, org=target)
            parties.put_vehicle(self._s, stored)
            action = "vehicle.create" if known is None else "vehicle.update"
            self._audit(action, f"vehicle:{given.vehicle_id}", target, known, stored)
        return known is None, stored
