"""A simulated tracker as a sans-IO state object: bytes and a clock in, bytes out.

`Device` sits on the codec's `Jt808Connection` (TERMINAL role) and never touches a socket or
reads the clock: every call takes `now_ms` (epoch ms, the data time of its fixes), so tests drive
it frame by frame and the asyncio shells (simulators/wire.py, simulators/mqtt.py) only move bytes
and keep one timer. It registers (0x0100) when it has no auth code, keeps the code, authenticates
(0x0102), reports on the habits of a wired or a wireless unit, sends heartbeats, retries what is
not answered with the JT808 back-off, reconnects with its own back-off, stores fixes taken while
the link is down and sends them as blind-area batches (0x0704 type 1) once it is back, and answers
platform commands like a device.
"""

from __future__ import annotations

import enum
import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

import numpy as np

from ingest.jt808 import (
    Edition,
    FrameRejected,
    Jt808Connection,
    Jt808ProtocolError,
    MessageReceived,
    ReplyTimedOut,
    Role,
)
from ingest.jt808.header import Header
from ingest.jt808.ids import MessageId, ParamId, Result, Status
from ingest.jt808.messages import (
    BATCH_BACKFILL,
    Authenticate,
    BatchLocationReport,
    Heartbeat,
    LocationQuery,
    LocationQueryReply,
    LocationReport,
    Message,
    ParametersReply,
    PlatformGeneralResponse,
    QueryParameters,
    RawMessage,
    Register,
    RegisterResponse,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    TerminalGeneralResponse,
    VehicleControl,
    VehicleControlReply,
)
from simulators.geo import M_PER_DEG_LAT, LocalFrame
from simulators.plan import Segment, sample_plan

_FRAME = re.compile(rb"\x7e[^\x7e]+\x7e")
_STATUS_GPS = 1 << 18
RESET_COMMAND = 4  # 0x8105 command word: reset the terminal


# ---------------------------------------------------------------------- where the unit is


class Fix(NamedTuple):
    """What the GNSS module and the ignition say at one moment."""

    lon: float
    lat: float
    speed_kmh: float = 0.0
    course: int = 0
    acc_on: bool = False
    positioned: bool = True
    altitude_m: int = 8


class Motion(Protocol):
    """Where the vehicle is at a time (epoch ms); the device samples it when it reports."""

    def fix_at(self, time_ms: int) -> Fix: ...


@dataclass(frozen=True, slots=True)
class Parked:
    """A vehicle that never moves, ignition off."""

    lon: float
    lat: float

    def fix_at(self, time_ms: int) -> Fix:
        return Fix(self.lon, self.lat)


@dataclass(frozen=True, slots=True)
class Shuttle:
    """Drives out along `course_deg` for `drive_s`, parks `park_s`, drives back, parks again.

    A cheap, endless motion with ACC on and off periods, for fleets of many devices.
    """

    lon: float
    lat: float
    course_deg: float = 90.0
    speed_kmh: float = 40.0
    drive_s: float = 600.0
    park_s: float = 1200.0
    start_ms: int = 0

    def fix_at(self, time_ms: int) -> Fix:
        leg_s = self.drive_s + self.park_s
        t_s = ((time_ms - self.start_ms) / 1000.0) % (2 * leg_s)
        outward = t_s < leg_s
        in_leg = t_s if outward else t_s - leg_s
        driving = in_leg < self.drive_s
        driven_s = min(in_leg, self.drive_s)
        far_m = self.speed_kmh / 3.6 * (driven_s if outward else self.drive_s - driven_s)
        rad = math.radians(self.course_deg)
        lat = self.lat + far_m * math.cos(rad) / M_PER_DEG_LAT
        m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(self.lat))
        lon = self.lon + far_m * math.sin(rad) / m_per_deg_lon
        course = round(self.course_deg if outward else self.course_deg + 180) % 360
        return Fix(lon, lat, self.speed_kmh if driving else 0.0, course, driving)


