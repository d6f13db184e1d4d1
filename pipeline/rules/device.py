"""Rules about one device's reports and fixes: gps_jump, offline, power_cut, antenna_cut,
overspeed, tow and frozen_position (the algorithms are in trajectory/)."""

from __future__ import annotations

from typing import ClassVar

from alerts.model import AlertType, format_time
from pipeline.rules.base import F64, FleetView, Hits, Limits, Rule, Setting, Step, episode_edges
from trajectory.alarms import ANTENNA_CUT_BIT, POWER_CUT_BIT, AlarmBitRule
from trajectory.frozen import FrozenPositionRule, FrozenSettings
from trajectory.offline import OfflineRule, Silences
from trajectory.overspeed import OverspeedRule
from trajectory.preprocess import GateSettings
from trajectory.tow import TowRule, TowSettings

HOUR_S = 3600.0


class GpsJump(Rule):
    """The glitch gate runs in pre-processing (the engine builds it from these settings);
    this rule raises one alert per run of jumped fixes."""

    name = "gps_jump"
    settings = (Setting("gps_jump", "speed_kmh", 250.0), Setting("gps_jump", "reanchor_fixes", 3))

    @staticmethod
    def gate(limits: Limits) -> GateSettings:
        return GateSettings(
            max_speed_kmh=limits.get("gps_jump", "speed_kmh"),
            reanchor_fixes=int(limits.get("gps_jump", "reanchor_fixes")),
        )

    def batch(self, step: Step) -> list[Hits]:
        pre = step.pre
        if len(pre.jump_rows) == 0:
            return []
        b = step.batch
        rows = pre.jump_rows
        details = [{"implied_speed_kmh": round(s, 1)} for s in pre.jump_speed_kmh.tolist()]
        return [Hits.rows(AlertType.GPS_JUMP, b.device[rows], b.time_ms[rows], details)]


class Offline(Rule):
    name = "offline"
    settings = (Setting("offline", "after_s", 2 * HOUR_S, per_vehicle=True),)

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.default_ms = int(limits.get("offline", "after_s") * 1000)
        self.rule = OfflineRule()

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices, self.default_ms)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.after_ms[devices] = [int(t.get("offline", "after_s") * 1000) for t in limits]

    def batch(self, step: Step) -> list[Hits]:
        return _silences(self.rule.reports(step.talk_dev, step.talk_ms))

    def advance(self, now_ms: int) -> list[Hits]:
        return _silences(self.rule.advance(now_ms))

    def hold(self, from_ms: int, to_ms: int) -> None:
        self.rule.hold(from_ms, to_ms)


def _silences(s: Silences) -> list[Hits]:
    if len(s.device) == 0:
        return []
    details = [{"last_report": format_time(int(last))} for last in s.last_ms.tolist()]
    return [Hits.rows(AlertType.OFFLINE, s.device, s.alert_ms, details)]


class AlarmBit(Rule):
    """An alarm bit rising from 0 to 1 (a device's first report counts as rising from 0)."""

    kind: ClassVar[AlertType]
    bit: ClassVar[int]

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = AlarmBitRule(self.bit)

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices)

    def batch(self, step: Step) -> list[Hits]:
        b = step.batch
        rows = step.report[self.rule.rises(step.r_dev, b.alarm[step.report])]
        if len(rows) == 0:
            return []
        details = [{"alarm": a} for a in b.alarm[rows].tolist()]
        return [Hits.rows(self.kind, b.device[rows], b.time_ms[rows], details)]


class PowerCut(AlarmBit):
    name = "power_cut"
    kind = AlertType.POWER_CUT
    bit = POWER_CUT_BIT


class AntennaCut(AlarmBit):
    name = "antenna_cut"
    kind = AlertType.ANTENNA_CUT
    bit = ANTENNA_CUT_BIT


