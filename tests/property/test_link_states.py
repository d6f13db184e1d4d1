"""The link policy's table, walked through the real session: every (state, input) pair ends in
the state the table names or, refused, in the state it started from, and nothing raises; then
random sequences of everything a peer, the registry, the clock and the platform can do, each
step checked against the table."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.jt808.link_events import Closed, ReportsReceived
from ingest.jt808.link_state import REFUSED, TABLE, Input, LinkState, transition
from tests.support.link import (
    HANDSHAKE_S,
    IDLE_S,
    MAX_ERRORS,
    T0,
    Peer,
    apply,
    drain,
    feed,
    new_session,
    reach,
)

STATES = list(LinkState)
INPUTS = list(Input)


def test_every_pair_through_the_session_ends_where_the_table_says() -> None:
    for state in STATES:
        for event in INPUTS:
            session, peer = reach(state)
            apply(session, peer, event)
            expected = transition(state, event)
            assert expected is REFUSED or expected in STATES
            want = state if expected is REFUSED else expected
            assert session.state is want, (state, event)
            assert (session.next_deadline() is None) == (session.state is LinkState.CLOSED)
    assert not TABLE[LinkState.CLOSED]  # final: every input refused


STEPS = st.lists(
    st.one_of(
        st.sampled_from(INPUTS),
        st.binary(max_size=64).map(lambda b: ("bytes", b)),
        st.floats(min_value=0, max_value=700).map(lambda t: ("timer", t)),
    ),
    max_size=40,
)


@given(STEPS)
@settings(max_examples=300, deadline=None)
def test_any_sequence_follows_the_table_and_never_raises(steps: list[object]) -> None:
    session, peer = new_session(), Peer()
    now = T0
    closed = 0
    for step in steps:
        before = session.state
        if isinstance(step, Input):
            events = apply(session, peer, step, now)
            now += {Input.HANDSHAKE_TIMEOUT: HANDSHAKE_S, Input.IDLE_TIMEOUT: IDLE_S}.get(step, 0)
            expected = transition(before, step)
            want = before if expected is REFUSED else expected
            # a refused frame counts as an error, and enough of them close the link
            overflowed = session.errors >= MAX_ERRORS and session.state is LinkState.CLOSED
            assert session.state is want or overflowed, (before, step, session.state)
        elif step[0] == "bytes":  # type: ignore[index]
            events = feed(session, step[1], now)  # type: ignore[index]
        else:
            now += step[1]  # type: ignore[index]
            session.handle_timer(now)
            events = drain(session)
        closed += sum(isinstance(e, Closed) for e in events)
        if any(isinstance(e, ReportsReceived) for e in events):
            assert before is LinkState.AUTHENTICATED
        assert session.state in STATES
        assert (session.next_deadline() is None) == (session.state is LinkState.CLOSED)
        assert closed == (1 if session.state is LinkState.CLOSED else 0)