@dataclass(frozen=True, slots=True)
class PlanMotion:
    """A vehicle following a plan of the fleet model (simulators/plan.py) in a local frame."""

    plan: Sequence[Segment]
    frame: LocalFrame

    def fix_at(self, time_ms: int) -> Fix:
        s = sample_plan(list(self.plan), np.array([time_ms], dtype=np.int64))
        lon, lat = self.frame.to_lonlat(s.x_m, s.y_m)
        moving = bool(s.moving[0])
        return Fix(
            float(lon[0]), float(lat[0]), float(s.speed_kmh[0]), int(s.course_deg[0]), moving
        )


# ---------------------------------------------------------------------- how the unit behaves


class Kind(enum.StrEnum):
    WIRED = "wired"  # on the car's power: reports often while the ignition is on
    WIRELESS = "wireless"  # on a battery, hidden: a few reports a day unless told to track


class Phase(enum.Enum):
    OFFLINE = "offline"
    REGISTERING = "registering"
    AUTHENTICATING = "authenticating"
    ONLINE = "online"


@dataclass(frozen=True, slots=True)
class Habits:
    """Reporting and link habits. Intervals are the defaults the platform may change (0x8103)."""

    kind: Kind = Kind.WIRED
    moving_interval_s: int = 20  # ACC on (parameter 0x0029)
    parked_interval_s: int = 300  # ACC off, or a wireless unit's rare report (0x0027)
    heartbeat_interval_s: int = 60  # 0x0001
    acc_probe_s: int = 10  # how often a wired unit looks at the ignition between reports
    reply_timeout_s: int = 10  # 0x0002: T of the JT808 back-off T, 2T, 6T, ...
    max_retries: int = 3  # 0x0003
    reconnect_min_s: float = 2.0
    reconnect_max_s: float = 300.0
    reconnect_jitter: float = 0.25  # up to this share added to each reconnect delay
    blind_capacity: int = 10_000  # fixes kept while the link is down; the oldest go first
    backfill_items: int = 20  # items per 0x0704: 20 x ~42 bytes stays in one frame
    duplicate_share: float = 0.0  # reports sent twice with the same serial
    reorder_share: float = 0.0  # reports held back and sent after the next one
    seed: int = 0

    @classmethod
    def wireless(cls, **changes: Any) -> Habits:
        """A battery unit: a report every few hours, rare heartbeats."""
        base = cls(kind=Kind.WIRELESS, parked_interval_s=4 * 3600, heartbeat_interval_s=1800)
        return replace(base, **changes)


@dataclass(slots=True)
class DeviceStats:
    """What the device did, for reports and tests."""

    reports: int = 0  # 0x0200 frames sent (duplicates and retries excluded)
    acknowledged: int = 0  # 0x0200 and 0x0704 answered with result 0
    refused: int = 0  # answers with a non-zero result
    duplicates: int = 0
    reordered: int = 0
    backfilled: int = 0  # fixes sent in 0x0704 type 1 batches
    blind_dropped: int = 0  # fixes lost because the blind-area store was full
    heartbeats: int = 0
    timeouts: int = 0  # messages never answered after every retry
    connects: int = 0
    commands: int = 0
    rejected_frames: int = 0


@dataclass(slots=True)
class _Unacked:
    msg_id: int
    items: list[LocationReport] = field(default_factory=list)


def default_registration(terminal: str, kind: Kind, edition: Edition) -> Register:
    """A plausible 0x0100 body: Shanghai, a made-up maker, the plate as digits of the id."""
    return Register(
        province_id=31,
        city_id=0,
        maker_id="LWSIM",
        model=kind.value,
        terminal_id=terminal[-7:],
        plate_color=1,
        plate="沪A" + terminal[-5:],
        edition=edition,
    )