class Overspeed(Rule):
    name = "overspeed"
    settings = (
        Setting("overspeed", "speed_kmh", 120.0, per_vehicle=True),
        Setting("overspeed", "duration_s", 60.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.default_kmh = limits.get("overspeed", "speed_kmh")
        self.default_ms = int(limits.get("overspeed", "duration_s") * 1000)
        self.rule = OverspeedRule()

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices, self.default_kmh, self.default_ms)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.limit_kmh[devices] = [t.get("overspeed", "speed_kmh") for t in limits]
        self.rule.duration_ms[devices] = [
            int(t.get("overspeed", "duration_s") * 1000) for t in limits
        ]

    def batch(self, step: Step) -> list[Hits]:
        fast = self.rule.fixes(step.f_dev, step.f_ms, step.f_speed)
        speeds = [{"speed_kmh": round(v, 1)} for v in fast.start_value.tolist()]
        return [
            Hits.episodes(
                episode_edges(
                    AlertType.OVERSPEED, fast.start_device, fast.start_ms, speeds,
                    fast.end_device, fast.end_ms,
                )
            )
        ]  # fmt: skip

    def known_through_ms(self, n_devices: int) -> F64:
        return self.rule.known_through_ms(n_devices)


class Tow(Rule):
    name = "tow"
    settings = (
        Setting("tow", "speed_kmh", 20.0, per_vehicle=True),
        Setting("tow", "duration_s", 120.0, per_vehicle=True),
        Setting("tow", "distance_m", 500.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = TowRule(tow_settings(limits))

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.set_limits(devices, [tow_settings(t) for t in limits])

    def batch(self, step: Step) -> list[Hits]:
        s = step
        towed = self.rule.fixes(s.f_dev, s.f_ms, s.f_lon, s.f_lat, s.f_speed, s.f_status)
        rows = towed.rows
        if len(rows) == 0:
            return []
        details = [
            {"since": format_time(since), "distance_m": round(m)}
            for since, m in zip(towed.since_ms.tolist(), towed.distance_m.tolist(), strict=True)
        ]
        return [Hits.rows(AlertType.TOW, s.f_dev[rows], s.f_ms[rows], details)]


class FrozenPosition(Rule):
    name = "frozen_position"
    settings = (
        Setting("frozen_position", "fixes", 20, per_vehicle=True),
        Setting("frozen_position", "speed_kmh", 5.0, per_vehicle=True),
    )

    def __init__(self, limits: Limits, view: FleetView) -> None:
        super().__init__(limits, view)
        self.rule = FrozenPositionRule(frozen_settings(limits))

    def grow(self, n_devices: int) -> None:
        self.rule.ensure(n_devices)

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        self.rule.set_limits(devices, [frozen_settings(t) for t in limits])

    def batch(self, step: Step) -> list[Hits]:
        s = step
        frozen = self.rule.fixes(s.f_dev, s.f_ms, s.f_lon, s.f_lat, s.f_speed, s.f_status)
        rows = frozen.rows
        if len(rows) == 0:
            return []
        needed = self.rule.fixes_needed[s.f_dev[rows]].tolist()
        details = [
            {"since": format_time(since), "fixes": fixes, "lon": round(x, 6), "lat": round(y, 6)}
            for since, fixes, x, y in zip(
                frozen.since_ms.tolist(), needed, s.f_lon[rows].tolist(), s.f_lat[rows].tolist(),
                strict=True,
            )
        ]  # fmt: skip
        return [Hits.rows(AlertType.FROZEN_POSITION, s.f_dev[rows], s.f_ms[rows], details)]


def tow_settings(limits: Limits) -> TowSettings:
    return TowSettings(
        speed_kmh=limits.get("tow", "speed_kmh"),
        duration_ms=int(limits.get("tow", "duration_s") * 1000),
        distance_m=limits.get("tow", "distance_m"),
    )


def frozen_settings(limits: Limits) -> FrozenSettings:
    return FrozenSettings(
        fixes=int(limits.get("frozen_position", "fixes")),
        speed_kmh=limits.get("frozen_position", "speed_kmh"),
    )
