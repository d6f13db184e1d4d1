"""The one shape of an engine rule: settings, state, hits.

A rule declares its settings (`Setting`: RULES.toml table, key, default; the thresholds file
is made of them, see pipeline.thresholds), carries its state per device or per vehicle (grown by
`grow`), and reports what it found as `Hits`: alert rows the engine raises as they are, or
episode edges the engine's incident merger turns into one alert per vehicle incident. The engine
loops over its rules at each step (a batch, a flush of what waits on other devices, a timer),
so adding a rule is adding a class to the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from alerts.incidents import Edge, IncidentStart
from alerts.model import AlertType

if TYPE_CHECKING:
    from positions import DeviceIndex, PositionBatch
    from trajectory.preprocess import Preprocessed
    from trajectory.segments import Ints
    from trajectory.stops import StopDetector, StopEvents

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Setting:
    """One threshold: `[table] key = default` in RULES.toml. `per_vehicle`: tenant, product
    and loan-state tables may override it for a vehicle (else the file's default holds)."""

    table: str
    key: str
    default: float
    per_vehicle: bool = False

    @property
    def name(self) -> str:
        return f"{self.table}.{self.key}"


class Limits(Protocol):
    """Resolved thresholds (pipeline.rules.catalogue.Thresholds)."""

    def get(self, table: str, key: str) -> float: ...


@dataclass(slots=True)
class Hits:
    """What a rule found: alert rows (`type`, `device`, `time_ms`, `details`, `fence_id`), or
    episode `edges` (in each device's time order) for the incident merger, or both."""

    type: AlertType | None = None
    device: list[int] = field(default_factory=list)
    time_ms: list[int] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    fence_id: list[str | None] | None = None
    edges: list[Edge] = field(default_factory=list)

    @classmethod
    def rows(
        cls, kind: AlertType, device: Any, time_ms: Any, details: list[dict[str, Any]]
    ) -> Hits:
        """Alert rows from columns (numpy arrays or lists) of equal length."""
        return cls(kind, _ints(device), _ints(time_ms), details)

    @classmethod
    def episodes(cls, edges: list[Edge]) -> Hits:
        return cls(edges=edges)


def _ints(values: Any) -> list[int]:
    return values.tolist() if isinstance(values, np.ndarray) else [int(v) for v in values]


@dataclass
class FleetView:
    """What every rule may read of the engine: devices' vehicles and the motion state."""

    vehicle_of: npt.NDArray[np.int32]
    devices_of: dict[int, list[int]]
    vehicle_ids: list[str]
    stops: StopDetector
    devices: DeviceIndex
    borrower_of: list[str] = field(default_factory=list)  # per vehicle index
    # This batch's stops long enough and away from the car's usual places (set by long_stay
    # when a rule asked for them): (device, start, end or -1 while open, lon, lat).
    away_stops: list[tuple[int, int, int, float, float]] = field(default_factory=list)

    @property
    def n_devices(self) -> int:
        return len(self.vehicle_of)


@dataclass(slots=True)
class Step:
    """One batch, grouped by device, with the columns every rule reads gathered once."""

    batch: PositionBatch
    dev: npt.NDArray[np.intp]
    pre: Preprocessed
    report: npt.NDArray[np.intp]  # rows that are reports (alarm bits, silences)
    r_dev: npt.NDArray[np.intp]
    talk_dev: npt.NDArray[np.intp]  # reports as talk, on receive time (trajectory.heard)
    talk_ms: I64
    talk: npt.NDArray[np.intp]
    f_dev: npt.NDArray[np.intp]  # accepted valid fixes
    f_veh: npt.NDArray[np.intp]
    f_ms: I64
    f_lon: F64
    f_lat: F64
    f_speed: npt.NDArray[np.float32]
    f_status: npt.NDArray[np.uint32]
    stops: StopEvents
    watermark: F64  # per vehicle: every device reported up to here
    heard: F64  # per vehicle: every device talked up to here (receive time)


class Rule:
    """Base of every engine rule; a hook a rule does not need returns nothing."""

    name: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(self, limits: Limits, view: FleetView) -> None:
        self.view = view

    def grow(self, n_devices: int) -> None:
        """New devices (and vehicles, in `view`): their state starts empty."""

    def per_vehicle(self, devices: slice, limits: list[Limits]) -> None:
        """Each device of `devices` gets its vehicle's thresholds (`limits`, one per device)."""

    def fleet_changed(self, moved: list[int], touched: list[int]) -> None:
        """The fleet moved `moved` devices between the `touched` vehicles."""

    def batch(self, step: Step) -> list[Hits]:
        return []

    def flush(self, watermark: F64, heard: F64) -> list[Hits]:
        """Rows waiting on other devices of their vehicle, up to the given watermarks."""
        return []

    def advance(self, now_ms: int) -> list[Hits]:
        """Timers whose deadline the clock `now_ms` has reached."""
        return []

    def known_through_ms(self, n_devices: int) -> F64 | None:
        """Per device, the time up to which this rule's edges are final (None: no limit)."""
        return None

    def hold(self, from_ms: int, to_ms: int) -> None:
        """The platform heard nothing from `from_ms` to `to_ms`: not a silence."""

    def incidents(self, decided: list[IncidentStart]) -> list[Hits]:
        """Incidents the merger decided (internal episode types included)."""
        return []


def empty_ints() -> Ints:
    return np.zeros(0, np.int32)


def episode_edges(
    kind: AlertType,
    start_device: Any,
    start_ms: Any,
    details: list[dict[str, Any]],
    end_device: Any,
    end_ms: Any,
) -> list[Edge]:
    """Starts and ends of one rule as merger edges, in each device's time order (an end before
    a start at the same time, so a new episode never closes itself)."""
    edges = [
        Edge(int(d), int(t), True, kind.value, "", info)
        for d, t, info in zip(start_device, start_ms, details, strict=True)
    ]
    edges += [
        Edge(int(d), int(t), False, kind.value, "") for d, t in zip(end_device, end_ms, strict=True)
    ]
    edges.sort(key=lambda e: (e.device, e.time_ms, e.is_start))
    return edges