def command_reply(
    header: Header,
    message: Message,
    *,
    location: LocationReport | None,
    params: dict[int, int],
) -> Message | None:
    """What a device answers to a platform message: 0x0201 to 0x8201 and 0x0500 to 0x8500
    (with `location`), 0x0104 to 0x8104, 0x0001 to the rest (result 3 for a message it cannot
    read); None to answers."""
    if isinstance(message, PlatformGeneralResponse | RegisterResponse):
        return None
    if isinstance(message, QueryParameters):
        values = tuple((pid, value.to_bytes(4, "big")) for pid, value in params.items())
        return ParametersReply(header.serial, values)
    if isinstance(message, LocationQuery) and location is not None:
        return LocationQueryReply(header.serial, location)
    if isinstance(message, VehicleControl) and location is not None:
        return VehicleControlReply(header.serial, location)  # the standard's 0x0500
    if isinstance(message, RawMessage):
        return TerminalGeneralResponse(header.serial, header.msg_id, Result.UNSUPPORTED)
    if header.msg_id >= 0x8000:  # 0x8103, 0x8105, 0x8202, 0x8300 and the other commands
        return TerminalGeneralResponse(header.serial, header.msg_id, Result.OK)
    return None


def imei_for(terminal: str) -> str:
    return ("86" + terminal.rjust(13, "0"))[-15:]


