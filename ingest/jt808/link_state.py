"""The link policy's states and its transition table: (state, input) → next state, or refused.

One table says what a platform-side JT808 link may do in each state, as h11's `_state.py`
does for HTTP. An input the table does not list for a state is refused: the session answers
the frame as failed (or the caller's request is declined) and the state does not change. Nothing
here raises, so any order of inputs leaves the link in a state the table defines.

    AWAIT_AUTH ──REGISTER──▶ REGISTERING ──ACCEPTED──▶ REGISTERED ──AUTHENTICATE──▶ AUTHENTICATING
        ▲  │                     │ refused / deferred                  ACCEPTED │   │ refused
        │  └────AUTHENTICATE─────┼────────────────────────────────────────────▶│   │
        │◀───────────────────────┘◀──────────────────────────────────────────────────┘
        │◀──DEREGISTER── AUTHENTICATED ◀────────────────────────────────────────┘
    AWAIT_AUTH, REGISTERED ──ADOPT (held by another gateway)──▶ AUTHENTICATED
    every open state ──timeout / too many errors / stream fault / close──▶ CLOSED
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class LinkState(enum.Enum):
    AWAIT_AUTH = "await_auth"  # open; nothing but registration or authentication accepted
    REGISTERING = "registering"  # a 0x0100 waits for the registry's decision
    REGISTERED = "registered"  # a code was issued; authentication expected
    AUTHENTICATING = "authenticating"  # a 0x0102 waits for the registry's decision
    AUTHENTICATED = "authenticated"  # reports, heartbeats and commands flow
    CLOSED = "closed"  # final


class Input(enum.Enum):
    """What can happen to a link: frames from the peer, decisions, timers, local requests."""

    REGISTER = "register"  # 0x0100 received
    REGISTER_ACCEPTED = "register_accepted"  # decision: a code issued (0x8100 result 0)
    REGISTER_REFUSED = "register_refused"  # decision: 0x8100 with a non-zero result
    REGISTER_DEFERRED = "register_deferred"  # decision: not now (lookups rate-limited), no answer
    AUTHENTICATE = "authenticate"  # 0x0102 received
    AUTH_ACCEPTED = "auth_accepted"
    AUTH_REFUSED = "auth_refused"
    REPORT = "report"  # 0x0200 or 0x0704
    MESSAGE = "message"  # any other terminal message: heartbeat, command reply, unknown id
    PACKET = "packet"  # one packet of a sub-packaged message
    DEREGISTER = "deregister"  # 0x0003
    BAD_FRAME = "bad_frame"  # a frame that does not decode
    COMMAND = "command"  # the platform sends a command down
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    TOO_MANY_ERRORS = "too_many_errors"
    STREAM_FAULT = "stream_fault"  # the byte stream cannot be framed any more
    CLOSE = "close"  # the peer went away, or the platform closes
    ADOPT = "adopt"  # another gateway holds the terminal's session (MQTT shared subscriptions)


class Refused(enum.Enum):
    """The answer for an input the state does not allow (one value, as a sentinel)."""

    REFUSED = "refused"


REFUSED = Refused.REFUSED

_OPEN: tuple[LinkState, ...] = tuple(s for s in LinkState if s is not LinkState.CLOSED)
_CLOSING = (Input.IDLE_TIMEOUT, Input.TOO_MANY_ERRORS, Input.STREAM_FAULT, Input.CLOSE)
# Before authentication: a connection has this long to log in.
_LOGGING_IN: tuple[LinkState, ...] = (
    LinkState.AWAIT_AUTH,
    LinkState.REGISTERING,
    LinkState.REGISTERED,
    LinkState.AUTHENTICATING,
)


def _build() -> dict[LinkState, dict[Input, LinkState]]:
    table: dict[LinkState, dict[Input, LinkState]] = {s: {} for s in LinkState}
    for state in _OPEN:
        for closing in _CLOSING:
            table[state][closing] = LinkState.CLOSED
        table[state][Input.BAD_FRAME] = state
    for state in _LOGGING_IN:
        table[state][Input.HANDSHAKE_TIMEOUT] = LinkState.CLOSED
    # A registration or an authentication may start wherever no decision is pending; starting
    # one while authenticated logs the link out first.
    starts: tuple[LinkState, ...] = (
        LinkState.AWAIT_AUTH,
        LinkState.REGISTERED,
        LinkState.AUTHENTICATED,
    )
    for state in starts:
        table[state][Input.REGISTER] = LinkState.REGISTERING
        table[state][Input.AUTHENTICATE] = LinkState.AUTHENTICATING
    table[LinkState.REGISTERING].update(
        {
            Input.REGISTER_ACCEPTED: LinkState.REGISTERED,
            Input.REGISTER_REFUSED: LinkState.AWAIT_AUTH,
            Input.REGISTER_DEFERRED: LinkState.AWAIT_AUTH,
        }
    )
    table[LinkState.AUTHENTICATING].update(
        {Input.AUTH_ACCEPTED: LinkState.AUTHENTICATED, Input.AUTH_REFUSED: LinkState.AWAIT_AUTH}
    )
    authenticated = LinkState.AUTHENTICATED
    for flowing in (Input.REPORT, Input.MESSAGE, Input.PACKET, Input.COMMAND):
        table[authenticated][flowing] = authenticated
    table[authenticated][Input.DEREGISTER] = LinkState.AWAIT_AUTH
    # A session another gateway authenticated is taken over where no decision is pending.
    for state in (LinkState.AWAIT_AUTH, LinkState.REGISTERED):
        table[state][Input.ADOPT] = authenticated
    return table


TABLE: Mapping[LinkState, Mapping[Input, LinkState]] = MappingProxyType(
    {state: MappingProxyType(row) for state, row in _build().items()}
)


def transition(state: LinkState, event: Input) -> LinkState | Refused:
    """The state after `event` in `state`, or REFUSED; never raises."""
    return TABLE[state].get(event, REFUSED)
