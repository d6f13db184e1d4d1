"""Scenario settings: everything the generator needs, with the defaults the CLI uses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    """One scenario; the same config gives the same bytes."""

    vehicles: int = 20
    days: int = 3
    seed: int = 1
    incidents: bool = True  # False: background and confounders only, truth must be empty
    start: dt.date = dt.date(2024, 3, 4)  # a Monday
    centre_lon_deg: float = 121.47
    centre_lat_deg: float = 31.23
    width_km: float = 30.0  # the routine area where homes, work places and errands are
    height_km: float = 24.0
    city_margin_km: float = 6.0  # allowed area "city" = routine area grown by this
    wireless_share: float = 0.4
    moving_interval_s: tuple[int, int] = (10, 30)
    parked_interval_s: int = 300
    wireless_interval_s: int = 2700
    tracking_interval_s: int = 60
    incident_rate: float = 0.02  # per incident kind and vehicle-day (at least one each)
    confounder_rate: float = 0.02
    # Clock faults dealt over the devices (simulators.scenario_faults): ("mixed",) or names
    # from simulators.faults.CLOCK_FAULTS; empty: none, and no `received` column.
    faults: tuple[str, ...] = ()
    # Cars of different borrowers each parking hours at one unknown place (simulators.gathering;
    # ground truth in spots.json); 0: none.
    gathering_cars: int = 0

    def __post_init__(self) -> None:
        if self.vehicles < 1:
            raise ValueError("vehicles must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")
