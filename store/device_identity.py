"""Re-provisioning replaced hardware: a device's recorded identity and auth code become exactly
what the admin gives (contracts section 8). SQL written once for both databases
(`store.statements`); `upsert_device` never replaces a recorded identity, this alone does."""

from __future__ import annotations

from typing import Protocol

from store.interface import Device
from store.statements import StatementRunner


class _DeviceRunner(StatementRunner, Protocol):
    def get_device(self, terminal: str) -> Device | None: ...


class DeviceIdentityRecords:
    """Mixin of both adapters."""

    def reprovision_device(self: _DeviceRunner, device: Device) -> Device | None:
        """Sets identity and auth code to those of `device` (None clears them); None when the
        terminal is not known."""
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
        return self.get_device(device.terminal)
