"""The shell's hot path (`LinkSession.take_whole_report`) changes nothing but the cost: any
stream, cut into any reads, from any state, gives the same reports in the same order, the same
other events, the same answers, state and idle clock as feeding every read to `receive_data`."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.jt808.framing import whole_plain_location
from ingest.jt808.link import LinkSession
from ingest.jt808.link_events import LinkEvent, ReportsReceived
from ingest.jt808.link_state import LinkState
from ingest.jt808.messages import BatchLocationReport, Heartbeat
from tests.support.link import REPORT, T0, Peer, drain, reach

PIECES = st.sampled_from(["report", "report", "report", "heartbeat", "batch", "bad", "junk"])


def _pieces(peer: Peer, kinds: list[str]) -> list[bytes]:
    out = []
    for kind in kinds:
        if kind == "report":
            out.append(peer.report())
        elif kind == "heartbeat":
            out.append(peer.frame(Heartbeat()))
        elif kind == "batch":
            out.append(peer.frame(BatchLocationReport(0, (REPORT,))))
        elif kind == "bad":
            out.append(peer.bad_frame())
        else:
            out.append(b"\x01\x02")  # bytes between frames: they stay in the splitter
    return out


def _reads(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _normal(events: list[LinkEvent]) -> list[object]:
    """Events with the reports' payloads unflagged and each report on its own."""
    out: list[object] = []
    for event in events:
        if isinstance(event, ReportsReceived):
            out.extend(("report", p.strip(b"\x7e"), event.received_s) for p in event.payloads)
        else:
            out.append(event)
    return out


def _run(session: LinkSession, reads: list[bytes], hot: bool) -> tuple[list[object], bytes]:
    events: list[LinkEvent] = []
    sent = b""
    for i, data in enumerate(reads):
        now = T0 + i
        if hot and session.take_whole_report(data, now):
            events.append(ReportsReceived([data], now))
        else:
            session.receive_data(data, now)
            events.extend(drain(session))
        sent += session.data_to_send()
    return _normal(events), sent


@settings(max_examples=150, deadline=None)
@given(
    state=st.sampled_from(list(LinkState)),
    kinds=st.lists(PIECES, min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
    frame_reads=st.booleans(),
)
def test_hot_path_equals_the_session(
    state: LinkState, kinds: list[str], cuts: list[int], frame_reads: bool
) -> None:
    plain, _ = reach(state)
    fast, _ = reach(state)
    pieces = _pieces(Peer(), kinds)
    # One read per frame (the shape of a tracker's traffic), or the stream cut anywhere.
    reads = pieces if frame_reads else _reads(b"".join(pieces), cuts)
    assert _run(fast, reads, hot=True) == _run(plain, reads, hot=False)
    assert fast.state is plain.state
    assert fast.last_rx == plain.last_rx
    assert fast.errors == plain.errors


def test_the_hot_path_takes_a_report_only_when_authenticated_and_between_frames() -> None:
    session, peer = reach(LinkState.AUTHENTICATED)
    report = peer.report()
    assert whole_plain_location(report)
    assert session.take_whole_report(report, T0 + 1)
    assert session.last_rx == T0 + 1
    session.receive_data(report[:5], T0 + 2)  # half a frame buffered: the hot path steps aside
    assert not session.take_whole_report(report, T0 + 3)
    waiting, peer = reach(LinkState.AUTHENTICATING)
    assert not waiting.take_whole_report(peer.report(), T0 + 1)
    assert not whole_plain_location(report + report)
    assert not whole_plain_location(peer.frame(Heartbeat()))