class Device:
    """One tracker's protocol life, sans-IO. See the module docstring for the behaviour."""

    def __init__(
        self,
        terminal: str,
        motion: Motion,
        habits: Habits | None = None,
        *,
        edition: Edition = Edition.V2013,
        auth_code: str | None = None,
        registration: Register | None = None,
        start_ms: int = 0,
    ) -> None:
        self.terminal = terminal
        self.motion = motion
        self.habits = habits or Habits()
        self.edition = edition
        self.auth_code = auth_code
        self.registration = registration or default_registration(
            terminal, self.habits.kind, edition
        )
        self.params: dict[int, int] = {
            ParamId.HEARTBEAT_INTERVAL_S: self.habits.heartbeat_interval_s,
            ParamId.TCP_REPLY_TIMEOUT_S: self.habits.reply_timeout_s,
            ParamId.TCP_RETRIES: self.habits.max_retries,
            ParamId.SLEEP_INTERVAL_S: self.habits.parked_interval_s,
            ParamId.DEFAULT_INTERVAL_S: self.habits.moving_interval_s,
        }
        self.stats = DeviceStats()
        self.phase = Phase.OFFLINE
        self.connected = False
        self.close_wanted = False  # the shell should close the link (it then calls lost)
        self.reconnect_at_ms = start_ms
        self.tracking_until_ms = 0
        self.tracking_interval_s = 0
        self.vehicle_controls: list[VehicleControl] = []  # as received, in the link's edition
        self._rng = np.random.default_rng(self.habits.seed)
        self._conn: Jt808Connection | None = None
        self._out: list[bytes] = []
        self._failures = 0
        self._handshake_serial = -1
        self._next_report_ms = start_ms
        self._next_probe_ms = start_ms
        self._last_sent_ms = start_ms
        self._last_report_ms = start_ms
        self._last_acc: bool | None = None
        self._held: LocationReport | None = None
        self._unacked: dict[int, _Unacked] = {}
        self._blind: deque[LocationReport] = deque()
        self._backfill_serial: int | None = None

    # ------------------------------------------------------------------ link events

    def connection_made(self, now_ms: int) -> None:
        """The transport is up: register (no auth code yet) or authenticate."""
        self.connected = True
        self.close_wanted = False
        self.stats.connects += 1
        self._conn = Jt808Connection(
            Role.TERMINAL,
            terminal=self.terminal,
            edition=self.edition,
            reply_timeout_s=float(self.params[ParamId.TCP_REPLY_TIMEOUT_S]),
            max_retries=self.params[ParamId.TCP_RETRIES],
        )
        self._unacked.clear()
        self._backfill_serial = None
        if self.auth_code is None:
            self.phase = Phase.REGISTERING
            self._handshake_serial = self._send(self.registration, now_ms)
        else:
            self._authenticate(now_ms)

    def connection_lost(self, now_ms: int) -> None:
        """The transport is gone: what was not answered waits in the blind-area store."""
        if self._conn is not None:
            self._drain_conn()
        for pending in self._unacked.values():
            for item in pending.items:
                self._to_blind(item)
        self._unacked.clear()
        self._backfill_serial = None
        self._conn = None
        self.connected = False
        self.close_wanted = False
        self.phase = Phase.OFFLINE
        self._failures += 1
        delay_s = min(
            self.habits.reconnect_max_s,
            self.habits.reconnect_min_s * 2 ** (self._failures - 1),
        )
        delay_s *= 1.0 + self.habits.reconnect_jitter * float(self._rng.random())
        self.reconnect_at_ms = now_ms + round(delay_s * 1000)

    def wants_connection(self, now_ms: int) -> bool:
        return not self.connected and now_ms >= self.reconnect_at_ms

    # ------------------------------------------------------------------ bytes in

    def receive_data(self, data: bytes, now_ms: int) -> None:
        """Bytes from a stream transport (TCP)."""
        if self._conn is None:
            return
        self._conn.receive_data(data, now_ms / 1000)
        self._process(now_ms)

    def receive_frame(self, frame: bytes, now_ms: int) -> None:
        """One whole frame from a transport that keeps boundaries (MQTT)."""
        if self._conn is None:
            return
        self._conn.receive_frame(frame, now_ms / 1000)
        self._process(now_ms)

    def _process(self, now_ms: int) -> None:
        assert self._conn is not None
        try:
            events = self._conn.events()
        except Jt808ProtocolError:
            self.close_wanted = True
            return
        for event in events:
            if isinstance(event, MessageReceived):
                self._on_message(event.header, event.message, now_ms)
            elif isinstance(event, FrameRejected):
                self.stats.rejected_frames += 1
            elif isinstance(event, ReplyTimedOut):
                self._on_timeout(event.serial)
        self._drain_conn()

    def _on_message(self, header: Header, message: Message, now_ms: int) -> None:
        if isinstance(message, PlatformGeneralResponse):
            self._on_answer(message, now_ms)
        elif isinstance(message, RegisterResponse):
            if message.answer_serial != self._handshake_serial:
                return
            if message.result != 0:
                self.stats.refused += 1
                self.close_wanted = True
                return
            self.auth_code = message.auth_code
            self._authenticate(now_ms)
        elif self.phase is Phase.ONLINE:
            reply = self.reply_to(header, message, now_ms)
            if reply is not None:
                self._send(reply, now_ms)
                self.stats.commands += 1
            if isinstance(message, TerminalControl) and message.command == RESET_COMMAND:
                self.close_wanted = True

    def _on_answer(self, answer: PlatformGeneralResponse, now_ms: int) -> None:
        serial = answer.answer_serial
        if self.phase is Phase.AUTHENTICATING and serial == self._handshake_serial:
            if answer.result != Result.OK:
                self.stats.refused += 1
                self.auth_code = None  # register again on the next connection
                self.close_wanted = True
                return
            self._online(now_ms)
            return
        pending = self._unacked.pop(serial, None)
        if pending is None:
            return
        if answer.result in (Result.OK, Result.ALARM_CONFIRMED):
            self.stats.acknowledged += len(pending.items)
        else:
            self.stats.refused += len(pending.items)
        if serial == self._backfill_serial:
            self._backfill_serial = None
            self._send_backfill(now_ms)

    def _on_timeout(self, serial: int) -> None:
        """Every retry spent: the link is considered broken (the shell reconnects)."""
        self.stats.timeouts += 1
        pending = self._unacked.pop(serial, None)
        if pending is not None:
            for item in pending.items:
                self._to_blind(item)
        self.close_wanted = True

    # ------------------------------------------------------------------ commands

    def reply_to(self, header: Header, message: Message, now_ms: int) -> Message | None:
        """The device's answer to a platform command (and its effect on the device)."""
        if isinstance(message, SetParameters):
            for param_id, value in message.params:
                if param_id in self.params and len(value) in (1, 2, 4):
                    self.params[param_id] = int.from_bytes(value, "big")
            if self._conn is not None:
                self._conn.reply_timeout_s = float(self.params[ParamId.TCP_REPLY_TIMEOUT_S])
                self._conn.max_retries = self.params[ParamId.TCP_RETRIES]
            self._next_report_ms = min(self._next_report_ms, now_ms + self._interval_ms(now_ms))
            return TerminalGeneralResponse(header.serial, header.msg_id, Result.OK)
        if isinstance(message, TemporaryTracking):
            if message.interval_s == 0 or message.validity_s == 0:
                self.tracking_until_ms = 0
            else:
                self.tracking_interval_s = message.interval_s
                self.tracking_until_ms = now_ms + message.validity_s * 1000
            self._next_report_ms = now_ms
        if isinstance(message, VehicleControl):
            self.vehicle_controls.append(message)
        wants_location = isinstance(message, LocationQuery | VehicleControl)
        location = self.report_at(now_ms) if wants_location else None
        return command_reply(header, message, location=location, params=self.params)

    # ------------------------------------------------------------------ time passes

    def tick(self, now_ms: int) -> None:
        """Does what is due at `now_ms`: retries, reports, heartbeats, the end of tracking."""
        if self.tracking_until_ms and now_ms >= self.tracking_until_ms:
            self.tracking_until_ms = 0  # back to the normal plan, counted from the last report
            self._next_report_ms = self._last_report_ms + self._interval_ms(now_ms)
        if self._conn is not None:
            self._conn.check_timeouts(now_ms / 1000)
            self._process(now_ms)
        if self.habits.kind is Kind.WIRED and now_ms >= self._next_probe_ms:
            self._next_probe_ms = now_ms + self.habits.acc_probe_s * 1000
            acc = self.motion.fix_at(now_ms).acc_on
            if self._last_acc is not None and acc != self._last_acc:
                self._next_report_ms = now_ms  # a status change is reported at once
        handshaking = self.connected and self.phase is not Phase.ONLINE
        if now_ms >= self._next_report_ms and not handshaking:  # online: reports right after
            self._report(now_ms)
            self._next_report_ms = now_ms + self._interval_ms(now_ms)
        heartbeat_ms = self.params[ParamId.HEARTBEAT_INTERVAL_S] * 1000
        if self.phase is Phase.ONLINE and now_ms - self._last_sent_ms >= heartbeat_ms:
            self._send(Heartbeat(), now_ms)
            self.stats.heartbeats += 1
        self._drain_conn()

    def next_timer_ms(self, now_ms: int) -> int:
        """When `tick` has something to do next (the shell sleeps until then or data)."""
        due = [self._next_report_ms]
        if self.habits.kind is Kind.WIRED:
            due.append(self._next_probe_ms)
        if self.tracking_until_ms:
            due.append(self.tracking_until_ms)
        if self.phase is Phase.ONLINE:
            due.append(self._last_sent_ms + self.params[ParamId.HEARTBEAT_INTERVAL_S] * 1000)
        if not self.connected:
            due.append(self.reconnect_at_ms)
        if self._conn is not None and self._conn.awaiting_reply:
            due.append(now_ms + 1000)  # retry deadlines live in the connection: look each second
        return max(now_ms, min(due))

    def _interval_ms(self, now_ms: int) -> int:
        if self.tracking_until_ms > now_ms:
            return self.tracking_interval_s * 1000
        sleep_s = self.params[ParamId.SLEEP_INTERVAL_S]
        if self.habits.kind is Kind.WIRELESS:
            return sleep_s * 1000
        acc = self._last_acc if self._last_acc is not None else False
        return (self.params[ParamId.DEFAULT_INTERVAL_S] if acc else sleep_s) * 1000

    def report_at(self, now_ms: int) -> LocationReport:
        fix = self.motion.fix_at(now_ms)
        status = (int(Status.ACC_ON) if fix.acc_on else 0) | _STATUS_GPS
        if fix.positioned:
            status |= int(Status.POSITIONED)
        return LocationReport.at(
            lon=fix.lon,
            lat=fix.lat,
            time_ms=now_ms - now_ms % 1000,
            speed_kmh=fix.speed_kmh,
            course=fix.course % 360,
            altitude_m=fix.altitude_m,
            status=status,
            extras=((0x30, b"\x18"), (0x31, b"\x0b")),
        )

    def _report(self, now_ms: int) -> None:
        report = self.report_at(now_ms)
        self._last_report_ms = now_ms
        self._last_acc = bool(report.status & Status.ACC_ON)
        if self.phase is not Phase.ONLINE:
            self._to_blind(report)
            return
        if self._held is None and self._rng.random() < self.habits.reorder_share:
            self._held = report  # sent after the next one: arrives out of order
            self.stats.reordered += 1
            return
        self._send_report(report, now_ms)
        if self._held is not None:
            held, self._held = self._held, None
            self._send_report(held, now_ms)

    def _send_report(self, report: LocationReport, now_ms: int) -> None:
        self._drain_conn()
        serial = self._send(report, now_ms)
        self._unacked[serial] = _Unacked(MessageId.LOCATION_REPORT, [report])
        self.stats.reports += 1
        if self._rng.random() < self.habits.duplicate_share:
            self._drain_conn()
            self._out.append(self._out[-1])  # the same frame again, same serial
            self.stats.duplicates += 1

    # ------------------------------------------------------------------ blind area

    def _to_blind(self, report: LocationReport) -> None:
        if len(self._blind) >= self.habits.blind_capacity:
            self._blind.popleft()
            self.stats.blind_dropped += 1
        self._blind.append(report)

    @property
    def blind_count(self) -> int:
        return len(self._blind) + (self._held is not None)

    def _send_backfill(self, now_ms: int) -> None:
        """One 0x0704 type 1 batch at a time, oldest fixes first; the next on its answer."""
        if self._backfill_serial is not None or self.phase is not Phase.ONLINE:
            return
        if self._held is not None:
            self._blind.append(self._held)
            self._held = None
        if not self._blind:
            return
        ordered = sorted(self._blind, key=lambda r: r.time_bcd)
        batch, rest = ordered[: self.habits.backfill_items], ordered[self.habits.backfill_items :]
        self._blind = deque(rest)
        serial = self._send(BatchLocationReport(BATCH_BACKFILL, tuple(batch)), now_ms)
        self._unacked[serial] = _Unacked(MessageId.BATCH_LOCATION_REPORT, batch)
        self._backfill_serial = serial
        self.stats.backfilled += len(batch)

    # ------------------------------------------------------------------ sending

    def _authenticate(self, now_ms: int) -> None:
        assert self.auth_code is not None
        self.phase = Phase.AUTHENTICATING
        auth = Authenticate(self.auth_code, imei_for(self.terminal), "LWSIM-1.0", self.edition)
        self._handshake_serial = self._send(auth, now_ms)

    def _online(self, now_ms: int) -> None:
        self.phase = Phase.ONLINE
        self._failures = 0
        self._next_report_ms = min(self._next_report_ms, now_ms)
        self._send_backfill(now_ms)

    def _send(self, message: Message, now_ms: int) -> int:
        assert self._conn is not None
        answered = isinstance(message, TerminalGeneralResponse | ParametersReply)
        answered = answered or isinstance(message, LocationQueryReply)
        serial = self._conn.send(message, now_s=None if answered else now_ms / 1000)
        self._last_sent_ms = now_ms
        return serial

    def _drain_conn(self) -> None:
        if self._conn is not None:
            data = self._conn.data_to_send()
            if data:
                self._out.append(data)

    def data_to_send(self) -> bytes:
        """Bytes for a stream transport; empties the queue."""
        self._drain_conn()
        out = b"".join(self._out)
        self._out.clear()
        return out

    def frames_to_send(self) -> list[bytes]:
        """Whole frames, one per transport message (MQTT); empties the queue."""
        return _FRAME.findall(self.data_to_send())


__all__ = [
    "Device",
    "DeviceStats",
    "Fix",
    "Habits",
    "Kind",
    "Motion",
    "Parked",
    "Phase",
    "PlanMotion",
    "Shuttle",
    "command_reply",
    "default_registration",
    "imei_for",
]
