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

    def reserve_acks(self, count: int) -> tuple[int, bool, int, bytes]:
        """Takes `count` consecutive serials for acks encoded elsewhere; returns the first,
        whether the link speaks the 2019 edition, its protocol version and its raw terminal
        id (one call per connection and commit: the ack path's only per-link question)."""
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
    links = acks.links
    n = len(links)
    # Group the rows by connection (one object each), in order of first appearance.
    keys = np.fromiter(map(id, links), dtype=np.int64, count=n)
    _, first_row, sid, counts = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    sid = sid.reshape(-1)
    owners = [links[i] for i in first_row.tolist()]
    heads = [o.reserve_acks(c) for o, c in zip(owners, counts.tolist(), strict=True)]
    first, wide_list, version_list, raws = zip(*heads, strict=True)
    first_serial = np.array(first, dtype=np.int64)
    wide = np.array(wide_list, dtype=bool)
    version = np.array(version_list, dtype=np.int64)
    # Rows sorted by connection: each connection's acks are one run, written in one call.
    order = np.argsort(sid, kind="stable")
    s_sorted = sid[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    within = np.arange(n) - np.repeat(starts, counts)
    serial = (first_serial[s_sorted] + within) & 0xFFFF
    for v2019 in (False, True):
        group = np.flatnonzero(wide == v2019)  # connections of this edition, in sid order
        if not len(group):
            continue
        rows = np.flatnonzero(wide[s_sorted] == v2019)
        width = 10 if v2019 else 6
        joined = b"".join([raws[g] for g in group.tolist()])
        if len(joined) != width * len(group):  # a link that never sent an id of this width
            joined = b"".join([_id_bytes(raws[g], width) for g in group.tolist()])
        ids = np.frombuffer(joined, dtype=np.uint8).reshape(len(group), width)
        run_len = counts[group]
        frames = encode_general_responses(
            msg_id=0x8001,
            terminals=np.repeat(ids, run_len, axis=0),
            edition=Edition.V2019 if v2019 else Edition.V2013,
            serial=serial[rows],
            answer_serial=acks.answer_serial[order[rows]],
            answer_id=0x0200,
            protocol_version=np.repeat(version[group], run_len),
        )
        if len(frames) == len(group):  # the usual commit: one report per connection
            for g, frame in zip(group.tolist(), frames, strict=True):
                owners[g].write_frames(frame)
            continue
        at = 0
        for g, k in zip(group.tolist(), run_len.tolist(), strict=True):
            owners[g].write_frames(b"".join(frames[at : at + k]))
            at += k


def _id_bytes(raw: bytes, width: int) -> bytes:
    """A raw terminal id at the edition's width (a link that never sent one answers zeros)."""
    return raw if len(raw) == width else raw[:width].ljust(width, b"\0")
