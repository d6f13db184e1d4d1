"""Acknowledgements owed once a group commit returns, and their vectorized encoding.

Every report of a commit is answered with 0x8001: the 0x0200 rows decoded in one batch are
encoded in one call and written with one write per connection; the few 0x0704 (and odd 0x0200)
frames decoded one by one are answered one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ingest.jt808 import Edition
from ingest.jt808.batch_encode import encode_general_responses
from ingest.jt808.ids import Result
from ingest.metrics import GatewayMetrics


class Reporter(Protocol):
    """What the group commit needs of a connection that sent reports."""

    device: int  # the terminal's index in the gateway's DeviceIndex
    closed: bool

    @property
    def terminal_raw(self) -> bytes: ...

    @property
    def edition(self) -> Edition: ...

    @property
    def protocol_version(self) -> int: ...

    def reserve_serials(self, count: int) -> int:
        """`count` consecutive serials for frames encoded elsewhere; the first is returned."""
        ...

    def write_frames(self, data: bytes) -> None:
        """Frames encoded elsewhere, counted by the caller."""
        ...

    def answer(self, serial: int, msg_id: int, result: int) -> None:
        """One general response (0x8001) to the frame of `serial`."""
        ...

    def bad_report(self) -> None:
        """A report frame the batch decoder refused: one more error on this connection."""
        ...


@dataclass(slots=True)
class Acks:
    """Acknowledgements owed once a commit returns: batch-decoded rows, then single frames."""

    links: list[Reporter] = field(default_factory=list)  # one per decoded 0x0200 row
    answer_serial: npt.NDArray[np.uint16] = field(default_factory=lambda: np.zeros(0, np.uint16))
    received_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    # (link, serial, msg_id, received_s) of 0x0704 and odd 0x0200 frames
    single: list[tuple[Reporter, int, int, float]] = field(default_factory=list)

    @staticmethod
    def merge(parts: list[Acks]) -> Acks:
        if len(parts) == 1:
            return parts[0]
        merged = Acks()
        for part in parts:
            merged.links.extend(part.links)
            merged.single.extend(part.single)
        merged.answer_serial = np.concatenate(
            [p.answer_serial for p in parts] or [np.zeros(0, np.uint16)]
        )
        merged.received_s = np.concatenate([p.received_s for p in parts] or [np.zeros(0)])
        return merged


def send_acks(acks: Acks, now: float, metrics: GatewayMetrics) -> None:
    """0x8001 for every committed report: one vectorized encode, one write per connection."""
    if acks.links:
        _send_batch_acks(acks)
        metrics.frames_out.inc(len(acks.links))
        metrics.ack_latency.observe_many(now - acks.received_s)
    for link, serial, msg_id, received in acks.single:
        link.answer(serial, msg_id, Result.OK)
        metrics.ack_latency.observe(now - received)


def _send_batch_acks(acks: Acks) -> None:
    slot: dict[Reporter, int] = {}
    sid = np.fromiter(
        (slot.setdefault(s, len(slot)) for s in acks.links),
        dtype=np.int64,
        count=len(acks.links),
    )
    owners = list(slot)
    counts = np.bincount(sid, minlength=len(owners))
    first = np.array(
        [o.reserve_serials(int(c)) for o, c in zip(owners, counts.tolist(), strict=True)],
        dtype=np.int64,
    )
    wide = np.array([o.edition is Edition.V2019 for o in owners], dtype=bool)
    for v2019 in (False, True):
        rows = np.flatnonzero(wide[sid] == v2019)
        if not len(rows):
            continue
        order = rows[np.argsort(sid[rows], kind="stable")]
        s_sorted = sid[order]
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        run_len = np.diff(np.r_[starts, len(order)])
        within = np.arange(len(order)) - np.repeat(starts, run_len)
        group = [owners[int(i)] for i in s_sorted[starts].tolist()]
        ids = np.stack([np.frombuffer(o.terminal_raw, dtype=np.uint8) for o in group])
        frames = encode_general_responses(
            msg_id=0x8001,
            terminals=ids[np.repeat(np.arange(len(group)), run_len)],
            edition=Edition.V2019 if v2019 else Edition.V2013,
            serial=(first[s_sorted] + within) & 0xFFFF,
            answer_serial=acks.answer_serial[order],
            answer_id=0x0200,
            protocol_version=np.repeat(np.array([o.protocol_version for o in group]), run_len),
        )
        for owner, a, n in zip(group, starts.tolist(), run_len.tolist(), strict=True):
            owner.write_frames(b"".join(frames[a : a + n]))
