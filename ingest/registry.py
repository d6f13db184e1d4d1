"""Which terminals may connect, what hardware each is, their auth codes: in memory, written
through to the store.

Registration and authentication are answered from memory so one slow database call never
stalls a connection; changes go to the store on the gateway's store thread.

JT/T 808 authenticates a terminal by the code the platform issued at registration, so the code
must not go to whoever asks for it (contracts section 8). The first 0x0100 of a terminal
records its identity (maker id, model, terminal id of the body; a 2019 tracker's 0x0102 adds
its IMEI); a later 0x0100 with the same identity gets the code the terminal already has (a
tracker that lost it), one with another identity is refused and changes nothing. Only an
admin's re-provisioning (`reprovision`) replaces a recorded identity.

A code the registry issues itself (auto-registration, or a provisioned terminal without one) is
derived from the terminal and its claimed identity under the platform's code key (kept in the
store, the same for every gateway): two gateways that register one new terminal at the same
instant (an MQTT group dealing its retries to both) issue the same code, so whichever the
terminal authenticates at accepts it. Without a key (a registry alone, in tests) codes are random.

Beside it, `TakeoverWatch` notices two live connections taking one terminal from each other
again and again (a cloned tracker, or a stolen identity and code): one `device_conflict` alert
per such incident.
"""

from __future__ import annotations

import enum
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field, replace

from alerts.model import Alert, AlertType
from store import Device

# 0x8100 results (JT/T 808 table "registration result").
REGISTERED = 0
TERMINAL_TAKEN = 3  # "terminal already registered": another identity holds this terminal
UNKNOWN_TERMINAL = 4  # "no such terminal in the database"
AUTH_CODE_KEY = "auth_codes"  # the store's platform secret the registry's codes derive from


class Refusal(enum.StrEnum):
    """Why a registration or authentication was refused: the closed label set of
    `lienwatch_identity_refusals_total`."""

    UNKNOWN_TERMINAL = "unknown_terminal"  # not provisioned and auto-registration off
    IDENTITY_DIFFERS = "identity_differs"  # 0x0100 of other hardware than the recorded one
    IMEI_DIFFERS = "imei_differs"  # 0x0102 without the recorded IMEI
    BAD_CODE = "bad_code"  # 0x0102 with a code the terminal was not given


@dataclass(frozen=True, slots=True)
class Claim:
    """What a 0x0100 body says the hardware is."""

    maker_id: str
    model: str
    terminal_id: str


def recorded_claim(device: Device) -> Claim | None:
    """The identity a device's 0x0100 fields hold; None before the first registration."""
    if device.maker_id is None and device.model is None and device.terminal_id is None:
        return None
    return Claim(device.maker_id or "", device.model or "", device.terminal_id or "")


def issued_code(key: bytes | None, terminal: str, claim: Claim) -> str:
    """A new auth code (16 hex digits): HMAC-SHA256 of the terminal and its claim under `key`,
    random without one. Only a terminal making the same claim can be given it, and that one
    would be given the code it has anyway (contracts section 8)."""
    if key is None:
        return secrets.token_hex(8)
    message = "\x00".join((terminal, claim.maker_id, claim.model, claim.terminal_id))
    return hmac.new(key, message.encode(), "sha256").hexdigest()[:16]


@dataclass(slots=True)
class RegistrationOutcome:
    result: int  # 0x8100 result: 0 registered, 3 terminal taken, 4 terminal unknown
    auth_code: str = ""
    device: Device | None = None  # the record to persist, when it changed
    refusal: Refusal | None = None


@dataclass(slots=True)
class AuthOutcome:
    ok: bool
    device: Device | None = None  # the record to persist, when it changed (IMEI recorded)
    refusal: Refusal | None = None


