"""Sub-package reassembly with size and time limits, and the list of packets still missing."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.jt808.header import Header


@dataclass(slots=True)
class _Group:
    first: Header
    count: int
    first_serial: int
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    started_s: float = 0.0
    touched_s: float = 0.0
    requests: int = 0


@dataclass(frozen=True, slots=True)
class Completed:
    header: Header  # the first packet's header, with the packet fields cleared
    body: bytes


@dataclass(frozen=True, slots=True)
class Overdue:
    msg_id: int
    first_serial: int
    missing: tuple[int, ...]
    give_up: bool  # True: the group was dropped


class Reassembler:
    """Joins packets per (message id, packet count) in index order.

    Limits: `max_bytes` per message and `max_groups` in progress (the oldest is dropped); a group
    idle for `timeout_s` is reported overdue with its missing indexes (for a 0x8003 request),
    `max_requests` times, then dropped.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        max_bytes: int = 1 << 20,
        max_groups: int = 8,
        max_requests: int = 2,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_groups = max_groups
        self.max_requests = max_requests
        self._groups: dict[tuple[int, int], _Group] = {}
        self.dropped = 0

    def add(self, header: Header, chunk: bytes, now_s: float) -> Completed | None:
        count = header.packet_count or 0
        index = header.packet_index or 0
        if count == 0 or not 1 <= index <= count:
            self.dropped += 1
            return None
        key = (header.msg_id, count)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_groups:
                oldest = min(self._groups, key=lambda k: self._groups[k].touched_s)
                del self._groups[oldest]
                self.dropped += 1
            first_serial = (header.serial - (index - 1)) & 0xFFFF
            group = _Group(header, count, first_serial, started_s=now_s)
            self._groups[key] = group
        if index == 1:
            group.first = header
            group.first_serial = header.serial
        if index not in group.parts:
            group.size += len(chunk)
        group.parts[index] = chunk
        group.touched_s = now_s
        if group.size > self.max_bytes:
            del self._groups[key]
            self.dropped += 1
            return None
        if len(group.parts) < count:
            return None
        del self._groups[key]
        body = b"".join(group.parts[i] for i in range(1, count + 1))
        first = group.first
        cleared = Header(
            msg_id=first.msg_id,
            edition=first.edition,
            terminal=first.terminal,
            serial=group.first_serial,
            body_length=len(body),
            protocol_version=first.protocol_version,
            encryption=first.encryption,
            terminal_raw=first.terminal_raw,
        )
        return Completed(cleared, body)

    def next_deadline(self) -> float | None:
        """When the next group becomes overdue, if any is in progress."""
        if not self._groups:
            return None
        return min(g.touched_s for g in self._groups.values()) + self.timeout_s

    def overdue(self, now_s: float) -> list[Overdue]:
        out: list[Overdue] = []
        for key, group in list(self._groups.items()):
            if now_s - group.touched_s < self.timeout_s:
                continue
            missing = tuple(i for i in range(1, group.count + 1) if i not in group.parts)
            give_up = group.requests >= self.max_requests
            if give_up:
                del self._groups[key]
                self.dropped += 1
            else:
                group.requests += 1
                group.touched_s = now_s
            out.append(Overdue(key[0], group.first_serial, missing, give_up))
        return out

    def __len__(self) -> int:
        return len(self._groups)
