"""What a connection may cost before it has authenticated: the caps on connections (in total
and per source address, off when 0) and the registration lookups in the store (a token bucket
and a bound on how many run at once). Sans-IO: counts and times in, answers out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_connections: int = 0  # 0: no cap
    max_connections_per_address: int = 0  # 0: no cap
    # Store lookups of terminals the registry does not know (provisioned since the gateway
    # started): at most this many per second on average, bursts of `lookup_burst`, and at
    # most `max_lookups` at once. Past them a registration waits unanswered; the terminal
    # asks again.
    lookups_per_s: float = 20.0
    lookup_burst: int = 40
    max_lookups: int = 8


class Admission:
    """Counts open connections per address and spends lookup tokens."""

    def __init__(self, limits: AdmissionLimits, now: float) -> None:
        self.limits = limits
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.lookups = 0  # running
        self._tokens = float(limits.lookup_burst)
        self._refilled = now

    def admit(self, address: str) -> str | None:
        """Counts a new connection from `address`; the cap it is over, or None (admitted)."""
        limits = self.limits
        if limits.max_connections and self.open >= limits.max_connections:
            return "total"
        per_address = limits.max_connections_per_address
        if per_address and self.by_address[address] >= per_address:
            return "address"
        self.open += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        """An admitted connection closed."""
        self.open -= 1
        left = self.by_address[address] - 1
        if left > 0:
            self.by_address[address] = left
        else:
            del self.by_address[address]

    def start_lookup(self, now: float) -> bool:
        """Takes a lookup token; False when over the rate or too many run already."""
        limits = self.limits
        self._tokens = min(
            float(limits.lookup_burst),
            self._tokens + (now - self._refilled) * limits.lookups_per_s,
        )
        self._refilled = now
        if self.lookups >= limits.max_lookups or self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self.lookups += 1
        return True

    def end_lookup(self) -> None:
        self.lookups -= 1