class DeviceRegistry:
    """Terminal id → Device. `auto_register` admits unknown terminals on 0x0100."""

    def __init__(
        self, devices: list[Device], *, auto_register: bool, code_key: bytes | None = None
    ) -> None:
        self.auto_register = auto_register
        self.code_key = code_key
        self._devices = {d.terminal: d for d in devices}
        self.takeovers = TakeoverWatch()

    def __contains__(self, terminal: object) -> bool:
        return terminal in self._devices

    def get(self, terminal: str) -> Device | None:
        return self._devices.get(terminal)

    def put(self, device: Device) -> None:
        """A device provisioned or changed elsewhere (API, store lookup). Identity fields it
        lacks are kept from memory: a registration recorded here may not be stored yet."""
        known = self._devices.get(device.terminal)
        if known is not None:
            device = replace(
                device,
                maker_id=_first(device.maker_id, known.maker_id),
                model=_first(device.model, known.model),
                terminal_id=_first(device.terminal_id, known.terminal_id),
                imei=_first(device.imei, known.imei),
            )
        self._devices[device.terminal] = device

    def reprovision(self, device: Device) -> None:
        """Replaced hardware (the API): the stored record, identity and code as they now are."""
        self._devices[device.terminal] = device

    def register(
        self, terminal: str, edition: int, claim: Claim, now_ms: int
    ) -> RegistrationOutcome:
        known = self._devices.get(terminal)
        if known is None:
            if not self.auto_register:
                return RegistrationOutcome(UNKNOWN_TERMINAL, refusal=Refusal.UNKNOWN_TERMINAL)
            known = Device(terminal)
        recorded = recorded_claim(known)
        if recorded is not None and recorded != claim:
            return RegistrationOutcome(TERMINAL_TAKEN, refusal=Refusal.IDENTITY_DIFFERS)
        device = known
        if recorded is None:  # the first registration (or the first since re-provisioning)
            device = replace(
                device,
                maker_id=claim.maker_id,
                model=claim.model,
                terminal_id=claim.terminal_id,
                registered_ms=now_ms,
            )
        if not device.auth_code:  # never given one, deregistered, or re-provisioned
            code = issued_code(self.code_key, terminal, claim)
            device = replace(device, auth_code=code, registered_ms=now_ms)
        if device.edition != edition:
            device = replace(device, edition=edition)
        if device == known and terminal in self._devices:
            return RegistrationOutcome(REGISTERED, known.auth_code or "")  # nothing to store
        self._devices[terminal] = device
        return RegistrationOutcome(REGISTERED, device.auth_code or "", device)

    def authenticate(self, terminal: str, code: str, imei: str = "") -> AuthOutcome:
        """`imei`: what a 2019 0x0102 carries ("" from older editions). Once recorded, an
        authentication without that IMEI is refused even with the right code."""
        device = self._devices.get(terminal)
        if device is None or not device.auth_code:
            return AuthOutcome(False, refusal=Refusal.BAD_CODE)
        if not hmac.compare_digest(device.auth_code.encode(), code.encode()):
            return AuthOutcome(False, refusal=Refusal.BAD_CODE)
        if device.imei is not None and imei != device.imei:
            return AuthOutcome(False, refusal=Refusal.IMEI_DIFFERS)
        if device.imei is None and imei:
            device = replace(device, imei=imei)
            self._devices[terminal] = device
            return AuthOutcome(True, device)
        return AuthOutcome(True)

    def deregister(self, terminal: str) -> Device | None:
        device = self._devices.get(terminal)
        if device is None:
            return None
        changed = replace(device, auth_code="")
        self._devices[terminal] = changed
        return changed

    def takeover(
        self, terminal: str, *, old_peer: str, old_idle_s: float, new_peer: str, now_ms: int
    ) -> Alert | None:
        """A newly authenticated connection replaced the terminal's live session, which last
        sent something `old_idle_s` ago: the `device_conflict` alert when this opens a storm."""
        conflict = self.takeovers.takeover(
            terminal, old_peer=old_peer, old_idle_s=old_idle_s, new_peer=new_peer, now_ms=now_ms
        )
        if conflict is None:
            return None
        known = self._devices.get(terminal)
        vehicle = known.vehicle_id if known is not None and known.vehicle_id else terminal
        return Alert(
            AlertType.DEVICE_CONFLICT,
            terminal,
            vehicle,
            conflict.since_ms,
            details={
                "peers": list(conflict.peers),
                "takeovers": conflict.takeovers,
                "window_s": self.takeovers.window_ms // 1000,
            },
        )


def peer_address(peername: object) -> str:
    """`host:port` (`[host]:port` for IPv6) of a socket's peer name; other names as text."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peername)


def _first(value: str | None, fallback: str | None) -> str | None:
    return value if value is not None else fallback


@dataclass(frozen=True, slots=True)
class Conflict:
    """A takeover storm that just began: the two peers of its last takeover (the one replaced
    first), how many takeovers it took, and when the first of them happened."""

    terminal: str
    peers: tuple[str, str]
    takeovers: int
    since_ms: int


@dataclass(slots=True)
class _Contest:
    times: deque[int] = field(default_factory=deque)  # counted takeovers inside the window
    open: bool = False  # an incident is open: its alert went out
    last_ms: int = 0


class TakeoverWatch:
    """Counts takeovers per terminal; sans-IO (time passed in).

    A takeover counts when the session it replaced was live: it had sent something within
    `live_s`. (A tracker reconnecting after losing its network replaces a session that went
    quiet; a clone replaces one that was talking.) `takeovers` counted takeovers within
    `window_ms` open an incident and give one `Conflict`; the incident stays open, giving
    nothing more, until `window_ms` pass without a counted takeover.
    """

    def __init__(
        self, *, takeovers: int = 4, window_ms: int = 300_000, live_s: float = 60.0
    ) -> None:
        self.threshold = takeovers
        self.window_ms = window_ms
        self.live_s = live_s
        self._contests: dict[str, _Contest] = {}
        self._swept_ms = 0

    def __len__(self) -> int:
        return len(self._contests)

    def takeover(
        self, terminal: str, *, old_peer: str, old_idle_s: float, new_peer: str, now_ms: int
    ) -> Conflict | None:
        self._sweep(now_ms)
        if old_idle_s > self.live_s:
            return None
        contest = self._contests.setdefault(terminal, _Contest())
        if contest.open and now_ms - contest.last_ms > self.window_ms:
            contest.open = False  # the last incident ended: a new one may begin
            contest.times.clear()
        contest.last_ms = now_ms
        times = contest.times
        times.append(now_ms)
        while now_ms - times[0] > self.window_ms:
            times.popleft()
        if contest.open or len(times) < self.threshold:
            return None
        contest.open = True
        return Conflict(terminal, (old_peer, new_peer), len(times), times[0])

    def _sweep(self, now_ms: int) -> None:
        """Forgets terminals quiet for a whole window, at most once a window: memory stays
        bounded by the terminals taken over in the last two windows."""
        if now_ms - self._swept_ms < self.window_ms:
            return
        self._swept_ms = now_ms
        stale = [t for t, c in self._contests.items() if now_ms - c.last_ms > self.window_ms]
        for terminal in stale:
            del self._contests[terminal]
