"""The sans-IO simulated tracker, driven frame by frame against a platform-role connection."""

from __future__ import annotations

import itertools

import pytest

from ingest.jt808 import (
    Edition,
    Jt808Connection,
    MessageReceived,
    Role,
    decode_frame,
)
from ingest.jt808.ids import MessageId, ParamId
from ingest.jt808.messages import (
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
    Register,
    RegisterResponse,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    TerminalGeneralResponse,
)
from simulators.device import Device, Habits, Parked, Phase, Shuttle

T0_MS = 1_735_689_600_000
TERMINAL = "13900000001"
HERE = Parked(121.47, 31.23)


class Platform:
    """The other end: a PLATFORM connection that answers like a gateway when asked to."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.conn = Jt808Connection(Role.PLATFORM)
        self.received: list[MessageReceived] = []

    def pump(self, now_ms: int) -> list[MessageReceived]:
        """Takes what the device sent; returns the new messages."""
        self.conn.receive_data(self.device.data_to_send(), now_ms / 1000)
        new = [e for e in self.conn.events() if isinstance(e, MessageReceived)]
        self.received.extend(new)
        return new

    def deliver(self, now_ms: int) -> None:
        data = self.conn.data_to_send()
        if data:
            self.device.receive_data(data, now_ms)

    def ack(self, event: MessageReceived, now_ms: int, result: int = 0) -> None:
        self.conn.answer(event.header, result)
        self.deliver(now_ms)

    def command(self, message: Message, now_ms: int) -> int:
        serial = self.conn.send(message)
        self.deliver(now_ms)
        return serial

    def handshake(self, now_ms: int, code: str = "secret") -> None:
        (register,) = self.pump(now_ms)
        assert isinstance(register.message, Register)
        self.conn.send(RegisterResponse(register.header.serial, 0, code))
        self.deliver(now_ms)
        (auth,) = self.pump(now_ms)
        assert isinstance(auth.message, Authenticate)
        self.ack(auth, now_ms)


def online(
    habits: Habits | None = None, edition: Edition = Edition.V2013, motion: object = HERE
) -> tuple[Device, Platform]:
    device = Device(TERMINAL, motion, habits, edition=edition, start_ms=T0_MS)  # type: ignore[arg-type]
    platform = Platform(device)
    device.connection_made(T0_MS)
    platform.handshake(T0_MS)
    assert device.phase is Phase.ONLINE
    return device, platform


def reports(events: list[MessageReceived]) -> list[MessageReceived]:
    return [e for e in events if isinstance(e.message, LocationReport)]


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_every_frame_the_device_sends_decodes_with_the_codec(edition: Edition) -> None:
    device = Device(TERMINAL, HERE, edition=edition, start_ms=T0_MS)
    device.connection_made(T0_MS)
    frames = device.frames_to_send()
    assert len(frames) == 1
    frame = decode_frame(frames[0])
    assert frame.error is None
    assert isinstance(frame.body, Register)
    assert frame.header.edition is edition
    assert frame.header.terminal.lstrip("0") == TERMINAL


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_device_registers_keeps_the_code_authenticates_then_reports(edition: Edition) -> None:
    device = Device(TERMINAL, HERE, edition=edition, start_ms=T0_MS)
    platform = Platform(device)
    device.connection_made(T0_MS)
    platform.handshake(T0_MS, code="code-42")
    assert device.auth_code == "code-42"
    auth = platform.received[1].message
    assert isinstance(auth, Authenticate)
    assert auth.auth_code == "code-42"
    device.tick(T0_MS)
    (report,) = reports(platform.pump(T0_MS))
    assert report.header.edition is edition
    assert isinstance(report.message, LocationReport)
    assert report.message.lon == pytest.approx(121.47)
    assert report.message.time_ms == T0_MS


def test_a_device_with_a_code_authenticates_without_registering_again() -> None:
    device, _platform = online()
    device.connection_lost(T0_MS + 1000)
    device.connection_made(T0_MS + 5000)
    fresh = Platform(device)
    (first,) = fresh.pump(T0_MS + 5000)
    assert isinstance(first.message, Authenticate)
    assert first.message.auth_code == "secret"


def test_a_refused_code_makes_the_device_register_on_the_next_connection() -> None:
    device, _ = online()
    device.connection_lost(T0_MS)
    device.connection_made(T0_MS + 5000)
    platform = Platform(device)
    (auth,) = platform.pump(T0_MS + 5000)
    platform.ack(auth, T0_MS + 5000, result=1)
    assert device.close_wanted
    assert device.auth_code is None
    device.connection_lost(T0_MS + 6000)
    device.connection_made(T0_MS + 60_000)
    (again,) = Platform(device).pump(T0_MS + 60_000)
    assert isinstance(again.message, Register)


def test_an_unanswered_report_is_resent_with_the_jt808_back_off() -> None:
    device, platform = online(Habits(reply_timeout_s=10, max_retries=3, heartbeat_interval_s=9999))
    device.tick(T0_MS)
    (first,) = reports(platform.pump(T0_MS))
    resent_at = []
    for s in range(1, 400):
        now = T0_MS + s * 1000
        device.tick(now)
        for event in reports(platform.pump(now)):
            if event.header.serial == first.header.serial:
                resent_at.append(s)
        if device.close_wanted:
            break
    # T, then 2T, then 6T after it: at 10 s, 30 s and 90 s; given up 24T later.
    assert resent_at == [10, 30, 90]
    assert s == 90 + 240
    assert device.stats.timeouts == 1
    assert device.blind_count >= 1  # the report waits for the next link


def test_an_answered_report_is_not_resent() -> None:
    device, platform = online(Habits(heartbeat_interval_s=9999, parked_interval_s=9999))
    device.tick(T0_MS)
    (first,) = reports(platform.pump(T0_MS))
    platform.ack(first, T0_MS + 200)
    for s in range(1, 100):
        device.tick(T0_MS + s * 1000)
    assert reports(platform.pump(T0_MS + 100_000)) == []
    assert device.stats.acknowledged == 1


def test_set_parameters_changes_the_moving_interval_and_is_answered() -> None:
    motion = Shuttle(121.47, 31.23, drive_s=3600, park_s=60, start_ms=T0_MS)
    device, platform = online(
        Habits(moving_interval_s=30, heartbeat_interval_s=9999), motion=motion
    )
    device.tick(T0_MS)
    for e in platform.pump(T0_MS):
        platform.ack(e, T0_MS)
    serial = platform.command(SetParameters.of({ParamId.DEFAULT_INTERVAL_S: 5}), T0_MS + 1000)
    (answer,) = platform.pump(T0_MS + 1000)
    assert answer.message == TerminalGeneralResponse(serial, MessageId.SET_PARAMETERS, 0)
    times = []
    for s in range(2, 40):
        now = T0_MS + s * 1000
        device.tick(now)
        for e in reports(platform.pump(now)):
            times.append(s)
            platform.ack(e, now)
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps == {5}


def test_location_query_is_answered_with_0x0201_echoing_the_serial() -> None:
    _device, platform = online()
    serial = platform.command(LocationQuery(), T0_MS + 1000)
    answers = [e for e in platform.pump(T0_MS + 1000) if isinstance(e.message, LocationQueryReply)]
    (answer,) = answers
    assert isinstance(answer.message, LocationQueryReply)
    assert answer.message.answer_serial == serial
    assert answer.message.location.lat == pytest.approx(31.23)


def test_query_parameters_is_answered_with_0x0104_listing_the_intervals() -> None:
    _device, platform = online(Habits(moving_interval_s=15))
    serial = platform.command(QueryParameters(), T0_MS)
    (answer,) = platform.pump(T0_MS)
    assert isinstance(answer.message, ParametersReply)
    assert answer.message.answer_serial == serial
    assert answer.message.values()[ParamId.DEFAULT_INTERVAL_S] == 15


def test_terminal_control_is_acknowledged_with_0x0001() -> None:
    _device, platform = online()
    serial = platform.command(TerminalControl(0xF0, ""), T0_MS)
    (answer,) = platform.pump(T0_MS)
    assert answer.message == TerminalGeneralResponse(serial, MessageId.TERMINAL_CONTROL, 0)


def test_temporary_tracking_reports_at_its_interval_until_validity_ends() -> None:
    habits = Habits.wireless(heartbeat_interval_s=99999)
    device, platform = online(habits)
    device.tick(T0_MS)
    for e in reports(platform.pump(T0_MS)):
        platform.ack(e, T0_MS)
    serial = platform.command(TemporaryTracking(10, 60), T0_MS + 1000)
    (answer,) = platform.pump(T0_MS + 1000)
    assert answer.message == TerminalGeneralResponse(serial, MessageId.TEMPORARY_TRACKING, 0)
    times = []
    for s in range(1, 600):
        now = T0_MS + s * 1000
        device.tick(now)
        for e in reports(platform.pump(now)):
            times.append(s)
            platform.ack(e, now)
    assert times == [1, 11, 21, 31, 41, 51]  # then back to a report every few hours


def test_wired_unit_reports_often_while_moving_and_rarely_parked_with_heartbeats() -> None:
    motion = Shuttle(121.47, 31.23, drive_s=600, park_s=1800, start_ms=T0_MS)
    habits = Habits(moving_interval_s=20, parked_interval_s=300, heartbeat_interval_s=60)
    device, platform = online(habits, motion=motion)
    moving, parked, heartbeats = 0, 0, 0
    for s in range(2400):
        now = T0_MS + s * 1000
        device.tick(now)
        for e in platform.pump(now):
            platform.ack(e, now)
            if isinstance(e.message, Heartbeat):
                heartbeats += 1
            elif isinstance(e.message, LocationReport):
                moving += bool(e.message.speed_kmh)
                parked += not e.message.speed_kmh
    assert 28 <= moving <= 32  # 600 s at one report per 20 s
    assert 6 <= parked <= 9  # 1800 s at one per 300 s, plus the stop report
    assert heartbeats >= 20  # parked: a heartbeat each minute between reports


def test_wireless_unit_reports_rarely() -> None:
    device, platform = online(Habits.wireless())
    count = 0
    for m in range(12 * 60):
        now = T0_MS + m * 60_000
        device.tick(now)
        for e in reports(platform.pump(now)):
            platform.ack(e, now)
            count += 1
    assert count == 3  # at 0, 4 h and 8 h


def test_fixes_taken_during_an_outage_arrive_as_blind_area_batches_in_time_order() -> None:
    habits = Habits(parked_interval_s=30, heartbeat_interval_s=9999, backfill_items=20)
    device, _ = online(habits)
    device.connection_lost(T0_MS)
    for s in range(0, 1500, 30):
        device.tick(T0_MS + s * 1000)
    assert device.blind_count == 50
    now = T0_MS + 1_500_000
    device.connection_made(now)
    platform = Platform(device)
    (auth,) = platform.pump(now)
    platform.ack(auth, now)
    items: list[LocationReport] = []
    for _ in range(4):
        batches = [e for e in platform.pump(now) if isinstance(e.message, BatchLocationReport)]
        if not batches:
            break
        (batch,) = batches
        assert isinstance(batch.message, BatchLocationReport)
        assert batch.message.backfill
        items.extend(batch.message.items)
        platform.ack(batch, now)
    assert len(items) == 50
    times = [r.time_ms for r in items]
    assert times == sorted(times)
    assert times[0] == T0_MS
    assert device.blind_count == 0


def test_reconnect_delay_doubles_up_to_its_bound() -> None:
    habits = Habits(reconnect_min_s=2, reconnect_max_s=20, reconnect_jitter=0.0)
    device = Device(TERMINAL, HERE, habits, start_ms=T0_MS)
    delays = []
    now = T0_MS
    for _ in range(6):
        device.connection_made(now)
        device.connection_lost(now)
        delays.append(device.reconnect_at_ms - now)
        assert not device.wants_connection(now)
        now = device.reconnect_at_ms
        assert device.wants_connection(now)
    assert delays == [2000, 4000, 8000, 16000, 20000, 20000]


def test_duplicate_and_reordered_reports_are_sent_when_asked_for() -> None:
    habits = Habits(
        parked_interval_s=10, heartbeat_interval_s=9999, duplicate_share=0.3, reorder_share=0.3
    )
    device, platform = online(habits)
    got = []
    for s in range(0, 2000, 10):
        now = T0_MS + s * 1000
        device.tick(now)
        for e in reports(platform.pump(now)):
            got.append((e.header.serial, e.message))
            platform.ack(e, now)
    serials = [s for s, _ in got]
    assert len(serials) - len(set(serials)) == device.stats.duplicates > 0
    times = [m.time_ms for _, m in got if isinstance(m, LocationReport)]
    assert device.stats.reordered > 0
    assert sum(1 for a, b in itertools.pairwise(times) if b < a) > 0


def test_platform_answers_to_reports_count_as_acknowledged() -> None:
    device, platform = online(Habits(heartbeat_interval_s=9999))
    device.tick(T0_MS)
    (report,) = reports(platform.pump(T0_MS))
    platform.conn.send(PlatformGeneralResponse(report.header.serial, 0x0200, 0))
    platform.deliver(T0_MS)
    assert device.stats.acknowledged == 1
