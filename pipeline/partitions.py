"""How the vehicles are split between detector processes (docs/deploy.md): pure functions.

A vehicle's devices are all in one partition: the partition is a stable hash of the vehicle id
(of the terminal while it is bound to none), the same in every process and release. Each
detector aims at its fair share of the partitions, given how many detectors run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from pipeline.fleet import Fleet, Vehicle


def partition_of(key: str, partitions: int) -> int:
    """The partition of a vehicle id (or unbound terminal): the first 8 bytes of its BLAKE2b
    digest modulo the count (Python's own `hash` differs between processes)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def fair_share(partitions: int, members: int) -> int:
    """Partitions one of `members` detectors may own: the count divided, rounded up."""
    return math.ceil(partitions / max(1, members))


def plan(
    owned: set[int], free: Iterable[int], share: int, order: Sequence[int] | None = None
) -> tuple[list[int], list[int]]:
    """(partitions to try to take, partitions to release) so that this detector owns `share`:
    it takes free ones while under it, in `order` (a shuffled one spreads the detectors that
    look at once), and releases its highest-numbered ones while over it."""
    if len(owned) > share:
        return [], sorted(owned)[share:]
    wanted = share - len(owned)
    free_set = set(free) - owned
    candidates = [p for p in (order if order is not None else sorted(free_set)) if p in free_set]
    return candidates[:wanted], []


class PartitionMap:
    """Terminal -> partition under one fleet (bound devices by their vehicle's id)."""

    def __init__(self, partitions: int, fleet: Fleet | None = None) -> None:
        self.partitions = partitions
        self._by_device: dict[str, Vehicle] = {}
        self._cache: dict[str, int] = {}
        if fleet is not None:
            self.set_fleet(fleet)

    def set_fleet(self, fleet: Fleet) -> None:
        self._by_device = fleet.by_device()
        self._cache = {}

    def of(self, terminal: str) -> int:
        found = self._cache.get(terminal)
        if found is None:
            vehicle = self._by_device.get(terminal)
            key = vehicle.vehicle_id if vehicle is not None else terminal
            found = self._cache[terminal] = partition_of(key, self.partitions)
        return found

    def of_terminals(self, terminals: Sequence[str]) -> npt.NDArray[np.int32]:
        return np.fromiter((self.of(t) for t in terminals), np.int32, len(terminals))


def fleet_part(fleet: Fleet, partitions: int, part: int) -> Fleet:
    """The vehicles of one partition."""
    return Fleet(tuple(v for v in fleet.vehicles if partition_of(v.vehicle_id, partitions) == part))
