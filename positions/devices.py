"""Terminal id (the JT808 BCD phone as digits) <-> dense int32 device index."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


class DeviceIndex:
    """Assigns each terminal id a stable dense index so engine state can live in arrays."""

    def __init__(self, terminals: Iterable[str] = ()) -> None:
        self._index: dict[str, int] = {}
        self._terminals: list[str] = []
        for terminal in terminals:
            self.index_of(terminal)

    def __len__(self) -> int:
        return len(self._terminals)

    def __contains__(self, terminal: object) -> bool:
        return terminal in self._index

    def index_of(self, terminal: str) -> int:
        """The index of `terminal`, assigning the next one if it is new."""
        found = self._index.get(terminal)
        if found is None:
            found = len(self._terminals)
            self._index[terminal] = found
            self._terminals.append(terminal)
        return found

    def indexes_of(self, terminals: Iterable[str]) -> npt.NDArray[np.int32]:
        return np.fromiter((self.index_of(t) for t in terminals), dtype=np.int32)

    def terminal(self, index: int) -> str:
        return self._terminals[index]

    def terminals(self) -> list[str]:
        return list(self._terminals)
