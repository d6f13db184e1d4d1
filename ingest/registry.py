"""Which terminals may connect and their auth codes: in memory, written through to the store.

Registration and authentication are answered from memory so one slow database call never
stalls a connection; changes go to the store on the gateway's store thread.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace

from store import Device


@dataclass(slots=True)
class RegistrationOutcome:
    result: int  # 0x8100 result: 0 ok, 4 terminal unknown
    auth_code: str = ""
    device: Device | None = None  # the record to persist, when it changed


class DeviceRegistry:
    """Terminal id → Device. `auto_register` admits unknown terminals on 0x0100."""

    def __init__(self, devices: list[Device], *, auto_register: bool) -> None:
        self.auto_register = auto_register
        self._devices = {d.terminal: d for d in devices}

    def __contains__(self, terminal: object) -> bool:
        return terminal in self._devices

    def get(self, terminal: str) -> Device | None:
        return self._devices.get(terminal)

    def put(self, device: Device) -> None:
        """A device provisioned or changed elsewhere (API, store lookup)."""
        self._devices[device.terminal] = device

    def register(self, terminal: str, edition: int, now_ms: int) -> RegistrationOutcome:
        known = self._devices.get(terminal)
        if known is None and not self.auto_register:
            return RegistrationOutcome(result=4)
        code = secrets.token_hex(8)
        device = (
            Device(terminal=terminal, edition=edition, auth_code=code, registered_ms=now_ms)
            if known is None
            else replace(known, edition=edition, auth_code=code, registered_ms=now_ms)
        )
        self._devices[terminal] = device
        return RegistrationOutcome(result=0, auth_code=code, device=device)

    def authenticate(self, terminal: str, code: str) -> bool:
        device = self._devices.get(terminal)
        if device is None or not device.auth_code:
            return False
        return hmac.compare_digest(device.auth_code.encode(), code.encode())

    def deregister(self, terminal: str) -> Device | None:
        device = self._devices.get(terminal)
        if device is None:
            return None
        changed = replace(device, auth_code="")
        self._devices[terminal] = changed
        return changed
